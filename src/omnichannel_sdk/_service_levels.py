"""Service levels computed from what the store holds: how fast people answer, per conversation,
per channel and per agent.

The measures, all from message times as stored (inbound ``created_at`` is the vendor's time,
outbound ``created_at`` is when the reply was handed to the hub):

- **first response time** of a conversation: from its first customer message to the first reply
  by a *human* author. A bot's instant answer is counted apart (``first_bot_response``): it does
  not stop the clock, because the customer is still waiting for a person.
- **response times**: for every run of customer messages (a turn), from its first message to the
  next human reply. An unanswered turn is *waiting* (it counts against the target once its age
  passes the target).
- **share within target**: answered turns whose response time is at most the channel's target,
  over answered turns plus waiting turns already older than the target. Defaults follow
  contact-centre practice: 80% within 40 seconds for chat channels, 80% within four hours for
  email, one hour for voicemail callbacks.
- **open conversations per agent**: open conversations whose last human reply came from that
  author (what an agent is holding; 2 to 3 chats at once is typical).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from ._models import Conversation, Message, utcnow

if TYPE_CHECKING:
    from ._store import Store

__all__ = [
    "DEFAULT_TARGETS",
    "AgentLoad",
    "ChannelServiceLevel",
    "ConversationServiceLevel",
    "ServiceLevelReport",
    "compute_service_levels",
    "conversation_service_level",
]

DEFAULT_TARGETS: Mapping[str, float] = {"email": 4 * 3600.0, "voice": 3600.0}
"""Response-time targets in seconds by channel kind; every other kind is a chat: 40 s."""
CHAT_TARGET = 40.0
"""The target of chat-like channels (web chat, Messenger, WhatsApp, Telegram, SMS, WeChat…)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class ConversationServiceLevel(_Model):
    """One conversation's response times."""

    conversation_id: str
    """Our conversation id."""
    channel: str
    """The channel kind."""
    channel_key: str
    """The configured channel key."""
    status: str
    """``open`` or ``closed``."""
    first_response: float | None
    """Seconds from the first customer message to the first human reply (``None``: none yet)."""
    first_bot_response: float | None
    """Seconds to the first bot reply, counted apart."""
    response_times: list[float] = Field(default_factory=list)
    """Seconds from each customer turn to the human reply that answered it."""
    waiting_since: datetime | None = None
    """When the customer's unanswered turn began (``None``: nothing unanswered)."""
    agent: str | None = None
    """The id (or name) of the last human author who replied."""


class ChannelServiceLevel(_Model):
    """A channel kind's service level over the conversations reported."""

    channel: str
    """The channel kind."""
    target: float
    """The response-time target in seconds."""
    conversations: int
    """Conversations with at least one customer message."""
    answered_turns: int
    """Customer turns a human answered."""
    waiting_turns: int
    """Customer turns not answered yet."""
    within_target: float | None
    """Share of answered turns (plus waiting ones older than the target) answered within it."""
    first_response_median: float | None
    """Median first response time, seconds."""
    first_response_p90: float | None
    """90th percentile of first response times, seconds."""
    response_median: float | None
    """Median of all response times, seconds."""
    bot_first_responses: int
    """Conversations a bot answered first."""


class AgentLoad(_Model):
    """What one human author holds."""

    agent: str
    """The author's id (or name)."""
    open_conversations: int
    """Open conversations whose last human reply was this author's."""
    replies: int
    """Human replies by this author in the conversations reported."""


class ServiceLevelReport(_Model):
    """``hub.service_levels()``: per channel, per conversation, per agent."""

    generated_at: datetime
    """When it was computed (waiting turns are aged against it)."""
    goal: float
    """The share of turns that should be answered within target (0.8)."""
    channels: list[ChannelServiceLevel]
    """Per channel kind, sorted by kind."""
    conversations: list[ConversationServiceLevel]
    """Per conversation."""
    agents: list[AgentLoad]
    """Per human author, most loaded first."""


def _author_key(message: Message) -> str | None:
    author = message.author
    if author is None:
        return None
    return author.id or author.name


def conversation_service_level(
    conversation: Conversation, messages: Sequence[Message]
) -> ConversationServiceLevel:
    """The response times of one conversation, from its messages in order."""
    first_inbound: datetime | None = None
    first_response: float | None = None
    first_bot: float | None = None
    turn_start: datetime | None = None
    times: list[float] = []
    agent: str | None = None
    for message in sorted(messages, key=lambda m: (m.created_at, m.id)):
        if message.direction == "inbound":
            if first_inbound is None:
                first_inbound = message.created_at
            if turn_start is None:
                turn_start = message.created_at
            continue
        author = message.author
        if author is None or author.kind == "system":
            continue  # automatic messages (receipts, notices) answer nobody
        if author.kind == "bot":
            if first_inbound is not None and first_bot is None and first_response is None:
                first_bot = max(0.0, (message.created_at - first_inbound).total_seconds())
            continue
        agent = _author_key(message) or agent
        if turn_start is not None:
            elapsed = max(0.0, (message.created_at - turn_start).total_seconds())
            times.append(elapsed)
            if first_response is None and first_inbound is not None:
                first_response = max(0.0, (message.created_at - first_inbound).total_seconds())
            turn_start = None
    return ConversationServiceLevel(
        conversation_id=conversation.id, channel=conversation.channel,
        channel_key=conversation.channel_key, status=conversation.status,
        first_response=first_response, first_bot_response=first_bot, response_times=times,
        waiting_since=turn_start, agent=agent)


def _percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    # nearest rank: the smallest value with at least ``share`` of values at or below it
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def _channel(kind: str, rows: Sequence[ConversationServiceLevel], target: float,
             now: datetime) -> ChannelServiceLevel:
    answered = [t for r in rows for t in r.response_times]
    overdue = sum(1 for r in rows if r.waiting_since is not None
                  and (now - r.waiting_since).total_seconds() > target)
    waiting = sum(1 for r in rows if r.waiting_since is not None)
    counted = len(answered) + overdue
    within = sum(1 for t in answered if t <= target)
    firsts = [r.first_response for r in rows if r.first_response is not None]
    return ChannelServiceLevel(
        channel=kind, target=target, conversations=len(rows), answered_turns=len(answered),
        waiting_turns=waiting, within_target=(within / counted) if counted else None,
        first_response_median=statistics.median(firsts) if firsts else None,
        first_response_p90=_percentile(firsts, 0.9),
        response_median=statistics.median(answered) if answered else None,
        bot_first_responses=sum(1 for r in rows if r.first_bot_response is not None))


async def compute_service_levels(
    store: Store, *, since: datetime | None = None, until: datetime | None = None,
    targets: Mapping[str, float] | None = None, goal: float = 0.8, channel_key: str | None = None,
    now: datetime | None = None,
) -> ServiceLevelReport:
    """Compute the report from the store: conversations whose first customer message falls in
    ``[since, until)`` (all when not given), on one ``channel_key`` or all."""
    now = now or utcnow()
    chosen = {**DEFAULT_TARGETS, **(targets or {})}
    rows: list[ConversationServiceLevel] = []
    replies: dict[str, int] = {}
    for conversation in await store.list_conversations(channel_key=channel_key):
        messages = await store.list_messages(conversation.id)
        inbound = [m.created_at for m in messages if m.direction == "inbound"]
        if not inbound:
            continue
        start = min(inbound)
        if (since is not None and start < since) or (until is not None and start >= until):
            continue
        for message in messages:
            key = _author_key(message) if message.author and message.author.kind == "human" else None
            if message.direction == "outbound" and key:
                replies[key] = replies.get(key, 0) + 1
        rows.append(conversation_service_level(conversation, messages))
    by_kind: dict[str, list[ConversationServiceLevel]] = {}
    for row in rows:
        by_kind.setdefault(row.channel, []).append(row)
    channels = [_channel(kind, found, float(chosen.get(kind, CHAT_TARGET)), now)
                for kind, found in sorted(by_kind.items())]
    holding: dict[str, int] = {}
    for row in rows:
        if row.status == "open" and row.agent:
            holding[row.agent] = holding.get(row.agent, 0) + 1
    agents = sorted((AgentLoad(agent=name, open_conversations=holding.get(name, 0), replies=count)
                     for name, count in replies.items()),
                    key=lambda a: (-a.open_conversations, -a.replies, a.agent))
    return ServiceLevelReport(generated_at=now, goal=goal, channels=channels, conversations=rows,
                              agents=agents)


def target_label(seconds: float) -> str:
    """``40 s``, ``4 h``: a target for people."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def duration_label(seconds: float | None) -> str:
    """A response time for people (``-`` when there is none)."""
    if seconds is None:
        return "-"
    delta = timedelta(seconds=round(seconds))
    if delta < timedelta(minutes=1):
        return f"{delta.seconds} s"
    if delta < timedelta(hours=1):
        return f"{delta.seconds // 60} min {delta.seconds % 60} s"
    hours = delta.days * 24 + delta.seconds // 3600
    return f"{hours} h {(delta.seconds % 3600) // 60} min"
