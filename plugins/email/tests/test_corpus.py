"""Real-world and written mail: every failure class of issue 14 (``corpus/cases.py``) parses as
a helpdesk expects, and on Stalwart's public corpus we accept every mail and get sender,
subject, body and attachments right at least as often as the standard library and
mail-parser (``bench/email_corpus.py`` prints the same figures)."""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from omnichannel_email import UNKNOWN_SENDER

from omnichannel_sdk import InboundMessage, MediaPart, TextPart
from omnichannel_sdk.testing import require

ROOT = Path(__file__).resolve().parents[3]
CASES: list[tuple[str, bytes, dict[str, Any]]] = runpy.run_path(
    str(Path(__file__).parent / "corpus" / "cases.py"))["CASES"]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("email_corpus", ROOT / "bench" / "email_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["email_corpus"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


BENCH = _bench()


def _norm(text: str | None) -> str:
    return " ".join((text or "").split())


@pytest.fixture(scope="module")
def adapter() -> Any:
    return BENCH._ours_adapter()


@pytest.mark.parametrize(("name", "raw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_written_case(adapter: Any, name: str, raw: bytes, expected: dict[str, Any]) -> None:
    result = adapter.parse_raw(raw)
    (message,) = result.items
    assert isinstance(message, InboundMessage)
    if expected["sender"] is None:
        assert message.sender.handle == UNKNOWN_SENDER
        assert message.metadata["sender_unknown"] is True
    else:
        assert message.sender.handle == expected["sender"]
        assert not message.metadata.get("sender_unknown")
    assert message.subject == expected["subject"]
    assert _norm(message.metadata["full_text"]) == _norm(expected["text"])
    media = [p for p in message.parts if isinstance(p, MediaPart)]
    assert len(media) == len(expected.get("attachments", []))
    for part, want in zip(media, expected.get("attachments", []), strict=True):
        if "sha256" in want:
            assert part.sha256 == want["sha256"]
        if "filename" in want:
            assert part.filename == want["filename"]
        if "original" in want:
            assert message.metadata["original_filenames"][part.sha256] == want["original"]
    if "display_name" in expected:
        assert message.sender.display_name == expected["display_name"]
    # whatever the mail, what we hand the store is storable
    assert "\\u0000" not in message.model_dump_json()


def test_fallback_senders_are_flagged(adapter: Any) -> None:
    raw = dict((c[0], c[1]) for c in CASES)
    sources = {
        "from-junk-brackets": "from-salvaged", "from-quoted-local-with-reply-to": "reply-to",
        "no-from-sender-header": "sender", "no-from-return-path": "return-path",
        "second-from-is-the-good-one": "from-2", "no-sender-at-all": "unknown",
    }
    for name, source in sources.items():
        (message,) = adapter.parse_raw(raw[name]).items
        assert message.metadata["sender_fallback"] == source, name
    (message,) = adapter.parse_raw(raw["rfc2047-spaces-inside-words"]).items
    assert "sender_fallback" not in message.metadata
    assert message.sender.display_name == "Personaländerung"


def test_envelope_sender_is_a_fallback_too(adapter: Any) -> None:
    raw = b"From: broken\r\nSubject: x\r\n\r\nhi\r\n"
    (message,) = adapter.parse_raw(raw, envelope_from="<relay-user@example.net>").items
    assert message.sender.handle == "relay-user@example.net"
    assert message.metadata["sender_fallback"] == "envelope"


def test_q_encoded_names_never_make_an_address(adapter: Any) -> None:
    raw = dict((c[0], c[1]) for c in CASES)
    for name in ("q-encoded-name-hides-an-address", "q-encoded-name-with-colon",
                 "rfc2047-comma-in-encoded-name"):
        (message,) = adapter.parse_raw(raw[name]).items
        handles = [message.sender.handle, *(r.handle for r in message.recipients)]
        assert not any("attacker" in h or "?=" in h or "=?" in h for h in handles), handles
    (message,) = adapter.parse_raw(raw["rfc2047-comma-in-encoded-name"]).items
    assert message.sender.display_name == "Bürling, Andreas"
    assert [r.display_name for r in message.recipients][:1] == ["Müller, Eva"]


def test_tnef_is_unpacked_and_flagged(adapter: Any) -> None:
    raw = dict((c[0], c[1]) for c in CASES)["tnef-winmail-dat"]
    (message,) = adapter.parse_raw(raw).items
    assert message.metadata["tnef_unpacked"] is True
    assert [p.filename for p in message.parts if isinstance(p, MediaPart)] == ["numbers.txt"]
    assert [p.text for p in message.parts if isinstance(p, TextPart)] == ["numbers attached"]


def _corpus() -> Path:
    folder = BENCH.corpora_root() / "email" / "stalwart"
    require(f"the shared email corpus at {folder} (OMNICHANNEL_CORPORA overrides)", folder.is_dir())
    return folder


def test_stalwart_corpus_every_mail_accepted_and_at_least_the_best_peer() -> None:
    mails = list(BENCH.stalwart(_corpus()))
    assert len(mails) >= 100
    parsers = BENCH.parsers()
    shares, per_mail = BENCH.run(mails, parsers)
    refused = [name for name, result in per_mail.items() if not result["ours"]["accepted"]]
    assert not refused
    for field in BENCH.FIELDS:
        best_peer = max(shares[p][field] for p in parsers if p != "ours")
        assert shares["ours"][field] >= best_peer, (field, shares)


def test_written_cases_at_least_the_best_peer() -> None:
    mails = list(BENCH.written())
    assert len(mails) == len(CASES)
    parsers = BENCH.parsers()
    shares, _ = BENCH.run(mails, parsers)
    for field in BENCH.FIELDS:
        assert shares["ours"][field] == 1.0, (field, shares["ours"])
        assert shares["ours"][field] >= max(shares[p][field] for p in parsers if p != "ours")
