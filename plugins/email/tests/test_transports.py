"""email-smtp's inbound transports against real servers: our aiosmtpd listener, and a real
Dovecot IMAP server polled with IDLE and UID tracking."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aioimaplib import aioimaplib
from omnichannel_email import _plugin

from omnichannel_sdk import Hub, Message

KEY = "mail"


def letter(n: int, subject: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n}@example.org>"
    msg["To"] = "support@shop.example"
    msg["Subject"] = subject or f"Question number {n}"
    msg["Message-ID"] = f"<q{n}@example.org>"
    msg.set_content(f"Question {n}: where is my parcel?")
    msg.add_attachment(b"%PDF-1.4\n" * 10, maintype="application", subtype="pdf",
                       filename=f"receipt-{n}.pdf")
    return msg


async def messages(hub: Hub) -> list[Message]:
    return [m for c in await hub.store.list_conversations()
            for m in await hub.store.list_messages(c.id)]


async def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.anyio
async def test_smtp_listener_feeds_the_hub(omni_config: dict[str, Any]) -> None:
    """Mail submitted to our listener is stored with its attachment; foreign domains are
    refused at RCPT; oversize mail is refused at DATA."""
    omni_config["channels"][KEY] = {
        "adapter": "email-smtp", "from_address": "support@shop.example", "listen": "127.0.0.1:0",
        "max_message_bytes": 20_000}
    hub = Hub.from_config(omni_config, plugins=[_plugin])
    async with hub:
        port = hub.adapter(KEY).listen_port  # type: ignore[attr-defined]
        assert port
        await aiosmtplib.send(letter(1), hostname="127.0.0.1", port=port, start_tls=False,
                              recipients=["support+conv_0193e0a1b2c3d4e5f60718293a4b5c6d@shop.example"])
        stored = await messages(hub)
        assert len(stored) == 1
        message = stored[0]
        assert message.external_id == "q1@example.org" and message.metadata["received_via"] == "smtp"
        assert message.parts[0].text == "Question 1: where is my parcel?"  # type: ignore[union-attr]
        pdf = message.parts[1]
        assert pdf.type == "media" and pdf.filename == "receipt-1.pdf" and pdf.blob_key
        raw = (await hub.store.get_raw((await hub.store.list_dead_letters() or [None])[0].raw_id)
               if await hub.store.list_dead_letters() else None)
        assert raw is None

        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await aiosmtplib.send(letter(2), hostname="127.0.0.1", port=port, start_tls=False,
                                  recipients=["someone@elsewhere.example"])
        big = letter(3)
        big.add_attachment(b"x" * 50_000, maintype="application", subtype="octet-stream",
                           filename="big.bin")
        with pytest.raises(aiosmtplib.SMTPResponseException) as info:
            await aiosmtplib.send(big, hostname="127.0.0.1", port=port, start_tls=False)
        assert info.value.code == 552
        # the same message again (a retrying MTA) is stored once
        await aiosmtplib.send(letter(1), hostname="127.0.0.1", port=port, start_tls=False)
        assert len(await messages(hub)) == 1


async def append(dovecot: Any, *letters: EmailMessage) -> None:
    client = aioimaplib.IMAP4(host="127.0.0.1", port=dovecot.port, timeout=10)
    await client.wait_hello_from_server()
    assert (await client.login(dovecot.user, dovecot.password)).result == "OK"
    for msg in letters:
        response = await client.append(msg.as_bytes(), mailbox="INBOX")
        assert response.result == "OK", response
    await client.logout()


def imap_channel(dovecot: Any, **extra: Any) -> dict[str, Any]:
    return {"adapter": "email-smtp", "from_address": "support@shop.example",
            "imap_host": "127.0.0.1", "imap_port": dovecot.port, "imap_security": "none",
            "imap_username": dovecot.user, "imap_password": dovecot.password,
            "imap_poll_interval": 2.0, **extra}


@pytest.mark.anyio
async def test_imap_idle_uid_tracking_and_restart(omni_config: dict[str, Any], dovecot: Any,
                                                  tmp_path: Path) -> None:
    """Existing mail is fetched once; new mail arrives through IDLE; after a restart only
    mail that arrived meanwhile is fetched, and nothing is fetched twice."""
    await append(dovecot, letter(1), letter(2))
    omni_config["channels"][KEY] = imap_channel(dovecot, imap_poll_interval=30.0)
    hub = Hub.from_config(omni_config, plugins=[_plugin])
    async with hub:
        adapter: Any = hub.adapter(KEY)

        async def two() -> bool:
            return len(await messages(hub)) == 2

        await wait_for(two)
        assert all(m.metadata["received_via"] == "imap" for m in await messages(hub))
        polls = adapter.poller.polls
        await append(dovecot, letter(3))

        async def three() -> bool:
            return len(await messages(hub)) == 3

        await wait_for(three, timeout=5)  # IDLE: far sooner than the 30 s poll interval

        async def polled() -> bool:
            # the poll is counted when it finishes, after the hub stored what it fetched
            return adapter.poller.polls > polls

        await wait_for(polled, timeout=5)

        async def recorded() -> bool:
            # the poller records its UID after the hub stored the mail: wait for that write
            return (await adapter.poller.state()).get("last_uid") == 3

        await wait_for(recorded, timeout=5)
        state = await adapter.poller.state()
        assert state["last_uid"] == 3 and state["uidvalidity"] > 0

    await append(dovecot, letter(4))
    hub = Hub.from_config(omni_config, plugins=[_plugin])
    async with hub:
        adapter = hub.adapter(KEY)

        async def four() -> bool:
            return len(await messages(hub)) == 4

        await wait_for(four)
        await asyncio.sleep(0.3)
        assert len(await messages(hub)) == 4
        assert (await adapter.poller.state())["last_uid"] == 4
        assert not await hub.store.list_dead_letters()


@pytest.mark.anyio
async def test_imap_without_idle_polls(omni_config: dict[str, Any], dovecot: Any) -> None:
    """With IDLE off the poller still picks new mail up on its interval."""
    await append(dovecot, letter(7))
    omni_config["channels"][KEY] = imap_channel(dovecot, imap_idle=False, imap_poll_interval=0.2)
    hub = Hub.from_config(omni_config, plugins=[_plugin])
    async with hub:
        async def one() -> bool:
            return len(await messages(hub)) == 1

        await wait_for(one)
        await append(dovecot, letter(8))

        async def two() -> bool:
            return len(await messages(hub)) == 2

        await wait_for(two)


@pytest.mark.anyio
async def test_imap_wrong_password_reports_and_retries(omni_config: dict[str, Any],
                                                       dovecot: Any) -> None:
    """A refused login is reported (without the password) and the hub keeps running."""
    omni_config["channels"][KEY] = imap_channel(dovecot, imap_password="wrong-password")
    hub = Hub.from_config(omni_config, plugins=[_plugin])
    async with hub:
        adapter: Any = hub.adapter(KEY)

        async def reported() -> bool:
            return adapter.poller.last_error is not None

        await wait_for(reported)
        assert "wrong-password" not in adapter.poller.last_error


@pytest.mark.anyio
async def test_imap_backlog_larger_than_a_batch(omni_config: dict[str, Any], dovecot: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A backlog bigger than one fetch batch is drained at once, not one batch per IDLE."""
    from omnichannel_email._imap import ImapPoller

    monkeypatch.setitem(ImapPoller.__init__.__kwdefaults__, "batch", 3)
    await append(dovecot, *(letter(n) for n in range(20, 27)))
    omni_config["channels"][KEY] = imap_channel(dovecot, imap_poll_interval=30.0)
    hub = Hub.from_config(omni_config, plugins=[_plugin])
    async with hub:
        assert hub.adapter(KEY).poller.batch == 3  # type: ignore[attr-defined]

        async def seven() -> bool:
            return len(await messages(hub)) == 7

        await wait_for(seven, timeout=8)
