"""Twilio reconciliation: a send whose outcome was lost, looked up in the Messages list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

from omnichannel_sdk import Message, Part, ProviderError, SendResult

from ._outbound_sms import OutboundSms

if TYPE_CHECKING:
    import httpx

    from omnichannel_sdk import AdapterContext

    from ._twilio_settings import TwilioSmsSettings



class TwilioSmsAdapter(Protocol):
    """What a reconcile uses of the ``twilio-sms`` adapter."""

    settings: TwilioSmsSettings
    context: AdapterContext
    _own: Any

    @property
    def api_base(self) -> str:
        """The API origin."""

    @property
    def name(self) -> str:
        """The adapter's name."""

    def _recipient(self, message: Message) -> str:
        """The number a send goes to."""

    def _prepare(self, parts: Sequence[Part], to: str) -> OutboundSms:
        """The SMS bodies and MMS media of a send."""

    def _basic_auth(self) -> str:
        """The Authorization header value."""

    def _error(self, response: httpx.Response) -> Exception:
        """Twilio's API error as a typed error."""

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A vendor call through the hub's client."""

__all__ = ["reconcile"]

_RECONCILE_PAGES = 5
"""Pages of Twilio's Messages list a reconcile reads at most (100 messages each)."""


async def reconcile(adapter: TwilioSmsAdapter, message: Message, parts: Sequence[Part],
                    attempted_at: datetime) -> SendResult | None:
    """Find a one-body send whose outcome was lost in Twilio's Messages list.

    Lists the messages to the recipient (from our number), newest first, back to a minute
    before ``attempted_at``, and takes an outbound one with exactly our body whose SID no
    other message of ours has (claimed in the shared kv, so two messages with the same
    text never take the same SID). Twilio's Message resource does not show the
    ``StatusCallback`` a send asked for, so the body, the numbers and the time are what a
    send can be recognised by. No ``DateSent`` filter: a message Twilio accepted but has
    not sent yet has no ``date_sent``. A message split into several bodies is not
    reconciled (its accepted bodies are already recorded; it is sent again)."""
    to = adapter._recipient(message)
    prepared = adapter._prepare(parts, to)
    if len(prepared.bodies) > 1:
        return None
    body = prepared.bodies[0] if prepared.bodies else ""
    since = attempted_at - timedelta(seconds=60)  # our clock and Twilio's may differ
    query: list[tuple[str, str]] = [("To", to), ("PageSize", "100")]
    if adapter._own is not None and not adapter.settings.messaging_service_sid:
        query.append(("From", adapter._own.handle))
    url: str | None = (f"{adapter.api_base}/2010-04-01/Accounts/{adapter.settings.account_sid}"
                       f"/Messages.json?{urlencode(query)}")
    for _ in range(_RECONCILE_PAGES):
        if url is None:
            break
        response = await adapter.request("GET", url, headers={
            "authorization": adapter._basic_auth(), "accept": "application/json"})
        if response.status_code >= 400:
            raise adapter._error(response)
        try:
            page = response.json()
            items = page["messages"]
            if not isinstance(items, list):
                raise TypeError("messages")
        except (ValueError, KeyError, TypeError):
            raise ProviderError(f"{adapter.name}: unexpected answer to a message list",
                                status_code=response.status_code) from None
        older = False
        for item in items:
            found = await _claim_listed(adapter, message, item, body, bool(prepared.media), since)
            if found == "older":
                older = True
            elif found is not None:
                return SendResult(external_ids=[found], metadata=prepared.metadata())
        following = page.get("next_page_uri")
        url = (f"{adapter.api_base}{following}" if isinstance(following, str)
               and following.startswith("/") and not older else None)
    return None


async def _claim_listed(adapter: TwilioSmsAdapter, message: Message, item: Any, body: str,
                        mms: bool, since: datetime) -> str | None:
    """The SID of listed ``item`` if it is our lost send (claimed for ``message``),
    ``"older"`` when it was created before ``since``, else ``None``."""
    if not isinstance(item, dict) or not isinstance(item.get("sid"), str):
        return None
    try:
        created = parsedate_to_datetime(str(item.get("date_created") or ""))
    except (TypeError, ValueError):
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    if created < since:
        return "older"
    if not str(item.get("direction") or "").startswith("outbound"):
        return None
    if (item.get("body") or "") != body:
        return None
    if mms and str(item.get("num_media") or "0") == "0":
        return None
    service = adapter.settings.messaging_service_sid
    if service and item.get("messaging_service_sid") not in (None, service):
        return None
    sid = str(item["sid"])
    services = adapter.context.services
    if services.running:
        other = await services.store.find_message_by_external(adapter.context.key, sid)
        if other is not None and other.id != message.id:
            return None
    if not await adapter.context.kv.kv_add(f"twilio-reconciled:{sid}", message.id,
                                        ttl=30 * 86400):
        if await adapter.context.kv.kv_get(f"twilio-reconciled:{sid}") != message.id:
            return None  # another message with the same text took it first
    return sid
