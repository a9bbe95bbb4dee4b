"""Typed events the hub publishes on its bus (and ``hub.events()`` yields)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ._models import Contact, ContactMerge, Conversation, MergeProposal, Message, utcnow

__all__ = [
    "ChannelSignal",
    "ContactMerged",
    "ContactUnmerged",
    "ContactUpdated",
    "ConversationOpened",
    "Event",
    "MergeProposed",
    "MessageQueued",
    "MessageReceived",
    "MessageSent",
    "MessageUpdated",
    "StatusChanged",
    "event_adapter",
]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime = Field(default_factory=utcnow)
    """When the event happened."""
    seq: int | None = None
    """Its place in the durable feed (on events from ``hub.feed()``; ``None`` on live ones)."""


class MessageReceived(_Event):
    """A new inbound message was stored."""

    type: Literal["message.received"] = "message.received"
    message: Message
    conversation: Conversation


class MessageQueued(_Event):
    """``hub.send`` stored an outbound message; delivery follows."""

    type: Literal["message.queued"] = "message.queued"
    message: Message


class MessageSent(_Event):
    """The vendor accepted an outbound message (or one was queued, with ``status`` queued)."""

    type: Literal["message.sent"] = "message.sent"
    message: Message


class MessageUpdated(_Event):
    """A stored message changed (media downloaded, transcript attached)."""

    type: Literal["message.updated"] = "message.updated"
    message: Message


class StatusChanged(_Event):
    """An outbound message's status moved forward, or it failed."""

    type: Literal["message.status"] = "message.status"
    message: Message
    previous: str


class ConversationOpened(_Event):
    """A conversation was created."""

    type: Literal["conversation.opened"] = "conversation.opened"
    conversation: Conversation


class ContactUpdated(_Event):
    """A contact changed: opted out or in, merged with another address."""

    type: Literal["contact.updated"] = "contact.updated"
    contact: Contact
    change: str
    """``opt_out``, ``opt_in``, ``merged``, or what a plugin says (``profile``)."""
    merged: list[str] = Field(default_factory=list)
    """For ``merged``: the ids of the contacts merged into this one (they no longer exist)."""


class MergeProposed(_Event):
    """Two contacts may be one person: a proposal the helpdesk confirms or rejects
    (``hub.confirm_merge`` / ``hub.reject_merge``). Nothing was merged."""

    type: Literal["contact.merge_proposed"] = "contact.merge_proposed"
    proposal: MergeProposal


class ContactMerged(_Event):
    """Two contacts became one (a confirmed proposal, a merge by id, or addresses a vendor
    proved); ``merge`` records what moved, so ``hub.unmerge(merge.id)`` can undo it."""

    type: Literal["contact.merged"] = "contact.merged"
    merge: ContactMerge
    contact: Contact
    """The contact that remained, as the merge left it."""


class ContactUnmerged(_Event):
    """A merge was undone: both contacts exist again as before it."""

    type: Literal["contact.unmerged"] = "contact.unmerged"
    merge: ContactMerge
    """The record, with ``unmerged_at`` set."""
    contact: Contact
    """The contact that had been kept, without what the merge brought."""
    restored: Contact
    """The contact that had been absorbed, back with its id."""


class ChannelSignal(_Event):
    """A passing signal that is not stored: typing, seen, presence. Published with
    ``hub.signal(...)`` so that every process (on a NATS bus) can pass it on."""

    type: Literal["channel.signal"] = "channel.signal"
    channel_key: str
    """The channel the signal belongs to."""
    conversation_id: str
    """The conversation it is about."""
    name: str
    """``typing``, ``typing_stopped``, ``seen``…"""
    data: dict[str, Any] = Field(default_factory=dict)
    """Who and what: e.g. ``{"from": "agent", "agent": "Ann"}``."""


Event = Annotated[
    Union[MessageReceived, MessageQueued, MessageSent, MessageUpdated, StatusChanged, ConversationOpened,
          ContactUpdated, MergeProposed, ContactMerged, ContactUnmerged, ChannelSignal],
    Field(discriminator="type"),
]
"""Any hub event, discriminated by ``type``."""

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)
"""Validates and serialises events (used by buses that cross processes)."""

_E = TypeVar("_E", bound=_Event)


_set = object.__setattr__


def _built(cls: type[_E], values: dict[str, Any], fields_set: set[str]) -> _E:
    # the instance pydantic's validation makes of values it would keep as they are: the same
    # __dict__ (field order), fields set, no extra, no private state
    event = cls.__new__(cls)
    _set(event, "__dict__", values)
    _set(event, "__pydantic_fields_set__", fields_set)
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


def message_received(message: Message, conversation: Conversation) -> MessageReceived:
    """``MessageReceived(message=message, conversation=conversation)`` for models the hub
    built itself, without validating them again (pydantic keeps model instances as they are;
    the rest is the event's defaults): one is made for every inbound message someone hears."""
    if type(message) is not Message or type(conversation) is not Conversation:
        return MessageReceived(message=message, conversation=conversation)
    return _built(MessageReceived, {"at": utcnow(), "seq": None, "type": "message.received",
                                    "message": message, "conversation": conversation},
                  {"message", "conversation"})


def conversation_opened(conversation: Conversation) -> ConversationOpened:
    """``ConversationOpened(conversation=conversation)``, as :func:`message_received`."""
    if type(conversation) is not Conversation:
        return ConversationOpened(conversation=conversation)
    return _built(ConversationOpened, {"at": utcnow(), "seq": None, "type": "conversation.opened",
                                       "conversation": conversation}, {"conversation"})
