# ruff: noqa: E402 - the path fix below must run before the imports
"""Telegram webhook verify + parse: the ``telegram`` adapter vs a hand-written floor.

Run: ``.venv/bin/python -P bench/telegram_parse.py``. Both contenders start from what a web
server hands over (headers and body bytes) and end with normalized pydantic objects:

- ``floor``: constant-time compare of ``X-Telegram-Bot-Api-Secret-Token``, ``orjson.loads``,
  pick the fields by hand, one ``InboundMessage`` with its part (no checks beyond the shape).
- ``ours``: ``WebhookRequest`` + ``TelegramAdapter.verify`` + ``parse`` (every field
  type-checked, metadata, locale, references, the largest photo size, failures isolated).

Rounds are interleaved (floor, ours, floor, ours…) so machine noise hits both alike; reported:
wall time per update (min / median / max over rounds), the ratio ours / floor per round
(min / median / max), and CPU time per update (``process_time``).
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import hmac
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from omnichannel_telegram import TelegramAdapter

from omnichannel_sdk import AdapterContext, Address, InboundMessage, MediaPart, TextPart, WebhookRequest
from omnichannel_sdk.testing import MemoryKV

SECRET = "bench-Secret_token-0123456789"
TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
USER = {"id": 111222333, "is_bot": False, "first_name": "Ana", "last_name": "Lima", "username": "analima",
        "language_code": "pt-br"}
CHAT = {"id": 111222333, "first_name": "Ana", "last_name": "Lima", "username": "analima", "type": "private"}
BODIES = {
    "text": orjson.dumps({"update_id": 804001001, "message": {
        "message_id": 501, "from": USER, "chat": CHAT, "date": 1764590901,
        "text": "Hello, my order #1234 has not arrived"}}),
    "photo": orjson.dumps({"update_id": 804001003, "message": {
        "message_id": 503, "from": USER, "chat": CHAT, "date": 1764590903, "caption": "The box",
        "photo": [{"file_id": f"AgACAgQAAxkBAAIBA2Ys_{n}", "file_unique_id": f"u{n}", "file_size": 1000 * n,
                   "width": 90 * n, "height": 67 * n} for n in (1, 4, 14)]}}),
}
HEADERS = {"content-type": "application/json", "x-telegram-bot-api-secret-token": SECRET,
           "host": "support.example.com", "user-agent": "TelegramBot (like TwitterBot)"}
URL = "https://support.example.com/webhooks/tg"


def floor(body: bytes, headers: dict[str, str]) -> object:
    if not hmac.compare_digest(headers["x-telegram-bot-api-secret-token"].encode(), SECRET.encode()):
        raise AssertionError("refused")
    message = orjson.loads(body)["message"]
    chat = str(message["chat"]["id"])
    if "photo" in message:
        best = max(message["photo"], key=lambda p: p.get("file_size", 0))
        part: Any = MediaPart(kind="image", url="telegram-file:" + best["file_id"],
                              caption=message.get("caption"))
    else:
        part = TextPart(text=message["text"])
    return InboundMessage(external_id=f"{chat}:{message['message_id']}",
                          sender=Address(channel="telegram", handle=chat), parts=[part],
                          created_at=datetime.fromtimestamp(message["date"], UTC))


def ours_factory() -> Callable[[bytes, dict[str, str]], object]:
    adapter = TelegramAdapter(TelegramAdapter.Settings.model_validate(
        {"bot_token": TOKEN, "secret_token": SECRET}),
        AdapterContext(key="tg", public_url="https://support.example.com", http=httpx.AsyncClient(),
                       kv=MemoryKV()))

    def ours(body: bytes, headers: dict[str, str]) -> object:
        request = WebhookRequest("POST", URL, headers, body)
        adapter.verify(request)
        result = adapter.parse(request)
        if result.failures or not result.items:
            raise AssertionError(result.failures)
        return result.items[0]

    return ours


def measure(fn: Callable[[bytes, dict[str, str]], object], body: bytes, n: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn(body, HEADERS)
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def main(rounds: int = 15, n: int = 4000) -> None:
    contenders = {"floor": floor, "ours": ours_factory()}
    print(f"{rounds} interleaved rounds x {n} updates; µs per update\n")
    print("| update | contender | wall min | wall median | wall max | CPU median "
          "| ours/floor min | median | max |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, body in BODIES.items():
        for fn in contenders.values():  # warm up
            measure(fn, body, 500)
        wall: dict[str, list[float]] = {k: [] for k in contenders}
        cpu: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(rounds):
            for key, fn in contenders.items():
                w, c = measure(fn, body, n)
                wall[key].append(w)
                cpu[key].append(c)
        ratios = [o / f for o, f in zip(wall["ours"], wall["floor"], strict=True)]
        for key in contenders:
            values = [x * 1e6 for x in wall[key]]
            ratio = (f"{min(ratios):.2f} | {statistics.median(ratios):.2f} | {max(ratios):.2f}"
                     if key == "ours" else "1.00 | 1.00 | 1.00")
            print(f"| {name} | {key} | {min(values):.1f} | {statistics.median(values):.1f} | "
                  f"{max(values):.1f} | {statistics.median(cpu[key]) * 1e6:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
