"""omnichannel-email: email for omnichannel_sdk.

Adapters: ``email-smtp`` (own SMTP listener + IMAP poller in, SMTP submission out), ``mailgun``,
``sendgrid`` and ``postmark`` (inbound webhooks + send APIs). The MIME reader, the reply
splitter, threading and bounce/auto-reply detection are public for reuse and testing.
"""

from __future__ import annotations

from ._base import UNKNOWN_SENDER, EmailAdapter, EmailSettings, EmailSettingsT
from ._compose import OutboundAttachment, OutboundEmail, build_message
from ._dsn import auto_reply_reason, bounce_status
from ._mailgun import MailgunAdapter, MailgunSettings, mailgun_signature
from ._mime import (
    Attachment,
    ParsedEmail,
    decode_bytes,
    decode_header_value,
    parse_mime,
    safe_filename,
    storable_text,
)
from ._postmark import PostmarkAdapter, PostmarkSettings
from ._sendgrid import SendGridAdapter, SendGridSettings
from ._smtp import EmailSmtpAdapter, EmailSmtpSettings
from ._text import SplitText, html_to_text, sanitize_html, split_reply
from ._threading import conversation_from_token, normalize_subject, plus_address, reply_subject

__all__ = [
    "Attachment",
    "EmailAdapter",
    "EmailSettings",
    "EmailSettingsT",
    "EmailSmtpAdapter",
    "EmailSmtpSettings",
    "MailgunAdapter",
    "MailgunSettings",
    "OutboundAttachment",
    "OutboundEmail",
    "ParsedEmail",
    "PostmarkAdapter",
    "PostmarkSettings",
    "SendGridAdapter",
    "SendGridSettings",
    "SplitText",
    "UNKNOWN_SENDER",
    "auto_reply_reason",
    "bounce_status",
    "build_message",
    "conversation_from_token",
    "decode_bytes",
    "decode_header_value",
    "html_to_text",
    "mailgun_signature",
    "normalize_subject",
    "parse_mime",
    "plus_address",
    "reply_subject",
    "safe_filename",
    "sanitize_html",
    "split_reply",
    "storable_text",
]
