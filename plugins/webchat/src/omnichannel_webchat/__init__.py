"""omnichannel-webchat: web chat for omnichannel_sdk.

The ``webchat`` adapter serves an embeddable widget, a WebSocket endpoint with an HTTP
fallback (send + long-poll), signed visitor sessions, uploads, typing indicators and read
receipts. Embed it with one tag::

    <script src="https://support.example.com/hooks/channels/webchat/widget.js" async></script>
"""

from __future__ import annotations

from ._adapter import SESSION_HEADER, WebchatAdapter, wire_message
from ._session import Session, new_visitor_id, peek_session, sign_session, verify_session
from ._settings import WebchatSettings

__all__ = [
    "SESSION_HEADER",
    "Session",
    "WebchatAdapter",
    "WebchatSettings",
    "new_visitor_id",
    "peek_session",
    "sign_session",
    "verify_session",
    "wire_message",
]
