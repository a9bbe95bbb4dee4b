"""email-smtp's IMAP poller over TLS against a real Dovecot with ``ssl = required``:
STARTTLS on the IMAP port, implicit TLS on the IMAPS port, the server verified with a CA made
in the test; a wrong CA, or a server that offers no STARTTLS, fetches nothing."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aioimaplib import aioimaplib
from omnichannel_email import _plugin
from omnichannel_email._imap import ImapPoller, imap_ssl_context

from omnichannel_sdk import ConfigurationError, Hub, Message
from omnichannel_sdk.testing import LocalCA, MemoryKV

KEY = "mail"
Dovecot = Any  # conftest's classes (not importable under --import-mode=importlib)


def letter(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n}@example.org>"
    msg["To"] = "support@shop.example"
    msg["Subject"] = f"Encrypted question {n}"
    msg["Message-ID"] = f"<tls{n}@example.org>"
    msg.set_content(f"Question {n}, sent over TLS.")
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


async def append_tls(server: Dovecot, ca: LocalCA, *numbers: int) -> None:
    client = aioimaplib.IMAP4_SSL(host="127.0.0.1", port=server.tls_port, timeout=10,
                                  ssl_context=ssl.create_default_context(cafile=str(ca.ca_file)))
    await client.wait_hello_from_server()
    assert (await client.login(server.user, server.password)).result == "OK"
    for n in numbers:
        assert (await client.append(letter(n).as_bytes(), mailbox="INBOX")).result == "OK"
    await client.logout()


def channel(server: Dovecot, security: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"adapter": "email-smtp", "from_address": "support@shop.example",
            "imap_host": "127.0.0.1", "imap_port": port, "imap_security": security,
            "imap_username": server.user, "imap_password": server.password,
            "imap_poll_interval": 30.0, **extra}


@pytest.mark.anyio
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_imap_over_tls_verified_with_our_ca(omni_config: dict[str, Any],
                                                  tls_dovecot: tuple[Dovecot, LocalCA],
                                                  security: str) -> None:
    """Mail is fetched over STARTTLS / implicit TLS, the server checked against the test CA,
    and new mail still arrives through IDLE on the encrypted connection."""
    server, ca = tls_dovecot
    await append_tls(server, ca, 1)
    port = server.port if security == "starttls" else server.tls_port
    omni_config["channels"][KEY] = channel(server, security, port, imap_ca_file=str(ca.ca_file))
    hub = Hub.from_config(omni_config, plugins=[_plugin])
    async with hub:
        adapter: Any = hub.adapter(KEY)

        async def count(n: int) -> bool:
            return len(await messages(hub)) == n

        await wait_for(lambda: count(1))
        client = adapter.poller._client
        assert client is not None
        transport = client.protocol.transport
        assert transport.get_extra_info("ssl_object") is not None  # really encrypted
        peer = transport.get_extra_info("ssl_object").getpeercert()
        assert ("DNS", "localhost") in peer["subjectAltName"]
        if security == "starttls":  # capabilities asked again after the upgrade
            assert "STARTTLS" not in client.protocol.capabilities
            assert "IMAP4rev1" in client.protocol.capabilities
        await append_tls(server, ca, 2)
        await wait_for(lambda: count(2), timeout=5)  # IDLE over TLS, not the 30 s poll
        assert adapter.poller.last_error is None


async def _never(raw: bytes) -> None:
    raise AssertionError("nothing may be delivered")


@pytest.mark.anyio
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_wrong_ca_fetches_nothing(tls_dovecot: tuple[Dovecot, LocalCA], tmp_path: Path,
                                        make_ca: Any, security: str) -> None:
    """A certificate that does not chain to the configured CA is refused before LOGIN."""
    server, ca = tls_dovecot
    await append_tls(server, ca, 3)
    other = make_ca(tmp_path / "other", name="someone else")
    port = server.port if security == "starttls" else server.tls_port
    poller = ImapPoller(host="127.0.0.1", port=port, username=server.user,
                        password=server.password, mailbox="INBOX", security=security,
                        kv=MemoryKV(), state_key="s", deliver=_never, timeout=5,
                        ssl_context=imap_ssl_context(str(other.ca_file)))
    with pytest.raises(ssl.SSLCertVerificationError):
        await poller.poll_once()


@pytest.mark.anyio
async def test_starttls_required_but_not_offered(dovecot: Dovecot) -> None:
    """A server without STARTTLS is refused, never used in clear."""
    from omnichannel_email._imap import ImapError

    poller = ImapPoller(host="127.0.0.1", port=dovecot.port, username=dovecot.user,
                        password=dovecot.password, mailbox="INBOX", security="starttls",
                        kv=MemoryKV(), state_key="s", deliver=_never, timeout=5)
    with pytest.raises(ImapError, match="STARTTLS"):
        await poller.poll_once()


@pytest.mark.anyio
async def test_unreadable_ca_file_is_a_configuration_error(omni_config: dict[str, Any],
                                                           tmp_path: Path) -> None:
    omni_config["channels"][KEY] = {
        "adapter": "email-smtp", "from_address": "support@shop.example",
        "imap_host": "127.0.0.1", "imap_port": 1, "imap_security": "starttls",
        "imap_username": "u", "imap_password": "p", "imap_ca_file": str(tmp_path / "missing.pem")}
    hub = Hub.from_config(omni_config, plugins=[_plugin])
    with pytest.raises(ConfigurationError, match="imap_ca_file"):
        async with hub:
            pass
