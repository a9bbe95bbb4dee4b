"""Contact names from Meta's profile APIs, and storing them into the hub's contacts.

Messenger's User Profile API answers ``GET /{PSID}?fields=first_name,last_name,profile_pic,
locale,timezone``; Instagram's ``GET /{IGSID}?fields=name,username,profile_pic``. The pure helpers
here turn those answers into a small profile dict and merge it into a :class:`Contact`; the
adapter stores it with ``hub.modify_contact`` (atomic, publishes ``contact.updated``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from omnichannel_sdk import Contact

__all__ = [
    "INSTAGRAM_FIELDS",
    "MESSENGER_BASIC_FIELDS",
    "MESSENGER_FIELDS",
    "USER_REF_PREFIX",
    "apply_profile",
    "is_user_ref",
    "normalize_profile",
    "recipient_object",
]

log = logging.getLogger("omnichannel_messenger.profile")

MESSENGER_FIELDS = "first_name,last_name,profile_pic,locale,timezone"
"""Fields asked from Messenger's User Profile API."""
MESSENGER_BASIC_FIELDS = "first_name,last_name,profile_pic"
"""Fields every app with profile access may read (``locale`` / ``timezone`` need more)."""
INSTAGRAM_FIELDS = "name,username,profile_pic"
"""Fields asked from Instagram's user profile API."""

USER_REF_PREFIX = "user_ref:"
"""Handles of website chat plugin visitors (who have a ``user_ref``, not a PSID) start with this."""

_MAX_TEXT = 256


def is_user_ref(handle: str) -> bool:
    """Whether ``handle`` names a chat plugin visitor by ``user_ref``."""
    return handle.startswith(USER_REF_PREFIX)


def recipient_object(handle: str) -> dict[str, str]:
    """The Send API ``recipient`` for a customer handle: ``{"user_ref": …}`` or ``{"id": …}``."""
    if is_user_ref(handle):
        return {"user_ref": handle[len(USER_REF_PREFIX):]}
    return {"id": handle}


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:_MAX_TEXT] if value else None


def normalize_profile(channel: str, data: Any) -> dict[str, Any]:
    """The useful, type-checked fields of a profile answer (empty when there are none).

    Keys: ``name`` (always, when any name is known), ``first_name``, ``last_name``,
    ``username``, ``profile_pic`` (Meta's URL; it expires), ``locale``, ``timezone`` (hours
    from UTC).
    """
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    for key in ("first_name", "last_name", "username", "locale"):
        if (value := _text(data.get(key))) is not None:
            out[key] = value
    pic = data.get("profile_pic")
    if isinstance(pic, str) and pic.strip().startswith("https://") and len(pic) <= 2048:
        out["profile_pic"] = pic.strip()
    timezone = data.get("timezone")
    if isinstance(timezone, (int, float)) and not isinstance(timezone, bool) and math.isfinite(timezone) \
            and -24 <= timezone <= 24:
        out["timezone"] = timezone
    name = _text(data.get("name")) or " ".join(
        x for x in (out.get("first_name"), out.get("last_name")) if x) or None
    if name is None and channel == "instagram":
        name = out.get("username")
    if name:
        out["name"] = name
    return out


def apply_profile(contact: Contact, channel: str, handle: str, profile: dict[str, Any]) -> Contact | None:
    """``contact`` with ``profile`` merged in, or ``None`` when nothing changes.

    The profile is kept whole under ``contact.profile[channel]`` (with ``id`` = the handle).
    ``display_name`` is set when the contact has none, or when it is the name this channel gave
    before (a name someone typed in the helpdesk is never replaced). ``locale`` and
    ``timezone`` are set the same way at the top of ``contact.profile``.
    """
    if not profile:
        return None
    previous = contact.profile.get(channel)
    previous = previous if isinstance(previous, dict) else {}
    facts = dict(contact.profile)
    facts[channel] = {"id": handle, **profile}
    for key in ("locale", "timezone"):
        if key in profile and (key not in facts or facts[key] == previous.get(key)):
            facts[key] = profile[key]
    update: dict[str, Any] = {"profile": facts}
    name = profile.get("name")
    if name and (contact.display_name is None or contact.display_name == previous.get("name")):
        update["display_name"] = name
    changed = contact.model_copy(update=update)
    return None if changed == contact else changed
