"""Every non-email parse path, with seed requests built from the plugins' recorded vendor
samples and a seeded mutator that turns them into hostile variants.

Shared by ``tests/test_fuzz_parsers.py`` (hypothesis, a fixed seed, a few thousand examples per
path in CI) and ``scripts/fuzz_parsers.py`` (the long run, >= 100,000 per path). The email
adapters' paths belong to the email plugin's own fuzz suite.
"""

from __future__ import annotations

import copy
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import orjson

from omnichannel_sdk import (
    AdapterContext,
    ChannelAdapter,
    InboundMessage,
    OmnichannelError,
    ParseResult,
    StatusUpdate,
    WebhookRequest,
)
from omnichannel_sdk.testing import PUBLIC_URL
from omnichannel_sdk.testing._contract import MemoryKV

ROOT = Path(__file__).resolve().parents[1]
WECHAT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
WEBCHAT_SECRET = "fuzz-webchat-secret-0123456789abcdef"

HOSTILE: list[Any] = [
    "", " ", "\x00", "a\x00b", "\u202eevil", "x" * 5000, "-1", "0", "1e309", "NaN", "null",
    "999999999999999999999999", 2**70, -(2**63), 0, -1, 1.5, 1e308, None, True, False, [], {},
    [None], {"": None}, "https://evil.test/x", "javascript:alert(1)", "http://127.0.0.1:1/\r\nx",
    "https://api.twilio.com:8443/a", "+14155550100", "2026-13-45T99:99:99Z", "\ud800",
    "<script>alert(1)</script>", "../../etc/passwd", "%00", "😀" * 50, "\r\n\r\n", "\t",
]


@dataclass
class Target:
    """One parse path: an adapter, its seed requests and how a body becomes a request."""

    name: str
    adapter: type[ChannelAdapter]
    settings: dict[str, Any]
    kind: str  # json | form | xml
    seeds: list[bytes]
    build: Callable[[bytes, random.Random], WebhookRequest]
    make: Callable[[], ChannelAdapter] = field(init=False)

    def __post_init__(self) -> None:
        def make() -> ChannelAdapter:
            settings = self.adapter.Settings.model_validate(self.settings)
            context = AdapterContext(key="fuzz", public_url=PUBLIC_URL, http=None,  # type: ignore[arg-type]
                                     kv=MemoryKV())
            return self.adapter(settings, context)

        self.make = make

    def request(self, rng: random.Random) -> WebhookRequest:
        """A hostile variant of one of the seeds."""
        seed = rng.choice(self.seeds)
        return self.build(mutate(seed, self.kind, rng), rng)


# -- the mutator --------------------------------------------------------------------------------


def _hostile(rng: random.Random) -> Any:
    if rng.random() < 0.8:
        return copy.deepcopy(rng.choice(HOSTILE))  # never share a mutable value between trees
    return rng.choice(
        [rng.randint(-(2**40), 2**40), "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(1, 12)))])


def _walk(node: Any, rng: random.Random, depth: int = 0) -> Any:
    """Mutate a JSON tree: replace, delete, insert, duplicate or retype a few nodes."""
    if isinstance(node, dict) and node and rng.random() < 0.85:
        key = rng.choice(list(node))
        op = rng.random()
        if op < 0.45:
            node[key] = _walk(node[key], rng, depth + 1)
        elif op < 0.65:
            node[key] = _hostile(rng)
        elif op < 0.8:
            del node[key]
        elif op < 0.9:
            node[rng.choice([key, "x", "", "\x00"])] = _hostile(rng)
        else:
            node[key] = [node[key], copy.deepcopy(node[key])] if rng.random() < 0.5 else {key: node[key]}
        return node
    if isinstance(node, list) and node and rng.random() < 0.85:
        index = rng.randrange(len(node))
        op = rng.random()
        if op < 0.5:
            changed = _walk(node[index], rng, depth + 1)
            if index < len(node):
                node[index] = changed
        elif op < 0.7:
            node.append(copy.deepcopy(node[index]))
        elif op < 0.85:
            node.pop(index)
        else:
            node[index] = _hostile(rng)
        return node
    return _hostile(rng)


def _bytes(data: bytes, rng: random.Random) -> bytes:
    op = rng.random()
    if op < 0.3 and data:
        return data[: rng.randrange(len(data))]
    if op < 0.6 and data:
        index = rng.randrange(len(data))
        return data[:index] + bytes([rng.randrange(256)]) + data[index + 1:]
    if op < 0.8:
        index = rng.randrange(len(data) + 1)
        return data[:index] + rng.randbytes(rng.randint(1, 8)) + data[index:]
    return rng.randbytes(rng.randint(0, 300))


def _dump_json(value: Any, rng: random.Random) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=rng.random() < 0.5, allow_nan=True).encode(
            "utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return b"{}"


def mutate(seed: bytes, kind: str, rng: random.Random) -> bytes:
    """A hostile variant of ``seed`` (``kind``: json, form or xml)."""
    if rng.random() < 0.08:
        return _bytes(seed, rng)
    if kind == "json":
        try:
            tree = json.loads(seed)
        except ValueError:
            return _bytes(seed, rng)
        for _ in range(rng.choice((1, 1, 1, 2, 3, 4))):
            tree = _walk(tree, rng)
        if isinstance(tree, dict):  # nested JSON strings (SNS Message) get mutated too
            for key, value in list(tree.items()):
                if isinstance(value, str) and value[:1] == "{" and rng.random() < 0.5:
                    tree[key] = mutate(value.encode(), "json", rng).decode("utf-8", "replace")
        out = _dump_json(tree, rng)
        return _bytes(out, rng) if rng.random() < 0.05 else out
    if kind == "form":
        pairs = parse_qsl(seed.decode("utf-8", "replace"), keep_blank_values=True)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            value = _hostile(rng)
            text = value if isinstance(value, str) else json.dumps(value)
            if op < 0.5 and pairs:
                index = rng.randrange(len(pairs))
                pairs[index] = (pairs[index][0], text)
            elif op < 0.7 and pairs:
                pairs.pop(rng.randrange(len(pairs)))
            elif op < 0.85 and pairs:
                pairs.append(rng.choice(pairs))
            else:
                pairs.append((rng.choice(["MediaUrl0", "NumMedia", "concat", "x", ""]), text))
        body = "&".join(f"{quote(k, safe='')}={quote(v, safe='', errors='surrogatepass')}"
                        for k, v in pairs).encode()
        if rng.random() < 0.1:
            body += rng.choice([b"&%", b"&a=%zz", b"&\xff\xfe=1", b"&=&&=="])
        return body
    # xml: replace, drop or duplicate elements' text; sometimes add a DOCTYPE or cut it
    text = seed.decode("utf-8", "replace")
    elements = list(re.finditer(r"<(?!xml>)(\w+)>(.*?)</\1>", text, re.S))
    for _ in range(rng.randint(1, 4)):
        if not elements:
            break
        match = rng.choice(elements)
        op = rng.random()
        value = _hostile(rng)
        inner = value if isinstance(value, str) else json.dumps(value)
        inner = inner.replace("&", "&amp;").replace("<", "&lt;") if rng.random() < 0.9 else inner
        if op < 0.6:
            replacement = f"<{match.group(1)}>{inner}</{match.group(1)}>"
        elif op < 0.8:
            replacement = ""
        else:
            replacement = match.group(0) * 2
        text = text.replace(match.group(0), replacement, 1)
        elements = list(re.finditer(r"<(?!xml>)(\w+)>(.*?)</\1>", text, re.S))
    out = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.05:
        out = b'<!DOCTYPE x [<!ENTITY a "aaaa">]>' + out
    return _bytes(out, rng) if rng.random() < 0.05 else out


# -- outcomes -----------------------------------------------------------------------------------


def outcome(adapter: ChannelAdapter, request: WebhookRequest) -> str:
    """What the pipeline makes of ``request`` after verification: ``message``, ``receipt``,
    ``empty`` (nothing in it), ``dead-letter`` (a typed refusal, or per-item failures) or
    ``untyped:<Exception>`` — the hub dead-letters that too, but it is a bug to fix."""
    try:
        result = adapter.parse(request)
    except OmnichannelError:
        return "dead-letter"
    except Exception as exc:
        return f"untyped:{type(exc).__name__}: {str(exc)[:80]}"
    if not isinstance(result, ParseResult):
        return "untyped:not a ParseResult"
    if result.failures:
        return "dead-letter"
    if any(isinstance(i, InboundMessage) for i in result.items):
        return "message"
    if any(isinstance(i, StatusUpdate) for i in result.items):
        return "receipt"
    return "empty"


# -- the targets --------------------------------------------------------------------------------


def _samples(plugin: str, pattern: str, sub: str = "") -> list[bytes]:
    folder = ROOT / "plugins" / plugin / "tests" / "samples" / sub
    return [p.read_bytes() for p in sorted(folder.glob(pattern))]


def _post(key: str, content_type: str, **headers: str) -> Callable[[bytes, random.Random], WebhookRequest]:
    def build(body: bytes, rng: random.Random) -> WebhookRequest:
        kind = content_type if rng.random() < 0.9 else rng.choice(
            ["", "text/plain", "application/json", "application/x-www-form-urlencoded"])
        return WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/{key}",
                              {"content-type": kind, **headers}, body)

    return build


def _vonage_build(body: bytes, rng: random.Random) -> WebhookRequest:
    if rng.random() < 0.3:  # the GET form: the same fields in the query
        try:
            data = json.loads(body)
            query = urlencode({str(k): str(v) for k, v in data.items()}) if isinstance(data, dict) else ""
        except ValueError:
            query = body.decode("latin-1")
        return WebhookRequest("GET", f"{PUBLIC_URL}/webhooks/fuzz?{query}", {}, b"")
    return _post("fuzz", "application/json")(body, rng)


def _wechat_aes(body: bytes, rng: random.Random) -> WebhookRequest:
    from omnichannel_wechat import WeChatCrypto, build_xml, decode_aes_key

    crypto = WeChatCrypto(decode_aes_key(WECHAT_AES_KEY), "wx0123456789abcdef")
    envelope = build_xml({"ToUserName": "gh_x", "Encrypt": crypto.encrypt(body)})
    if rng.random() < 0.2:
        envelope = mutate(envelope, "xml", rng)
    return WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/fuzz?encrypt_type=aes&timestamp=1&nonce=2",
                          {"content-type": "text/xml"}, envelope)


def _webchat_build(body: bytes, rng: random.Random) -> WebhookRequest:
    from omnichannel_webchat._session import Session, sign_session

    now = int(time.time())
    session = Session(visitor="v_fuzz0000000000000000000", channel_key="fuzz", expires=now + 600,
                      issued=now, name=rng.choice([None, "Ana", "\x00", "x" * 300]),
                      email=rng.choice([None, "ana@example.com", "not-an-email", "a@b\x00.c"]))
    token = sign_session(session, WEBCHAT_SECRET)
    form = body[:1] not in (b"{", b"[")
    kind = "application/x-www-form-urlencoded" if form else "application/json"
    return WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/fuzz", {
        "content-type": kind, "x-webchat-session": token if rng.random() < 0.95 else "x.y.z",
        "origin": "https://shop.example.com"}, body)


def _sns(document: bytes) -> bytes:
    return orjson.dumps({"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-2:1:t",
                         "Message": document.decode(), "Timestamp": "2026-11-23T18:02:11.512Z",
                         "SignatureVersion": "1", "Signature": "x", "SigningCertURL": "https://x"})


def targets() -> list[Target]:
    """Every non-email parse path."""
    from omnichannel_messenger import InstagramAdapter, MessengerAdapter
    from omnichannel_sms import TwilioSmsAdapter, VonageSmsAdapter
    from omnichannel_voice import AmazonTranscribeAdapter, AssemblyAIAdapter, DeepgramAdapter
    from omnichannel_voice._twilio import TwilioVoiceAdapter
    from omnichannel_webchat import WebchatAdapter
    from omnichannel_wechat import WeChatAdapter

    from omnichannel_sdk import JsonMappingAdapter

    meta = {"app_secret": "s", "verify_token": "v", "page_access_token": "p", "fetch_profiles": False}
    wechat = {"app_id": "wx0123456789abcdef", "app_secret": "s", "token": "t"}
    xml = _samples("wechat", "*.xml")
    amazon = _samples("voice", "amazon_output.json")
    mapping_seed = orjson.dumps({"events": [
        {"id": "e1", "type": "message", "user": {"id": "u1", "name": "Ana"},
         "message": {"text": "hello", "file": "https://files.partner.test/a.pdf"}},
        {"id": "e2", "type": "status", "for": "s-1", "status": "delivered"}]})
    return [
        Target("twilio-sms", TwilioSmsAdapter, {"account_sid": "AC1", "auth_token": "t",
               "from_number": "+15005550006"}, "form", _samples("sms", "twilio_*.form"),
               _post("fuzz", "application/x-www-form-urlencoded")),
        Target("vonage-sms", VonageSmsAdapter, {"api_key": "k", "api_secret": "s", "signature_secret": "x",
               "from_number": "+447700900000"}, "json",
               [s for s in _samples("sms", "vonage_*.json")
                if s[:1] == b"{" and (b"msisdn" in s or b"err-code" in s)],
               _vonage_build),
        Target("messenger", MessengerAdapter, meta, "json", _samples("messenger", "*.json", "messenger"),
               _post("fuzz", "application/json")),
        Target("instagram", InstagramAdapter, meta, "json", _samples("messenger", "*.json", "instagram"),
               _post("fuzz", "application/json")),
        Target("wechat-mp", WeChatAdapter, wechat, "xml", xml, _post("fuzz", "text/xml")),
        Target("wechat-mp-aes", WeChatAdapter, {**wechat, "encoding_aes_key": WECHAT_AES_KEY}, "xml",
               xml, _wechat_aes),
        Target("webchat", WebchatAdapter, {"secret": WEBCHAT_SECRET}, "json",
               _samples("webchat", "*.json"), _webchat_build),
        Target("webchat-form", WebchatAdapter, {"secret": WEBCHAT_SECRET}, "form",
               _samples("webchat", "form.txt"), _webchat_build),
        Target("twilio-voice", TwilioVoiceAdapter, {
               "account_sid": "AC3f0a6b1e2d4c5b6a7980a1b2c3d4e5f6", "auth_token": "t"}, "form",
               _samples("voice", "twilio_*.form"), _post("fuzz", "application/x-www-form-urlencoded")),
        Target("deepgram", DeepgramAdapter, {"callback_secret": "s"}, "json",
               _samples("voice", "deepgram_*.json"), _post("fuzz", "application/json")),
        Target("assemblyai", AssemblyAIAdapter, {"api_key": "k", "webhook_secret": "s"}, "json",
               _samples("voice", "assemblyai_*.json"), _post("fuzz", "application/json")),
        Target("amazon-transcribe", AmazonTranscribeAdapter, {"shared_secret": "s"}, "json",
               amazon + [_sns(a) for a in amazon], _post("fuzz", "application/json")),
        Target("json-mapping", JsonMappingAdapter, {
            "secret": "s", "items": "events", "sender": "user.id", "sender_name": "user.name",
            "text": "message.text", "media_url": "message.file", "media_hosts": ["files.partner.test"],
            "send_url": "https://api.partner.test/send"}, "json", [mapping_seed],
            _post("fuzz", "application/json")),
    ]
