"""SMS character encoding and segmentation (3GPP TS 23.038 / 23.040).

A text that fits the GSM 03.38 default alphabet (plus its extension table) is sent as GSM-7:
160 septets in one SMS, 153 per part once concatenated (the user data header takes the rest).
Extension characters (``^{}\\[~]|€`` and form feed) are an escape plus a character: two septets,
and an escape pair is never split across parts. Anything else is sent as UCS-2 (UTF-16): 70 code
units alone, 67 per part; a character outside the Basic Multilingual Plane is a surrogate pair
(two units) that is never split either.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SmsEncoding",
    "Segmentation",
    "is_gsm7",
    "segment",
    "split_segments",
    "transliterate",
]

Encoding = Literal["GSM-7", "UCS-2"]

#: The GSM 03.38 default alphabet (the escape code 0x1B is left out: it is not a character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Characters of the extension table: each costs an escape septet plus itself.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

_GSM_SINGLE, _GSM_MULTI = 160, 153
_UCS_SINGLE, _UCS_MULTI = 70, 67


@dataclass(frozen=True)
class Segmentation:
    """How a text goes over the air: its encoding, how many SMS parts, and their size."""

    encoding: Encoding
    """``GSM-7`` or ``UCS-2``."""
    segments: int
    """Number of SMS parts (at least 1, also for the empty text)."""
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text."""

    def as_metadata(self) -> dict[str, object]:
        """The ``{"encoding", "segments"}`` record stored on outbound messages (SPEC §10)."""
        return {"encoding": self.encoding, "segments": self.segments}


SmsEncoding = Segmentation
"""Alias kept for readers who look for the encoding first."""


_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` exists in GSM-7 (basic or extension table)."""
    return _GSM7_ALL.issuperset(text)


def _gsm_costs(text: str) -> list[int]:
    ext = GSM7_EXTENSION
    return [2 if ch in ext else 1 for ch in text]


def _ucs_costs(text: str) -> list[int]:
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(costs: list[int], single: int, multi: int) -> list[int]:
    """Greedy packing: the character index where each part starts; units never split."""
    total = sum(costs)
    if total <= single:
        return [0]
    starts = [0]
    used = 0
    for index, cost in enumerate(costs):
        if used + cost > multi:
            starts.append(index)
            used = 0
        used += cost
    return starts


def segment(text: str) -> Segmentation:
    """The encoding, part count and size of ``text`` as an SMS."""
    # only the characters that cost two units (escape pairs, surrogate pairs) need looking at
    # one by one: the rest of the packing is arithmetic on their positions, found by set,
    # codec and regular-expression calls instead of a Python loop per character
    if _GSM7_ALL.issuperset(text):
        wide = [] if GSM7_EXTENSION.isdisjoint(text) else \
            [m.start() for m in _GSM7_ESCAPED.finditer(text)]
        return _packed("GSM-7", len(text), wide, _GSM_SINGLE, _GSM_MULTI)
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    wide = [] if units == len(text) else [m.start() for m in _ASTRAL.finditer(text)]
    return _packed("UCS-2", len(text), wide, _UCS_SINGLE, _UCS_MULTI)


_GSM7_ESCAPED = re.compile("[" + re.escape("".join(sorted(GSM7_EXTENSION))) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _packed(encoding: Encoding, length: int, wide: list[int], single: int,
            multi: int) -> Segmentation:
    """Greedy packing of ``length`` characters, those at the sorted indexes ``wide`` costing
    two units and never split: each part ends at the furthest character that still fits."""
    units = length + len(wide)
    if units <= single:
        return Segmentation(encoding, 1, units)
    if not wide:
        return Segmentation(encoding, -(-units // multi), units)
    parts = start = 0
    while start < length:
        parts += 1
        end = min(length, start + multi)
        first = bisect_left(wide, start)
        while (end - start) + (bisect_left(wide, end, first) - first) > multi:
            end -= 1
        start = end
    return Segmentation(encoding, parts, units)


def split_segments(text: str, max_segments: int) -> list[str]:
    """Split ``text`` into texts of at most ``max_segments`` SMS parts each.

    Cuts fall on a line break or a space near the end of a chunk where there is one, else
    exactly at the part boundary (never inside an escape pair or a surrogate pair). Each chunk
    is re-checked: a chunk that is GSM-7 alone may hold more characters than its UCS-2 whole.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    chunks: list[str] = []
    rest = text
    while segment(rest).segments > max_segments:
        gsm = is_gsm7(rest)
        costs = _gsm_costs(rest) if gsm else _ucs_costs(rest)
        single, multi = (_GSM_SINGLE, _GSM_MULTI) if gsm else (_UCS_SINGLE, _UCS_MULTI)
        budget = single if max_segments == 1 else multi * max_segments
        used, end = 0, 0
        for index, cost in enumerate(costs):
            if used + cost > budget:
                break
            used += cost
            end = index + 1
        # the greedy budget matches the packing for one part; for several parts an escape pair
        # at a boundary can waste a unit, so shrink until the chunk really fits
        while end > 1 and segment(rest[:end]).segments > max_segments:
            end -= 1
        cut = end
        for sep in ("\n", " "):
            pos = rest.rfind(sep, 0, end)
            if pos > end * 2 // 3:
                cut = pos
                break
        piece = rest[:cut]
        chunks.append(piece)
        rest = rest[cut:]
        if cut < end and rest[:1] in ("\n", " "):
            rest = rest[1:]
    chunks.append(rest)
    return chunks


_TRANSLITERATIONS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2009": " ", "\u202f": " ",
    "\u200b": "", "\ufeff": "",
    "\u2022": "*", "\u00b7": "*",
    "\t": " ",
}
_TABLE = str.maketrans(_TRANSLITERATIONS)


def transliterate(text: str) -> str:
    """``text`` with smart quotes, dashes, ellipses and odd spaces replaced by GSM-7 ones.

    Returns the replacement only when it makes the whole text GSM-7 (otherwise the message is
    UCS-2 anyway and keeps what the author typed).
    """
    if is_gsm7(text):
        return text
    replaced = text.translate(_TABLE)
    return replaced if is_gsm7(replaced) else text
