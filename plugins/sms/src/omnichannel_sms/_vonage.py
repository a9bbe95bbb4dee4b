"""The ``vonage-sms`` adapter: the Vonage (Nexmo) SMS API."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

import httpx
import orjson
from pydantic import Field, SecretStr

from omnichannel_sdk import (
    Address,
    AuthenticationError,
    Capabilities,
    EventPart,
    InboundMessage,
    Message,
    MessageError,
    OptedOutError,
    ParseResult,
    Part,
    ProviderError,
    RateLimitedError,
    RejectedError,
    ReplayGuard,
    SendResult,
    SignatureError,
    StatusUpdate,
    TextPart,
    UnparseablePayloadError,
    UnsupportedFeatureError,
    WebhookRequest,
    WebhookResponse,
    check_timestamp,
    constant_time_equals,
    replay_fingerprint,
)

from ._concat import ConcatAssembler, ConcatPart
from ._forms import first_values, parse_form
from ._keywords import keyword_event
from ._numbers import PhoneNumberAdapter, address, normalize_number
from ._outbound_sms import OutboundSms, PreparedSends, SendProgress, prepare_outbound
from ._settings import SmsSettings

__all__ = ["VONAGE_DLR_ERRORS", "VonageSmsAdapter", "VonageSmsSettings", "signed_params", "vonage_signature"]

SignatureMethod = Literal["md5hash", "md5", "sha1", "sha256", "sha512"]

#: Why a delivery receipt says a message was not delivered (``err-code``).
VONAGE_DLR_ERRORS: dict[str, str] = {
    "1": "unknown", "2": "absent subscriber (temporary)", "3": "absent subscriber (permanent)",
    "4": "call barred by user", "5": "portability error", "6": "anti-spam rejection",
    "7": "handset busy", "8": "network error", "9": "illegal number", "10": "illegal message",
    "11": "unroutable", "12": "destination unreachable", "13": "subscriber age restriction",
    "14": "number blocked by carrier", "15": "prepaid insufficient funds",
    "16": "gateway quota exceeded", "50": "entity filter", "51": "header filter",
    "52": "content filter", "53": "consent filter", "54": "regulation error",
    "99": "general error",
}

_DLR_STATUS = {"delivered": "delivered", "accepted": "sent", "buffered": "sent",
               "expired": "failed", "failed": "failed", "rejected": "failed"}
_SEND_AUTH = frozenset({"4", "8", "11", "14", "32"})
_SEND_RATE = frozenset({"1", "10"})
_SEND_RETRY = frozenset({"5"})
_INBOUND_CORE = frozenset({"msisdn", "to", "messageId", "text", "type", "sig", "timestamp", "nonce",
                           "concat", "concat-ref", "concat-part", "concat-total", "api-key"})


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def vonage_signature(secret: str, params: Mapping[str, str], method: SignatureMethod = "md5hash") -> str:
    """The ``sig`` of ``params`` (without ``sig``), lower-case hex.

    Every parameter sorted by name becomes ``&name=value`` with ``&`` and ``=`` in values
    replaced by ``_``. ``md5hash`` is the MD5 of that string followed by the secret; the other
    methods are an HMAC of the string keyed by the secret.
    """
    signed = "".join(f"&{k}={v.replace('&', '_').replace('=', '_')}"
                     for k, v in sorted(params.items()) if k != "sig")
    if method == "md5hash":
        # the vendor's legacy default; we verify what it sends
        return hashlib.md5((signed + secret).encode("utf-8")).hexdigest()  # noqa: S324
    return hmac.new(secret.encode("utf-8"), signed.encode("utf-8"), method).hexdigest()


def signed_params(secret: str, params: Mapping[str, Any], method: SignatureMethod = "md5hash",
                  timestamp: int | str | None = None) -> dict[str, str]:
    """``params`` with ``timestamp`` and ``sig`` added as Vonage signs them (tests, demo)."""
    out = {k: _as_text(v) for k, v in params.items()}
    out.setdefault("timestamp", str(int(time.time()) if timestamp is None else timestamp))
    out["sig"] = vonage_signature(secret, out, method)
    if method != "md5hash":
        out["sig"] = out["sig"].upper()
    return out


class VonageSmsSettings(SmsSettings):
    """Configuration of a Vonage SMS channel."""

    api_key: str
    """The account's API key."""
    api_secret: SecretStr
    """The account's API secret (authenticates sends)."""
    signature_secret: SecretStr
    """The signature secret of the dashboard: verifies the ``sig`` of every webhook."""
    signature_method: SignatureMethod = "md5hash"
    """The signing method chosen in the dashboard (Vonage's default is ``md5hash``)."""
    signature_tolerance: float = Field(default=300.0, gt=0)
    """Seconds a webhook's ``timestamp`` may be off from now (replay protection)."""
    from_number: str
    """Our virtual number (E.164, or local with ``default_region``) or an alphanumeric id."""
    concat_timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for the missing parts of a concatenated SMS before storing what came."""


class VonageSmsAdapter(PhoneNumberAdapter[VonageSmsSettings]):
    """Vonage SMS API: signed inbound webhooks (GET query, POST form or JSON), delivery
    receipts, reassembly of concatenated inbound SMS, and sends through ``/sms/json``."""

    name: ClassVar[str] = "vonage-sms"
    inbound_get: ClassVar[bool] = True  # inbound SMS and receipts may arrive as GET
    channel: ClassVar[str] = "sms"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text_length=None,
        text_overflow="vendor",
        rate_limit=30.0,
    )
    default_api_base: ClassVar[str | None] = "https://rest.nexmo.com"

    def __init__(self, settings: Any, context: Any) -> None:
        super().__init__(settings, context)
        # settings may be partial (``omnichannel normalize`` parses without credentials)
        secret = getattr(self.settings, "signature_secret", None)
        self._secret = secret.get_secret_value() if secret else ""
        number = getattr(self.settings, "from_number", None)
        self._own = address(self.channel, number, self.settings.default_region) if number else None
        self.assembler = ConcatAssembler(context.kv, context.key, self._ingest_parts,
                                         self.settings.concat_timeout)
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._prepared: PreparedSends[OutboundSms] = PreparedSends()
        """What :meth:`outbound_metadata` prepared, for :meth:`send`."""
        self._endpoint: tuple[str, httpx.URL, httpx.Headers] | None = None

    # -- identity ----------------------------------------------------------------------------

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start flushing concatenated SMS whose parts stopped coming (inside a hub)."""
        if self.context.services.running and self._flusher is None:
            self._flusher = asyncio.create_task(self.assembler.run(),
                                                name=f"vonage-concat-{self.context.key}")

    async def stop(self) -> None:
        """Stop the flusher; let parts and GET webhooks being handled finish."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        await self.assembler.close()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None

    # -- inbound -----------------------------------------------------------------------------

    def params(self, request: WebhookRequest) -> dict[str, str]:
        """The webhook's parameters: the query of a GET, a JSON object or a form body."""
        if request.method in ("GET", "HEAD") or not request.body:
            return dict(request.query)
        if request.content_type == "application/json" or request.body[:1] in (b"{", b"["):
            data = request.json()
            if not isinstance(data, dict):
                raise UnparseablePayloadError("JSON body is not an object", adapter=self.name)
            return {str(k): _as_text(v) for k, v in data.items()}
        return first_values(parse_form(request.body))

    def verify(self, request: WebhookRequest) -> None:
        """Check ``sig`` with the configured method, and that ``timestamp`` is recent."""
        try:
            params = self.params(request)
        except UnparseablePayloadError:
            raise SignatureError("body cannot be read to check its signature", adapter=self.name) from None
        given = params.pop("sig", "")
        if not given or not self._secret:
            raise SignatureError("missing sig", adapter=self.name)
        check_timestamp(params.get("timestamp", ""), self.settings.signature_tolerance,
                        adapter=self.name)
        expected = vonage_signature(self._secret, params, self.settings.signature_method)
        if not constant_time_equals(given.strip().lower(), expected):
            raise SignatureError("bad sig", adapter=self.name)

    async def check_replay(self, request: WebhookRequest) -> None:
        """Remember each signed request's ``nonce`` (or ``sig``) for the tolerance window in
        ``context.kv``: the same signature may come back only with the same fields (Vonage
        retrying), never with others."""
        params = self.params(request)
        nonce = params.get("nonce") or params.get("sig") or ""
        signed = sorted((k, v) for k, v in params.items() if k != "sig")
        guard = ReplayGuard(self.context.kv, f"vonage:{self.context.key}",
                            tolerance=self.settings.signature_tolerance, adapter=self.name)
        await guard.admit(nonce, replay_fingerprint(*(f"{k}={v}" for k, v in signed)))

    def parse(self, request: WebhookRequest) -> ParseResult:
        """An inbound SMS (whole, or one part of a concatenated one) or a delivery receipt."""
        params = self.params(request)
        if "status" in params and "text" not in params and ("err-code" in params or "scts" in params):
            update = self._receipt(params)
            return ParseResult(items=[update] if update is not None else [])
        message_id, sender = params.get("messageId"), params.get("msisdn")
        if not message_id or not sender:
            raise UnparseablePayloadError("neither an inbound SMS nor a delivery receipt "
                                          "(no messageId or msisdn)", adapter=self.name)
        try:
            customer = address(self.channel, sender, None, international=True)
            ours = (address(self.channel, params["to"], None, international=True)
                    if params.get("to") else self._own)
            if ours is None:
                raise ValueError("no recipient number and no from_number configured")
        except ValueError as exc:
            raise UnparseablePayloadError(f"bad phone number: {exc}", adapter=self.name) from None
        if params.get("concat") == "true" or "concat-ref" in params:
            part = self._concat_part(params, customer.handle, ours.handle, message_id)
            services = self.context.services
            if services.running:
                self.assembler.submit(part, services.spawn)
                return ParseResult()
            # outside a hub (``omnichannel normalize``, sans-IO tests): the part on its own, flagged
            meta = {"ref": part.ref, "total": part.total, "parts": [part.number],
                    "complete": part.total == 1, "assembled": False}
            return ParseResult(items=[self._message([part], meta)])
        kind = params.get("type", "text")
        parts: list[Part] = []
        text = params.get("text", "")
        if kind == "binary":
            parts.append(EventPart(name="binary_sms", data={"data": params.get("data", ""),
                                                            "udh": params.get("udh", "")}))
        elif text:
            parts.append(TextPart(text=text))
            event = keyword_event(text, self.settings)
            if event is not None:
                parts.append(event)
        return ParseResult(items=[InboundMessage(
            external_id=message_id, sender=customer, recipients=[ours], parts=parts,
            created_at=_timestamp(params.get("message-timestamp")),
            metadata={"vonage": {k: v for k, v in params.items() if k not in _INBOUND_CORE}})])

    def _concat_part(self, params: dict[str, str], sender: str, ours: str, message_id: str) -> ConcatPart:
        try:
            number, total = int(params["concat-part"]), int(params["concat-total"])
            ref = params["concat-ref"]
        except (KeyError, ValueError):
            raise UnparseablePayloadError("concatenated SMS without a usable concat-ref, "
                                          "concat-part and concat-total", adapter=self.name) from None
        if not 1 <= number <= total <= 255 or not ref or len(ref) > 64:
            raise UnparseablePayloadError("concat-part / concat-total out of range", adapter=self.name)
        extra = {k: v for k, v in params.items() if k not in _INBOUND_CORE}
        return ConcatPart(sender=sender, ref=ref, number=number, total=total, message_id=message_id,
                          text=params.get("text", ""), recipient=ours,
                          timestamp=params.get("message-timestamp"), extra=extra)

    def _message(self, parts: list[ConcatPart], concat: dict[str, Any]) -> InboundMessage:
        first = parts[0]
        # a group stored without some parts shows where text is missing
        mark = bool(concat.get("missing")) and not concat.get("late") and concat.get("assembled", True)
        pieces: list[str] = []
        expected = 1
        for part in parts:
            if mark and part.number > expected:
                pieces.append(" […] ")
            pieces.append(part.text)
            expected = part.number + 1
        if mark and expected <= first.total:
            pieces.append(" […]")
        text = "".join(pieces).strip()
        body: list[Part] = [TextPart(text=text)] if text else []
        event = keyword_event(text, self.settings) if concat.get("complete") else None
        if event is not None:
            body.append(event)
        stamps = [s for s in (_timestamp(p.timestamp) for p in parts) if s is not None]
        return InboundMessage(
            external_id=first.message_id,
            sender=address(self.channel, first.sender, None, international=True),
            recipients=[address(self.channel, first.recipient, None, international=True)]
            if first.recipient else [a for a in (self._own,) if a is not None],
            parts=body, created_at=min(stamps) if stamps else None,
            metadata={"concat": {**concat, "message_ids": [p.message_id for p in parts]},
                      "vonage": first.extra})

    async def _ingest_parts(self, parts: list[ConcatPart], concat: dict[str, Any]) -> None:
        await self.context.services.ingest([self._message(parts, concat)])

    def _receipt(self, params: dict[str, str]) -> StatusUpdate | None:
        message_id = params.get("messageId")
        if not message_id:
            raise UnparseablePayloadError("delivery receipt without messageId", adapter=self.name)
        vendor_status = params.get("status", "")
        status = _DLR_STATUS.get(vendor_status)
        if status is None:
            return None  # "unknown": nothing to move forward
        code = params.get("err-code", "")
        error = None
        if status == "failed":
            reason = VONAGE_DLR_ERRORS.get(code, vendor_status)
            error = MessageError(code="undelivered", message=f"Vonage {vendor_status}: {reason}",
                                 vendor_code=code or None)
        metadata = {k: params[k] for k in ("network-code", "price", "scts", "client-ref")
                    if params.get(k)}
        return StatusUpdate(external_id=message_id, status=status, error=error,
                            timestamp=_timestamp(params.get("message-timestamp")) or datetime.now(UTC),
                            metadata={"vonage_status": vendor_status, **metadata})

    def acknowledge(self, request: WebhookRequest, result: ParseResult | None) -> WebhookResponse:
        """Vonage wants a 200 or 204; anything else is retried for a day."""
        return WebhookResponse(204, b"")

    # -- outbound ----------------------------------------------------------------------------

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """POST each SMS body to ``/sms/json``; ``type=unicode`` for UCS-2 texts, delivery
        receipts asked for at our webhook URL, ``client-ref`` = our message id."""
        if not message.recipients:
            raise RejectedError(f"{self.name}: the message has no recipient")
        if self._own is None:
            raise RejectedError(f"{self.name}: no from_number configured")
        # a fresh send's parts are the very list outbound_metadata prepared at hub.send
        prepared = (self._prepared.take(parts, None)
                    or prepare_outbound(parts, self.settings, self.name))
        url, headers = self._send_endpoint()
        to = message.recipients[0].handle.lstrip("+")
        sender = self._own.handle.lstrip("+") if self._own.handle[1:].isdigit() else self._own.handle
        if not prepared.bodies:
            raise UnsupportedFeatureError(f"{self.name}: SMS carries text only")
        progress = SendProgress(self.context, message.id) if len(prepared.bodies) > 1 else None
        ids: list[str] = []
        for index, (body, info) in enumerate(zip(prepared.bodies, prepared.encodings, strict=True)):
            earlier = await progress.accepted(index) if progress is not None else None
            if earlier:
                ids.extend(earlier)
                continue
            form = {"api_key": self.settings.api_key,
                    "api_secret": self.settings.api_secret.get_secret_value(),
                    "from": sender, "to": to, "text": body,
                    "type": "unicode" if info.encoding == "UCS-2" else "text",
                    "status-report-req": "1", "callback": self.context.webhook_url,
                    "client-ref": message.id[:100]}
            response = await self.request("POST", url, content=urlencode(form).encode("utf-8"),
                                          headers=headers)
            if response.status_code >= 400:
                raise self.error_for_status(response.status_code, response, None, None)
            accepted = self._accepted(response)
            ids.extend(accepted)
            if progress is not None:
                await progress.record(index, accepted)
        return SendResult(external_ids=ids, status="sent", metadata=prepared.metadata())

    def outbound_metadata(self, parts: Sequence[Part], recipients: Sequence[Address]) -> dict[str, Any]:
        """The encoding and segment count of the SMS ``parts`` become (SPEC §10), known before
        the send; a text past ``max_segments`` with ``max_segments_action = "refuse"`` is
        refused here, before anything is queued."""
        prepared = prepare_outbound(parts, self.settings, self.name)
        self._prepared.keep(parts, None, prepared)  # for send (the same parts, once)
        return prepared.metadata()

    def _send_endpoint(self) -> tuple[httpx.URL, httpx.Headers]:
        """The SMS API's URL, parsed, and the headers of a send, made once per ``api_base``
        (httpx parses a string URL and a dict of headers again on every request)."""
        base = self.api_base
        kept = self._endpoint
        if kept is None or kept[0] != base:
            kept = self._endpoint = (base, httpx.URL(f"{base}/sms/json"), httpx.Headers({
                "content-type": "application/x-www-form-urlencoded",
                "accept": "application/json"}))
        return kept[1], kept[2]

    def _accepted(self, response: httpx.Response) -> list[str]:
        try:
            answer = response.json()
            messages = answer["messages"]
            if not isinstance(messages, list) or not messages:
                raise TypeError("no messages")
        except (ValueError, KeyError, TypeError):
            raise ProviderError(f"{self.name}: unexpected answer to a send",
                                status_code=response.status_code) from None
        ids = []
        for item in messages:
            status = str(item.get("status", ""))
            if status != "0":
                raise self._error(status, str(item.get("error-text") or "")[:300])
            ids.append(str(item.get("message-id")))
        return ids

    def _error(self, code: str, detail: str) -> Exception:
        """The one place the SMS API's status codes become typed errors."""
        what = f"{self.name}: status {code}" + (f": {detail}" if detail else "")
        if code == "7":
            # "number barred": the recipient is on the account's block list, where US
            # recipients land when they reply STOP
            return OptedOutError(f"{self.name}: the recipient is barred (status 7)")
        if code in _SEND_RATE:
            return RateLimitedError(what, retry_after=1.0, vendor_code=code)
        if code in _SEND_AUTH:
            return AuthenticationError(what, vendor_code=code)
        if code in _SEND_RETRY:
            return ProviderError(what, vendor_code=code, retryable=True)
        return RejectedError(what, vendor_code=code)

    def normalize(self, number: str) -> str:
        """``number`` as E.164 with this channel's ``default_region``."""
        return normalize_number(number, self.settings.default_region)


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
