"""Long fuzz run of every email parse path: each input must end in a message, a receipt or a
typed ``UnparseablePayloadError`` (a dead letter), and what comes out must be storable (JSON
without surrogates or NUL).

Run: ``.venv/bin/python bench/email_fuzz.py [--per-path 100000] [--seed 1]``. Inputs are mutations
of documented vendor payloads (byte flips, truncation, splices, header and field injection,
hostile encoded words, charsets and sizes), from a fixed seed so a failure can be replayed. The
CI-sized run of the same paths is ``plugins/email/tests/test_fuzz.py`` (hypothesis).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
from omnichannel_email import EmailSmtpAdapter, MailgunAdapter, PostmarkAdapter, SendGridAdapter

from omnichannel_sdk import (
    AdapterContext,
    InboundMessage,
    MemoryBlobStore,
    ParseResult,
    UnparseablePayloadError,
    WebhookRequest,
)
from omnichannel_sdk.testing._contract import MemoryKV

SAMPLES = Path(__file__).resolve().parent.parent / "plugins" / "email" / "tests" / "samples"
B = "fuzzBOUNDARY"

PIECES = [
    b"=?utf-8?Q?a,evil@attacker.example?=", b"=?gb2312?B?1eLKx9bQzsQ=?=", b"=?bogus?Q?=FF?=",
    b"=?utf-7?Q?+AGQAZQ-?=", b"\x1b$B$3$s\x1b(B", b"\x1b$B-!\x1b(B", b"\xff\xfe\x00", b"\x00",
    b"\r\n\r\n", b"\r\n ", b"\n", b"<<>>", b"@", b"<a@b>", b"Content-Type: multipart/mixed; boundary=x",
    b"--x\r\n", b"--x--", b"Content-Transfer-Encoding: base64", b"=\r\n", b"%FF", b"\xe4\xbd\xa0",
    b"Content-Type: message/rfc822\r\n\r\n", b"Content-Type: application/ms-tnef", b"x" * 3000,
    b"From: ", b"Message-ID: <\xe9@x>", b"References: <\xc3\xa9@x> <\x00@y>", b'"', b"(", b")",
]


NAMES = ["a.png", "../../etc/passwd", "n\x00ul.txt", "你.txt", "a\\b.txt"]


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(6)
        pos = rng.randint(0, len(data)) if data else 0
        if op == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 1:
            data[pos:pos] = rng.choice(PIECES)
        elif op == 2 and data:
            del data[pos:pos + rng.randint(1, 64)]
        elif op == 3:
            data = data[:pos]
        elif op == 4:
            data[pos:pos] = rng.randbytes(rng.randint(1, 32))
        else:
            start = rng.randint(0, len(data)) if data else 0
            data[pos:pos] = data[start:start + rng.randint(1, 200)]
    return bytes(data)


JSON_VALUES: list[object] = [None, True, 0, -1, 2**63, 1e308, "", "\x00", "a@b", "<x@y>", "../../x",
                             "=?utf-8?Q?a,b@evil.example?=", [], {}, [{}], {"Email": 1}, "\ud800"]


def mutate_json(rng: random.Random, seed: bytes) -> bytes:
    """A structural mutation of a JSON document: a value replaced, a key dropped or added,
    lists multiplied; a fifth of the time byte mutations on top."""
    try:
        doc = orjson.loads(seed)
    except orjson.JSONDecodeError:
        return mutate(rng, seed)

    def walk(node: object, depth: int = 0) -> object:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                r = rng.random()
                if r < 0.08:
                    continue
                out[key] = rng.choice(JSON_VALUES) if r < 0.2 else walk(value, depth + 1)
            if rng.random() < 0.1:
                out[rng.choice(["Attachments", "RecordType", "event", "Headers", "x"])] = \
                    rng.choice(JSON_VALUES)
            return out
        if isinstance(node, list):
            items = [walk(v, depth + 1) for v in node]
            if items and rng.random() < 0.1:
                items = items * rng.randint(2, 50)
            return items
        return rng.choice(JSON_VALUES) if rng.random() < 0.1 else node

    try:
        data = orjson.dumps(walk(doc))
    except TypeError:  # a lone surrogate: send it escaped, as a vendor bug would
        data = seed
    return mutate(rng, data) if rng.random() < 0.2 else data


def _multipart(fields: list[tuple[str, bytes, str]]) -> bytes:
    body = b""
    for name, value, extra in fields:
        body += (f"--{B}\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\n\r\n".encode()
                 + value + b"\r\n")
    return body + f"--{B}--\r\n".encode()


def mime_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]


def context() -> AdapterContext:
    return AdapterContext(key="fuzz", public_url="https://x.test", http=httpx.AsyncClient(),
                          kv=MemoryKV(), blobs=MemoryBlobStore())


def adapters() -> dict[str, object]:
    common = {"from_address": "support@shop.example"}
    return {
        "email-smtp": EmailSmtpAdapter(EmailSmtpAdapter.Settings.model_validate(common), context()),
        "mailgun": MailgunAdapter(MailgunAdapter.Settings.model_validate(
            {**common, "signing_key": "k", "api_key": "k"}), context()),
        "sendgrid": SendGridAdapter(SendGridAdapter.Settings.model_validate(
            {**common, "api_key": "k", "basic_auth_username": "u", "basic_auth_password": "p"}),
            context()),
        "postmark": PostmarkAdapter(PostmarkAdapter.Settings.model_validate(
            {**common, "server_token": "k", "basic_auth_username": "u", "basic_auth_password": "p"}),
            context()),
    }


def paths() -> dict[str, tuple[str, str, Callable[[random.Random], bytes]]]:
    """Each parse path: (adapter, content type, input generator)."""
    mimes = mime_seeds()
    events = {p.stem: p.read_bytes() for p in sorted((SAMPLES / "events").glob("*.json"))}
    postmark_inbound = (SAMPLES / "postmark_inbound.json").read_bytes()
    mp = f"multipart/form-data; boundary={B}"

    def raw(rng: random.Random) -> bytes:
        return mutate(rng, rng.choice(mimes))

    def mailgun_mime(rng: random.Random) -> bytes:
        mime = mutate(rng, rng.choice(mimes))
        extra = rng.choice(["", "; filename=\"message.mime\"\r\nContent-Type: message/rfc822"])
        body = _multipart([("recipient", b"support@shop.example", ""), ("sender", b"a@b.example", ""),
                           ("body-mime", mime, extra)])
        return body if rng.random() < 0.7 else mutate(rng, body)

    def mailgun_parsed(rng: random.Random) -> bytes:
        headers = orjson.dumps([["From", "Ann <ann@example.org>"], ["Subject", "hi"],
                                ["Message-Id", "<x@example.org>"], ["Content-Type", "multipart/mixed"]])
        fields = [("message-headers", mutate(rng, headers) if rng.random() < 0.5 else headers, ""),
                  ("from", mutate(rng, b"Ann <ann@example.org>"), ""),
                  ("body-plain", mutate(rng, b"hello\r\n> quoted"), ""),
                  ("body-html", mutate(rng, b"<p>hello</p>"), ""),
                  ("content-id-map", mutate(rng, b'{"<ii_1>": "attachment-1"}'), ""),
                  ("attachment-1", rng.randbytes(rng.randint(0, 300)),
                   '; filename="' + rng.choice(NAMES) + '"\r\nContent-Type: image/png')]
        body = _multipart(fields)
        return body if rng.random() < 0.7 else mutate(rng, body)

    def sendgrid(rng: random.Random) -> bytes:
        if rng.random() < 0.5:
            fields = [("email", mutate(rng, rng.choice(mimes)), ""),
                      ("envelope", mutate(rng, b'{"to":["support@shop.example"],"from":"a@b.example"}'), "")]
        else:
            fields = [("headers", mutate(rng, b"From: Ann <ann@example.org>\nSubject: hi\n"), ""),
                      ("text", mutate(rng, b"hello"), ""), ("charsets", mutate(rng, b'{"text":"gbk"}'), ""),
                      ("attachment-info", mutate(rng, b'{"attachment1":{"filename":"a.txt"}}'), ""),
                      ("attachment1", rng.randbytes(40), "; filename=\"a.txt\"")]
        body = _multipart(fields)
        return body if rng.random() < 0.7 else mutate(rng, body)

    def postmark(rng: random.Random) -> bytes:
        return mutate_json(rng, postmark_inbound)

    def event(names: list[str]) -> Callable[[random.Random], bytes]:
        return lambda rng: mutate_json(rng, events[rng.choice(names)])

    return {
        "email-smtp raw": ("email-smtp", "message/rfc822", raw),
        "mailgun mime route": ("mailgun", mp, mailgun_mime),
        "mailgun parsed route": ("mailgun", mp, mailgun_parsed),
        "mailgun events": ("mailgun", "application/json",
                           event([k for k in events if k.startswith("mailgun")])),
        "sendgrid inbound parse": ("sendgrid", mp, sendgrid),
        "sendgrid events": ("sendgrid", "application/json",
                            event([k for k in events if k.startswith("sendgrid")])),
        "postmark inbound": ("postmark", "application/json", postmark),
        "postmark events": ("postmark", "application/json",
                            event([k for k in events if k.startswith("postmark")])),
    }


def _where(value: object, path: str = "") -> str:
    if isinstance(value, dict):
        for k, v in value.items():
            found = _where(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _where(v, f"{path}[{i}]")
            if found:
                return found
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
    return ""


def check(result: ParseResult) -> None:
    """What a parse returned must be storable: JSON with no surrogate and no NUL."""
    for item in result.items:
        try:
            dumped = item.model_dump_json()
        except ValueError:
            raise AssertionError(f"unstorable: {_where(item.model_dump())}") from None
        if "\\u0000" in dumped or "\x00" in dumped:
            raise AssertionError(f"NUL in a parsed {type(item).__name__}")
        if isinstance(item, InboundMessage) and not item.external_id:
            raise AssertionError("empty external id")


def run_one(adapter: object, content_type: str, body: bytes) -> str:
    request = WebhookRequest("POST", "https://x.test/webhooks/fuzz", {"content-type": content_type},
                             body)
    try:
        result = adapter.parse(request)  # type: ignore[attr-defined]
    except UnparseablePayloadError:
        return "dead letter"
    check(result)
    return "receipt" if result.items and not isinstance(result.items[0], InboundMessage) else (
        "message" if result.items else "empty")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-path", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default=None, help="run only paths containing this text")
    args = parser.parse_args()
    logging.getLogger("python_multipart").setLevel(logging.CRITICAL)  # it warns on each bad form
    chosen = adapters()
    failures = 0
    print(f"{'path':26} {'inputs':>8} {'message':>8} {'receipt':>8} {'dead':>8} {'empty':>6} "
          f"{'unhandled':>9} {'s':>6}")
    for label, (name, ctype, make) in paths().items():
        if args.only and not any(part in label for part in args.only.split(",")):
            continue
        rng = random.Random(f"{args.seed}:{label}")
        counts = {"message": 0, "receipt": 0, "dead letter": 0, "empty": 0, "unhandled": 0}
        start = time.perf_counter()
        for i in range(args.per_path):
            body = make(rng)
            try:
                counts[run_one(chosen[name], ctype, body)] += 1
            except Exception:
                counts["unhandled"] += 1
                if counts["unhandled"] <= 3:
                    print(f"  {label} input {i}: {traceback.format_exc(limit=-4)}", file=sys.stderr)
        failures += counts["unhandled"]
        print(f"{label:26} {args.per_path:8} {counts['message']:8} {counts['receipt']:8} "
              f"{counts['dead letter']:8} {counts['empty']:6} {counts['unhandled']:9} "
              f"{time.perf_counter() - start:6.0f}", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
