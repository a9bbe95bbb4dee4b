"""How much of real-world mail comes out right: omnichannel-email against the standard library
(``policy.default`` + ``get_body``) and mail-parser, in one run, on the same mail.

Run: ``.venv/bin/python bench/email_corpus.py [--corpus DIR] [--json]`` (mail-parser is a bench
peer: ``pip install -e ".[bench]"``). The corpus is located as ``../shared/corpora/email`` beside
the repository (``OMNICHANNEL_CORPORA`` overrides the ``corpora`` folder); it is read, never
copied into the repository.

Corpora:

- ``stalwart``: the 107 messages of Stalwart Labs' mail-parser test resources with that project's
  expected parse (``NNN.json``): expected sender = the first ``From`` address (none when it has
  no From, then any accepted sender counts), subject, body text (the ``text_body`` parts; HTML
  ones through the same HTML-to-text step for every parser), attachments (count, and the SHA-256
  of every binary one);
- ``written``: the mail we wrote for each failure class (``plugins/email/tests/corpus/*.eml``
  with ``*.expected.json``), scored the same way.

A field is right when it equals the expectation after whitespace is collapsed; a mail that a
parser refuses or crashes on scores nothing on that parser. ``accepted`` is the share of mail
that produced a stored message (or a bounce receipt) at all.
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WRITTEN = ROOT / "plugins" / "email" / "tests" / "corpus" / "cases.py"
FIELDS = ("accepted", "sender", "subject", "body", "attachments")


def corpora_root() -> Path:
    """Where the shared corpora live: ``$OMNICHANNEL_CORPORA`` or ``../shared/corpora``."""
    env = os.environ.get("OMNICHANNEL_CORPORA")
    return Path(env) if env else ROOT.parent / "shared" / "corpora"


@dataclass
class Expected:
    """What a mail should parse to."""

    name: str
    raw: bytes
    sender: str | None
    subject: str | None
    text: str
    attachment_count: int
    attachment_hashes: list[str] = field(default_factory=list)


@dataclass
class Got:
    """What one parser made of a mail."""

    accepted: bool = False
    sender: str | None = None
    subject: str | None = None
    text: str = ""
    attachment_hashes: list[str] = field(default_factory=list)
    attachment_count: int = 0


def norm(text: str | None) -> str:
    """Whitespace collapsed (the comparison every field gets)."""
    return " ".join((text or "").replace("\u200b", "").split())


def _html_text(html: str) -> str:
    from omnichannel_email import html_to_text

    return html_to_text(html)


def _stalwart_header(part: dict[str, Any], name: str) -> Any:
    for header in part.get("headers", []):
        if header.get("name") == name:
            return header.get("value")
    return None


def _stalwart_text(part: dict[str, Any]) -> str:
    body = part.get("body")
    if not isinstance(body, dict):
        return ""
    if "Text" in body:
        return str(body["Text"])
    if "Html" in body:
        return _html_text(str(body["Html"]))
    return ""


def _stalwart_bytes(part: dict[str, Any]) -> bytes | None:
    body = part.get("body")
    if isinstance(body, dict):
        for kind in ("Binary", "InlineBinary"):
            if kind in body and isinstance(body[kind], list):
                return bytes(body[kind])
    return None


def stalwart(folder: Path) -> Iterator[Expected]:
    """The Stalwart corpus with its expectations."""
    for path in sorted(folder.glob("*/*.eml")):
        spec = json.loads(path.with_suffix(".json").read_text())
        root = spec["parts"][0]
        sender = None
        value = _stalwart_header(root, "from")
        if isinstance(value, dict) and "Address" in value:
            listed = value["Address"].get("List") if isinstance(value["Address"], dict) else None
            for entry in listed or []:
                # an expected "address" without a domain (``<moderator>``) is no address our
                # model (and SMTP) can reply to: the mail then counts as naming no sender
                if entry.get("address") and "@" in str(entry["address"]):
                    sender = str(entry["address"]).lower()
                    break
        subject = _stalwart_header(root, "subject")
        subject_text = subject.get("Text") if isinstance(subject, dict) else None
        texts = [_stalwart_text(spec["parts"][i]) for i in spec["text_body"]]
        hashes = []
        for i in spec["attachments"]:
            data = _stalwart_bytes(spec["parts"][i])
            if data is not None:
                hashes.append(hashlib.sha256(data).hexdigest())
        yield Expected(name=f"stalwart/{path.parent.name}/{path.stem}", raw=path.read_bytes(),
                       sender=sender, subject=subject_text, text="\n".join(texts),
                       attachment_count=len(spec["attachments"]), attachment_hashes=hashes)


def written(path: Path = WRITTEN) -> Iterator[Expected]:
    """The mail we wrote for every failure class (``CASES`` of the cases module)."""
    import runpy

    for name, raw, spec in runpy.run_path(str(path))["CASES"]:
        yield Expected(name=f"written/{name}", raw=raw,
                       sender=spec.get("sender"), subject=spec.get("subject"),
                       text=spec.get("text", ""), attachment_count=len(spec.get("attachments", [])),
                       attachment_hashes=[a["sha256"] for a in spec.get("attachments", [])
                                          if a.get("sha256")])


# -- the parsers -------------------------------------------------------------------------------


def _ours_adapter() -> Any:
    import httpx
    from omnichannel_email import EmailSmtpAdapter

    from omnichannel_sdk import AdapterContext, MemoryBlobStore
    from omnichannel_sdk.testing._contract import MemoryKV

    return EmailSmtpAdapter(
        EmailSmtpAdapter.Settings.model_validate({"from_address": "support@shop.example"}),
        AdapterContext(key="corpus", public_url="https://x.test", http=httpx.AsyncClient(),
                       kv=MemoryKV(), blobs=MemoryBlobStore()))


def parse_ours(adapter: Any) -> Callable[[bytes], Got]:
    """Our whole inbound step (``parse_raw``): the normalized message as it would be stored."""
    from omnichannel_sdk import InboundMessage, MediaPart, StatusUpdate, UnparseablePayloadError

    def run(raw: bytes) -> Got:
        try:
            result = adapter.parse_raw(raw)
        except UnparseablePayloadError:
            return Got()
        item = result.items[0]
        if isinstance(item, StatusUpdate):  # a bounce: accepted as a receipt, nothing else
            return Got(accepted=True)
        assert isinstance(item, InboundMessage)
        media = [p for p in item.parts if isinstance(p, MediaPart)]
        unknown = item.metadata.get("sender_unknown")
        return Got(accepted=True, sender=None if unknown else item.sender.handle,
                   subject=item.subject, text=str(item.metadata.get("full_text") or ""),
                   attachment_hashes=[p.sha256 or "" for p in media], attachment_count=len(media))

    return run


def parse_stdlib(raw: bytes) -> Got:
    """The standard library's modern API: ``policy.default``, ``get_body``, ``iter_attachments``."""
    got = Got()
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:
        return got
    got.accepted = True
    try:
        addresses = msg["From"].addresses if msg["From"] is not None else ()
        got.sender = addresses[0].addr_spec.lower() if addresses and addresses[0].addr_spec else None
    except Exception:
        got.sender = None
    try:
        got.subject = str(msg["Subject"]) if msg["Subject"] is not None else None
    except Exception:
        got.subject = None
    try:
        body = msg.get_body(("plain", "html"))
        if body is not None:
            content = body.get_content()
            got.text = _html_text(content) if body.get_content_subtype() == "html" else content
    except Exception:
        got.text = ""
    try:
        for att in msg.iter_attachments():
            got.attachment_count += 1
            try:
                data = att.get_payload(decode=True)
                if isinstance(data, bytes):
                    got.attachment_hashes.append(hashlib.sha256(data).hexdigest())
            except Exception:
                continue
    except Exception:
        pass
    return got


def parse_mailparser(raw: bytes) -> Got:
    """mail-parser (``mailparser.parse_from_bytes``)."""
    import mailparser

    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
    got = Got()
    try:
        mail = mailparser.parse_from_bytes(raw)
    except Exception:
        return got
    got.accepted = True
    try:
        pairs = mail.from_
        got.sender = pairs[0][1].lower() if pairs and pairs[0][1] else None
    except Exception:
        got.sender = None
    try:
        got.subject = mail.subject
    except Exception:
        got.subject = None
    try:
        plain = "\n".join(mail.text_plain)
        got.text = plain or "\n".join(_html_text(h) for h in mail.text_html)
    except Exception:
        got.text = ""
    try:
        for att in mail.attachments:
            got.attachment_count += 1
            payload = att.get("payload") or ""
            data = base64.b64decode(payload) if att.get("binary") else payload.encode(
                "utf-8", "surrogateescape")
            got.attachment_hashes.append(hashlib.sha256(data).hexdigest())
    except Exception:
        pass
    return got


def same(got: str | None, expected: str | None) -> bool:
    """Equal after whitespace is collapsed; where the expectation itself lost characters
    (U+FFFD: the reference parser could not decode a raw 8-bit header), any one character
    there matches."""
    a, b = norm(got), norm(expected)
    if a == b:
        return True
    if "\ufffd" not in b:
        return False
    import re

    pattern = "".join("." if c == "\ufffd" else re.escape(c) for c in b)
    return re.fullmatch(pattern, a) is not None


def score(expected: Expected, got: Got) -> dict[str, bool]:
    """Which fields a parser got right on one mail."""
    if not got.accepted:
        return dict.fromkeys(FIELDS, False)
    sender = got.sender == expected.sender if expected.sender else True
    subject = same(got.subject, expected.subject)
    body = same(got.text, expected.text)
    hashes = list(got.attachment_hashes)
    attachments = got.attachment_count == expected.attachment_count
    for digest in expected.attachment_hashes:
        if digest in hashes:
            hashes.remove(digest)
        else:
            attachments = False
    return {"accepted": True, "sender": sender, "subject": subject, "body": body,
            "attachments": attachments}


def parsers() -> dict[str, Callable[[bytes], Got]]:
    """Every parser available in this environment (mail-parser when installed)."""
    out: dict[str, Callable[[bytes], Got]] = {"ours": parse_ours(_ours_adapter()),
                                              "stdlib": parse_stdlib}
    try:
        import mailparser  # noqa: F401
    except ImportError:
        print("mail-parser is not installed (bench peer): only ours and stdlib", file=sys.stderr)
    else:
        out["mail-parser"] = parse_mailparser
    return out


def run(mails: list[Expected], chosen: dict[str, Callable[[bytes], Got]]
        ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, bool]]]]:
    """Shares of right fields per parser, and the per-mail results."""
    per_mail: dict[str, dict[str, dict[str, bool]]] = {}
    totals = {name: dict.fromkeys(FIELDS, 0) for name in chosen}
    for mail in mails:
        per_mail[mail.name] = {}
        for name, parse in chosen.items():
            result = score(mail, parse(mail.raw))
            per_mail[mail.name][name] = result
            for key, ok in result.items():
                totals[name][key] += ok
    shares = {name: {k: v / max(1, len(mails)) for k, v in fields.items()}
              for name, fields in totals.items()}
    return shares, per_mail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=None, help="corpora folder")
    parser.add_argument("--json", action="store_true", help="print the per-mail results as JSON")
    parser.add_argument("--misses", default=None, help="list the mails this parser gets wrong")
    args = parser.parse_args()
    root = args.corpus or corpora_root()
    sets = {"written": list(written())}
    if (root / "email" / "stalwart").is_dir():
        sets["stalwart"] = list(stalwart(root / "email" / "stalwart"))
    else:
        print(f"no corpus at {root / 'email' / 'stalwart'}", file=sys.stderr)
    chosen = parsers()
    report: dict[str, Any] = {}
    for label, mails in sets.items():
        shares, per_mail = run(mails, chosen)
        report[label] = {"mails": len(mails), "shares": shares, "per_mail": per_mail}
        print(f"\n{label}: {len(mails)} mails")
        print(f"{'parser':12} " + " ".join(f"{f:>12}" for f in FIELDS))
        for name, fields in shares.items():
            print(f"{name:12} " + " ".join(f"{fields[f] * 100:11.1f}%" for f in FIELDS))
        if args.misses:
            for mail, results in per_mail.items():
                wrong = [k for k, ok in results[args.misses].items() if not ok]
                if wrong:
                    print(f"  {args.misses} misses {mail}: {', '.join(wrong)}")
    if args.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
