"""The signing toolkit: HMAC helpers, and the one Twilio signature checked against Twilio's own
``RequestValidator`` (the ``twilio`` package of the ``bench`` extra)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnichannel_sdk import hmac_digest, hmac_matches, twilio_signature
from omnichannel_sdk.testing import require_package

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_pairs = st.lists(st.tuples(st.sampled_from(["Body", "From", "To", "MediaUrl0", "a", "B", "b"]),
                            _text), max_size=8)


class _MultiDict:
    """Form parameters with repeated names, as ``RequestValidator`` reads a Flask MultiDict."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def __iter__(self) -> Any:
        return iter(name for name, _ in self.pairs)

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]


@pytest.fixture(scope="module")
def validator() -> Any:
    module = require_package("twilio.request_validator", hint='pip install -e ".[bench]"')
    return module.RequestValidator("12345")


@settings(derandomize=True, max_examples=400, deadline=None)
@given(pairs=_pairs, query=st.sampled_from(["", "?foo=1&bar=2", "?x=%20y"]))
def test_twilio_signature_is_twilios(validator: Any, pairs: list[tuple[str, str]], query: str) -> None:
    """Same value as ``RequestValidator.compute_signature`` for any parameters, names repeated
    with the same or other values included (so ``sorted(set(pairs))``, not ``sorted(pairs)``)."""
    url = "https://support.example.com/webhooks/sms" + query
    assert twilio_signature("12345", url, pairs) == validator.compute_signature(url, _MultiDict(pairs))


def test_a_repeated_pair_is_counted_once(validator: Any) -> None:
    url = "https://support.example.com/webhooks/sms"
    pairs = [("MediaUrl0", "https://x"), ("MediaUrl0", "https://x"), ("Body", "hi")]
    assert twilio_signature("12345", url, pairs) == validator.compute_signature(url, _MultiDict(pairs))
    # the copy that sorted without de-duplicating disagreed with Twilio here
    doubled = url + "".join(k + v for k, v in sorted(pairs))
    wrong = base64.b64encode(hmac.new(b"12345", doubled.encode(), hashlib.sha1).digest()).decode()
    assert twilio_signature("12345", url, pairs) != wrong


def test_twilio_docs_example() -> None:
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
              ("From", "+12349013030"), ("To", "+18005551212")]
    assert twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) == \
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_hmac_digest_and_matches(algorithm: Any) -> None:
    function = getattr(hashlib, algorithm)
    raw = hmac.new(b"key", b"body", function).digest()
    assert hmac_digest("key", b"body", algorithm=algorithm) == raw.hex()
    assert hmac_digest(b"key", "body", algorithm=algorithm, encoding="base64") == \
        base64.b64encode(raw).decode()
    assert hmac_matches(raw.hex().upper(), "key", b"body", algorithm=algorithm)
    assert hmac_matches("sha=" + raw.hex(), "key", b"body", algorithm=algorithm, prefix="sha=")
    assert not hmac_matches(raw.hex(), "key", b"body", algorithm=algorithm, prefix="sha=")
    assert not hmac_matches(raw.hex(), "other", b"body", algorithm=algorithm)
    assert not hmac_matches("", "key", b"body", algorithm=algorithm)
    assert not hmac_matches(None, "key", b"body", algorithm=algorithm)
    assert not hmac_matches("\x00é", "key", b"body", algorithm=algorithm)


def test_hmac_refuses_unknown_choices() -> None:
    with pytest.raises(ValueError, match="md5"):
        hmac_digest("k", "m", algorithm="md5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="base32"):
        hmac_digest("k", "m", encoding="base32")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(token=st.one_of(st.text(max_size=40), st.binary(max_size=80)),
       pairs=st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=6))
def test_twilio_signature_keyed_copy_is_the_one_shot_hmac(
        token: str | bytes, pairs: list[tuple[str, str]]) -> None:
    # the keyed state is copied per call (never updated itself): the same digest as a fresh
    # HMAC, token after token and call after call
    url = "https://example.test/webhooks/sms"
    key = token.encode("utf-8") if isinstance(token, str) else token
    data = (url + "".join(map("".join, sorted(set(pairs))))).encode("utf-8")
    expected = base64.b64encode(hmac.new(key, data, hashlib.sha1).digest()).decode("ascii")
    assert twilio_signature(token, url, pairs) == expected
    assert twilio_signature(token, url, pairs) == expected
