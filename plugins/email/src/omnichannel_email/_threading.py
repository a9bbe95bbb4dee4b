"""Email threading helpers: reply-prefix-free subjects, plus-address tokens, thread keys.

The order (see the docs page): our plus-address token (``support+<conversation>@domain``) names
the conversation; else any ``In-Reply-To`` / ``References`` id we stored (ours or theirs) finds
it in the core; else the thread key — same customer, same mailbox, same normalized subject —
joins an open conversation with that subject; a new subject opens a new conversation.
"""

# ruff: noqa: RUF001 - full-width CJK punctuation is what mail clients write

from __future__ import annotations

import re

__all__ = [
    "conversation_from_token",
    "normalize_subject",
    "plus_address",
    "reply_subject",
    "subject_thread_key",
]

# Re: Fwd: AW: WG: SV: VS: Antw: Réf: TR: RV: RE[2]: 回复: 答复: 回覆: 转发: 轉寄: … any number,
# in any order, also with a full-width colon
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|antw|antwort|r[ée]f|tr|rv|enc|odp|rif|回复|答复|回覆|答覆|"
    r"转发|轉寄|轉發|fw)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*|\[(?:fwd?|re)\]\s*)+",
    re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def normalize_subject(subject: str | None) -> str:
    """The subject without reply/forward prefixes, whitespace-collapsed and case-folded."""
    if not subject:
        return ""
    text = _SPACES.sub(" ", subject).strip()
    text = _PREFIX.sub("", text).strip()
    return text.casefold()[:200]


def has_reply_prefix(subject: str | None) -> bool:
    """Whether the subject starts with a reply or forward prefix."""
    return bool(subject and _PREFIX.match(subject))


def reply_subject(subject: str | None) -> str:
    """``Re: <subject>`` unless it already carries a reply prefix."""
    subject = _SPACES.sub(" ", subject or "").strip()
    if not subject:
        return ""
    if re.match(r"^\s*(re|aw|sv|回复|答复)\s*[:：]", subject, re.IGNORECASE):
        return subject
    return f"Re: {_PREFIX.sub('', subject).strip() or subject}"


_CONV = re.compile(r"^conv_[0-9a-z]{8,64}$")
_HEXED = re.compile(r"^h([0-9a-f]{2}){8,80}$")


def _token(conversation_id: str) -> str:
    # mail systems lower-case addresses: an id with capitals travels hex-encoded
    if conversation_id == conversation_id.lower():
        return conversation_id
    return "h" + conversation_id.encode().hex()


def plus_address(from_address: str, conversation_id: str) -> str:
    """``local+<conversation id>@domain``, the Reply-To of our messages."""
    local, _, domain = from_address.partition("@")
    return f"{local.split('+', 1)[0]}+{_token(conversation_id)}@{domain}"


def conversation_from_token(address: str, from_address: str, domain: str | None) -> str | None:
    """Our conversation id from a plus address to our own mailbox, or ``None``.

    Only our local part at our domain counts, and only a well-formed id: a customer's own
    ``alice+shop@`` address never threads anything.
    """
    local, _, host = address.lower().partition("@")
    our_local, _, our_domain = from_address.lower().partition("@")
    if host not in {our_domain, (domain or our_domain).lower()}:
        return None
    base, plus, token = local.partition("+")
    if not plus or base != our_local.split("+", 1)[0]:
        return None
    if _HEXED.match(token):
        try:
            token = bytes.fromhex(token[1:]).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            return None
        return token if re.match(r"^conv_[0-9A-Za-z]{8,64}$", token) else None
    return token if _CONV.match(token) else None


def subject_thread_key(customer: str, own: str, subject: str | None, message_id: str | None) -> str:
    """The thread key of an email: customer, our mailbox and the normalized subject. Mail
    without a subject never joins another: its key is its own Message-ID."""
    norm = normalize_subject(subject)
    if norm:
        return f"{customer}|{own}|s:{norm}"
    return f"{customer}|{own}|m:{message_id or ''}"
