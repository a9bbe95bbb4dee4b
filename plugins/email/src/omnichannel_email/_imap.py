"""Polling an IMAP mailbox (aioimaplib): IDLE where the server offers it, UIDs tracked in the
hub's shared key-value store so nothing is fetched twice and nothing is lost on restart.

The connection is secured with implicit TLS (port 993), STARTTLS (port 143, upgraded before
LOGIN; a server that does not offer STARTTLS is refused, never used in clear) or nothing (a
loopback test server). aioimaplib has no STARTTLS of its own: :func:`starttls` sends the
command and upgrades the transport with :meth:`asyncio.loop.start_tls`.

The state ``{"uidvalidity": V, "last_uid": N}`` moves forward only after a message was stored
(a crash in between fetches that one message again, and the core's de-duplication by
Message-ID drops the copy). A UIDVALIDITY change starts over from the first message, again
de-duplicated. One process polls a mailbox at a time (a lease in the key-value store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aioimaplib import aioimaplib  # type: ignore[import-untyped]

from omnichannel_sdk import KeyValueStore

__all__ = ["ImapError", "ImapPoller", "imap_ssl_context", "starttls"]

log = logging.getLogger("omnichannel_email.imap")

_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_FETCH_UID = re.compile(rb"UID (\d+)")


class ImapError(Exception):
    """The IMAP server refused a command (logged and retried by the poller)."""


def imap_ssl_context(ca_file: str | None = None, validate: bool = True) -> ssl.SSLContext:
    """The TLS context of an IMAP connection: the system's CAs (or ``ca_file``, a PEM bundle),
    host name checked; ``validate=False`` accepts any certificate (a test server only)."""
    context = ssl.create_default_context(cafile=ca_file)
    if not validate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def _close(client: Any) -> None:
    """Log out, then close the connection whatever the server did: aioimaplib leaves the socket
    open when a logout fails or times out (a ResourceWarning, and a file descriptor, per poll)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.logout(), 2)
    transport = getattr(getattr(client, "protocol", None), "transport", None)
    if transport is not None and not transport.is_closing():
        transport.abort()


async def _welcomed(client: Any, timeout: float) -> None:
    """Wait for the greeting and the CAPABILITY aioimaplib asks right after it."""
    await client.wait_hello_from_server()
    pending = [t for t in getattr(client.protocol, "tasks", ()) if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


async def starttls(client: Any, host: str, context: ssl.SSLContext, timeout: float) -> None:
    """Upgrade a greeted, not yet authenticated aioimaplib client to TLS (RFC 3501 STARTTLS),
    then ask the capabilities again (they may change, and none said in clear is trusted)."""
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise ImapError("the server does not offer STARTTLS")
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    response = await asyncio.wait_for(protocol.execute(command), timeout)
    if response.result != "OK":
        raise ImapError("STARTTLS refused")
    if protocol.incomplete_line:  # bytes sent in clear after the OK must not pass as encrypted
        raise ImapError("STARTTLS: unexpected data before the TLS handshake")
    loop = asyncio.get_running_loop()
    transport = await asyncio.wait_for(
        loop.start_tls(protocol.transport, protocol, context, server_hostname=host), timeout)
    if transport is None:
        raise ImapError("STARTTLS: the connection closed during the handshake")
    protocol.transport = transport
    protocol.capabilities = set()
    await asyncio.wait_for(protocol.capability(), timeout)


class ImapPoller:
    """Fetches new messages of one mailbox and hands their raw bytes to ``deliver``."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        mailbox: str,
        security: str,
        kv: KeyValueStore,
        state_key: str,
        deliver: Callable[[bytes], Awaitable[None]],
        poll_interval: float = 60.0,
        idle: bool = True,
        timeout: float = 30.0,
        batch: int = 50,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._username, self._password = username, password
        self.mailbox = mailbox
        if security not in ("implicit", "tls", "starttls", "none"):
            raise ValueError(f"unknown IMAP security {security!r}")
        self.security = "implicit" if security == "tls" else security
        self.ssl_context = ssl_context
        self.kv = kv
        self.state_key = state_key
        self.deliver = deliver
        self.poll_interval = poll_interval
        self.use_idle = idle
        self.timeout = timeout
        self.batch = batch
        self._owner = uuid.uuid4().hex
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self.polls = 0
        """How many fetch rounds ran (tests wait on it)."""
        self.last_error: str | None = None
        """The last failure, without credentials."""

    # -- state ---------------------------------------------------------------------------------

    async def state(self) -> dict[str, int]:
        """The stored ``{"uidvalidity", "last_uid"}`` (zeros when never polled)."""
        raw = await self.kv.kv_get(self.state_key)
        if raw:
            with contextlib.suppress(orjson.JSONDecodeError, TypeError):
                data = orjson.loads(raw)
                if isinstance(data, dict):
                    return {"uidvalidity": int(data.get("uidvalidity", 0)),
                            "last_uid": int(data.get("last_uid", 0))}
        return {"uidvalidity": 0, "last_uid": 0}

    async def _save(self, uidvalidity: int, last_uid: int) -> None:
        await self.kv.kv_set(self.state_key, orjson.dumps(
            {"uidvalidity": uidvalidity, "last_uid": last_uid}).decode())

    async def _lease(self) -> bool:
        key = self.state_key + ":lease"
        ttl = max(60.0, self.poll_interval * 3)
        if await self.kv.kv_add(key, self._owner, ttl=ttl):
            return True
        if await self.kv.kv_get(key) == self._owner:
            await self.kv.kv_set(key, self._owner, ttl=ttl)
            return True
        return False

    # -- connection ----------------------------------------------------------------------------

    async def _connect(self) -> Any:
        context = self.ssl_context or imap_ssl_context()
        if self.security == "implicit":
            client = aioimaplib.IMAP4_SSL(host=self.host, port=self.port, timeout=self.timeout,
                                          ssl_context=context)
        else:
            client = aioimaplib.IMAP4(host=self.host, port=self.port, timeout=self.timeout)
        try:
            await _welcomed(client, self.timeout)
            if self.security == "starttls":
                await starttls(client, self.host, context, self.timeout)
        except BaseException:
            transport = getattr(client.protocol, "transport", None)
            if transport is not None:
                transport.abort()
            raise
        try:
            response = await client.login(self._username, self._password)
        except BaseException:
            await _close(client)
            raise
        if response.result != "OK":
            await _close(client)
            raise ImapError("login refused")
        return client

    async def _select(self, client: Any) -> int:
        response = await client.select(self.mailbox)
        if response.result != "OK":
            raise ImapError(f"cannot select {self.mailbox!r}")
        for line in response.lines:
            found = _UIDVALIDITY.search(bytes(line)) if isinstance(line, bytes | bytearray) else None
            if found:
                return int(found.group(1))
        return 0

    # -- one round -----------------------------------------------------------------------------

    async def poll_once(self, client: Any | None = None) -> int:
        """Fetch and deliver up to ``batch`` messages newer than the stored UID; return how
        many UIDs were handled (``batch`` means there may be more)."""
        own = client is None
        if client is None:
            client = await self._connect()
        try:
            uidvalidity = await self._select(client)
            state = await self.state()
            last = state["last_uid"] if state["uidvalidity"] == uidvalidity else 0
            if state["uidvalidity"] != uidvalidity:
                await self._save(uidvalidity, 0)
            response = await client.uid_search(f"UID {last + 1}:*")
            if response.result != "OK":
                raise ImapError("UID SEARCH failed")
            uids = sorted({int(x) for line in response.lines[:1]
                           for x in bytes(line).split() if x.isdigit()})
            uids = [u for u in uids if u > last][: self.batch]
            for uid in uids:
                raw = await self._fetch(client, uid)
                if raw is not None:
                    await self.deliver(raw)
                await self._save(uidvalidity, uid)  # only after the message is stored
            self.polls += 1
            return len(uids)
        finally:
            if own:
                await _close(client)

    async def _fetch(self, client: Any, uid: int) -> bytes | None:
        response = await client.uid("fetch", str(uid), "(BODY.PEEK[])")
        if response.result != "OK":
            raise ImapError(f"UID FETCH {uid} failed")
        for line in response.lines:
            if isinstance(line, bytearray):
                return bytes(line)
        return None  # expunged meanwhile

    # -- the loop ------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the poll loop in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"imap-poll-{self.state_key}")

    async def stop(self) -> None:
        """Stop polling and log out."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        client, self._client = self._client, None
        if client is not None:
            await _close(client)
        with contextlib.suppress(Exception):  # hand the mailbox over at once, not after the TTL
            if await self.kv.kv_get(self.state_key + ":lease") == self._owner:
                await self.kv.kv_delete(self.state_key + ":lease")

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            try:
                if not await self._lease():
                    await asyncio.sleep(self.poll_interval)
                    continue
                if self._client is None:
                    self._client = await self._connect()
                while await self.poll_once(self._client) >= self.batch:
                    pass  # a backlog: keep fetching before waiting for news
                backoff = 1.0
                self.last_error = None
                await self._wait_for_news(self._client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a poller never dies; it reports and retries
                self.last_error = f"{type(exc).__name__}"
                log.warning("IMAP poll of %s@%s failed: %s", self.mailbox, self.host,
                            type(exc).__name__)
                client, self._client = self._client, None
                if client is not None:
                    await _close(client)
                await asyncio.sleep(min(backoff, self.poll_interval))
                backoff = min(backoff * 2, 300.0)

    async def _wait_for_news(self, client: Any) -> None:
        if not (self.use_idle and client.has_capability("IDLE")):
            await asyncio.sleep(self.poll_interval)
            return
        idle = await client.idle_start(timeout=min(self.poll_interval, 29 * 60))
        try:
            while client.has_pending_idle():
                try:
                    pushed = await client.wait_server_push(timeout=self.poll_interval + 5)
                except TimeoutError:
                    break
                lines = getattr(pushed, "lines", pushed)
                lines = lines if isinstance(lines, list) else []
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                if any(b"EXISTS" in bytes(x) for x in lines if isinstance(x, bytes | bytearray)):
                    break
        finally:
            client.idle_done()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(idle, 10)
