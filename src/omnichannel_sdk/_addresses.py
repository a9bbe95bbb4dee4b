"""Normalization of customer handles: E.164 phone numbers and lower-cased email addresses."""

from __future__ import annotations

import phonenumbers

__all__ = ["PHONE_CHANNELS", "normalize_email", "normalize_handle", "normalize_phone"]

#: Channel kinds whose handles are phone numbers.
PHONE_CHANNELS = frozenset({"sms", "voice", "whatsapp", "mms"})


_CACHE_SIZE = 8192
_cache: dict[tuple[str, str | None, bool], str] = {}
"""``normalize_phone`` results by arguments, the oldest dropped first past ``_CACHE_SIZE``."""


def normalize_phone(number: str, region: str | None = None, *, international: bool = False) -> str:
    """Return ``number`` in E.164 form (``+14155550100``).

    ``region`` (ISO 3166 alpha-2, e.g. ``"US"``) is used for numbers written without a country
    code; ``international`` says the vendor writes every number with its country code but
    without ``+`` (Vonage's ``msisdn``), so ``region`` must not apply. Short codes and
    alphanumeric sender ids, which are not phone numbers, are returned stripped but otherwise
    unchanged. Raises :class:`ValueError` for a number that looks like a
    phone number but cannot be one. Results are cached: the same customers write again and
    again, and every stored message read back validates its addresses.
    """
    key = (number, region, international)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    result = _normalize_phone(number, region, international)
    if len(_cache) >= _CACHE_SIZE:
        _cache.pop(next(iter(_cache)), None)
    _cache[key] = result
    if result == number and region is not None:
        # already E.164 with a valid country code: the models' own check of this handle (no
        # region) answers the same, so it costs no second phone number parse
        _cache[(number, None, False)] = result
    return result


def _normalize_phone(number: str, region: str | None, international: bool) -> str:
    raw = number.strip()
    if not raw:
        raise ValueError("empty phone number")
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    digits = sum(ch.isdigit() for ch in raw)
    if any(ch.isalpha() for ch in raw) or digits <= 6:
        return raw  # alphanumeric sender id or short code
    if not raw.startswith("+") and (international or region is None):
        raw = "+" + raw  # vendors (Vonage, Twilio) often drop the plus sign
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(address: str) -> str:
    """Return an email address stripped and lower-cased (angle brackets removed)."""
    value = address.strip().strip("<>").strip().lower()
    if value.count("@") != 1 or value.startswith("@") or value.endswith("@"):
        raise ValueError("not an email address")
    return value


def normalize_handle(channel: str, handle: str) -> str:
    """Normalize ``handle`` as the ``channel`` kind expects (phone, email, or as given)."""
    if channel in PHONE_CHANNELS:
        return normalize_phone(handle)
    if channel == "email":
        return normalize_email(handle)
    value = handle.strip()
    if not value:
        raise ValueError("empty handle")
    return value
