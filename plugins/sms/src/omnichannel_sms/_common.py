"""What both SMS adapters share: settings, number normalization, keywords, outbound text."""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import orjson
import phonenumbers
from pydantic import Field, field_validator
from typing_extensions import TypeVar

from omnichannel_sdk import (
    AdapterSettings,
    Address,
    ChannelAdapter,
    EventPart,
    MediaPart,
    Part,
    RejectedError,
    TextPart,
    normalize_phone,
    split_text,
)

from ._encoding import Segmentation, segment, split_segments, transliterate

__all__ = [
    "DEFAULT_HELP_WORDS",
    "DEFAULT_OPT_IN_WORDS",
    "DEFAULT_OPT_OUT_WORDS",
    "OutboundSms",
    "PhoneNumberAdapter",
    "SendProgress",
    "SmsSettings",
    "SmsSettingsT",
    "address",
    "keyword_event",
    "normalize_number",
    "prepare_outbound",
]

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


def normalize_number(value: str, region: str | None = None, *, international: bool = False) -> str:
    """``value`` as E.164 (``+14155550100``); short codes and sender ids stay as they are.

    ``international`` says the vendor writes numbers with their country code but without ``+``
    (Vonage's ``msisdn``), so ``region`` must not be applied. Raises ``ValueError``. The core's
    cached :func:`omnichannel_sdk.normalize_phone` does the work.
    """
    return normalize_phone(value, region, international=international)


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
    table, longest = _keyword_table(tuple(settings.opt_out_words), tuple(settings.opt_in_words),
                                    tuple(settings.help_words))
    # Fast path: the folded form is at least as long as the text's ASCII letters and digits,
    # so a text with more of them than the longest keyword cannot be one (most messages), and
    # the per-character Unicode folding (a measurable share of a webhook's parse) is skipped.
    if _ascii_alnum_count(text) > min(longest, 32):
        return None
    form = _keyword_form(text)
    if not form or len(form) > 32:
        return None
    event = table.get(form)
    return EventPart(name=event, data={"keyword": text.strip()}) if event is not None else None


@dataclass
class OutboundSms:
    """The SMS bodies one outbound message becomes, with their encodings."""

    bodies: list[str]
    """One text per vendor message (several when ``max_segments`` made us split)."""
    media: list[MediaPart] = field(default_factory=list)
    """Media to attach (MMS) to the first message."""
    encodings: list[Segmentation] = field(default_factory=list)
    """The encoding of each body."""

    def metadata(self) -> dict[str, Any]:
        """``{"encoding", "segments"}`` for the whole message (UCS-2 if any body is), plus one
        record per vendor message when there are several."""
        if not self.encodings:
            return {"encoding": "GSM-7", "segments": 0}
        encoding = "UCS-2" if any(e.encoding == "UCS-2" for e in self.encodings) else "GSM-7"
        meta: dict[str, Any] = {"encoding": encoding,
                                "segments": sum(e.segments for e in self.encodings)}
        if len(self.encodings) > 1:
            meta["sms"] = [e.as_metadata() for e in self.encodings]
        return meta


def prepare_outbound(parts: Sequence[Part], settings: SmsSettings, adapter: str,
                     *, max_chars: int | None = None) -> OutboundSms:
    """Join the text parts into one SMS body, encode it, apply ``max_segments``.

    ``max_chars`` is the vendor's hard limit on one body (Twilio: 1,600 characters); longer
    bodies are always split there. Raises ``RejectedError`` when the text needs more than
    ``max_segments`` parts and the setting says ``refuse``.
    """
    texts = [p.text for p in parts if isinstance(p, TextPart) and p.text]
    media = [p for p in parts if isinstance(p, MediaPart)]
    body = "\n\n".join(texts)
    if settings.transliterate:
        body = transliterate(body)
    info = segment(body)
    bodies = [body]
    if info.segments > settings.max_segments:
        if settings.max_segments_action == "refuse":
            raise RejectedError(
                f"{adapter}: the text needs {info.segments} {info.encoding} SMS parts, more than "
                f"max_segments={settings.max_segments}", vendor_code="max_segments")
        bodies = split_segments(body, settings.max_segments)
    if max_chars is not None and any(len(b) > max_chars for b in bodies):
        bodies = [piece for b in bodies for piece in _split_chars(b, max_chars)]
    if not body and not media:
        raise RejectedError(f"{adapter}: nothing to send")
    if not body:
        bodies = []
    return OutboundSms(bodies=bodies, media=media, encodings=[segment(b) for b in bodies])


def _split_chars(text: str, limit: int) -> list[str]:
    return split_text(text, limit)


def address(channel: str, number: str, region: str | None, *, international: bool = False) -> Address:
    """An :class:`Address` for ``number`` normalized with ``region`` (raises ``ValueError``).

    The handle is already E.164 (or a short code / sender id), which the model's own
    normalization would leave unchanged, so the model is built without validating it again:
    a phone number parse costs more than the rest of an SMS webhook's parsing.
    """
    handle = normalize_number(number, region, international=international)
    return Address.model_construct(channel=channel, handle=handle, display_name=None)


class SendProgress:
    """Which SMS of a split message the vendor already accepted (in the hub's shared ``kv``).

    Delivery is at-least-once: when the second of three SMS fails and the message is retried,
    the first must not go out twice. Each accepted SMS is recorded under
    ``sms-sent:{channel_key}:{message_id}:{index}`` for a week; a retry skips what is recorded.
    """

    def __init__(self, context: Any, message_id: str) -> None:
        self.kv = getattr(context, "kv", None)
        self.prefix = f"sms-sent:{getattr(context, 'key', '')}:{message_id}:"

    async def accepted(self, index: int) -> list[str] | None:
        """The vendor ids of SMS ``index`` if it was accepted before."""
        if self.kv is None:
            return None
        value = await self.kv.kv_get(f"{self.prefix}{index}")
        return [str(x) for x in orjson.loads(value)] if value else None

    async def record(self, index: int, ids: list[str]) -> None:
        """Remember that SMS ``index`` was accepted with ``ids``."""
        if self.kv is not None:
            await self.kv.kv_set(f"{self.prefix}{index}", orjson.dumps(ids).decode(), ttl=7 * 86400)


SmsSettingsT = TypeVar("SmsSettingsT", bound=SmsSettings, default=SmsSettings, covariant=True)
"""The settings model of a :class:`PhoneNumberAdapter` (``PhoneNumberAdapter[TwilioSmsSettings]``)."""


class PhoneNumberAdapter(ChannelAdapter[SmsSettingsT]):
    """The identity of a phone-number channel, shared by the SMS adapters: our number
    (``self._own``, set by the subclass) and customers' numbers read in ``default_region``.
    Generic over the vendor's settings model."""

    _own: Address | None = None

    def own_address(self) -> Address | None:
        """Our number, when one is configured."""
        return self._own

    def customer_address(self, handle: str) -> Address:
        """A customer address from a number in any format, using ``default_region`` for local
        ones (``hub.start_conversation``)."""
        return address(self.channel, handle, self.settings.default_region)

    def address(self, number: str) -> Address:
        """Deprecated since 0.2 (removed in 0.3): :meth:`customer_address`."""
        warnings.warn(f"{type(self).__name__}.address() is deprecated: use customer_address()",
                      DeprecationWarning, stacklevel=2)
        return self.customer_address(number)
