"""The values an adapter hands the hub: what :meth:`~omnichannel_sdk.ChannelAdapter.parse`
found in a request (messages, failures, follow-up jobs) and what a send returned.

Plain data with no dependency on the adapter base class, so the services port
(``_services``) can name :class:`InboundMessage` without importing ``_adapter``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._models import Address, Author, Part, StatusUpdate
from ._webhook import WebhookResponse

__all__ = ["FollowUp", "InboundMessage", "ParseFailure", "ParseResult", "SendResult"]


class InboundMessage(BaseModel):
    """A message as an adapter parsed it, before the hub threads and stores it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    external_id: str
    """Vendor id; the de-duplication key within a channel key."""
    sender: Address
    """Who sent it."""
    recipients: list[Address] = Field(default_factory=list)
    """Who it was sent to (our number, page, account)."""
    parts: list[Part] = Field(default_factory=list)
    """What it says."""
    subject: str | None = None
    """Subject line."""
    created_at: datetime | None = None
    """Vendor time; the hub uses the receive time when absent."""
    direction: str = "inbound"
    """``outbound`` for echoes of messages a human sent from the vendor's own inbox."""
    thread_key: str | None = None
    """What threads this message; default: the customer's handle and our handle."""
    references: list[str] = Field(default_factory=list)
    """External ids this message answers or refers to (email References, reply_to mids)."""
    conversation_hint: str | None = None
    """Our conversation id when the payload names it (plus-addressing, widget sessions)."""
    contact_hints: list[Address] = Field(default_factory=list)
    """More addresses of the same person, proven by the vendor (they join the contact and may
    merge contacts)."""
    claimed_addresses: list[Address] = Field(default_factory=list)
    """Addresses the sender typed without proof (a web chat pre-chat email). They never join
    or merge a contact; when one belongs to another contact, a
    :class:`~omnichannel_sdk.MergeProposal` is recorded for the helpdesk to confirm."""
    profile: dict[str, Any] = Field(default_factory=dict)
    """Contact facts the payload carries (locale, name)."""
    author: Author | None = None
    """Author of an outbound echo."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Vendor extras."""
    status: str | None = None
    """Status for outbound echoes; inbound messages are ``received``."""


@dataclass
class ParseFailure:
    """One part of a batch payload that could not be parsed; it is dead-lettered alone."""

    error: str
    """What was wrong."""
    fragment: Any = None
    """The part of the payload concerned (JSON-serialisable)."""


@dataclass
class FollowUp:
    """Durable work a ``parse`` leaves for later: the hub stores it with the request, before the
    vendor is answered, and calls :meth:`ChannelAdapter.run_job` with ``task`` and ``data``."""

    task: str
    """Which job (the adapter's own name for it)."""
    data: dict[str, Any] = field(default_factory=dict)
    """What the job needs (JSON)."""
    delay: float = 0.0
    """Seconds before it first runs."""


@dataclass
class ParseResult:
    """What :meth:`ChannelAdapter.parse` found in one request."""

    items: list[InboundMessage | StatusUpdate] = field(default_factory=list)
    """Messages and receipts, in payload order."""
    failures: list[ParseFailure] = field(default_factory=list)
    """Items of a batch that failed; the others are still processed."""
    response: WebhookResponse | None = None
    """A specific answer for the vendor; ``None`` uses :meth:`ChannelAdapter.acknowledge`."""
    jobs: list[FollowUp] = field(default_factory=list)
    """Durable follow-up work (a lookup, a fetch): stored before the vendor is answered, run by
    the hub's job runner, retried, and dead-lettered with this request when it finally fails.
    Outside a hub (``omnichannel normalize``) they are not run."""


@dataclass
class SendResult:
    """What the vendor said when a message was handed over."""

    external_ids: list[str]
    """Vendor ids of every vendor message sent (several when the text was split)."""
    status: str = "sent"
    """``sent`` once the vendor accepted it (its own "queued", "accepted" or "sending" are
    ``sent`` to us: ``queued`` means still in our outbox), ``delivered``/``read`` when the
    vendor's answer already says so."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Vendor extras to merge into the message metadata."""
