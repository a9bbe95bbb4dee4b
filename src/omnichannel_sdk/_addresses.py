"""Normalization of customer handles: E.164 phone numbers and lower-cased email addresses."""

from __future__ import annotations

import re

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
    if raw[0] == "+" and _plain_e164(raw):  # (before counting its digits one by one)
        return raw
    written = raw
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    digits = sum(ch.isdigit() for ch in raw)
    if any(ch.isalpha() for ch in raw) or digits <= 6:
        return raw  # alphanumeric sender id or short code
    if not raw.startswith("+") and (international or region is None):
        raw = "+" + raw  # vendors (Vonage, Twilio) often drop the plus sign
    if raw != written and _plain_e164(raw):  # a "+" added: asked again (not for the same text)
        return raw
    return _parsed_e164(raw, region)


def _parsed_e164(raw: str, region: str | None) -> str:
    """``raw`` in E.164 as phonenumbers parses it (``ValueError`` if it cannot be a number)."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_E164 = re.compile(r"\+[1-9][0-9]{7,14}")


def _plain_e164(raw: str) -> bool:
    """Whether phonenumbers would read ``raw`` as the possible number it already writes in
    E.164, decided without its ``parse``: ≈ 0.13 M instructions of the 0.15 M a new customer's
    number cost (regular expressions for extensions, punctuation and national prefixes, in
    Python), on every first message of a vendor that writes E.164 (Twilio, WhatsApp, Vonage).

    Only ``+`` and 8 to 15 ASCII digits qualify; the country code is found as phonenumbers
    finds it (the shortest prefix it knows). Anything that could read differently goes the
    whole way: a national number with a leading zero (Italy's is kept), and one that the
    country's national prefix pattern matches (phonenumbers may strip or transform that
    prefix). ``False`` answers nothing: the caller parses. ``tests/test_addresses_fast.py``
    compares both ways for every country code."""
    if _E164.fullmatch(raw) is None:
        return False
    for size in (1, 2, 3):
        code = int(raw[1:1 + size])
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code)
        if regions:
            break
    else:
        return False
    national = raw[1 + size:]
    if national[0] == "0":
        return False
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code))
    if metadata is None:
        return False
    prefix = metadata.national_prefix_for_parsing
    if prefix and re.match(prefix, national) is not None:
        return False
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return bool(phonenumbers.is_possible_number(number))


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
