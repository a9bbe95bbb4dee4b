"""Contacts: merge proposals from verified addresses only, reversible merges, and one timeline
of a customer across email, SMS and web chat — on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omnichannel_sdk import (
    Address,
    Contact,
    EventPart,
    Hub,
    InboundMessage,
    MergeConflictError,
    NotFoundError,
    TextPart,
)
from omnichannel_sdk._contact_rules import identity, same_person_reason, unmerged_kept
from omnichannel_sdk._ids import new_id
from omnichannel_sdk._store import IngestItem, IngestOutcome, SqlStore

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
OURS = {"sms": "+14155550199", "whatsapp": "+14155550198", "email": "help@shop.example",
        "webchat": "chat", "voice": "+14155550197"}


async def say(store: SqlStore, channel: str, handle: str, text: str, *, at: datetime,
              thread: str | None = None, hints: list[Address] | None = None,
              claimed: list[Address] | None = None, profile: dict[str, Any] | None = None,
              parts: list[Any] | None = None) -> IngestOutcome:
    """Store one inbound message from ``handle`` on ``channel`` (channel key = channel)."""
    sender = Address(channel=channel, handle=handle)
    draft = InboundMessage(
        external_id=new_id("ext"), sender=sender,
        recipients=[Address(channel=channel, handle=OURS[channel])],
        parts=parts if parts is not None else [TextPart(text=text)], created_at=at,
        claimed_addresses=claimed or [], profile=profile or {})
    [outcome] = await store.ingest([IngestItem(
        message_id=new_id("msg"), channel=channel, channel_key=channel, adapter="t", draft=draft,
        thread_key=thread or f"{handle}|{OURS[channel]}", contact_addresses=[sender, *(hints or [])],
        received_at=at, window=timedelta(hours=24))], None)
    assert not outcome.duplicate
    return outcome


async def contact_of(store: SqlStore, channel: str, handle: str) -> Contact:
    found = await store.find_contact(Address(channel=channel, handle=handle))
    assert found is not None
    return found


async def snapshot(store: SqlStore, contact_id: str) -> tuple[Any, ...]:
    """Everything about a contact that a merge and its undoing touch."""
    contact = await store.get_contact(contact_id)
    conversations = await store.list_conversations(contact_id=contact_id)
    owners = {}
    for address in contact.addresses if contact else []:
        owner = await store.find_contact(address)
        owners[(address.channel, address.handle)] = owner.id if owner else None
    counts = {c.id: len(await store.list_messages(c.id)) for c in conversations}
    return contact, sorted(c.id for c in conversations), owners, counts


# -- the rules, without a store -----------------------------------------------------------------


def test_identities_name_a_person_only_by_phone_number_or_email() -> None:
    assert identity(Address(channel="whatsapp", handle="+14155550100")) == ("phone", "+14155550100")
    assert identity(Address(channel="sms", handle="72345")) is None  # a short code
    assert identity(Address(channel="sms", handle="ACME")) is None  # an alphanumeric sender id
    assert identity(Address(channel="email", handle="Ann@Example.com")) == ("email", "ann@example.com")
    assert identity(Address(channel="webchat", handle="v_abc")) is None
    assert same_person_reason(Address(channel="sms", handle="+14155550100"),
                              Address(channel="voice", handle="+14155550100")) == "same_phone"
    assert same_person_reason(Address(channel="sms", handle="+14155550100"),
                              Address(channel="sms", handle="+14155550100")) is None


def test_undoing_a_merge_keeps_what_changed_after_it() -> None:
    before = Contact(id="ct_a", profile={"locale": "en"}, opted_out=[])
    result = Contact(id="ct_a", display_name="Bo", profile={"locale": "en", "tz": "UTC"},
                     opted_out=["sms"])
    later = result.model_copy(update={"profile": {"locale": "fr", "tz": "UTC", "vip": True}})
    kept = unmerged_kept(later, before, result, [])
    assert kept.profile == {"locale": "fr", "vip": True}  # tz came with the merge: gone
    assert kept.display_name is None and kept.opted_out == []


# -- proposals ----------------------------------------------------------------------------------


async def test_the_same_number_on_sms_and_whatsapp_is_proposed_never_merged(hub: Hub) -> None:
    store = hub.store
    by_sms = await say(store, "sms", "+14155550100", "hi by sms", at=T0)
    by_wa = await say(store, "whatsapp", "+14155550100", "hi on whatsapp", at=T0 + timedelta(1))
    assert by_sms.contact and by_wa.contact and by_sms.contact.id != by_wa.contact.id
    [proposal] = by_wa.proposals
    assert proposal.reason == "same_phone" and proposal.verified and proposal.status == "open"
    assert {proposal.contact_id, proposal.existing_contact_id} == {by_sms.contact.id,
                                                                   by_wa.contact.id}
    assert await hub.merge_proposals() == [proposal]
    # a voice call from the number is one more proposal (another pair), still nothing merged
    by_voice = await say(store, "voice", "+14155550100", "call", at=T0 + timedelta(2))
    assert len(by_voice.proposals) == 2 and len(await hub.merge_proposals()) == 3
    assert len({(await contact_of(store, ch, "+14155550100")).id
                for ch in ("sms", "whatsapp", "voice")}) == 3
    kept = await hub.confirm_merge(proposal.id, by="agent:ann")
    assert kept.id == by_sms.contact.id  # the older contact stays
    assert (await contact_of(store, "whatsapp", "+14155550100")).id == kept.id
    [decided] = await hub.merge_proposals("confirmed")
    assert decided.id == proposal.id and decided.decided_by == "agent:ann"
    with pytest.raises(MergeConflictError):
        await hub.confirm_merge(proposal.id)
    with pytest.raises(NotFoundError):
        await hub.confirm_merge("ct_x~ct_y")


async def test_an_impostors_prechat_email_only_proposes_and_a_rejection_sticks(hub: Hub) -> None:
    store = hub.store
    customer = await say(store, "email", "ann@example.com", "my order #1234 is late", at=T0)
    # a web chat visitor types Ann's address into the pre-chat form: a claim, not a proof
    claim = [Address(channel="email", handle="ann@example.com")]
    visitor = await say(store, "webchat", "v_impostor", "what did I order?", at=T0 + timedelta(1),
                        claimed=claim, profile={"unverified_email": "ann@example.com"})
    assert customer.contact and visitor.contact and visitor.contact.id != customer.contact.id
    [proposal] = visitor.proposals
    assert proposal.reason == "claimed" and not proposal.verified
    # the visitor never joins Ann's contact, her history or her addresses
    assert await contact_of(store, "email", "ann@example.com") == customer.contact
    timeline = await hub.contact_timeline(visitor.contact.id)
    assert [i.message.channel for i in timeline.items] == ["webchat"]
    assert "my order" not in str([i.message.parts for i in timeline.items])
    await hub.reject_merge(proposal.id, by="agent:bo")
    assert await hub.merge_proposals() == []
    again = await say(store, "webchat", "v_impostor", "hello?", at=T0 + timedelta(2),
                      claimed=claim)
    assert again.proposals == [] and await hub.merge_proposals() == []
    assert [p.status for p in await hub.merge_proposals(None)] == ["rejected"]
    with pytest.raises(MergeConflictError):
        await hub.reject_merge(proposal.id)


# -- merge and unmerge --------------------------------------------------------------------------


async def _two_customers(store: SqlStore) -> tuple[Contact, Contact]:
    await say(store, "sms", "+14155550100", "sms one", at=T0, profile={"locale": "en"})
    await say(store, "sms", "+14155550100", "stop", at=T0 + timedelta(minutes=1),
              parts=[EventPart(name="opt_out")])
    await say(store, "email", "bo@example.com", "mail one", at=T0 + timedelta(minutes=2),
              profile={"timezone": "Europe/Paris", "locale": "fr"})
    await say(store, "email", "bo@example.com", "mail two", at=T0 + timedelta(minutes=3),
              thread="other-thread")
    return (await contact_of(store, "sms", "+14155550100"),
            await contact_of(store, "email", "bo@example.com"))


async def test_merge_then_unmerge_restores_both_contacts_exactly(hub: Hub) -> None:
    store = hub.store
    first, second = await _two_customers(store)
    before = (await snapshot(store, first.id), await snapshot(store, second.id))
    events: list[Any] = []

    async def listen() -> None:
        async for event in hub.events():
            if event.type.startswith("contact."):
                events.append(event)

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.05)
    merged = await hub.merge_contacts(second.id, first.id, by="agent:ann")
    assert merged.id == first.id and merged.opted_out == ["sms"]
    assert merged.profile == {"locale": "en", "timezone": "Europe/Paris"}  # the kept one's first
    assert {a.channel for a in merged.addresses} == {"sms", "email"}
    assert await store.get_contact(second.id) is None
    assert len(await store.list_conversations(contact_id=first.id)) == 3
    [record] = await hub.merges(first.id)
    assert (record.kept_id, record.absorbed_id, record.by) == (first.id, second.id, "agent:ann")
    assert record.addresses == [Address(channel="email", handle="bo@example.com")]
    assert len(record.conversation_ids) == 2 and record.unmerged_at is None

    kept, restored = await hub.unmerge(record.id, by="agent:ann")
    assert (await snapshot(store, first.id), await snapshot(store, second.id)) == before
    assert (kept, restored) == (before[0][0], before[1][0])
    [undone] = await hub.merges(second.id)
    assert undone.unmerged_at is not None and undone.unmerged_by == "agent:ann"
    with pytest.raises(MergeConflictError):
        await hub.unmerge(record.id)
    with pytest.raises(NotFoundError):
        await hub.unmerge("cm_nope")
    for _ in range(100):
        if len(events) >= 3:
            break
        await asyncio.sleep(0.02)
    listener.cancel()
    assert [e.type for e in events] == ["contact.updated", "contact.merged", "contact.unmerged"]
    assert events[1].merge.id == record.id and events[2].restored.id == second.id


async def test_unmerge_after_new_messages_gives_each_contact_its_own(hub: Hub) -> None:
    store = hub.store
    first, second = await _two_customers(store)
    await hub.merge_contacts(first.id, second.id)
    [record] = await hub.merges(first.id)
    # after the merge: Bo writes in an old thread and a new one, the SMS customer writes too
    old = await say(store, "email", "bo@example.com", "mail three", at=T0 + timedelta(hours=1))
    new = await say(store, "email", "bo@example.com", "new subject", at=T0 + timedelta(hours=2),
                    thread="third-thread")
    sms = await say(store, "sms", "+14155550100", "sms two", at=T0 + timedelta(hours=3),
                    thread="sms-new")
    assert old.conversation and new.conversation and sms.conversation
    assert {old.conversation.contact_id, new.conversation.contact_id,
            sms.conversation.contact_id} == {first.id}
    await hub.modify_contact(first.id, lambda c: c.model_copy(
        update={"profile": {**c.profile, "vip": True}}))
    kept, restored = await hub.unmerge(record.id)
    assert restored.id == second.id
    bo = {c.id for c in await store.list_conversations(contact_id=second.id)}
    assert old.conversation.id in bo and new.conversation.id in bo and len(bo) == 3
    mine = {c.id for c in await store.list_conversations(contact_id=first.id)}
    assert sms.conversation.id in mine and len(mine) == 2
    assert len(await store.list_messages(old.conversation.id)) == 2  # no message moved or lost
    assert kept.profile == {"locale": "en", "vip": True}  # a later fact stays with the kept one
    assert restored.profile == {"timezone": "Europe/Paris", "locale": "fr"}
    assert (await contact_of(store, "email", "bo@example.com")).id == second.id


async def test_merges_of_merged_contacts_undo_in_any_order(hub: Hub) -> None:
    store = hub.store
    z = (await say(store, "voice", "+14155550177", "z", at=T0 - timedelta(1))).contact
    a = (await say(store, "sms", "+14155550101", "a", at=T0)).contact
    b = (await say(store, "email", "b@example.com", "b", at=T0 + timedelta(1))).contact
    c = (await say(store, "webchat", "v_c", "c", at=T0 + timedelta(2))).contact
    assert a and b and c
    views = {x.id: await snapshot(store, x.id) for x in (a, b, c)}
    await hub.merge_contacts(a.id, b.id)
    abc = await hub.merge_contacts(c.id, a.id)
    assert abc.id == a.id and len(abc.addresses) == 3
    first, second = await hub.merges(a.id)
    # undo the first merge while the second stands: b comes back, c stays inside a
    kept, restored = await hub.unmerge(first.id)
    assert restored.id == b.id and {x.channel for x in kept.addresses} == {"sms", "webchat"}
    assert await snapshot(store, b.id) == views[b.id]
    await hub.unmerge(second.id)
    assert {x.id: await snapshot(store, x.id) for x in (a, b, c)} == views

    # a kept contact merged into an older one since: that merge must be undone first
    d = (await say(store, "email", "d@example.com", "d", at=T0 + timedelta(3))).contact
    assert z and d
    await hub.merge_contacts(a.id, d.id)
    [*_, ad] = await hub.merges(a.id)
    await hub.merge_contacts(z.id, a.id)
    [*_, za] = await hub.merges(a.id)
    assert za.kept_id == z.id
    with pytest.raises(MergeConflictError, match=za.id):
        await hub.unmerge(ad.id)
    await hub.unmerge(za.id)
    await hub.unmerge(ad.id)
    assert {x.id: await snapshot(store, x.id) for x in (a, b, c)} == views


async def test_a_vendor_proven_address_merges_and_the_merge_is_recorded(hub: Hub) -> None:
    store = hub.store
    sms = await say(store, "sms", "+14155550123", "text", at=T0)
    call = await say(store, "voice", "+14155550555", "voicemail", at=T0 + timedelta(1))
    assert sms.contact and call.contact
    # the caller's SMS number, proven by the carrier: one person, merged at once (and recorded)
    linked = await say(store, "voice", "+14155550555", "again", at=T0 + timedelta(2),
                       hints=[Address(channel="sms", handle="+14155550123")])
    [record] = linked.merges
    assert record.reason == "verified" and record.by is None and linked.merged == [call.contact.id]
    kept, restored = await hub.unmerge(record.id)
    assert kept.id == sms.contact.id and restored.id == call.contact.id


# -- the whole story ----------------------------------------------------------------------------


async def test_timeline_orders_email_sms_and_web_chat_by_time(hub: Hub) -> None:
    store = hub.store
    await say(store, "email", "cy@example.com", "e1 order is late", at=T0)
    await say(store, "sms", "+14155550142", "s1 any news?", at=T0 + timedelta(minutes=30))
    await say(store, "webchat", "v_cy", "w1 chatting now", at=T0 + timedelta(minutes=45))
    await say(store, "email", "cy@example.com", "e2 thanks", at=T0 + timedelta(hours=2))
    # a late webhook: vendor time is what orders the story, not arrival
    await say(store, "sms", "+14155550142", "s0 first try", at=T0 - timedelta(minutes=5))
    await say(store, "webchat", "v_other", "someone else", at=T0 + timedelta(minutes=50))
    cy = await contact_of(store, "email", "cy@example.com")
    await hub.merge_contacts(cy.id, (await contact_of(store, "sms", "+14155550142")).id)
    await hub.merge_contacts(cy.id, (await contact_of(store, "webchat", "v_cy")).id)
    timeline = await hub.contact_timeline(cy.id)
    texts = [i.message.parts[0].text.split()[0] for i in timeline.items]  # type: ignore[union-attr]
    assert texts == ["s0", "e1", "s1", "w1", "e2"]
    assert [i.channel for i in timeline.items] == ["sms", "email", "sms", "webchat", "email"]
    assert all(i.conversation_id == i.message.conversation_id for i in timeline.items)
    assert {c.id for c in timeline.conversations} == {i.conversation_id for i in timeline.items}
    assert {a.channel for a in timeline.addresses} == {"email", "sms", "webchat"}
    assert timeline.next_before is None and timeline.contact.id == cy.id
    # pages: the newest two, then older ones
    page = await hub.contact_timeline(cy.id, limit=2)
    assert [i.message.parts[0].text[:2] for i in page.items] == ["w1", "e2"]  # type: ignore[union-attr]
    older = await hub.contact_timeline(cy.id, limit=2, before=page.next_before)
    assert [i.message.parts[0].text[:2] for i in older.items] == ["e1", "s1"]  # type: ignore[union-attr]
    last = await hub.contact_timeline(cy.id, limit=2, before=older.next_before)
    assert [i.message.parts[0].text[:2] for i in last.items] == ["s0"]  # type: ignore[union-attr]
    assert last.next_before is None
    with pytest.raises(NotFoundError):
        await hub.contact_timeline("ct_nobody")


async def test_proposals_merges_and_unmerges_reach_the_durable_feed(
        omni_config: dict[str, Any], register_plugin: list[object]) -> None:
    omni_config["omnichannel"]["feed"] = {"enabled": True, "poll_interval": 0.05}
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        await say(hub.store, "sms", "+14155550100", "sms", at=T0)
        # logged in the ingest's own transaction, like the message it came with
        await say(hub.store, "whatsapp", "+14155550100", "wa", at=T0 + timedelta(1))
        [proposal] = await hub.merge_proposals()
        kept = await hub.confirm_merge(proposal.id, by="ann")
        [record] = await hub.merges(kept.id)
        await hub.unmerge(record.id)
        wanted = ["contact.merge_proposed", "contact.updated", "contact.merged", "contact.unmerged"]
        got: list[Any] = []

        async def read() -> None:
            async for event in hub.feed("helpdesk"):
                if event.type.startswith("contact."):
                    got.append(event)
                if len(got) == len(wanted):
                    return

        await asyncio.wait_for(read(), 10)
        assert [e.type for e in got] == wanted
        assert got[0].proposal.id == proposal.id and got[2].merge.id == record.id
        assert got[3].restored.id == record.absorbed_id
        assert [e.seq for e in got] == sorted(e.seq for e in got)
