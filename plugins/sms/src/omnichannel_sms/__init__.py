"""SMS channels for omnichannel_sdk: ``twilio-sms`` and ``vonage-sms``.

Installed, the distribution registers both adapters through the ``omnichannel`` entry point;
configure a channel with ``adapter = "twilio-sms"`` or ``adapter = "vonage-sms"``.
"""

from __future__ import annotations

from ._concat import ConcatAssembler, ConcatPart
from ._encoding import Segmentation, is_gsm7, segment, split_segments, transliterate
from ._keywords import keyword_event
from ._numbers import SmsSettingsT, normalize_number
from ._outbound_sms import prepare_outbound
from ._settings import DEFAULT_HELP_WORDS, DEFAULT_OPT_IN_WORDS, DEFAULT_OPT_OUT_WORDS, SmsSettings
from ._twilio import TwilioSmsAdapter, TwilioSmsSettings, parse_form, twilio_signature
from ._vonage import VonageSmsAdapter, VonageSmsSettings, signed_params, vonage_signature

__all__ = [
    "DEFAULT_HELP_WORDS",
    "DEFAULT_OPT_IN_WORDS",
    "DEFAULT_OPT_OUT_WORDS",
    "ConcatAssembler",
    "ConcatPart",
    "Segmentation",
    "SmsSettings",
    "SmsSettingsT",
    "TwilioSmsAdapter",
    "TwilioSmsSettings",
    "VonageSmsAdapter",
    "VonageSmsSettings",
    "is_gsm7",
    "keyword_event",
    "normalize_number",
    "parse_form",
    "prepare_outbound",
    "segment",
    "signed_params",
    "split_segments",
    "transliterate",
    "twilio_signature",
    "vonage_signature",
]
