"""``twilio-voice``: calls and voicemail through Twilio Programmable Voice.

One webhook URL (``public_url/webhooks/{key}``) serves every Twilio request of the channel, told
apart by their parameters:

- an incoming call (``CallSid``, no recording): answered with voicemail TwiML — a greeting and a
  ``<Record>`` whose ``recordingStatusCallback`` comes back here with the caller's numbers in
  the (signed) query string;
- a recording status callback (``RecordingStatus``): a message from the caller with the
  recording as an audio :class:`~omnichannel_sdk.MediaPart`, downloaded by the hub's media job
  with Basic auth;
- a recording callback without ``From``/``To`` (a ``recordingStatusCallback`` of the user's own
  TwiML without the numbers in its query): the call's numbers are fetched from Twilio's Calls
  API (``GET /2010-04-01/Accounts/{sid}/Calls/{CallSid}.json``) in the background, then the
  message is stored; if that lookup fails the request is dead-lettered (replayable);
- a transcription callback (``TranscriptionSid`` / ``TranscriptionStatus``): a
  :class:`~omnichannel_sdk.TranscriptPart` added to the recording's message when it is stored
  (``message.updated``), or a new message with audio and transcript when it is not.

Calls thread like SMS: the thread key is ``"<caller E.164>|<our number E.164>"``, the default
of ``twilio-sms``, and the contact is the caller's SMS contact too.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode
from xml.sax.saxutils import escape, quoteattr

import httpx
from pydantic import SecretStr

from omnichannel_sdk import (
    AdapterSettings,
    Address,
    Capabilities,
    ChannelAdapter,
    ChannelError,
    FollowUp,
    InboundMessage,
    MediaPart,
    Message,
    OptedOutError,
    ParseResult,
    Part,
    SendResult,
    SignatureError,
    TextPart,
    TranscriptPart,
    TranscriptSegment,
    UnparseablePayloadError,
    UnsupportedFeatureError,
    WebhookRequest,
    WebhookResponse,
    alternate_port_url,
    constant_time_equals,
    media_origin_allowed,
    normalize_phone,
    twilio_signature,
)

from ._attach import attach_transcript

__all__ = ["TwilioVoiceAdapter", "TwilioVoiceSettings", "twilio_signature"]

_EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
_HANGUP_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>'
_TWIML = "text/xml; charset=utf-8"
#: Twilio error codes meaning "this person does not want our calls or messages".
_OPTED_OUT_CODES = frozenset({"21610", "30004"})
_RECORDED_STEP = "recorded"
_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
_CALL_LOOKUP = "call-numbers"
"""Job: look a recording's numbers up in the Calls API, then store the recording."""
_ATTACH = "attach-transcription"
"""Job: put a transcription callback's text on its stored recording."""
_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

log = logging.getLogger("omnichannel_voice")


def _phone(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return normalize_phone(value)
    except ValueError:
        return value.strip() or None


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < 1e9 else None


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else None


class TwilioVoiceSettings(AdapterSettings):
    """Settings of a ``twilio-voice`` channel."""

    account_sid: str
    """The account (``AC…``) that owns the numbers; also the Basic-auth user."""
    auth_token: SecretStr
    """Signs Twilio's webhooks and authenticates API calls and recording downloads."""
    from_number: str | None = None
    """Our number, for calls we place (default: the number the customer called)."""
    voicemail: bool = True
    """Answer incoming calls with a greeting and record a voicemail."""
    greeting: str = "Please leave a message after the tone."
    """What callers hear before the beep."""
    max_length: int = 120
    """Longest voicemail in seconds."""
    transcribe: bool = False
    """Also ask Twilio to transcribe voicemails (paid, English, under 2 minutes); the
    plugin's own transcriber runs either way when audio has no transcript."""
    recording_format: str = "wav"
    """``wav`` or ``mp3``: the file type fetched from the recording URL."""
    media_hosts: frozenset[str] = frozenset()
    """More hosts recordings may be downloaded from (redirect targets)."""
    voice: str = "alice"
    """The ``<Say>`` voice of calls we place."""


class TwilioVoiceAdapter(ChannelAdapter[TwilioVoiceSettings]):
    """Twilio Programmable Voice: voicemail recordings and their transcripts as messages.

    Sends place a call that reads the message aloud (``<Say>``).
    """

    name: ClassVar[str] = "twilio-voice"
    channel: ClassVar[str] = "voice"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text_length=4000,
        text_overflow="truncate",
        media_hosts=frozenset({"api.twilio.com"}),
        rate_limit=1.0,
    )
    default_api_base: ClassVar[str | None] = "https://api.twilio.com"

    # -- inbound -------------------------------------------------------------------------------

    def own_address(self) -> Address | None:
        """Our number, when configured."""
        own = _phone(self.settings.from_number)
        return Address(channel=self.channel, handle=own) if own else None

    def verify(self, request: WebhookRequest) -> None:
        """``X-Twilio-Signature`` over the URL Twilio called and the sorted form parameters.

        The URL is tried as received and with the scheme's default port added (or removed):
        Twilio signs whichever form it called.
        """
        given = request.header("x-twilio-signature")
        if not given:
            raise SignatureError("missing X-Twilio-Signature", adapter=self.name)
        params = self._params(request)
        token = self.settings.auth_token.get_secret_value()
        if constant_time_equals(given, twilio_signature(token, request.url, params)):
            return
        other = alternate_port_url(request.url)
        if other and constant_time_equals(given, twilio_signature(token, other, params)):
            return
        raise SignatureError("bad X-Twilio-Signature", adapter=self.name)

    def _params(self, request: WebhookRequest) -> list[tuple[str, str]]:
        if request.method != "POST":
            return []
        try:
            return parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise SignatureError("form body is not UTF-8", adapter=self.name) from None

    def parse(self, request: WebhookRequest) -> ParseResult:
        """Recording and transcription callbacks → messages; a call → voicemail TwiML."""
        form = {**request.query, **request.form()} if request.method == "POST" else dict(request.query)
        account = form.get("AccountSid")
        if not form.get("CallSid") and not form.get("RecordingSid"):
            raise UnparseablePayloadError("neither CallSid nor RecordingSid", adapter=self.name)
        if account and account != self.settings.account_sid:
            raise UnparseablePayloadError("callback of another account", adapter=self.name)
        try:
            return self._parse_form(form, request)
        except ValueError as exc:  # pydantic's ValidationError too: a number that is none
            raise UnparseablePayloadError(f"bad field: {str(exc).splitlines()[-1][:200]}",
                                          adapter=self.name) from None

    def _parse_form(self, form: dict[str, str], request: WebhookRequest) -> ParseResult:
        if form.get("TranscriptionSid") or form.get("TranscriptionStatus"):
            return self._transcription(form)
        if form.get("RecordingStatus") is not None:
            return self._recording(form, request)
        if form.get("RecordingSid"):
            if request.query.get("step") == _RECORDED_STEP:  # our <Record action>: hang up
                return ParseResult(response=WebhookResponse(200, _HANGUP_TWIML, _TWIML))
            return self._recording(form, request)  # a <Record action> of the user's own TwiML
        return ParseResult(response=self._answer_call(form))

    def acknowledge(self, request: WebhookRequest, result: ParseResult | None) -> WebhookResponse:
        """Empty TwiML."""
        return WebhookResponse(200, _EMPTY_TWIML, _TWIML)

    def _numbers(self, form: dict[str, str]) -> tuple[str, str]:
        caller = _phone(form.get("From") or form.get("Caller"))
        ours = _phone(form.get("To") or form.get("Called")) or _phone(self.settings.from_number)
        if not caller:
            raise UnparseablePayloadError(
                "the caller's number is unknown: point recordingStatusCallback at the channel "
                "webhook with From and To in its query string, or let the adapter answer the call",
                adapter=self.name)
        return caller, ours or ""

    def _recording_message(self, form: dict[str, str], extra: list[Part]) -> InboundMessage:
        caller, ours = self._numbers(form)
        recording_sid = form.get("RecordingSid") or ""
        url = form.get("RecordingUrl") or ""
        if not recording_sid or not url.startswith(("https://", "http://")):
            raise UnparseablePayloadError("recording without RecordingSid or RecordingUrl",
                                          adapter=self.name)
        fmt = "mp3" if self.settings.recording_format == "mp3" else "wav"
        if not url.rsplit("/", 1)[-1].count("."):
            url = f"{url}.{fmt}"
        media = MediaPart(kind="audio", url=url, content_type="audio/mpeg" if fmt == "mp3"
                          else "audio/wav", filename=f"{recording_sid}.{fmt}",
                          duration=_float(form.get("RecordingDuration")))
        metadata = {k: v for k, v in {
            "call_sid": form.get("CallSid"), "recording_sid": recording_sid,
            "recording_channels": form.get("RecordingChannels"),
            "recording_source": form.get("RecordingSource"),
            "direction": form.get("Direction"), "caller_name": form.get("CallerName"),
        }.items() if v}
        sender = Address(channel=self.channel, handle=caller,
                         display_name=form.get("CallerName") or None)
        recipients = [Address(channel=self.channel, handle=ours)] if ours else []
        return InboundMessage(
            external_id=recording_sid, sender=sender, recipients=recipients,
            parts=[media, *extra], created_at=_when(form.get("RecordingStartTime")),
            thread_key=f"{caller}|{ours}",
            contact_hints=[Address(channel="sms", handle=caller)],
            metadata=metadata)

    def _recording(self, form: dict[str, str], request: WebhookRequest) -> ParseResult:
        status = form.get("RecordingStatus")
        if status not in (None, "", "completed"):
            return ParseResult()  # in-progress, absent (silence) or failed: nothing to keep
        if not _phone(form.get("From") or form.get("Caller")):
            call_sid = form.get("CallSid") or ""
            if self.context.services.running and _CALL_SID.fullmatch(call_sid):
                # the user's own recordingStatusCallback without the numbers: ask the Calls API
                # in a durable job (stored before Twilio is answered)
                return ParseResult(jobs=[FollowUp(_CALL_LOOKUP, {"form": form, "call_sid": call_sid})])
        return ParseResult(items=[self._recording_message(form, [])])

    #: Pauses before the 2nd and 3rd Calls API attempt after a retryable failure (seconds).
    call_lookup_delays: ClassVar[tuple[float, ...]] = (1.0, 4.0)

    async def call_numbers(self, call_sid: str) -> dict[str, str]:
        """``From`` / ``To`` of a call from the Calls API, as a recording callback would carry
        them: the customer as ``From`` (the callee of an outbound call), our number as ``To``."""
        if not _CALL_SID.fullmatch(call_sid):
            raise UnparseablePayloadError("odd CallSid", adapter=self.name)
        url = f"{self.api_base}/2010-04-01/Accounts/{self.settings.account_sid}/Calls/{call_sid}.json"
        for delay in (*self.call_lookup_delays, None):
            try:
                response = await self.request("GET", url, auth=self._auth())
                self.raise_for_status(response)
                break
            except ChannelError as exc:
                if delay is None or not exc.retryable:
                    raise
                await asyncio.sleep(delay)
        try:
            call = response.json()
        except ValueError:
            call = None
        if not isinstance(call, dict):
            raise UnparseablePayloadError("the Calls API answer is not an object", adapter=self.name)
        direction = str(call.get("direction") or "")
        customer, ours = ((call.get("to"), call.get("from")) if direction.startswith("outbound")
                          else (call.get("from"), call.get("to")))
        if not isinstance(customer, str) or not _phone(customer):
            raise UnparseablePayloadError("the call has no caller number", adapter=self.name)
        numbers = {"From": customer, "To": ours if isinstance(ours, str) else ""}
        if direction:
            numbers["Direction"] = direction
        if isinstance(call.get("caller_name"), str) and call["caller_name"]:
            numbers["CallerName"] = call["caller_name"]
        return numbers

    async def run_job(self, task: str, data: Mapping[str, Any]) -> None:
        """The durable follow-ups of ``parse``: a call's numbers for a recording callback that
        lacks them, and a transcription to attach to its recording."""
        if task == _CALL_LOOKUP:
            await self._complete_from_call(dict(data["form"]), str(data["call_sid"]))
        elif task == _ATTACH:
            await self._attach(InboundMessage.model_validate(data["message"]),
                               TranscriptPart.model_validate(data["transcript"]))
        else:
            await super().run_job(task, data)

    async def _complete_from_call(self, form: dict[str, str], call_sid: str) -> None:
        # a failed lookup raises: retried while retryable, then dead-lettered with the request
        try:
            numbers = await self.call_numbers(call_sid)
            message = self._recording_message({**form, **numbers}, [])
        except ChannelError as exc:
            if exc.retryable:
                raise
            raise UnparseablePayloadError(f"call lookup for {call_sid} failed: {type(exc).__name__}: "
                                          f"{exc}", adapter=self.name) from exc
        except (OptedOutError, UnparseablePayloadError) as exc:
            why = exc.detail if isinstance(exc, UnparseablePayloadError) else f"{type(exc).__name__}: {exc}"
            raise UnparseablePayloadError(f"call lookup for {call_sid} failed: {why}",
                                          adapter=self.name) from exc
        await self.context.services.ingest([message])

    def _transcription(self, form: dict[str, str]) -> ParseResult:
        if form.get("TranscriptionStatus") not in (None, "", "completed"):
            return ParseResult()
        text = (form.get("TranscriptionText") or "").strip()
        duration = _float(form.get("RecordingDuration")) or 0.0
        transcript = TranscriptPart(
            segments=[TranscriptSegment(speaker="caller", start=0, end=duration, text=text)]
            if text else [], language="en")
        message = self._recording_message(form, [transcript])
        if form.get("TranscriptionSid"):
            message = message.model_copy(update={"metadata": {
                **message.metadata, "transcription_sid": form["TranscriptionSid"]}})
        if not self.context.services.running:  # `omnichannel normalize`: the whole message
            return ParseResult(items=[message])
        return ParseResult(jobs=[FollowUp(_ATTACH, {
            "message": message.model_dump(mode="json"),
            "transcript": transcript.model_dump(mode="json")})])

    async def _attach(self, message: InboundMessage, transcript: TranscriptPart) -> None:
        services = self.context.services
        key = self.context.key
        metadata = {"source": "twilio",
                    "transcription_sid": message.metadata.get("transcription_sid")}
        for _ in range(2):
            stored = await services.store.find_message_by_external(key, message.external_id)
            if stored is None and message.metadata.get("call_sid"):
                stored = await services.store.find_message_by_external(key, message.metadata["call_sid"])
            if stored is not None:
                await attach_transcript(services, stored.id, transcript, replace=True,
                                        metadata={k: v for k, v in metadata.items() if v})
                return
            if await services.ingest([message]):  # the recording callback never came: store all
                return

    def _answer_call(self, form: dict[str, str]) -> WebhookResponse:
        if not self.settings.voicemail or form.get("CallStatus") not in (None, "", "ringing",
                                                                        "in-progress"):
            return WebhookResponse(200, _EMPTY_TWIML, _TWIML)
        base = self.context.webhook_url
        numbers = {k: form[k] for k in ("From", "To") if form.get(k)}
        status_url = f"{base}?{urlencode(numbers)}" if numbers else base
        attrs = {
            "action": f"{base}?step={_RECORDED_STEP}",
            "maxLength": str(max(1, self.settings.max_length)),
            "playBeep": "true",
            "recordingStatusCallback": status_url,
            "recordingStatusCallbackEvent": "completed",
        }
        if self.settings.transcribe:
            attrs.update(transcribe="true", transcribeCallback=status_url)
        record = "<Record " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + "/>"
        twiml = ('<?xml version="1.0" encoding="UTF-8"?><Response>'
                 f"<Say>{escape(self.settings.greeting)}</Say>{record}</Response>")
        return WebhookResponse(200, twiml, _TWIML)

    # -- media -----------------------------------------------------------------------------------

    def _auth(self) -> tuple[str, str]:
        return self.settings.account_sid, self.settings.auth_token.get_secret_value()

    async def media_request(self, part: MediaPart) -> httpx.Request | None:
        """GET the recording; Basic auth only over HTTPS to Twilio's API host, or to the
        configured ``api_base`` host (a test or demo stub)."""
        if not part.url or not part.url.startswith(("https://", "http://")):
            return None
        request = self.context.http.build_request("GET", part.url)
        exact = frozenset({self.settings.api_base}) if self.settings.api_base else frozenset()
        # exact origins only: a recording URL on another port or over http gets no credentials
        if media_origin_allowed(part.url, frozenset({"api.twilio.com"}), exact, http_loopback=True):
            user, password = self._auth()
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            request.headers["authorization"] = f"Basic {token}"
        return request

    # -- outbound --------------------------------------------------------------------------------

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """Place a call that reads the text parts aloud (``<Say>``)."""
        texts = [p.text for p in parts if isinstance(p, TextPart) and p.text.strip()]
        if not texts:
            raise UnsupportedFeatureError(f"{self.name} can only read text aloud")
        if not message.recipients:
            raise UnsupportedFeatureError(f"{self.name}: message has no recipient")
        to = message.recipients[0].handle
        sender = _phone(self.settings.from_number) or message.sender.handle
        say = "".join(f"<Say voice={quoteattr(self.settings.voice)}>{escape(t)}</Say>" for t in texts)
        twiml = f'<?xml version="1.0" encoding="UTF-8"?><Response>{say}</Response>'
        url = f"{self.api_base}/2010-04-01/Accounts/{self.settings.account_sid}/Calls.json"
        response = await self.request("POST", url, data={"To": to, "From": sender, "Twiml": twiml},
                                      auth=self._auth())
        self.raise_for_status(response)
        try:
            sid = str(response.json()["sid"])
        except (ValueError, KeyError, TypeError):
            raise self.error_for_status(502, response, None, "no call sid in the answer") from None
        return SendResult(external_ids=[sid], status="sent", metadata={"call_sid": sid})

    def raise_for_status(self, response: httpx.Response) -> None:
        """Twilio's ``{"code", "message"}`` errors → the typed errors (the one mapping place)."""
        if response.status_code < 400:
            return
        code: Any = None
        detail = None
        try:
            body = response.json()
            if isinstance(body, dict):
                code, detail = body.get("code"), body.get("message")
        except ValueError:
            pass
        if code is not None and str(code) in _OPTED_OUT_CODES:
            raise OptedOutError(f"{self.name}: the recipient opted out (Twilio {code})")
        error: ChannelError = self.error_for_status(response.status_code, response, code,
                                                    str(detail)[:200] if detail else None)
        raise error
