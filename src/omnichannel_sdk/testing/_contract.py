"""The adapter contract suite. Subclass :class:`ChannelContract` as ``TestMyAdapterContract``.

Required: class attributes ``adapter_class`` and ``channel_settings``, and the methods
:meth:`ChannelContract.sample_requests`, :meth:`ChannelContract.malformed_request` and
:meth:`ChannelContract.send_case`. The rest has defaults a vendor may need to override.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import pytest
from pydantic import SecretStr

from .._adapter import AdapterContext, ChannelAdapter
from .._errors import (
    AuthenticationError,
    OmnichannelError,
    RateLimitedError,
    SignatureError,
    TransportError,
    UnsupportedFeatureError,
)
from .._hub import Hub
from .._ids import new_id
from .._models import (
    Address,
    EventPart,
    Message,
    Part,
    TextPart,
    utcnow,
)
from .._render import render_parts
from .._webhook import WebhookRequest
from ..hookspecs import hookimpl
from ._fixtures import PUBLIC_URL
from ._status import StatusTransitions
from ._vendor import SendCase, post_request, respx_module

if TYPE_CHECKING:
    import respx


class MemoryKV:
    """An in-process :class:`~omnichannel_sdk.KeyValueStore` for adapters under test."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[str, float | None]] = {}

    async def kv_get(self, key: str) -> str | None:
        """Return the value, or ``None``."""
        item = self.data.get(key)
        if item is None or (item[1] is not None and item[1] <= time.time()):
            return None
        return item[0]

    async def kv_set(self, key: str, value: str, ttl: float | None = None) -> None:
        """Store ``value``."""
        self.data[key] = (value, None if ttl is None else time.time() + ttl)

    async def kv_add(self, key: str, value: str, ttl: float | None = None) -> bool:
        """Store ``value`` if absent."""
        if await self.kv_get(key) is not None:
            return False
        await self.kv_set(key, value, ttl)
        return True

    async def kv_delete(self, key: str) -> None:
        """Remove ``key``."""
        self.data.pop(key, None)

    async def kv_scan(self, prefix: str) -> list[tuple[str, str]]:
        """Live pairs under ``prefix``."""
        return [(k, v) for k in sorted(self.data) if k.startswith(prefix)
                and (v := self.data[k][0]) is not None and await self.kv_get(k) is not None]


class _Registers:
    def __init__(self, adapter: type[ChannelAdapter]) -> None:
        self.adapter = adapter

    @hookimpl
    def omni_register_adapters(self, register: Callable[[type[ChannelAdapter]], None]) -> None:
        register(self.adapter)


class ChannelContract(StatusTransitions):
    """The suite every adapter passes. See the module docstring for what to provide."""

    adapter_class: ClassVar[type[ChannelAdapter]]
    """The adapter under test."""
    channel_settings: ClassVar[dict[str, Any]]
    """Its settings (as in a ``[channels.<key>]`` table, without ``adapter``)."""
    channel_key: ClassVar[str] = "contract"
    """The channel key the hub under test uses."""
    signature_headers: ClassVar[tuple[str, ...]] = ()
    """Headers that carry the signature (removed by :meth:`unsigned`)."""
    signature_params: ClassVar[tuple[str, ...]] = ()
    """Query or form parameters that carry the signature (removed by :meth:`unsigned`)."""
    secret_values: ClassVar[tuple[str, ...]] = ()
    """Secret setting values that must never appear in a repr. Required: an adapter whose
    settings hold no secret says so with ``no_secrets = True`` instead."""
    no_secrets: ClassVar[bool] = False
    """Set when the configured settings really hold no secret (the repr test then checks that
    no ``SecretStr`` setting has a value)."""

    # -- capabilities: explicit opt-outs (fsspec's ``supports_*``) ---------------------------

    supports_send: ClassVar[bool] = True
    """``False`` for an adapter that only receives (transcript vendors whose jobs start
    elsewhere): the four send tests are skipped as opted out, and ``test_send_refused`` proves
    every send raises :class:`~omnichannel_sdk.UnsupportedFeatureError` instead."""

    sends_over_http: ClassVar[bool] = True
    """Whether a send calls the vendor over HTTP (``send_case``). ``False`` for adapters that
    deliver otherwise (web chat, SMTP) or cannot send (transcript receivers): the log check then
    sends once without a vendor mock, if ``send_case`` gives a recipient."""

    # -- what a subclass provides -----------------------------------------------------------

    def sample_requests(self) -> dict[str, WebhookRequest]:
        """Correctly signed requests built from the vendor's documented payloads."""
        raise NotImplementedError("override in your subclass")

    def malformed_request(self) -> WebhookRequest:
        """A correctly signed request whose payload cannot be parsed."""
        raise NotImplementedError("override in your subclass")

    def send_case(self) -> SendCase:
        """The vendor's send endpoint and a recipient."""
        raise NotImplementedError("override in your subclass")

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        """The request with its signed content changed (default: the body's last byte)."""
        body = request.body[:-1] + bytes([request.body[-1] ^ 0x01]) if request.body else b"x"
        return WebhookRequest(request.method, request.url, request.headers, body)

    def unsigned(self, request: WebhookRequest) -> WebhookRequest:
        """The request without its signature."""
        headers = {k: v for k, v in request.headers.items()
                   if k not in {h.lower() for h in self.signature_headers}}
        url = request.url
        if self.signature_params:
            base, _, query = url.partition("?")
            kept = [kv for kv in query.split("&") if kv and kv.split("=", 1)[0]
                    not in self.signature_params]
            url = base + ("?" + "&".join(kept) if kept else "")
        return WebhookRequest(request.method, url, headers, request.body)

    def unauthorized_response(self) -> httpx.Response:
        """The vendor's answer to bad credentials."""
        return httpx.Response(401, json={"error": "unauthorized"})

    def rate_limited_response(self) -> httpx.Response:
        """The vendor's answer when throttling (``Retry-After: 7`` expected by default)."""
        return httpx.Response(429, json={"error": "too many requests"}, headers={"Retry-After": "7"})

    expected_retry_after: ClassVar[float | None] = 7.0
    """The ``retry_after`` the rate-limited answer should yield."""

    def unsupported_parts(self) -> list[Part]:
        """Parts the channel cannot carry at all."""
        return [EventPart(name="typing")]

    # -- helpers ----------------------------------------------------------------------------

    @property
    def webhook_url(self) -> str:
        """The URL the vendor signs: the kit's public URL + ``/webhooks/{key}``."""
        return f"{PUBLIC_URL}/webhooks/{self.channel_key}"

    def make_adapter(self, http: httpx.AsyncClient | None = None) -> ChannelAdapter:
        """An adapter instance outside a hub (sans-IO tests, direct sends).

        Without ``http`` its client has no network at all (every request is a
        ``ConnectError``) and holds no connection pool, so nothing is left unclosed."""
        settings = self.adapter_class.Settings.model_validate(self.channel_settings)
        context = AdapterContext(key=self.channel_key, public_url=PUBLIC_URL,
                                 http=http or httpx.AsyncClient(transport=_NO_NETWORK), kv=MemoryKV())
        return self.adapter_class(settings, context)

    def outbound_message(self, adapter: ChannelAdapter, case: SendCase) -> Message:
        """An outbound message to the case's recipient."""
        now = utcnow()
        sender = case.sender or adapter.own_address() or Address(
            channel=adapter.channel, handle="us")
        return Message(id=new_id("msg"), channel=adapter.channel, channel_key=self.channel_key,
                       adapter=adapter.name, direction="outbound", conversation_id=new_id("conv"),
                       sender=sender, recipients=[case.recipient],
                       parts=[TextPart(text="Hello from the contract suite")], created_at=now,
                       received_at=now, status="queued")

    def _mock(self, router: respx.MockRouter, case: SendCase, answer: Callable[[], httpx.Response]
              | Exception) -> None:
        for method, pattern, response in case.extra_routes:
            router.route(method=method, url__regex=pattern).mock(side_effect=lambda _r, f=response: f())
        kwargs: dict[str, Any] = {"url__regex": case.url} if case.regex else {
            "url__regex": "^" + re.escape(case.url)}
        route = router.route(method=case.method, **kwargs)
        if isinstance(answer, Exception):
            route.mock(side_effect=answer)
        else:
            route.mock(side_effect=lambda _r: answer())

    async def _send(self, answer: Callable[[], httpx.Response] | Exception) -> Any:
        case = self.send_case()
        async with httpx.AsyncClient() as http:
            adapter = self.make_adapter(http)
            message = self.outbound_message(adapter, case)
            parts = render_parts(message.parts, adapter.capabilities, adapter=adapter.name).parts
            with respx_module().mock(assert_all_called=False) as router:
                self._mock(router, case, answer)
                return await adapter.send(message, parts)

    # -- fixtures ---------------------------------------------------------------------------

    @pytest.fixture
    def omni_config(self, omni_config: dict[str, Any]) -> dict[str, Any]:
        """The kit's config with the adapter under test at ``channel_key``."""
        omni_config["channels"][self.channel_key] = {
            "adapter": self.adapter_class.name, **self.channel_settings}
        return omni_config

    @pytest.fixture
    def register_plugin(self, register_plugin: list[object]) -> list[object]:
        """Registers the adapter class (it may not be installed as a distribution)."""
        register_plugin.append(_Registers(self.adapter_class))
        return register_plugin

    @pytest.fixture
    def vendor(self) -> Iterator[respx.MockRouter]:
        """respx around gateway tests: media downloads get a small body, nothing leaves."""
        with respx_module().mock(assert_all_called=False) as router:
            router.route(method="GET").mock(return_value=httpx.Response(
                200, content=b"\x89PNG\r\n\x1a\nfake", headers={"content-type": "image/png"}))
            yield router

    # -- the contract -------------------------------------------------------------------------

    def test_declares_itself(self) -> None:
        """name, channel, capabilities and Settings are declared."""
        cls = self.adapter_class
        assert isinstance(cls.name, str) and cls.name
        assert isinstance(cls.channel, str) and cls.channel
        assert cls.Settings.__doc__
        assert cls.__doc__

    def test_secrets_hidden_in_repr(self) -> None:
        """No secret setting value shows in the settings' or the adapter's repr."""
        adapter = self.make_adapter()
        secret_fields = [name for name in type(adapter.settings).model_fields
                         if isinstance(getattr(adapter.settings, name), SecretStr)]
        if not self.secret_values:
            if not self.no_secrets:
                pytest.fail("give secret_values (the secret settings' values), or set "
                            "no_secrets = True for an adapter without secrets")
            assert not secret_fields, f"no_secrets, but {secret_fields} are SecretStr settings"
            return
        text = repr(adapter.settings) + repr(adapter) + str(adapter.settings)
        for value in self.secret_values:
            assert value, "an empty secret value proves nothing"
            assert value not in text

    def test_samples_verify(self) -> None:
        """Every recorded sample passes signature verification."""
        adapter = self.make_adapter()
        samples = self.sample_requests()
        assert samples, "give at least one sample"
        for request in samples.values():
            adapter.verify(request)

    def test_tampered_refused(self) -> None:
        """A sample with changed content is refused."""
        adapter = self.make_adapter()
        for request in self.sample_requests().values():
            with pytest.raises(SignatureError):
                adapter.verify(self.tamper(request))

    def test_missing_signature_refused(self) -> None:
        """A sample without its signature is refused."""
        adapter = self.make_adapter()
        for request in self.sample_requests().values():
            with pytest.raises(SignatureError):
                adapter.verify(self.unsigned(request))

    def test_samples_parse(self) -> None:
        """Every sample parses without failures."""
        adapter = self.make_adapter()
        for name, request in self.sample_requests().items():
            result = adapter.parse(request)
            assert not result.failures, (name, result.failures)

    @pytest.mark.anyio
    async def test_gateway_stores_once(self, hub: Hub, webhook_client: httpx.AsyncClient,
                                       vendor: respx.MockRouter) -> None:
        """Each sample is answered 2xx and stored; the same request again stores nothing."""
        for name, request in self.sample_requests().items():
            first = await post_request(webhook_client, request)
            assert first.status_code < 300, (name, first.status_code, first.text)
            count = await _count_messages(hub)
            again = await post_request(webhook_client, request)
            assert again.status_code == first.status_code, name
            assert await _count_messages(hub) == count, f"{name} was stored twice"
        assert not [d for d in await hub.store.list_dead_letters() if d.raw_id], \
            "a sample was dead-lettered"

    @pytest.mark.anyio
    async def test_gateway_refuses_tampered(self, hub: Hub, webhook_client: httpx.AsyncClient,
                                            vendor: respx.MockRouter) -> None:
        """Tampered and unsigned samples get 403 and store nothing."""
        for request in self.sample_requests().values():
            for bad in (self.tamper(request), self.unsigned(request)):
                response = await post_request(webhook_client, bad)
                assert response.status_code == 403
        assert await _count_messages(hub) == 0
        assert await hub.store.list_dead_letters() == []

    @pytest.mark.anyio
    async def test_gateway_dead_letters_malformed(self, hub: Hub,
                                                  webhook_client: httpx.AsyncClient) -> None:
        """A verified payload that cannot be parsed is answered 2xx and dead-lettered."""
        response = await post_request(webhook_client, self.malformed_request())
        assert response.status_code < 300
        letters = await hub.store.list_dead_letters()
        assert len(letters) == 1 and letters[0].raw_id
        assert await hub.storage.get_raw(letters[0].raw_id) is not None

    @pytest.mark.anyio
    async def test_gateway_unknown_channel_404(self, webhook_client: httpx.AsyncClient) -> None:
        """An unknown channel key is 404."""
        response = await webhook_client.post("/webhooks/no-such-channel", content=b"{}")
        assert response.status_code == 404

    @pytest.mark.anyio
    async def test_send_happy_path(self) -> None:
        """A send the vendor accepts returns its message id."""
        self._require_send()
        result = await self._send(self.send_case().success)
        assert result.external_ids and all(result.external_ids)

    @pytest.mark.anyio
    async def test_send_unauthorized(self) -> None:
        """Refused credentials raise AuthenticationError (not retryable)."""
        self._require_send()
        with pytest.raises(AuthenticationError) as info:
            await self._send(self.unauthorized_response)
        assert not info.value.retryable

    @pytest.mark.anyio
    async def test_send_rate_limited(self) -> None:
        """Throttling raises RateLimitedError with the vendor's retry_after."""
        self._require_send()
        with pytest.raises(RateLimitedError) as info:
            await self._send(self.rate_limited_response)
        assert info.value.retryable
        assert info.value.retry_after == self.expected_retry_after

    @pytest.mark.anyio
    async def test_send_network_error(self) -> None:
        """A connection failure raises TransportError (retryable)."""
        self._require_send()
        with pytest.raises(TransportError) as info:
            await self._send(httpx.ConnectError("connection refused"))
        assert info.value.retryable

    @pytest.mark.anyio
    async def test_send_refused(self) -> None:
        """(``supports_send = False``) every send raises UnsupportedFeatureError, whatever the
        vendor would answer."""
        if self.supports_send:
            pytest.skip("the adapter sends: the four send tests prove it")
        for answer in (self.send_case().success, self.unauthorized_response,
                       self.rate_limited_response, httpx.ConnectError("refused")):
            with pytest.raises(UnsupportedFeatureError):
                await self._send(answer)

    def _require_send(self) -> None:
        if not self.supports_send:
            pytest.skip(f"{self.adapter_class.name} opts out: supports_send = False")

    @pytest.mark.anyio
    async def test_logs_carry_no_secret(self, hub: Hub, webhook_client: httpx.AsyncClient,
                                        caplog: pytest.LogCaptureFixture) -> None:
        """A full receive/send cycle through the hub logs no configured secret value.

        Every sample, a tampered and a malformed request go through the gateway; sends go out
        through the hub's own HTTP client (the vendor accepts, refuses the credentials,
        throttles, in turn), with every logger at DEBUG (httpx's request lines included).
        """
        import logging

        caplog.set_level(logging.DEBUG)
        if not self.sends_over_http:
            await self._receive_and_send_without_http(hub, webhook_client)
            self._assert_no_secret_logged(caplog)
            return
        case = self.send_case()
        answers = [case.success, self.unauthorized_response, self.rate_limited_response]
        calls: list[int] = []

        def answer() -> httpx.Response:
            calls.append(1)
            return answers[(len(calls) - 1) % len(answers)]()

        with respx_module().mock(assert_all_called=False) as router:
            self._mock(router, case, answer)
            router.route(method="GET").mock(return_value=httpx.Response(
                200, content=b"\x89PNG\r\n\x1a\nfake", headers={"content-type": "image/png"}))
            samples = list(self.sample_requests().values())
            for request in [*samples, self.tamper(samples[0]), self.malformed_request()]:
                await post_request(webhook_client, request)
            adapter = hub.adapter(self.channel_key)
            for _ in answers:
                message = self.outbound_message(adapter, case)
                parts = render_parts(message.parts, adapter.capabilities, adapter=adapter.name).parts
                try:
                    await adapter.send(message, parts)
                except OmnichannelError:
                    pass
            for conversation in (await hub.store.list_conversations())[:1]:
                try:  # through the outbox too, where the window and opt-outs allow
                    await asyncio.wait_for(hub.send(conversation.id, text="Hi", wait=True), 10)
                except (OmnichannelError, TimeoutError):
                    pass
        assert calls, "no send reached the vendor (set sends_over_http = False if none should)"
        self._assert_no_secret_logged(caplog)

    async def _receive_and_send_without_http(self, hub: Hub, webhook_client: httpx.AsyncClient) -> None:
        with respx_module().mock(assert_all_called=False) as router:
            router.route(method="GET").mock(return_value=httpx.Response(
                200, content=b"\x89PNG\r\n\x1a\nfake", headers={"content-type": "image/png"}))
            samples = list(self.sample_requests().values())
            for request in [*samples, self.tamper(samples[0]), self.malformed_request()]:
                await post_request(webhook_client, request)
            try:
                case = self.send_case()
            except Exception:  # noqa: BLE001 - the contract says it has no send case
                return
            adapter = hub.adapter(self.channel_key)
            message = self.outbound_message(adapter, case)
            try:
                parts = render_parts(message.parts, adapter.capabilities, adapter=adapter.name).parts
                await adapter.send(message, parts)
            except OmnichannelError:
                pass

    def _assert_no_secret_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        from .._logging import MIN_SECRET_LENGTH, secret_values

        settings = self.adapter_class.Settings.model_validate(self.channel_settings)
        secrets = {v for v in (*self.secret_values, *secret_values(settings))
                   if len(v) >= MIN_SECRET_LENGTH}
        logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
        leaked = sorted(v for v in secrets if v in logged)
        assert not leaked, f"secret values in the logs: {[v[:3] + '…' for v in leaked]}"

    def test_unsupported_part_refused(self) -> None:
        """Parts the channel cannot carry raise UnsupportedFeatureError when rendered."""
        adapter = self.make_adapter()
        with pytest.raises(UnsupportedFeatureError):
            render_parts(self.unsupported_parts(), adapter.capabilities, adapter=adapter.name)


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("sans-IO adapter of the contract kit: no network", request=request)


_NO_NETWORK = httpx.MockTransport(_refuse)


async def _count_messages(hub: Hub) -> int:
    total = 0
    for conversation in await hub.store.list_conversations():
        total += len(await hub.store.list_messages(conversation.id))
    return total
