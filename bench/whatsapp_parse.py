"""WhatsApp Cloud API inbound: verify + parse, ours vs a hand-written floor.

Run: ``.venv/bin/python bench/whatsapp_parse.py [rounds] [number]``. Both contenders check
``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body, constant-time compare) and read every
message and status of the body:

* ``omnichannel-whatsapp``: ``verify`` + ``parse`` — typed checks of every field, E.164 numbers,
  normalized pydantic ``InboundMessage`` / ``StatusUpdate`` objects, per-item failures;
* floor: ``hmac`` + ``orjson.loads`` + a dict walk into plain tuples, trusting every field
  (what the least a hand-rolled receiver does, with no validation).

Rounds interleave the contenders, so that load from other processes hits them alike. Times are
CPU time of this process (``time.process_time``) per item (message or status). The ratio
ours/floor is taken per round; its min, median and max are shown.
"""

from __future__ import annotations

import hashlib
import hmac
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# bench/ holds scripts named like stdlib modules (email.py): keep them off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import orjson  # noqa: E402
from omnichannel_whatsapp import WhatsAppAdapter, sign_body  # noqa: E402

from omnichannel_sdk import AdapterContext, WebhookRequest  # noqa: E402
from omnichannel_sdk.testing import MemoryKV  # noqa: E402

SAMPLES = Path(__file__).parent.parent / "plugins/whatsapp/tests/samples"
SECRET = "bench-app-secret"
PNID = "106540352242922"


def floor_parse(secret: bytes, body: bytes, header: str) -> list[tuple[Any, ...]]:
    """The least a receiver does: check the HMAC, load the JSON, pick the fields."""
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(header[7:], digest):
        raise ValueError("bad signature")
    out: list[tuple[Any, ...]] = []
    for entry in orjson.loads(body)["entry"]:
        for change in entry["changes"]:
            value = change["value"]
            for message in value.get("messages", ()):
                kind = message["type"]
                out.append((message["id"], message["from"], message["timestamp"], kind, message.get(kind)))
            for status in value.get("statuses", ()):
                out.append((status["id"], status["status"], status["timestamp"]))
    return out


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    number = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    settings = WhatsAppAdapter.Settings.model_validate(
        {"app_secret": SECRET, "verify_token": "v", "access_token": "t", "phone_number_id": PNID})
    context = AdapterContext(key="wa", public_url="https://hooks.example.test", http=httpx.AsyncClient(),
                             kv=MemoryKV())
    adapter = WhatsAppAdapter(settings, context)
    key = SECRET.encode()
    print(f"WhatsApp verify + parse, {rounds} interleaved rounds of {number}; CPU µs per item")
    print(f"{'payload':34} {'items':>5} {'ours µs':>8} {'floor µs':>9} {'ours/floor min':>15} "
          f"{'median':>7} {'max':>6}")
    for name in ("text", "batch"):
        raw = (SAMPLES / f"{name}.json").read_bytes()
        header = sign_body(SECRET, raw)
        request = WebhookRequest("POST", "https://hooks.example.test/webhooks/wa",
                                 {"content-type": "application/json", "x-hub-signature-256": header}, raw)

        def ours(request: WebhookRequest = request) -> int:
            adapter.verify(request)
            result = adapter.parse(request)
            assert not result.failures
            return len(result.items)

        def floor(raw: bytes = raw, header: str = header) -> int:
            return len(floor_parse(key, raw, header))

        items = ours()
        assert floor() == items, "the contenders must read the same items"
        contenders: list[tuple[str, Callable[[], int]]] = [("ours", ours), ("floor", floor)]
        per_item: dict[str, list[float]] = {n: [] for n, _ in contenders}
        for _ in range(rounds):
            for label, fn in contenders:
                start = time.process_time()
                for _ in range(number):
                    fn()
                per_item[label].append((time.process_time() - start) / (number * items))
        ratios = [o / f for o, f in zip(per_item["ours"], per_item["floor"], strict=True) if f > 0]
        print(f"{name + f' ({len(raw)} B)':34} {items:5} {statistics.median(per_item['ours']) * 1e6:8.1f} "
              f"{statistics.median(per_item['floor']) * 1e6:9.2f} {min(ratios):15.1f} "
              f"{statistics.median(ratios):7.1f} {max(ratios):6.1f}")


if __name__ == "__main__":
    main()
