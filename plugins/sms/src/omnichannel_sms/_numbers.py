"""Phone numbers: normalization, addresses, and the identity of a phone-number channel."""

from __future__ import annotations

import functools
import warnings

from typing_extensions import TypeVar

from omnichannel_sdk import (
    Address,
    ChannelAdapter,
    normalize_phone,
)

from ._settings import SmsSettings


def normalize_number(value: str, region: str | None = None, *, international: bool = False) -> str:
    """``value`` as E.164 (``+14155550100``); short codes and sender ids stay as they are.

    ``international`` says the vendor writes numbers with their country code but without ``+``
    (Vonage's ``msisdn``), so ``region`` must not be applied. Raises ``ValueError``. The core's
    cached :func:`omnichannel_sdk.normalize_phone` does the work.
    """
    return normalize_phone(value, region, international=international)


@functools.lru_cache(maxsize=8192)  # frozen, only strings inside: one object serves every message
def address(channel: str, number: str, region: str | None, *, international: bool = False) -> Address:
    """An :class:`Address` for ``number`` normalized with ``region`` (raises ``ValueError``).

    The handle is already E.164 (or a short code / sender id), which the model's own
    normalization would leave unchanged, so the model is built without validating it again:
    a phone number parse costs more than the rest of an SMS webhook's parsing.
    """
    handle = normalize_number(number, region, international=international)
    return Address.model_construct(channel=channel, handle=handle, display_name=None)


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
