"""Keyword detection: the fast path (skip the Unicode folding for texts too long to be a keyword)
answers exactly what the full comparison answers."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from omnichannel_sms import SmsSettings, keyword_event
from omnichannel_sms._keywords import _ascii_alnum_count

from omnichannel_sdk import EventPart


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).strip().casefold()
    return "".join(ch for ch in folded if not unicodedata.category(ch).startswith(("P", "Z", "C")))


def reference(text: str, sms: SmsSettings) -> EventPart | None:
    """The detection as it was before the fast path: fold the text, compare with every word."""
    if len(text) > 64:
        return None
    form = _fold(text)
    if not form or len(form) > 32:
        return None
    for name, words in (("opt_out", sms.opt_out_words), ("opt_in", sms.opt_in_words),
                        ("help", sms.help_words)):
        if any(form == _fold(word) for word in words):
            return EventPart(name=name, data={"keyword": text.strip()})
    return None


DEFAULT = SmsSettings()
CUSTOM = SmsSettings(opt_out_words=["STOP", "退订", "TD", "Stop-Now", "\uff21\uff22", "Ⅻ", "ß", "ﬁn", ""],
                     opt_in_words=["START", "stop"], help_words=["HELP", "I N F O", "help?"])
NONE = SmsSettings(opt_out_words=[], opt_in_words=[], help_words=[])

# Texts near keywords: ASCII letters, their full-width and compatibility forms, combining marks,
# punctuation, spaces of every kind, control and format characters, CJK.
ALPHABET = st.sampled_from(list("stopSTOPahelpinfoHELPNTDd0189 .!?-_\t\n\r\u00a0\u200b\u200d\u2028\x00"
                                "\u0301\u0307\uff33\uff34\uff2f\uff30\uff53\u2160\u216b\u00df\u1e9e"
                                "\ufb01\u0130\u212a\u017f退订é€🙂"))
TEXTS = st.one_of(
    st.text(ALPHABET, max_size=40),
    st.text(max_size=70),
    st.builds(lambda w, pre, post: pre + w + post,
              st.sampled_from(["STOP", "stop", "Stop", "START", "help", "退订", "td", "INFO",
                               "stop-now", "ab", "xii", "ss", "fin"]),
              st.text(ALPHABET, max_size=6), st.text(ALPHABET, max_size=6)),
)


@settings(derandomize=True, max_examples=3000, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, which=st.sampled_from([DEFAULT, CUSTOM, NONE]))
@example(text="Stop.", which=DEFAULT)
@example(text=" s t o p ", which=DEFAULT)
@example(text="\uff33\uff34\uff2f\uff30", which=DEFAULT)
@example(text="S\u0301TOP", which=DEFAULT)
@example(text="Hello, I would like to know where my order is. Thanks!", which=DEFAULT)
@example(text="x" * 64, which=DEFAULT)
@example(text="STOP" + " " * 61, which=DEFAULT)
def test_fast_path_answers_what_the_full_comparison_answers(text: str, which: SmsSettings) -> None:
    assert keyword_event(text, which) == reference(text, which)


@settings(derandomize=True, max_examples=2000, deadline=None)
@given(text=st.text(max_size=80))
def test_ascii_alnum_count_is_a_lower_bound_of_the_folded_length(text: str) -> None:
    assert _ascii_alnum_count(text) <= len(_fold(text))


@pytest.mark.parametrize(("text", "name"), [
    ("Stop.", "opt_out"), (" s t o p ", "opt_out"), ("\uff33\uff34\uff2f\uff30", "opt_out"), ("stop!!!", "opt_out"),
    ("UnSubscribe", "opt_out"), ("start", "opt_in"), ("Help?", "help"), ("STOP please", None),
    ("Hello, I would like to know where my order is. Thanks!", None), ("S" * 200, None), ("", None),
    ("...", None),
])
def test_default_keywords(text: str, name: str | None) -> None:
    event = keyword_event(text, DEFAULT)
    assert (event.name if event else None) == name
    if event:
        assert event.data == {"keyword": text.strip()}


def test_first_list_wins_and_custom_words_fold_too() -> None:
    assert keyword_event("stop", CUSTOM).name == "opt_out"  # in opt-out and opt-in: opt-out wins
    assert keyword_event("Stop now!", CUSTOM).name == "opt_out"
    assert keyword_event("info", CUSTOM).name == "help"
    assert keyword_event("ab", CUSTOM).name == "opt_out"  # full-width A B folds to ab
    assert keyword_event(" 退订 ", CUSTOM).name == "opt_out"
    assert keyword_event("stop", NONE) is None
