"""Numbered replies: on channels without buttons the actions of a message are sent as a
numbered list, and a customer answering "2" means the second action."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ._models import Action, EventPart, TextPart

__all__ = ["answered_action", "numbered_reply"]

_DIGITS = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


def numbered_reply(parts: Sequence[Any]) -> int | None:
    """The 0-based choice an inbound message makes when it is only a number ("2", "2.", "2)"),
    else ``None``."""
    if len(parts) != 1 or not isinstance(parts[0], TextPart):
        return None
    match = _DIGITS.match(parts[0].text)
    return int(match.group(1)) - 1 if match else None


def answered_action(parts: list[Any], numbered: Sequence[Any] | None, choice: int) -> list[Any]:
    """``parts`` with an ``action`` event added for action ``choice`` of the numbered list the
    last outbound message carried (``metadata["numbered_actions"]``); unchanged when the number
    names no action."""
    if not numbered or not 0 <= choice < len(numbered):
        return parts
    action = Action.model_validate(numbered[choice])
    return [*parts, EventPart(name="action", data=action.model_dump())]
