"""parse_form's split fast path gives exactly what parse_qsl gives, on regular and irregular
bodies alike (empty chunks, several "=", no "=", escapes, "+", non-ASCII)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given, seed, settings
from hypothesis import strategies as st
from omnichannel_sms import _forms, parse_form

ALPHABET = st.sampled_from([*"ab=&+%2B3D26 é+1", "%2B", "%3D", "%26", "%E4%BD%A0", "%F"])


@seed(19)
@settings(max_examples=3000, derandomize=True)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_parse_form_is_parse_qsl(text: str) -> None:
    body = text.encode()
    assert parse_form(body) == parse_qsl(text, keep_blank_values=True)


@seed(19)
@settings(max_examples=500, derandomize=True)
@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=20))
def test_regular_forms_take_the_split(pairs: list[tuple[str, str]]) -> None:
    from urllib.parse import urlencode
    text = urlencode(pairs)
    assert parse_form(text.encode()) == parse_qsl(text, keep_blank_values=True)


def test_the_fast_path_is_taken_for_a_regular_body() -> None:
    # a Twilio-like body matches the one-match check; irregular ones do not
    assert _forms._REGULAR.fullmatch("From=%2B15551234567&To=&Body=hi")
    assert _forms._REGULAR.fullmatch("=x&a=")
    for irregular in ("", "a", "a=b&", "&a=b", "a=b&&c=d", "a=b=c", "a=b&c"):
        assert not _forms._REGULAR.fullmatch(irregular), irregular
    assert parse_form(b"a=b=c&d&&e=") == [("a", "b=c"), ("d", ""), ("e", "")]
    assert parse_form(b"From=%2B1555&Body=a+b") == [("From", "+1555"), ("Body", "a b")]
