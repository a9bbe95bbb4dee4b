"""The customer's whole story: one contact's messages on every channel, in one timeline."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ._models import Address, Contact, Conversation, Message, OmniModel

__all__ = ["ContactTimeline", "TimelineItem"]


class TimelineItem(OmniModel):
    """One message of a contact's timeline, with the conversation and channel it belongs to."""

    message: Message
    """The message (inbound or outbound)."""
    conversation_id: str
    """Its conversation."""
    channel: str
    """Its channel kind (``email``, ``sms``, ``webchat``…)."""
    channel_key: str
    """Its configured channel."""


class ContactTimeline(OmniModel):
    """A contact, every address, the profile, and the messages of all the contact's
    conversations on every channel, merged by ``created_at`` (``hub.contact_timeline``)."""

    contact: Contact
    """The contact as stored."""
    addresses: list[Address] = Field(default_factory=list)
    """Every address of the contact, on every channel."""
    profile: dict[str, Any] = Field(default_factory=dict)
    """The contact's profile (locale, timezone, what plugins learned)."""
    conversations: list[Conversation] = Field(default_factory=list)
    """Every conversation of the contact, most recently active first."""
    items: list[TimelineItem] = Field(default_factory=list)
    """A page of messages, oldest first (ties by message id, so the order is stable)."""
    next_before: str | None = None
    """Pass as ``before`` for the page of older messages; ``None`` when there are none."""
