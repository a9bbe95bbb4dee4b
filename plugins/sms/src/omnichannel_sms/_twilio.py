"""The ``twilio-sms`` adapter: Twilio Programmable Messaging (SMS and MMS)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar
from urllib.parse import quote_plus, urlencode
from xml.sax.saxutils import escape

import httpx
import phonenumbers

from omnichannel_sdk import (
    Address,
    AuthenticationError,
    Capabilities,
    ChannelError,
    InboundMessage,
    MediaPart,
    Message,
    MessageError,
    OptedOutError,
    ParseResult,
    Part,
    ProviderError,
    RateLimitedError,
    RejectedError,
    SendResult,
    SignatureError,
    StatusUpdate,
    TextPart,
    UnparseablePayloadError,
    UnsupportedFeatureError,
    WebhookRequest,
    WebhookResponse,
    alternate_port_url,
    constant_time_equals,
    media_kind,
    media_origin_allowed,
    parse_retry_after,
    twilio_signature,
)

from ._built import inbound_message, text_part
from ._forms import first_values, parse_form
from ._keywords import keyword_event
from ._numbers import PhoneNumberAdapter, address
from ._outbound_sms import OutboundSms, PreparedSends, SendProgress, prepare_outbound
from ._twilio_settings import TwilioSmsSettings

__all__ = [
    "TWILIO_UNDELIVERED_REASONS",
    "TwilioSmsAdapter",
    "TwilioSmsSettings",
    "parse_form",
    "signed_request",
    "twilio_signature",
]

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

#: Why Twilio says a message was not delivered (status callback ``ErrorCode``).
TWILIO_UNDELIVERED_REASONS: dict[str, str] = {
    "30001": "queue overflow",
    "30002": "account suspended",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "message filtered by the carrier",
    "30008": "unknown error",
    "30034": "message from an unregistered number",
    "21610": "recipient unsubscribed",
}

#: Twilio API error codes that mean "this message is refused; do not retry".
_REJECTED_CODES = frozenset({21211, 21212, 21408, 21602, 21604, 21606, 21612, 21614, 21617,
                             21620, 21623, 21660, 30007, 30034})
_AUTH_CODES = frozenset({20003, 20005, 20008})

_STATUS = {
    # Twilio's own pre-delivery states mean Twilio has the message: ``sent`` to us
    "accepted": "sent", "scheduled": "sent", "queued": "sent", "sending": "sent",
    "sent": "sent", "partially_delivered": "sent", "delivered": "delivered", "read": "read",
    "undelivered": "failed", "failed": "failed", "canceled": "failed",
}
_MEDIA_KEY = re.compile(r"^Media(?:Url|ContentType)\d+$")
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CORE_FIELDS = frozenset({"Body", "From", "To", "MessageSid", "SmsMessageSid", "SmsSid", "NumMedia"})
_NO_DEFAULTS = (None,) * len(_CORE_FIELDS)  # pop(name, None) for each of them


# a number's form encoding, per number: agents reply to the same customers again and again,
# and quote_plus escapes its "+" one byte at a time (a tenth of what building a send's form
# cost in Python)
_quoted_number = lru_cache(maxsize=4096)(quote_plus)


@dataclass(frozen=True, slots=True)
class _SendTemplate:
    """The parts of a Messages API call that every send of an adapter shares."""

    url: httpx.URL
    headers: httpx.Headers
    fixed: str
    """The form's fields after ``To`` and before ``Body``, encoded."""


class TwilioSmsAdapter(PhoneNumberAdapter[TwilioSmsSettings]):
    """Twilio SMS and MMS: signed form webhooks in, the Messages API out.

    Inbound messages and status callbacks arrive at ``public_url/webhooks/{key}`` (set it as the
    number's or Messaging Service's webhook); the SDK asks Twilio for status callbacks at the
    same URL. Media of inbound MMS is downloaded with the account's credentials.
    """

    name: ClassVar[str] = "twilio-sms"
    inbound_get: ClassVar[bool] = True  # Twilio webhooks may be configured as HTTP GET
    channel: ClassVar[str] = "sms"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text_length=1600,
        text_overflow="vendor",
        media_kinds=frozenset({"image", "audio", "video", "file"}),
        max_media_size=5 * 1024 * 1024,
        passive_reply=True,
        media_hosts=frozenset({"api.twilio.com", "twiliocdn.com"}),
    )
    default_api_base: ClassVar[str | None] = "https://api.twilio.com"

    def __init__(self, settings: Any, context: Any) -> None:
        super().__init__(settings, context)
        # settings may be partial (``omnichannel normalize`` parses without credentials)
        token = getattr(self.settings, "auth_token", None)
        self._token = token.get_secret_value().encode("utf-8") if token else b""
        self._own = (address(self.channel, self.settings.from_number, self.settings.default_region)
                     if self.settings.from_number else None)
        if not self.settings.mms:
            self.capabilities = self.capabilities.model_copy(  # type: ignore[misc]
                update={"media_kinds": frozenset()})
        self._form_cache: tuple[bytes, list[tuple[str, str]], dict[str, str]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._send_cache: tuple[str, _SendTemplate] | None = None
        self._prepared: PreparedSends[OutboundSms] = PreparedSends()
        """What :meth:`outbound_metadata` prepared, by the identity of the parts list
        ``hub.send`` hands on to :meth:`send` (held, so the identity is not reused)."""

    # -- identity ----------------------------------------------------------------------------

    def thread_key_for(self, customer: Address, message: InboundMessage | None = None) -> str:
        """``customer|the number written to`` for inbound messages; for conversations we start
        ``customer|our number`` (or ``customer|messaging service`` without a number)."""
        if message is not None:
            return super().thread_key_for(customer, message)
        own = self._own.handle if self._own else (self.settings.messaging_service_sid or "")
        return f"{customer.handle}|{own}"

    # -- inbound -----------------------------------------------------------------------------

    def _form(self, request: WebhookRequest) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """The body's form pairs in order, and the form as a dict (a name's first value counts),
        parsed once for ``verify`` and ``parse`` of the same request."""
        cached = self._form_cache
        if cached is not None and cached[0] is request.body:
            return cached[1], cached[2]
        pairs = parse_form(request.body)
        form = first_values(pairs)
        self._form_cache = (request.body, pairs, form)
        return pairs, form

    def verify(self, request: WebhookRequest) -> None:
        """Check ``X-Twilio-Signature`` over the called URL and the sorted form parameters
        (or, for JSON bodies, the URL with its ``bodySHA256``), in constant time."""
        given = request.header("x-twilio-signature")
        if not given or not self._token:
            raise SignatureError("missing X-Twilio-Signature", adapter=self.name)
        if "bodySHA256" in request.query:
            digest = hashlib.sha256(request.body).hexdigest()
            if not constant_time_equals(digest, request.query["bodySHA256"]):
                raise SignatureError("bodySHA256 does not match the body", adapter=self.name)
            params: list[tuple[str, str]] = []
            form: dict[str, str] = {}
        else:
            try:
                params, form = self._form(request) if request.body else ([], {})
            except UnparseablePayloadError:
                raise SignatureError("body is not a form", adapter=self.name) from None
        # no name repeats (the common form): no pair does either, none to count once
        distinct = not params or len(form) == len(params)
        if constant_time_equals(twilio_signature(self._token, request.url, params,
                                                 distinct=distinct), given):
            return
        other = alternate_port_url(request.url)
        if other and constant_time_equals(twilio_signature(self._token, other, params,
                                                           distinct=distinct), given):
            return
        raise SignatureError("bad X-Twilio-Signature", adapter=self.name)

    async def stop(self) -> None:
        """Let GET webhooks being handled finish."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """An inbound SMS/MMS, or a status callback for a message we sent."""
        form = self._form(request)[1] if request.body else request.query
        status = form.get("MessageStatus")
        if status and status not in ("received", "receiving"):
            return ParseResult(items=[self._status(form, status)])
        return ParseResult(items=[self._inbound(form)])

    def _status(self, form: dict[str, str], vendor_status: str) -> StatusUpdate:
        sid = form.get("MessageSid") or form.get("SmsSid")
        if not sid:
            raise UnparseablePayloadError("status callback without MessageSid", adapter=self.name)
        status = _STATUS.get(vendor_status)
        if status is None:
            raise UnparseablePayloadError(f"unknown MessageStatus {vendor_status[:40]!r}",
                                          adapter=self.name)
        code = (form.get("ErrorCode") or "").strip()
        error = None
        if status == "failed" or (code and code != "0"):
            reason = TWILIO_UNDELIVERED_REASONS.get(code) or form.get("ErrorMessage") or vendor_status
            error = MessageError(code="undelivered" if vendor_status == "undelivered" else "failed",
                                 message=f"Twilio {vendor_status}: {reason}",
                                 vendor_code=code or None)
        metadata: dict[str, Any] = {"twilio_status": vendor_status}
        if form.get("RawDlrDoneDate"):
            metadata["raw_dlr_done_date"] = form["RawDlrDoneDate"]
        return StatusUpdate(external_id=sid, status=status,
                            error=error if status == "failed" else None, metadata=metadata)

    def _inbound(self, form: dict[str, str]) -> InboundMessage:
        sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
        sender, to = form.get("From"), form.get("To")
        if not sid or not sender:
            raise UnparseablePayloadError("neither a message nor a status callback (no MessageSid "
                                          "or From)", adapter=self.name)
        region = self.settings.default_region
        try:
            customer = address(self.channel, sender, region)
            ours = address(self.channel, to, region) if to else self._own
        except ValueError as exc:
            raise UnparseablePayloadError(f"bad phone number: {exc}", adapter=self.name) from None
        parts: list[Part] = []
        body = form.get("Body", "")
        if body:
            parts.append(text_part(body))
        try:
            count = int(form.get("NumMedia") or 0)
        except ValueError:
            raise UnparseablePayloadError("NumMedia is not a number", adapter=self.name) from None
        for index in range(max(0, min(count, 20))):
            url = form.get(f"MediaUrl{index}")
            if not url:
                continue
            content_type = form.get(f"MediaContentType{index}") or None
            parts.append(MediaPart(kind=media_kind(content_type), url=url, content_type=content_type))
        event = keyword_event(body, self.settings, form.get("OptOutType"))
        if event is not None:
            parts.append(event)
        # the form minus our own fields, in its order: a copy with seven pops is cheaper than a
        # comprehension over twenty names, and only a form naming "Media…" needs the pattern
        vendor = dict(form)
        list(map(vendor.pop, _CORE_FIELDS, _NO_DEFAULTS))  # the seven pops, without a loop here
        if "Media" in "\0".join(vendor):
            vendor = {k: v for k, v in vendor.items()
                      if not (k.startswith("Media") and _MEDIA_KEY.match(k))}
        metadata: dict[str, Any] = {"twilio": vendor}
        if form.get("NumSegments", "").isdigit():
            metadata["segments"] = int(form["NumSegments"])
        profile = {"country": form["FromCountry"]} if form.get("FromCountry") else {}
        # every value is already what validation would keep: built without it (``_built``)
        return inbound_message(external_id=sid, sender=customer,
                               recipients=[ours] if ours is not None else [], parts=parts,
                               metadata=metadata, profile=profile)

    def acknowledge(self, request: WebhookRequest, result: ParseResult | None) -> WebhookResponse:
        """Empty TwiML: Twilio sends nothing back."""
        return WebhookResponse(200, EMPTY_TWIML, "text/xml; charset=utf-8")

    def passive_response(self, request: WebhookRequest, inbound: Message, reply: Message,
                         parts: Sequence[Part]) -> WebhookResponse | None:
        """TwiML ``<Message>`` carrying the reply (text and, for MMS, media URLs)."""
        clean = [TextPart(text=_XML_BAD.sub("", p.text)) if isinstance(p, TextPart) else p for p in parts]
        try:
            prepared = prepare_outbound(clean, self.settings, self.name, max_chars=1600)
        except ChannelError:
            return None
        media = [p.url for p in prepared.media if p.url and p.url.startswith(("http://", "https://"))]
        if len(prepared.bodies) > 1 or (prepared.media and not self._mms_to(inbound.sender.handle)):
            return None  # several messages or links instead of MMS: send through the API
        body = "".join(f"<Body>{escape(b)}</Body>" for b in prepared.bodies)
        body += "".join(f"<Media>{_xml(url)}</Media>" for url in media[:10])
        # the hub stores ``reply`` after this call: record the encoding like every send does
        reply.metadata.update(prepared.metadata())
        twiml = f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{body}</Message></Response>'
        return WebhookResponse(200, twiml, "text/xml; charset=utf-8")

    async def media_request(self, part: MediaPart) -> httpx.Request | None:
        """GET the media URL, with the account's Basic auth (Twilio's media may be protected)
        only over https to Twilio's API or to the exact ``api_base`` origin (scheme, host, port)."""
        if not part.url or not part.url.startswith(("http://", "https://")):
            return None
        exact = frozenset({self.settings.api_base}) if self.settings.api_base else frozenset()
        if media_origin_allowed(part.url, frozenset({"api.twilio.com"}), exact,
                                http_loopback=True):
            return self.context.http.build_request("GET", part.url, headers={
                "authorization": self._basic_auth()})
        return self.context.http.build_request("GET", part.url)

    # -- outbound ----------------------------------------------------------------------------

    def _send_template(self) -> _SendTemplate:
        """What every send of this adapter shares, built once per webhook URL (the hub's
        public URL can change while it runs): the parsed Messages API URL (httpx parses a
        string URL on every request), the headers, the form's fixed fields."""
        callback = self.context.webhook_url
        cached = self._send_cache
        if cached is not None and cached[0] == callback:
            return cached[1]
        fixed = "&StatusCallback=" + quote_plus(callback)
        if self.settings.messaging_service_sid:
            fixed += "&MessagingServiceSid=" + quote_plus(self.settings.messaging_service_sid)
        elif self._own is not None:
            fixed += "&From=" + quote_plus(self._own.handle)
        template = _SendTemplate(
            url=httpx.URL(f"{self.api_base}/2010-04-01/Accounts/{self.settings.account_sid}"
                          "/Messages.json"),
            headers=httpx.Headers({"authorization": self._basic_auth(),
                                   "accept": "application/json",
                                   "content-type": "application/x-www-form-urlencoded"}),
            fixed=fixed)
        self._send_cache = (callback, template)
        return template

    def _basic_auth(self) -> str:
        s = self.settings
        user = s.api_key_sid or s.account_sid
        secret = s.api_key_secret.get_secret_value() if s.api_key_secret else s.auth_token.get_secret_value()
        return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")

    def _mms_to(self, handle: str) -> bool:
        if not self.settings.mms or not handle.startswith("+1"):
            return False
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse(handle))
        except phonenumbers.NumberParseException:
            return False
        return region in ("US", "CA")

    def _recipient(self, message: Message) -> str:
        """The number a send goes to."""
        if not message.recipients:
            raise RejectedError(f"{self.name}: the message has no recipient")
        return message.recipients[0].handle

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """POST each SMS body to the Messages API (form fields, Basic auth), asking for status
        callbacks at our webhook URL. Media ride as MMS to US/Canada numbers, else as links."""
        to = self._recipient(message)
        # a fresh send's parts are the very list outbound_metadata prepared at hub.send
        prepared = self._prepared.take(parts, to) or self._prepare(parts, to)
        media = prepared.media
        bodies: list[str | None] = list(prepared.bodies) or [None]
        sids: list[str] = []
        status = "sent"  # Twilio answered 201: it has the message, whatever its own status says
        template = self._send_template()
        progress = SendProgress(self.context, message.id) if len(bodies) > 1 else None
        for index, body in enumerate(bodies):
            earlier = await progress.accepted(index) if progress is not None else None
            if earlier:
                sids.extend(earlier)
                continue
            # the form urlencode() makes of To, StatusCallback, [MessagingServiceSid | From],
            # Body, MediaUrl…: the fields every send shares are encoded once per adapter
            form = "To=" + _quoted_number(to) + template.fixed
            if body is not None:
                form += "&Body=" + quote_plus(body)
            if index == 0 and media:
                form += "&" + urlencode([("MediaUrl", p.url or "") for p in media[:10]])
            response = await self.request("POST", template.url, content=form.encode("utf-8"),
                                          headers=template.headers)
            if response.status_code >= 400:
                raise self._error(response)
            try:
                answer = response.json()
                sids.append(str(answer["sid"]))
            except (ValueError, KeyError, TypeError):
                raise ProviderError(f"{self.name}: unexpected answer to a send",
                                    status_code=response.status_code) from None
            if progress is not None:
                await progress.record(index, sids[-1:])
        return SendResult(external_ids=sids, status=status, metadata=self._metadata(prepared))

    def _prepare(self, parts: Sequence[Part], to: str) -> OutboundSms:
        """The SMS bodies and MMS media ``parts`` become for ``to``: media ride as MMS to
        US/Canada numbers (when ``mms`` is on), as links in the text elsewhere."""
        parts = list(parts)
        media = [p for p in parts if isinstance(p, MediaPart)]
        if media and not self._mms_to(to):
            links = [f"{p.caption or p.filename or p.kind}: {p.url}" for p in media
                     if p.url and p.url.startswith(("http://", "https://"))]
            if len(links) < len(media):
                raise UnsupportedFeatureError(f"{self.name}: media without a public URL")
            parts = [p for p in parts if not isinstance(p, MediaPart)] + [TextPart(text=x) for x in links]
            media = []
        if any(not (p.url or "").startswith(("http://", "https://")) for p in media):
            raise UnsupportedFeatureError(f"{self.name}: MMS media needs a public URL")
        return prepare_outbound(parts, self.settings, self.name, max_chars=1600)

    @staticmethod
    def _metadata(prepared: OutboundSms) -> dict[str, Any]:
        metadata = prepared.metadata()
        if prepared.media:
            metadata["mms"] = True
        return metadata

    def outbound_metadata(self, parts: Sequence[Part], recipients: Sequence[Address]) -> dict[str, Any]:
        """The encoding and segment count of the SMS ``parts`` become (SPEC §10), known before
        the send; a text past ``max_segments`` with ``max_segments_action = "refuse"`` is
        refused here, before anything is queued."""
        if not recipients:
            return {}
        to = recipients[0].handle
        try:
            prepared = self._prepare(parts, to)
        except UnsupportedFeatureError:
            return {}  # the send itself gives up with this error, as it always did
        self._prepared.keep(parts, to, prepared)  # for send (the same parts, once)
        return self._metadata(prepared)

    async def reconcile(self, message: Message, parts: Sequence[Part],
                        attempted_at: datetime) -> SendResult | None:
        """Find a one-body send whose outcome was lost in Twilio's Messages list (see
        :func:`~omnichannel_sms._twilio_reconcile.reconcile`)."""
        from ._twilio_reconcile import reconcile

        return await reconcile(self, message, parts, attempted_at)

    def _error(self, response: httpx.Response) -> Exception:
        """The one place Twilio's API errors become typed errors."""
        code: int | None = None
        detail = None
        try:
            payload = response.json()
            if isinstance(payload, dict):
                raw = payload.get("code")
                code = int(raw) if raw is not None and str(raw).isdigit() else None
                detail = str(payload.get("message") or "")[:300] or None
        except ValueError:
            pass
        status = response.status_code
        what = f"{self.name}: HTTP {status}" + (f" (Twilio {code})" if code else "") + (
            f": {detail}" if detail else "")
        if code == 21610:
            return OptedOutError(f"{self.name}: the recipient replied STOP (Twilio 21610)")
        if code == 20429 or status == 429:
            return RateLimitedError(what, retry_after=parse_retry_after(response.headers.get("retry-after")),
                                    vendor_code=code, status_code=status)
        if code in _AUTH_CODES or status in (401, 403):
            return AuthenticationError(what, vendor_code=code, status_code=status)
        if code in _REJECTED_CODES:
            return RejectedError(what, vendor_code=code, status_code=status)
        return self.error_for_status(status, response, code, detail)


def _xml(text: str) -> str:
    return escape(_XML_BAD.sub("", text))


def signed_request(auth_token: str, url: str, form: Sequence[tuple[str, str]]) -> WebhookRequest:
    """A Twilio-signed form ``WebhookRequest`` (for tests, the demo and ``omnichannel simulate``)."""
    body = urlencode(list(form)).encode("ascii")
    return WebhookRequest("POST", url, {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio_signature(auth_token, url, list(form))}, body)

