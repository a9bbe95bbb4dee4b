"""The send policy: what may be sent, rendered for the channel, handed to the outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, get_args

import pluggy

from ._adapter import ChannelAdapter
from ._channels import ChannelRegistry
from ._delivery import Delivery
from ._errors import NotFoundError, OptedOutError, UnsupportedFeatureError, WindowClosedError
from ._events import ConversationOpened, MessageQueued
from ._ids import new_id
from ._models import Address, Author, Conversation, Message, Part, TextPart
from ._plugins import implemented
from ._publisher import Publisher
from ._render import Rendered, render_parts
from ._store import Job, SqlStore
from ._store._copies import constructed

__all__ = ["Outbound", "queued_message", "render"]


def render(pm: pluggy.PluginManager, adapter: ChannelAdapter, parts: Sequence[Part]) -> Rendered:
    """``parts`` as ``adapter``'s channel can carry them: a plugin's ``omni_outbound_render``
    when one answers, the default renderer otherwise."""
    hook = pm.hook.omni_outbound_render
    # no plugin renders: pluggy's call (what it would answer is None) costs about as much as
    # building the message, so it is made only when a plugin implements the hook
    custom = hook(adapter=adapter, parts=list(parts), capabilities=adapter.capabilities) \
        if implemented(hook) else None
    if isinstance(custom, Rendered):
        return custom
    if custom is not None:
        # keep what the default renderer records about the same input (the numbered
        # actions), so a customer's "2" still maps back to the action
        try:
            metadata = render_parts(parts, adapter.capabilities, adapter=adapter.name).metadata
        except UnsupportedFeatureError:  # the custom renderer carried what ours cannot
            metadata = {}
        return Rendered(list(custom), metadata)
    return render_parts(parts, adapter.capabilities, adapter=adapter.name)


_UNSET = frozenset({"external_id", "error"})
"""The fields ``hub.send`` leaves at their defaults (not in the message's fields set)."""
_PART_TYPES = frozenset(get_args(get_args(Part)[0]))
_OPTIONAL_TEXT = (str, type(None))
_FIELDS_SET = frozenset(Message.model_fields) - _UNSET


def _built_exactly(fields: dict[str, Any]) -> bool:
    """Whether validating ``fields`` as a :class:`Message` would give them back unchanged:
    our own models and plain strings where the fields want them (validation keeps such
    instances as they are), a UTC time (the validator gives it back), string keys in the
    metadata (its values are ``Any``), and no HTML text part (its sanitizer runs again on
    every validation)."""
    if not (type(fields["channel"]) is str and type(fields["channel_key"]) is str
            and type(fields["adapter"]) is str and type(fields["conversation_id"]) is str
            and type(fields["subject"]) in _OPTIONAL_TEXT
            and type(fields["reply_to"]) in _OPTIONAL_TEXT
            and (fields["author"] is None or type(fields["author"]) is Author)
            and type(fields["sender"]) is Address
            and fields["created_at"].tzinfo is UTC and fields["received_at"].tzinfo is UTC):
        return False
    # loops rather than all(...) over generators: this runs for every send
    for address in fields["recipients"]:
        if type(address) is not Address:
            return False
    for part in fields["parts"]:
        kind = type(part)
        if kind not in _PART_TYPES or (kind is TextPart and part.format == "html"):
            return False
    for key in fields["metadata"]:
        if type(key) is not str:
            return False
    return True


def queued_message(fields: dict[str, Any]) -> Message:
    """The :class:`Message` ``hub.send`` queues, from ``fields`` (every field, in order):
    what ``Message(**fields)`` without ``external_id`` and ``error`` gives, built without
    validating again what :func:`_built_exactly` finds built already (our models, our
    strings, our UTC time); validated as before otherwise (a part given as a dict, an HTML
    text, a naive time). Validation was most of what building the message cost."""
    if not _built_exactly(fields):
        return Message(**{k: v for k, v in fields.items() if k not in _UNSET})
    # fresh containers, as validation makes them: the caller's lists stay its own
    fields["recipients"] = list(fields["recipients"])
    fields["parts"] = list(fields["parts"])
    fields["metadata"] = dict(fields["metadata"])
    message = constructed(Message, fields)
    object.__setattr__(message, "__pydantic_fields_set__", set(_FIELDS_SET))
    return message


class Outbound:
    """Starts conversations and queues replies (``hub.send``)."""

    def __init__(self, store: SqlStore, channels: ChannelRegistry, pm: pluggy.PluginManager,
                 publisher: Publisher, delivery: Delivery) -> None:
        self.store = store
        self.channels = channels
        self.pm = pm
        self.publisher = publisher
        self.delivery = delivery

    def render(self, adapter: ChannelAdapter, parts: Sequence[Part]) -> Rendered:
        """See :func:`render`."""
        return render(self.pm, adapter, parts)

    async def start_conversation(
        self, channel_key: str, to: Address | str, *, subject: str | None = None
    ) -> Conversation:
        """The open conversation with ``to`` on ``channel_key``, created if needed."""
        adapter = self.channels.adapter(channel_key)
        customer = to if isinstance(to, Address) else adapter.customer_address(to)
        own = adapter.own_address()
        participants = [customer, *([own] if own else [])]
        conversation, created = await self.store.open_conversation(
            adapter.channel, channel_key, adapter.thread_key_for(customer), [customer],
            participants, subject)
        if created:
            self.publisher.publish(ConversationOpened(conversation=conversation))
        return conversation

    async def send(
        self,
        conversation_id: str,
        text: str | None = None,
        *,
        parts: Sequence[Part] | None = None,
        author: Author | None = None,
        reply_to: str | None = None,
        subject: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        wait: bool = False,
    ) -> Message:
        """Queue a reply; see :meth:`omnichannel_sdk.Hub.send`."""
        # the conversation and its contact (opt-outs, recipients) in one read
        conversation, contact = await self.store.conversation_for_send(conversation_id)
        if conversation is None:
            raise NotFoundError(f"no conversation {conversation_id!r}")
        adapter = self.channels.adapter(conversation.channel_key)
        all_parts: list[Part] = [TextPart(text=text)] if text else []
        all_parts.extend(parts or [])
        if not all_parts:
            raise UnsupportedFeatureError("nothing to send: give text or parts")
        if idempotency_key:
            existing = await self.store.kv_get(f"idem:{idempotency_key}")
            if existing:
                found = await self.store.get_message(existing)
                if found is not None:
                    return found
        if contact is not None and adapter.channel in contact.opted_out:
            raise OptedOutError(f"contact {contact.id} opted out of {adapter.channel}")
        extra: dict[str, Any] = {}
        window = adapter.capabilities.session_window
        now = datetime.now(UTC)
        if window is not None and (conversation.window_expires_at is None
                                   or conversation.window_expires_at <= now):
            allowed = adapter.outside_window(all_parts, author, conversation,
                                             metadata=dict(metadata or {}))
            if allowed is None:
                raise WindowClosedError(
                    f"the {adapter.channel} reply window of conversation {conversation.id} "
                    f"closed at {conversation.window_expires_at} and no fallback is allowed",
                    expired_at=conversation.window_expires_at)
            extra.update(allowed)
        rendered = self.render(adapter, all_parts)
        handles = {(a.channel, a.handle) for a in (contact.addresses if contact else [])}
        recipients = [a for a in conversation.participants if (a.channel, a.handle) in handles] \
            or conversation.participants[:1]
        own = adapter.own_address()
        sender = own or next((a for a in conversation.participants
                              if (a.channel, a.handle) not in handles),
                             Address(channel=adapter.channel, handle=conversation.channel_key))
        message = queued_message({
            "id": new_id("msg"), "channel": adapter.channel,
            "channel_key": conversation.channel_key, "adapter": adapter.name,
            "external_id": None, "direction": "outbound", "conversation_id": conversation.id,
            "sender": sender, "recipients": recipients, "parts": all_parts,
            "subject": subject if subject is not None else conversation.subject,
            "reply_to": reply_to, "created_at": now, "received_at": now, "status": "queued",
            "error": None, "author": author,
            "metadata": {**dict(metadata or {}), **rendered.metadata,
                         **adapter.outbound_metadata(rendered.parts, recipients), **extra}})
        if idempotency_key and not await self.store.kv_add(
                f"idem:{idempotency_key}", message.id, ttl=7 * 86400):
            existing = await self.store.kv_get(f"idem:{idempotency_key}")
            found = await self.store.get_message(existing or "")
            if found is not None:
                return found
        job = Job(id=new_id("job"), kind="send", channel_key=conversation.channel_key,
                  message_id=message.id, payload={
                      "parts": [p.model_dump(mode="json") for p in rendered.parts],
                      "contact_id": conversation.contact_id})
        # a free worker and channel slot now: the first vendor call is recorded with the job
        reserved = await self.delivery.reserve(job, rendered.parts)
        try:
            await self.store.create_outbound(message, job, lease=self.delivery.settings.lease,
                                             attempt=reserved)
        except BaseException:
            self.delivery.unreserve(job)
            raise
        if self.publisher.heard("message.queued"):  # built only when someone gets it
            self.publisher.publish(MessageQueued(message=message))
        waiter = self.delivery.wait_for(message.id) if wait else None
        self.delivery.submit(job, message)
        if waiter is not None:
            return await waiter
        return message
