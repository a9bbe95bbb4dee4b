"""Charsets of mail text: the labels clients use, the supersets they mean, and decoding
that never fails (CJK and European charsets, ISO-2022-JP via CP932)."""

from __future__ import annotations

import codecs
import functools
import re

#: (a superset: Chinese clients label GBK text ``gb2312``, Japanese ones label CP932 ``shift_jis``).
CHARSET_ALIASES: dict[str, str] = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
    "euc-cn": "gb18030", "hz-gb-2312": "hz", "big5": "big5hkscs", "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs", "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932",
    "x-sjis": "cp932", "windows-31j": "cp932", "ms_kanji": "cp932", "iso-2022-jp": "iso2022_jp_ext",
    "csiso2022jp": "iso2022_jp_ext", "euc-jp": "euc_jis_2004", "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949", "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "iso-8859-8-i": "iso-8859-8", "utf8": "utf-8", "unicode-1-1-utf-7": "utf-7",
    "ansi_x3.4-1968": "ascii", "us-ascii": "ascii", "646": "ascii", "x-unknown": "ascii",
    "unknown-8bit": "ascii", "default": "ascii",
}
_FALLBACKS: dict[str, tuple[str, ...]] = {
    "iso2022_jp_ext": ("jis-via-cp932", "iso2022_jp_2", "iso2022_jp_2004", "cp932", "euc_jis_2004"),
    "big5hkscs": ("cp950",),
    "cp932": ("shift_jis_2004", "euc_jis_2004"),
    "gb18030": ("big5hkscs",),
}


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    if not label.isascii() or not label.isprintable() or len(label) > 40:
        return None
    return CHARSET_ALIASES.get(label, label) or None


_ANY_SURROGATE = re.compile("[\ud800-\udfff]")


def _jis_via_cp932(data: bytes) -> str:
    """ISO-2022-JP through CP932: the JIS X 0208 pairs of each ``ESC $ B`` run are moved to
    Shift_JIS bytes, so NEC's row 13 (①, ㈱) and IBM extensions that Python's ISO-2022-JP
    codecs refuse decode as the Japanese clients that wrote them meant."""
    out = bytearray()
    mode = "ascii"
    i = 0
    n = len(data)
    while i < n:
        byte = data[i]
        if byte == 0x1B:
            seq = data[i + 1:i + 3]
            if seq in (b"$B", b"$@"):
                mode, i = "jis", i + 3
                continue
            if seq in (b"(B", b"(J"):
                mode, i = "ascii", i + 3
                continue
            if seq == b"(I":
                mode, i = "kana", i + 3
                continue
            if data[i + 1:i + 4] == b"$(D":
                raise UnicodeDecodeError("iso2022_jp", data, i, i + 4, "JIS X 0212")
            raise UnicodeDecodeError("iso2022_jp", data, i, i + 1, "unknown escape")
        if byte in (0x0A, 0x0D):
            out.append(byte)
            i += 1
            continue
        if mode == "jis":
            if i + 1 >= n:
                raise UnicodeDecodeError("iso2022_jp", data, i, n, "truncated pair")
            j1, j2 = byte, data[i + 1]
            if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
                raise UnicodeDecodeError("iso2022_jp", data, i, i + 2, "not a JIS pair")
            s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
            s2 = j2 + (0x1F if j1 % 2 else 0x7E)
            if j1 % 2 and s2 >= 0x7F:
                s2 += 1
            out += bytes((s1, s2))
            i += 2
        elif mode == "kana":
            if not 0x21 <= byte <= 0x5F:
                raise UnicodeDecodeError("iso2022_jp", data, i, i + 1, "not a kana byte")
            out.append(byte + 0x80)
            i += 1
        else:
            if byte >= 0x80:
                raise UnicodeDecodeError("iso2022_jp", data, i, i + 1, "8-bit byte")
            out.append(byte)
            i += 1
    return out.decode("cp932")


def _decode_with(data: bytes, codec: str) -> str:
    if not _is_text_codec(codec):
        raise LookupError(codec)
    if codec == "jis-via-cp932":
        return _jis_via_cp932(data)
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        raise
    except (UnicodeError, ValueError, TypeError) as exc:  # a codec's own failures
        raise LookupError(codec) from exc


def detect_charset(data: bytes) -> str | None:
    """The charset charset-normalizer finds for ``data`` (mapped to its superset), or ``None``
    when the text is too short to tell (fewer than 8 non-ASCII bytes)."""
    if sum(1 for b in data if b >= 0x80) < 8:
        return None
    from charset_normalizer import from_bytes

    try:
        best = from_bytes(data[:65536]).best()
    except (ValueError, LookupError, TypeError):  # pragma: no cover - defensive
        return None
    return _codec(best.encoding) if best is not None else None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text from ``data`` labelled ``charset`` (see :func:`_decode_bytes`), without NUL (no
    store holds it, no mail means it)."""
    text = _decode_bytes(data, charset)
    return text.replace("\x00", "") if "\x00" in text else text


@functools.lru_cache(maxsize=256)
def _is_text_codec(name: str) -> bool:
    """Whether ``name`` is a text encoding: a label may name any Python codec, and
    ``base64``, ``rot13`` or ``unicode_escape`` must never run on mail."""
    if name == "jis-via-cp932":
        return True
    try:
        info = codecs.lookup(name)
    except (LookupError, UnicodeError, ValueError, TypeError):
        return False
    bad = {"unicode_escape", "raw_unicode_escape", "punycode", "idna", "undefined"}
    return bool(getattr(info, "_is_text_encoding", True)) and info.name not in bad


def _decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text from ``data`` labelled ``charset``, never failing: the label's superset codec and
    its relatives, UTF-8, then what charset-normalizer detects when the label is absent or
    wrong, then Windows-1252 with replacement characters. A decode that leaves ESC sequences
    (ISO-2022 text read as something else) is never accepted."""
    codec = _codec(charset)
    tries: list[str] = []
    if codec and codec != "ascii":
        tries += [codec, *_FALLBACKS.get(codec, ())]
    tries.append("utf-8")
    for name in tries:
        try:
            text = _decode_with(data, name)
        except (LookupError, UnicodeDecodeError):
            continue
        if "\x1b" in text and not name.startswith("iso2022"):
            continue
        if not text.isascii() and _ANY_SURROGATE.search(text):
            continue  # UTF-7 and friends can yield lone surrogates: no store can hold them
        return text
    if b"\x1b$" in data or b"\x1b(" in data:
        for name in ("iso2022_jp_ext", "jis-via-cp932", "iso2022_jp_2", "iso2022_kr"):
            try:
                return _decode_with(data, name)
            except (LookupError, UnicodeDecodeError):
                continue
    detected = detect_charset(data)
    if detected and detected not in tries:
        try:
            text = data.decode(detected)
            if "\x1b" not in text and not _ANY_SURROGATE.search(text):
                return text
        except (LookupError, UnicodeDecodeError):
            pass
    if codec and codec not in ("ascii", "utf-8", "utf-7") and _is_text_codec(codec) \
            and codec != "jis-via-cp932":
        try:
            text = data.decode(codec, errors="replace")
            if "\x1b" not in text and not _ANY_SURROGATE.search(text):
                return text
        except (LookupError, UnicodeError, ValueError, TypeError):
            pass
    return data.decode("cp1252", errors="replace")
