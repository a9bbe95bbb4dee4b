"""Facebook Messenger and Instagram messaging for omnichannel_sdk.

Adapters ``messenger`` and ``instagram`` (registered through the ``omnichannel`` entry point).
"""

from __future__ import annotations

from omnichannel_sdk.meta import SIGNATURE_HEADER, appsecret_proof, sign_body, signature_matches

from ._adapter import (
    HUMAN_AGENT_WINDOW,
    MESSAGE_TAGS,
    TAG_METADATA,
    InstagramAdapter,
    MessageTag,
    MessengerAdapter,
    MetaAdapter,
    MetaSettings,
)
from ._graph import OutsideWindowError, UserUnavailableError, graph_error
from ._inbound import ECHO_METADATA_PREFIX, PAGE_INBOX_APP_IDS, ParseOptions, parse_payload
from ._outbound import DEFAULT_PROMPT, OutboundLimits, action_payload, build_messages
from ._settings import InstagramSettings, MessengerSettings, MetaSettingsT

__all__ = [
    "DEFAULT_PROMPT",
    "ECHO_METADATA_PREFIX",
    "HUMAN_AGENT_WINDOW",
    "MESSAGE_TAGS",
    "PAGE_INBOX_APP_IDS",
    "SIGNATURE_HEADER",
    "TAG_METADATA",
    "InstagramAdapter",
    "InstagramSettings",
    "MessageTag",
    "MessengerAdapter",
    "MessengerSettings",
    "MetaAdapter",
    "MetaSettings",
    "MetaSettingsT",
    "OutboundLimits",
    "OutsideWindowError",
    "ParseOptions",
    "UserUnavailableError",
    "action_payload",
    "appsecret_proof",
    "build_messages",
    "graph_error",
    "parse_payload",
    "sign_body",
    "signature_matches",
]
