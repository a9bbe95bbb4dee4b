"""Service levels against a scenario computed by hand, and through a hub and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from omnichannel_sdk import (
    Address,
    Author,
    Conversation,
    Hub,
    InboundMessage,
    Message,
    ServiceLevelReport,
    TextPart,
)
from omnichannel_sdk._service_levels import compute_service_levels, conversation_service_level

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
AGENT_ANA = Author(kind="human", id="ana", name="Ana")
AGENT_BO = Author(kind="human", id="bo", name="Bo")
BOT = Author(kind="bot", id="faq-bot")


def _conv(cid: str, channel: str, status: str = "open") -> Conversation:
    return Conversation(id=cid, channel=channel, channel_key=f"{channel}-1", contact_id="c",
                        thread_key=cid, status=status, created_at=T0)


def _msg(cid: str, n: int, seconds: float, direction: str, author: Author | None = None,
         channel: str = "webchat") -> Message:
    at = T0 + timedelta(seconds=seconds)
    return Message(id=f"{cid}-{n:02d}", channel=channel, channel_key=f"{channel}-1", adapter="x",
                   direction=direction, conversation_id=cid,  # type: ignore[arg-type]
                   sender=Address(channel=channel, handle="u@example.com" if channel == "email" else "u"),
                   parts=[TextPart(text="…")],
                   created_at=at, received_at=at, author=author,
                   status="received" if direction == "inbound" else "sent")


class _Store:
    """Just the two reads the report makes."""

    def __init__(self, conversations: list[Conversation], messages: list[Message]) -> None:
        self.conversations = conversations
        self.messages = messages

    async def list_conversations(self, *, channel_key: str | None = None, **_: Any) -> list[Conversation]:
        return [c for c in self.conversations if channel_key in (None, c.channel_key)]

    async def list_messages(self, conversation_id: str, **_: Any) -> list[Message]:
        return [m for m in self.messages if m.conversation_id == conversation_id]


def _scenario() -> _Store:
    """By hand (web chat target 40 s, email 4 h):

    w1: customer 0 s, 5 s; bot 2 s; Ana 30 s → first reply 30 s (bot 2 s apart); customer 60 s,
        Ana 150 s → 90 s. Turns 30 s ✓, 90 s ✗.
    w2: customer 0 s; Bo 10 s → 10 s ✓; customer 20 s, Bo 45 s → 25 s ✓. Closed.
    w3: customer 0 s, only a bot at 1 s; still waiting at report time (T0 + 600 s) → overdue.
    e1: email, customer 0 s; Ana 3 h → 10,800 s ✓ (target 4 h).
    Web chat: answered turns 30, 90, 10, 25 + one overdue → 3 of 5 within = 60 %.
    First replies 30, 10 → median 20; p90 (nearest rank of 2) = 30. Bot first: w1 and w3 = 2.
    Agents: Ana holds w1 and e1 open (3 replies); Bo's w2 is closed (2 replies).
    """
    conversations = [_conv("w1", "webchat"), _conv("w2", "webchat", "closed"), _conv("w3", "webchat"),
                     _conv("e1", "email")]
    messages = [
        _msg("w1", 1, 0, "inbound"), _msg("w1", 2, 2, "outbound", BOT), _msg("w1", 3, 5, "inbound"),
        _msg("w1", 4, 30, "outbound", AGENT_ANA), _msg("w1", 5, 60, "inbound"),
        _msg("w1", 6, 150, "outbound", AGENT_ANA),
        _msg("w2", 1, 0, "inbound"), _msg("w2", 2, 10, "outbound", AGENT_BO), _msg("w2", 3, 20, "inbound"),
        _msg("w2", 4, 45, "outbound", AGENT_BO),
        _msg("w3", 1, 0, "inbound"), _msg("w3", 2, 1, "outbound", BOT),
        _msg("e1", 1, 0, "inbound", channel="email"),
        _msg("e1", 2, 3 * 3600, "outbound", AGENT_ANA, channel="email"),
    ]
    return _Store(conversations, messages)


async def test_the_hand_computed_scenario() -> None:
    report = await compute_service_levels(_scenario(), now=T0 + timedelta(seconds=600))  # type: ignore[arg-type]
    web = next(c for c in report.channels if c.channel == "webchat")
    assert web.target == 40 and web.conversations == 3
    assert web.answered_turns == 4 and web.waiting_turns == 1
    assert web.within_target == pytest.approx(3 / 5)
    assert web.first_response_median == 20 and web.first_response_p90 == 30
    assert web.response_median == pytest.approx(27.5)
    assert web.bot_first_responses == 2
    mail = next(c for c in report.channels if c.channel == "email")
    assert mail.target == 4 * 3600 and mail.within_target == 1.0 and mail.first_response_median == 10800
    w1 = next(r for r in report.conversations if r.conversation_id == "w1")
    assert w1.first_response == 30 and w1.first_bot_response == 2 and w1.response_times == [30, 90]
    assert [(a.agent, a.open_conversations, a.replies) for a in report.agents] == [("ana", 2, 3), ("bo", 0, 2)]


async def test_targets_goal_period_and_channel_filters() -> None:
    store = _scenario()
    strict = await compute_service_levels(store, targets={"webchat": 20}, goal=0.9,  # type: ignore[arg-type]
                                          now=T0 + timedelta(seconds=600))
    web = next(c for c in strict.channels if c.channel == "webchat")
    assert web.target == 20 and web.within_target == pytest.approx(1 / 5) and strict.goal == 0.9
    later = await compute_service_levels(store, since=T0 + timedelta(seconds=1))  # type: ignore[arg-type]
    assert later.channels == []
    only_mail = await compute_service_levels(store, channel_key="email-1")  # type: ignore[arg-type]
    assert [c.channel for c in only_mail.channels] == ["email"]


def test_a_young_waiting_turn_does_not_count_against_the_target() -> None:
    conversation = _conv("w9", "webchat")
    row = conversation_service_level(conversation, [_msg("w9", 1, 0, "inbound")])
    assert row.waiting_since == T0 and row.first_response is None


async def test_through_a_hub_with_real_sends(hub: Hub) -> None:
    now = datetime.now(UTC)
    sender = Address(channel="fake", handle="cust-1")
    [inbound] = await hub.ingest("fake", [InboundMessage(
        external_id="x1", sender=sender, parts=[TextPart(text="help")],
        created_at=now - timedelta(seconds=100))])
    await hub.send(inbound.conversation_id, text="bot here", author=Author(kind="bot", id="bot"))
    await hub.send(inbound.conversation_id, text="Ana here", author=Author(kind="human", id="ana"))
    report = await hub.service_levels()
    assert isinstance(report, ServiceLevelReport)
    [row] = report.conversations
    assert row.first_response is not None and 99 <= row.first_response <= 130
    assert row.first_bot_response is not None and row.first_bot_response <= row.first_response
    [channel] = report.channels
    assert channel.within_target == 0.0  # 100 s against a 40 s chat target
    assert report.agents[0].agent == "ana" and report.agents[0].open_conversations == 1


def test_report_command_prints_a_table_and_writes_an_svg(
        omni_config: dict[str, Any], register_plugin: list[object], tmp_path: Path) -> None:
    import asyncio

    from omnichannel_sdk._cli import app

    async def seed() -> None:
        async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
            sender = Address(channel="fake", handle="cust-2")
            [inbound] = await hub.ingest("fake", [InboundMessage(external_id="x2", sender=sender,
                                                                parts=[TextPart(text="hi")])])
            await hub.send(inbound.conversation_id, text="hello", author=Author(kind="human", id="bo"))

    asyncio.run(seed())
    config = tmp_path / "report.toml"
    config.write_text(f'[omnichannel]\nstore = "{omni_config["omnichannel"]["store"]}"\n')
    chart = tmp_path / "sla.svg"
    result = CliRunner().invoke(app, ["report", "--config", str(config), "--svg", str(chart)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "fake" in result.stdout and "40 s" in result.stdout and "bo" in result.stdout
    svg = chart.read_text()
    assert svg.startswith("<svg") and "goal 80%" in svg and "fake" in svg
    bad = CliRunner().invoke(app, ["report", "--config", str(config), "--target", "webchat"])
    assert bad.exit_code != 0
