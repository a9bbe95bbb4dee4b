"""The contract kit's status check: where a message is, on every sending adapter (SPEC §7).

``queued`` = in our outbox, ``sent`` = the vendor accepted it, then receipts forward only; a
receipt never touches a message the vendor has not accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar

import httpx
import pytest

from .._adapter import InboundMessage
from .._hub import Hub
from .._ids import new_id
from .._models import Address, Conversation, Message, Part, StatusUpdate, TextPart, utcnow
from .._store import Job
from .._webhook import WebhookRequest
from ._vendor import SendCase, post_request, respx_module

if TYPE_CHECKING:
    import respx

__all__ = ["StatusTransitions"]


class StatusTransitions:
    """Mixed into :class:`~omnichannel_sdk.testing.ChannelContract`: the status test and what
    an adapter's contract may override for it."""

    channel_key: ClassVar[str]

    receipts: ClassVar[bool] = True
    """Whether the vendor reports delivery back (delivery or read receipts). ``False`` for an
    adapter whose vendor never does (SMTP): the status test then checks ``queued`` → ``sent``
    and that a receipt never touches a message still in our outbox, and skips the
    forward-only receipt steps."""

    def receipt_request(self, external_id: str, status: str) -> WebhookRequest | None:
        """A signed vendor receipt saying the message ``external_id`` is now ``status``
        (``delivered``, ``read`` or ``sent``), which the status test posts through the gateway.
        ``None`` (the default, and for a status the vendor cannot report) applies a
        :class:`~omnichannel_sdk.StatusUpdate` with ``hub.apply_status`` instead."""
        return None

    def status_recipient(self) -> Address:
        """The customer the status test writes to (default: the send case's recipient)."""
        return self.send_case().recipient

    def status_parts(self) -> list[Part]:
        """What the status test sends (default: a short text)."""
        return [TextPart(text="Status check from the contract suite")]

    @contextlib.asynccontextmanager
    async def accepting_vendor(self, hub: Hub) -> AsyncIterator[None]:
        """Around the status test: the vendor accepts every send (default: respx answers the
        send case's success). Adapters that do not send over HTTP override it."""
        case = self.send_case()
        with respx_module().mock(assert_all_called=False) as router:
            self._mock(router, case, case.success)
            yield

    # provided by ChannelContract
    def send_case(self) -> SendCase:  # pragma: no cover - ChannelContract's is used
        raise NotImplementedError

    def _mock(self, router: respx.MockRouter, case: SendCase,
              answer: Callable[[], httpx.Response] | Exception) -> None:  # pragma: no cover
        raise NotImplementedError

    def _require_send(self) -> None:  # pragma: no cover - ChannelContract's is used
        raise NotImplementedError

    @pytest.mark.anyio
    async def test_status_moves_queued_sent_then_forward_only(self, hub: Hub,
                                                             webhook_client: httpx.AsyncClient) -> None:
        """``hub.send`` returns ``queued`` (ours); a read watermark while it is still in our
        outbox changes nothing; the vendor's acceptance makes it ``sent``; receipts then move it
        forward only (a late ``sent`` or ``delivered`` never moves it back)."""
        self._require_send()
        await self.check_status_transitions(hub, webhook_client)

    async def check_status_transitions(self, hub: Hub, webhook_client: httpx.AsyncClient) -> None:
        """The body of the status test, for a subclass that runs it against its own hub."""
        conversation = await _open_conversation(hub, self.channel_key, self.status_recipient())
        held: list[tuple[Job, Message | None]] = []
        submit = hub.delivery.submit
        hub.delivery.submit = lambda job, message=None: held.append((job, message))  # type: ignore[method-assign]
        try:
            queued = await hub.send(conversation.id, parts=self.status_parts())
        finally:
            hub.delivery.submit = submit  # type: ignore[method-assign]
        assert queued.status == "queued" and len(held) == 1
        watermark = StatusUpdate(status="read", watermark=utcnow() + timedelta(minutes=5),
                                 recipient=queued.recipients[0])
        await hub.apply_status(self.channel_key, watermark)
        early = self.receipt_request("not-accepted-yet", "read")
        if early is not None:
            await post_request(webhook_client, early)
        stored = await hub.store.get_message(queued.id)
        assert stored is not None and stored.status == "queued", \
            f"a receipt moved a message still in our outbox to {stored and stored.status!r}"
        async with self.accepting_vendor(hub):
            waiter = hub.delivery.wait_for(queued.id)
            submit(*held[0])
            sent = await asyncio.wait_for(waiter, 30)
        assert sent.status == "sent", (sent.status, sent.error)
        assert sent.external_id, "an accepted send records the vendor's id"
        assert (await hub.store.get_message(sent.id)).status == "sent"  # type: ignore[union-attr]
        if not self.receipts:
            return
        for status, expected in (("delivered", "delivered"), ("sent", "delivered"),
                                 ("read", "read"), ("delivered", "read"), ("sent", "read")):
            await self._receipt(hub, webhook_client, sent.external_id, status)
            now = await hub.store.get_message(sent.id)
            assert now is not None and now.status == expected, \
                f"a {status!r} receipt left {now and now.status!r}, expected {expected!r}"

    async def _receipt(self, hub: Hub, webhook_client: httpx.AsyncClient, external_id: str,
                       status: str) -> None:
        request = self.receipt_request(external_id, status)
        if request is None:
            await hub.apply_status(self.channel_key, StatusUpdate(
                external_id=external_id, status=status))
            return
        response = await post_request(webhook_client, request)
        assert response.status_code < 300, (status, response.status_code, response.text)


async def _open_conversation(hub: Hub, channel_key: str, customer: Address) -> Conversation:
    """A conversation with ``customer`` whose reply window is open: the customer wrote just
    now (through ``hub.ingest``, as an adapter's own listener would)."""
    adapter = hub.adapter(channel_key)
    own = adapter.own_address()
    await hub.ingest(channel_key, [InboundMessage(
        external_id=new_id("contract-in"), sender=customer, recipients=[own] if own else [],
        parts=[TextPart(text="Hello")], created_at=utcnow(),
        thread_key=adapter.thread_key_for(customer))])
    for conversation in await hub.store.list_conversations():
        if conversation.channel_key == channel_key and any(
                p.handle == customer.handle for p in conversation.participants):
            return conversation
    raise AssertionError(f"no conversation with {customer.handle!r} after an inbound message")
