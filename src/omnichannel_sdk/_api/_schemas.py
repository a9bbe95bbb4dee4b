"""The service API's request and answer bodies: the one source of both validation and the
OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from .._events import Event
from .._models import (
    Author,
    Contact,
    ContactMerge,
    Conversation,
    DeadLetter,
    MergeProposal,
    Message,
    Part,
)

__all__ = [
    "ContactMergePage",
    "ConversationPage",
    "DeadLetterPage",
    "DecisionRequest",
    "FeedEvent",
    "FieldProblem",
    "MergeProposalPage",
    "MergeRequest",
    "MessagePage",
    "Problem",
    "ReplayRequest",
    "ReplayResult",
    "SendRequest",
    "UnmergeResult",
]


class SendRequest(BaseModel):
    """A reply: ``text`` or ``parts`` (or both), rendered to what the channel can show."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=65_536)
    """Plain text, sent first."""
    parts: list[Part] = Field(default_factory=list, max_length=50)
    """Normalized parts (text, media, actions, template…)."""
    author: Author | None = None
    """Who wrote it; a missing author is not a human."""
    reply_to: str | None = None
    """Our id of the message answered."""
    subject: str | None = Field(default=None, max_length=998)
    """Subject (email); defaults to the conversation's."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Extras for the adapter (a Messenger tag, a template's language…)."""


class ConversationPage(BaseModel):
    """One page of conversations, most recently active first."""

    items: list[Conversation]
    next: str | None = None
    """Pass as ``cursor`` for the next page; ``null`` on the last."""


class MessagePage(BaseModel):
    """One page of a conversation's messages, oldest first."""

    items: list[Message]
    next: str | None = None
    """Pass as ``after`` for the next page; ``null`` on the last."""


class DeadLetterPage(BaseModel):
    """One page of dead letters not yet replayed, oldest first."""

    items: list[DeadLetter]
    next: str | None = None
    """Pass as ``after`` for the next page; ``null`` on the last."""


class MergeProposalPage(BaseModel):
    """Merge proposals, oldest first (all of them: there are few)."""

    items: list[MergeProposal]
    next: str | None = None
    """Always ``null``: one page holds them all."""


class ContactMergePage(BaseModel):
    """A contact's merge records, oldest first, undone ones included."""

    items: list[ContactMerge]
    next: str | None = None
    """Always ``null``: one page holds them all."""


class DecisionRequest(BaseModel):
    """Who decides (recorded on the proposal or the merge)."""

    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(default=None, min_length=1, max_length=200)
    """An agent id or name."""


class MergeRequest(DecisionRequest):
    """Merge the contact of the path with ``other_id``."""

    other_id: str = Field(min_length=1, max_length=200)
    """The other contact."""


class UnmergeResult(BaseModel):
    """Both contacts after a merge was undone."""

    contact: Contact
    """The contact that had been kept."""
    restored: Contact
    """The contact that had been absorbed, back as before the merge."""


class ReplayRequest(BaseModel):
    """Which dead letters to replay (all not yet replayed when ``ids`` is absent)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(default=None, max_length=1000)


class ReplayResult(BaseModel):
    """What a replay did."""

    replayed: list[str]
    failed: dict[str, str]
    """Dead letter id -> why it failed again."""


class FeedEvent(RootModel[Event]):
    """One event of the feed (the ``data:`` of a Server-Sent Event and a webhook's body)."""


class FieldProblem(BaseModel):
    """One invalid field."""

    field: str
    """Where: ``text``, ``parts.0.url``, ``limit``, ``body``…"""
    message: str


class Problem(BaseModel):
    """Every error answer (``application/problem+json``, RFC 9457)."""

    type: str
    """A URI naming the kind of problem."""
    title: str
    status: int
    detail: str | None = None
    code: str
    """Machine-readable: ``not_found``, ``invalid``, ``window_closed``, ``opted_out``,
    ``unauthorized``…"""
    errors: list[FieldProblem] = Field(default_factory=list)
    """For ``invalid``: each field that was wrong."""
