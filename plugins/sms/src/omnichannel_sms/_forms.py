"""Form bodies (``application/x-www-form-urlencoded``) as Twilio and Vonage post them."""

from __future__ import annotations

import functools
from urllib.parse import unquote, unquote_to_bytes

from omnichannel_sdk import UnparseablePayloadError

__all__ = ["first_values", "parse_form"]


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """Every ``(name, value)`` pair of an ``application/x-www-form-urlencoded`` body, in order.

    Equivalent to ``urllib.parse.parse_qsl(..., keep_blank_values=True)`` on a UTF-8 body but
    decodes only the pairs that need it. Raises :class:`UnparseablePayloadError` when the body
    is not UTF-8.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise UnparseablePayloadError("form body is not UTF-8", adapter="twilio-sms") from None
    # unquote_plus is "+" → " " then unquote, for names and values alike: one replace for the
    # whole body (the separators "&" and "=" are never "+"), then only pairs with "%" decode
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        chunks = [chunk.partition("=") for chunk in text.split("&") if chunk]
        return [(name, value) for name, _, value in chunks]
    if text.isascii() and "%26" not in text and "%3D" not in text and "%3d" not in text:
        # no escaped separator: decoding the whole body first splits it where decoding each
        # name and value would (an escape always decodes to at least one character, so no
        # chunk becomes empty, and a pair's bytes end at an ASCII "&" or "=", so replacing
        # invalid UTF-8 gives the same text): one decode instead of one per escaped field
        whole = unquote_to_bytes(text).decode("utf-8", "replace")
        chunks = [chunk.partition("=") for chunk in whole.split("&") if chunk]
        return [(name, value) for name, _, value in chunks]
    chunks = [chunk.partition("=") for chunk in text.split("&") if chunk]
    pairs: list[tuple[str, str]] = []
    append = pairs.append
    for name, _, value in chunks:
        if "%" in name:
            name = _unquote(name)
        if "%" in value:
            # short values (phone numbers, ``To`` above all) repeat from message to message
            value = _unquote_short(value) if len(value) <= 32 else _unquote(value)
        append((name, value))
    return pairs


def first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The form as a dict: a name repeated keeps its first value, in first order."""
    form = dict(pairs)
    if len(form) != len(pairs):  # a name repeated: dict() kept its last value
        form = {}
        for name, value in pairs:
            form.setdefault(name, value)
    return form


def _unquote(value: str) -> str:
    """``urllib.parse.unquote(value)``: for ASCII text (what a form body is unless a client
    sent raw UTF-8) that is its percent-decoding as UTF-8 with replacement, which
    ``unquote_to_bytes`` does without ``unquote``'s regular-expression split."""
    if value.isascii():
        return unquote_to_bytes(value).decode("utf-8", "replace")
    return unquote(value)


_unquote_short = functools.lru_cache(maxsize=4096)(_unquote)
