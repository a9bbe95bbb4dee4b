"""The settings both SMS adapters share, and their keyword defaults."""

from __future__ import annotations

from typing import Literal

import phonenumbers
from pydantic import Field, field_validator

from omnichannel_sdk import (
    AdapterSettings,
)

DEFAULT_OPT_OUT_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
"""Words that opt a customer out (the US carriers' and both vendors' standard list)."""
DEFAULT_OPT_IN_WORDS = ("START", "UNSTOP")
"""Words that opt a customer back in."""
DEFAULT_HELP_WORDS = ("HELP",)
"""Words that ask for help (an ``help`` event; the vendor may answer on its own)."""


class SmsSettings(AdapterSettings):
    """Settings both SMS adapters take besides their vendor credentials."""

    default_region: str | None = None
    """ISO 3166 region (``"US"``, ``"GB"``) for numbers written without a country code."""
    max_segments: int = Field(default=10, ge=1, le=255)
    """Most SMS parts one outbound message may take."""
    max_segments_action: Literal["split", "refuse"] = "split"
    """Past ``max_segments``: send several messages, or refuse with ``RejectedError``."""
    transliterate: bool = False
    """Replace smart quotes, dashes and ellipses so a text stays GSM-7 (cheaper, longer parts)."""
    opt_out_words: list[str] = Field(default_factory=lambda: list(DEFAULT_OPT_OUT_WORDS))
    """Messages consisting of one of these words opt the sender out (e.g. add ``退订``, ``TD``)."""
    opt_in_words: list[str] = Field(default_factory=lambda: list(DEFAULT_OPT_IN_WORDS))
    """Messages consisting of one of these words opt the sender back in."""
    help_words: list[str] = Field(default_factory=lambda: list(DEFAULT_HELP_WORDS))
    """Messages consisting of one of these words carry a ``help`` event."""
    media_hosts: frozenset[str] = frozenset()
    """More hosts inbound media may be downloaded from (CDNs the vendor redirects to)."""

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r} (use an ISO 3166 code like 'US')")
        return region
