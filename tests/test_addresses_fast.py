"""The E.164 fast path of normalize_phone answers what phonenumbers' parse answers."""

from __future__ import annotations

from unittest import mock

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnichannel_sdk import _addresses
from omnichannel_sdk._addresses import _parsed_e164, _plain_e164, normalize_phone

CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _full(raw: str) -> str | None:
    try:
        return _parsed_e164(raw, None)
    except ValueError:
        return None


@pytest.mark.parametrize("code", CODES)
def test_every_country_code_agrees_on_its_example_numbers(code: int) -> None:
    # each region's example numbers of every type, and the same with a digit more or less
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]:
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            raw = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            for candidate in (raw, raw + "5", raw[:-1]):
                if _plain_e164(candidate):
                    assert _full(candidate) == candidate, candidate


@settings(max_examples=3000, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CODES), st.text("0123456789", min_size=0, max_size=14),
       st.sampled_from([None, "US", "GB", "DE", "IT"]), st.booleans())
def test_random_numbers_agree(code: int, national: str, region: str | None,
                              plus: bool) -> None:
    raw = f"+{code}{national}"
    if _plain_e164(raw):  # the fast path says "as written": phonenumbers must say the same
        assert _full(raw) == raw
    # and normalize_phone as a whole answers (or refuses) what it did without the fast path
    number = raw if plus else raw[1:]
    assert _answer(number, region, fast=True) == _answer(number, region, fast=False)


def _answer(number: str, region: str | None, *, fast: bool) -> str | None:
    try:
        if fast:
            return _addresses._normalize_phone(number, region, False)
        with mock.patch.object(_addresses, "_plain_e164", return_value=False):
            return _addresses._normalize_phone(number, region, False)
    except ValueError:
        return None


@pytest.mark.parametrize("raw", ["+14155550100", "+442071838750", "+8613800138000",
                                 "+4915123456789", "+79161234567"])
def test_common_mobile_numbers_take_the_fast_path(raw: str) -> None:
    assert _plain_e164(raw)
    assert normalize_phone(raw) == raw == _full(raw)


@pytest.mark.parametrize("raw", [
    "+390612345678",   # Italy keeps the national number's leading zero
    "+5491123456789",  # Argentina: the national prefix pattern may transform it
    "+1 415 555 0100", "+1-415-555-0100", "+١٤١٥٥٥٥٠١٠٠",  # not plain digits
    "+14155550100;ext=5", "+1415555", "+1234567890123456", "+0123456789",
])
def test_anything_else_goes_through_phonenumbers(raw: str) -> None:
    assert not _plain_e164(raw)
