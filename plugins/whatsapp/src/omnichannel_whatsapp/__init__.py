"""WhatsApp (Cloud API) for omnichannel_sdk: the ``whatsapp`` adapter, registered through the
``omnichannel`` entry point."""

from __future__ import annotations

from omnichannel_sdk.meta import SIGNATURE_HEADER, sign_body, signature_matches

from ._adapter import OFFERED_METADATA, SERVICE_WINDOW, WhatsAppAdapter, WhatsAppSettings
from ._errors import (
    MarketingOptOutError,
    NotOnWhatsAppError,
    ReengagementRequiredError,
    UnsupportedMessageTypeError,
    error_for_code,
    graph_error,
    status_error,
)
from ._inbound import CHANNEL, OBJECT, ParseOptions, media_id_of, media_url, parse_payload, thread_key
from ._outbound import (
    DEFAULT_PROMPT,
    MEDIA_ID_SCHEME,
    Built,
    Limits,
    build_messages,
    reply_id,
    template_object,
)

__all__ = [
    "CHANNEL",
    "Built",
    "DEFAULT_PROMPT",
    "MEDIA_ID_SCHEME",
    "OBJECT",
    "OFFERED_METADATA",
    "SERVICE_WINDOW",
    "SIGNATURE_HEADER",
    "Limits",
    "MarketingOptOutError",
    "NotOnWhatsAppError",
    "ParseOptions",
    "ReengagementRequiredError",
    "UnsupportedMessageTypeError",
    "WhatsAppAdapter",
    "WhatsAppSettings",
    "build_messages",
    "error_for_code",
    "graph_error",
    "media_id_of",
    "media_url",
    "parse_payload",
    "reply_id",
    "sign_body",
    "signature_matches",
    "status_error",
    "template_object",
    "thread_key",
]
