"""``hub.store`` offers the documented reads (SPEC §6) and nothing that writes; changes go
through the hub's own methods."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from omnichannel_sdk import Hub, HubStore, InboundMessage, TextPart

ROOT = Path(__file__).resolve().parents[1]
# SPEC §6's reads, the schema version, and the reads docs/api.md lists beside them
DOCUMENTED = {"get_message", "list_messages", "list_conversations", "get_conversation", "get_contact",
              "list_dead_letters", "schema_version", "find_contact", "find_message_by_external",
              "list_merge_proposals", "list_merges", "pending_jobs"}


def _members(protocol: type) -> set[str]:
    return {name for klass in protocol.__mro__ if klass is not object
            for name in vars(klass) if not name.startswith("_")}


def test_the_store_protocol_is_the_documented_reads_only() -> None:
    members = _members(HubStore)
    assert members == DOCUMENTED
    writes = {m for m in members if re.match(r"(set|add|update|modify|create|delete|save|kv)_", m)}
    assert not writes
    api = (ROOT / "docs" / "api.md").read_text()
    reads = api[api.index("`hub.store` is typed as `HubStore`"):api.index("| call | what it does |",
                                                                            api.index("`hub.store` is typed"))]
    for name in DOCUMENTED:
        assert f"`{name}" in reads, f"docs/api.md does not list {name}"


@pytest.mark.anyio
async def test_the_hub_store_is_a_hub_store_and_changes_go_through_the_hub(hub: Hub) -> None:
    assert isinstance(hub.store, HubStore)
    [message] = await hub.ingest("fake", [InboundMessage(
        external_id="x1", sender=hub.adapter("fake").customer_address("c1"),
        parts=[TextPart(text="hi")])])
    conversation = await hub.close_conversation(message.conversation_id)
    assert conversation.status == "closed"
    reopened = await hub.reopen_conversation(message.conversation_id)
    assert reopened.status == "open"
    await hub.update_conversation(reopened.model_copy(update={"subject": "Order 7"}))
    stored = await hub.store.get_conversation(message.conversation_id)
    assert stored is not None and stored.subject == "Order 7" and stored.status == "open"
