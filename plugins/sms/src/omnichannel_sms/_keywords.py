"""Opt-out, opt-in and help keywords of inbound SMS (with an ASCII fast path)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from omnichannel_sdk import (
    EventPart,
)

from ._settings import SmsSettings


def _keyword_form(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).strip().casefold()
    return "".join(ch for ch in folded if not unicodedata.category(ch).startswith(("P", "Z", "C")))


# Every byte that is not an ASCII letter or digit, for ``bytes.translate(None, delete=...)``.
_NOT_ASCII_ALNUM = bytes(b for b in range(256) if not chr(b).isascii() or not chr(b).isalnum())


def _ascii_alnum_count(text: str) -> int:
    """How many ASCII letters and digits ``text`` has, counted in C rather than per character.

    Each of them survives NFKC, ``strip`` and ``casefold`` as one letter or digit of its own
    (a following combining mark may compose with it, which still leaves one letter), and
    letters and digits are never removed by :func:`_keyword_form`: the count is a lower bound
    on the length of the folded form.
    """
    return len(text.encode("ascii", "ignore").translate(None, _NOT_ASCII_ALNUM))


@lru_cache(maxsize=64)
def _keyword_table(opt_out: tuple[str, ...], opt_in: tuple[str, ...],
                   help_words: tuple[str, ...]) -> tuple[dict[str, str], int]:
    """The folded form of each configured keyword mapped to its event name (the first list
    naming a form wins, as the lists are checked in this order), and the longest form."""
    table: dict[str, str] = {}
    for name, words in (("opt_out", opt_out), ("opt_in", opt_in), ("help", help_words)):
        for word in words:
            table.setdefault(_keyword_form(word), name)
    table.pop("", None)  # an empty form never matches: a text folding to nothing is no keyword
    return table, max((len(form) for form in table), default=0)


def keyword_event(text: str, settings: SmsSettings, vendor_hint: str | None = None) -> EventPart | None:
    """The ``opt_out`` / ``opt_in`` / ``help`` event a message is, if it is one.

    The whole message must be the keyword (case, spaces and punctuation ignored: ``Stop.``),
    as carriers match them. ``vendor_hint`` is the vendor's own classification (Twilio's
    ``OptOutType``), which wins.
    """
    hint = (vendor_hint or "").strip().upper()
    if hint in ("STOP", "START", "HELP"):
        name = {"STOP": "opt_out", "START": "opt_in", "HELP": "help"}[hint]
        return EventPart(name=name, data={"keyword": text.strip(), "source": "vendor"})
    if len(text) > 64:  # keywords are single words; spare long texts the folding
        return None
    # Fast path: the folded form is at least as long as the text's ASCII letters and digits,
    # so a text with more of them than the longest keyword cannot be one (most messages), and
    # the per-character Unicode folding (a measurable share of a webhook's parse) is skipped;
    # no form longer than 32 matches, so past 32 the keyword table is not even looked up.
    count = _ascii_alnum_count(text)
    if count > 32:
        return None
    table, longest = _keyword_table(tuple(settings.opt_out_words), tuple(settings.opt_in_words),
                                    tuple(settings.help_words))
    if count > longest:
        return None
    form = _keyword_form(text)
    if not form or len(form) > 32:
        return None
    event = table.get(form)
    return EventPart(name=event, data={"keyword": text.strip()}) if event is not None else None
