"""Encoding and segmentation, cross-checked with the ``gsm0338`` codec and a reference packer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omnichannel_sms import SmsSettings, is_gsm7, prepare_outbound, segment, split_segments, transliterate

from omnichannel_sdk import MediaPart, RejectedError, TextPart


@pytest.fixture(autouse=True, scope="module")
def _codec(gsm0338: object) -> None:
    """Every test here cross-checks with the gsm0338 codec (registered on import)."""


def reference(text: str) -> tuple[str, int]:
    """A differently written counter: encode for real, then pack the bytes / code units."""
    try:
        if "\x1b" in text:
            raise UnicodeEncodeError("gsm03.38", text, 0, 1, "escape")
        encoded = text.encode("gsm03.38")
    except UnicodeEncodeError:
        data = text.encode("utf-16-be")
        units = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
        if len(units) <= 70:
            return "UCS-2", 1
        parts, room, i = 1, 67, 0
        while i < len(units):
            size = 2 if 0xD800 <= units[i] <= 0xDBFF else 1
            if size > room:
                parts, room = parts + 1, 67
            room -= size
            i += size
        return "UCS-2", parts
    if len(encoded) <= 160:
        return "GSM-7", 1
    parts, room, i = 1, 153, 0
    while i < len(encoded):
        size = 2 if encoded[i] == 0x1B else 1
        if size > room:
            parts, room = parts + 1, 153
        room -= size
        i += size
    return "GSM-7", parts


GSM_ALPHABET = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCXYZÄÖÑÜ§¿axyzäöñüà"
EXTENSION = "^{}\\[~]|€\f"
gsm_text = st.text(alphabet=GSM_ALPHABET + EXTENSION, max_size=1200)
any_text = st.text(max_size=700)
mixed = st.text(alphabet=st.sampled_from([*list("ab €{"), "é", "ж", "😀", "中", "\u2019"]), max_size=900)


@pytest.mark.parametrize(("text", "encoding", "segments"), [
    ("", "GSM-7", 1),
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1),
    ("€" * 81, "GSM-7", 2),
    ("a" * 152 + "€" + "a" * 9, "GSM-7", 2),  # escape pair moves to part 2 whole
    ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),
    ("ж" * 70, "UCS-2", 1),
    ("ж" * 71, "UCS-2", 2),
    ("ж" * 134, "UCS-2", 2),
    ("ж" * 135, "UCS-2", 3),
    ("😀" * 35, "UCS-2", 1),
    ("😀" * 36, "UCS-2", 2),
    ("a" * 66 + "😀", "UCS-2", 1),
    ("a" * 66 + "😀" + "a" * 4, "UCS-2", 2),
    ("Ç", "GSM-7", 1),
    ("ç", "UCS-2", 1),
])
def test_known_counts(text: str, encoding: str, segments: int) -> None:
    info = segment(text)
    assert (info.encoding, info.segments) == (encoding, segments)
    assert reference(text) == (encoding, segments)


@settings(max_examples=300, deadline=None)
@given(gsm_text)
def test_gsm_matches_reference(text: str) -> None:
    info = segment(text)
    assert (info.encoding, info.segments) == reference(text)
    assert info.units == len(text.encode("gsm03.38"))


@settings(max_examples=300, deadline=None)
@given(st.one_of(any_text, mixed))
def test_any_text_matches_reference(text: str) -> None:
    info = segment(text)
    assert (info.encoding, info.segments) == reference(text)
    assert info.segments >= 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(gsm_text, mixed), st.integers(min_value=1, max_value=4))
def test_split_fits_and_keeps_text(text: str, limit: int) -> None:
    chunks = split_segments(text, limit)
    assert all(segment(c).segments <= limit for c in chunks)
    # nothing but the one space or line break a cut falls on is dropped
    assert len("".join(chunks)) >= len(text) - (len(chunks) - 1)
    rebuilt = chunks[0]
    for chunk in chunks[1:]:
        assert text.startswith(rebuilt)
        rest = text[len(rebuilt):]
        rebuilt += rest[:1] + chunk if rest[:1] in (" ", "\n") and not rest.startswith(chunk) else chunk
    assert rebuilt == text


def test_transliterate_keeps_gsm() -> None:
    text = "We\u2019re \u201copen\u201d \u2013 see you\u2026"
    assert not is_gsm7(text)
    out = transliterate(text)
    assert out == "We're \"open\" - see you..."
    assert segment(out).encoding == "GSM-7"
    # text that stays UCS-2 anyway is left as typed
    assert transliterate("\u201c\u4f60\u597d\u201d") == "\u201c\u4f60\u597d\u201d"


def test_prepare_outbound_metadata_refuse_and_split() -> None:
    settings_ = SmsSettings(max_segments=2, max_segments_action="refuse")
    short = prepare_outbound([TextPart(text="hi"), TextPart(text="there €")], settings_, "t")
    assert short.bodies == ["hi\n\nthere €"]
    assert short.metadata() == {"encoding": "GSM-7", "segments": 1}
    with pytest.raises(RejectedError) as info:
        prepare_outbound([TextPart(text="x" * 400)], settings_, "t")
    assert "max_segments" in str(info.value) and not info.value.retryable
    split = prepare_outbound([TextPart(text="ж " * 300)], SmsSettings(max_segments=2), "t")
    assert len(split.bodies) > 1
    meta = split.metadata()
    assert meta["encoding"] == "UCS-2"
    assert meta["segments"] == sum(m["segments"] for m in meta["sms"])
    assert all(m["segments"] <= 2 for m in meta["sms"])
    translit = prepare_outbound([TextPart(text="it\u2019s")], SmsSettings(transliterate=True), "t")
    assert translit.bodies == ["it's"] and translit.encodings[0].encoding == "GSM-7"
    media_only = prepare_outbound([MediaPart(kind="image", url="https://x.test/a.png")], SmsSettings(), "t")
    assert media_only.bodies == [] and media_only.media


def test_vendor_char_limit_splits() -> None:
    out = prepare_outbound([TextPart(text="word " * 400)], SmsSettings(max_segments=20), "t",
                           max_chars=1600)
    assert all(len(b) <= 1600 for b in out.bodies) and len(out.bodies) == 2
