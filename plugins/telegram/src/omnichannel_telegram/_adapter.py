"""The ``telegram`` adapter: a bot's webhook updates in, Bot API method calls out.

Telegram does not sign bodies: ``setWebhook(secret_token=…)`` makes it send that token in
``X-Telegram-Bot-Api-Secret-Token`` with every update, and that is what :meth:`verify` checks.
Every Bot API URL holds the bot token (``/bot<token>/<method>``, ``/file/bot<token>/<path>``),
so URLs are built only when a call is made, never stored, and httpx's request log lines are
redacted (the core's :func:`omnichannel_sdk.install_redaction`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import httpx
import orjson
from pydantic import SecretStr, field_validator

from omnichannel_sdk import (
    Action,
    AdapterContext,
    AdapterSettings,
    Address,
    AuthenticationError,
    Capabilities,
    ChannelAdapter,
    ChannelError,
    ChannelSignal,
    DetachedServices,
    EventPart,
    InboundMessage,
    MediaError,
    MediaPart,
    Message,
    OptedOutError,
    ParseResult,
    Part,
    ProviderError,
    RateLimitedError,
    RejectedError,
    SendResult,
    SignatureError,
    WebhookRequest,
    constant_time_equals,
    install_redaction,
    parse_retry_after,
)

from ._inbound import FILE_SCHEME, parse_update
from ._outbound import Call, build_calls, callback_data

__all__ = ["SECRET_HEADER", "ChatAction", "TelegramAdapter", "TelegramSettings", "api_error"]

SECRET_HEADER = "x-telegram-bot-api-secret-token"
"""The header Telegram sends the webhook's ``secret_token`` in."""

ChatAction = Literal["typing", "upload_photo", "upload_document", "record_voice", "upload_voice"]
_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,100}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_ACTION_TTL = 90 * 86400
_SENT_TTL = 7 * 86400
_OPTED_OUT = ("blocked", "kicked", "deactivated")
_TYPING_EVERY = 4.0  # seconds: Telegram shows a chat action for about five
log = logging.getLogger("omnichannel_telegram")


class TelegramSettings(AdapterSettings):
    """Settings of a Telegram bot channel (``[channels.<key>]``)."""

    bot_token: SecretStr
    """The token BotFather gave the bot (``123456789:AA…``)."""
    secret_token: SecretStr
    """The ``secret_token`` given to ``setWebhook``: 1 to 256 of ``A-Z a-z 0-9 _ -``."""

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not _TOKEN.match(value.get_secret_value()):
            raise ValueError("must look like BotFather's token: <bot id>:<secret>")
        return value

    @field_validator("secret_token")
    @classmethod
    def _secret_shape(cls, value: SecretStr) -> SecretStr:
        if not _SECRET.match(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value


def api_error(adapter: str, response: httpx.Response) -> ChannelError | OptedOutError:
    """The typed error of a failed Bot API answer (``{"ok": false, "error_code",
    "description", "parameters"}``) — the one place Telegram errors are mapped:
    429 → :class:`RateLimitedError` (``parameters.retry_after``); 403 blocked / kicked /
    deactivated → :class:`OptedOutError`; 401, 404 (bad token) → :class:`AuthenticationError`;
    5xx → retryable :class:`ProviderError`; anything else → :class:`RejectedError`."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    error: dict[str, Any] = body if isinstance(body, dict) else {}
    raw_code = error.get("error_code")
    code: int = raw_code if isinstance(raw_code, int) else response.status_code
    detail = str(error.get("description") or "")[:200]
    raw_params = error.get("parameters")
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    what = f"{adapter}: HTTP {response.status_code}" + (f": {detail}" if detail else "")
    kwargs: dict[str, Any] = {"vendor_code": str(code), "status_code": response.status_code}
    if code == 429 or response.status_code == 429:
        retry = params.get("retry_after")
        retry_after = float(retry) if isinstance(retry, int | float) and not isinstance(retry, bool) \
            else parse_retry_after(response.headers.get("retry-after"))
        return RateLimitedError(what, retry_after=retry_after, **kwargs)
    if code == 403 and any(word in detail.lower() for word in _OPTED_OUT):
        return OptedOutError(what)
    if code in (401, 404):
        return AuthenticationError(what, **kwargs)
    if code >= 500 or response.status_code >= 500:
        return ProviderError(what, retryable=True, **kwargs)
    if "migrate_to_chat_id" in params:
        what += f" (the group is now supergroup {params['migrate_to_chat_id']})"
    return RejectedError(what, **kwargs)


class TelegramAdapter(ChannelAdapter[TelegramSettings]):
    """A Telegram bot: private chats and groups, through the Bot API."""

    name: ClassVar[str] = "telegram"
    channel: ClassVar[str] = "telegram"
    default_api_base: ClassVar[str | None] = "https://api.telegram.org"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text_length=4096, text_overflow="split", formats=frozenset({"plain", "markdown"}),
        media_kinds=frozenset({"image", "audio", "video", "file", "sticker"}),
        max_media_size=50 * 1024 * 1024, buttons=True, max_buttons=10, locations=True,
        typing=True, rate_limit=25.0, media_hosts=frozenset({"api.telegram.org"}))
    secret_headers: frozenset[str] = ChannelAdapter.secret_headers | {SECRET_HEADER}
    """The secret token Telegram echoes is a shared secret: never stored or logged."""

    def __init__(self, settings: TelegramSettings, context: AdapterContext) -> None:
        super().__init__(settings, context)
        install_redaction()
        # the bot's id is the first half of its token: built once, parse uses it per update
        # (``omnichannel normalize`` builds settings without secrets: then there is none)
        token = getattr(self.settings, "bot_token", None)
        self._own = Address(channel=self.channel, handle=token.get_secret_value().split(":")[0]) \
            if isinstance(token, SecretStr) else None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Inside a hub: pass agents' typing signals on to the customer (``sendChatAction``)."""
        if not isinstance(self.context.services, DetachedServices):
            self._relay: asyncio.Task[None] | None = asyncio.create_task(
                self._relay_typing(), name=f"telegram-typing-{self.context.key}")

    async def stop(self) -> None:
        """Stop passing typing signals on."""
        relay = getattr(self, "_relay", None)
        if relay is not None:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay

    async def _relay_typing(self) -> None:
        """``hub.signal(key, conversation, "typing", {"from": "agent", "on": True})`` becomes
        one ``sendChatAction`` per conversation every few seconds at most. On a shared bus every
        process sees the signal, so with N gateway processes the customer's chat gets N calls."""
        services, last = self.context.services, dict[str, float]()
        async for event in services.events():
            if not (isinstance(event, ChannelSignal) and event.channel_key == self.context.key
                    and event.name == "typing" and event.data.get("from") == "agent"
                    and event.data.get("on", True)):
                continue
            now = time.monotonic()
            if now - last.get(event.conversation_id, -_TYPING_EVERY) < _TYPING_EVERY:
                continue
            last[event.conversation_id] = now
            try:
                conversation = await services.store.get_conversation(event.conversation_id)
                own = self.own_address()
                customer = next((a for a in conversation.participants if a != own), None) \
                    if conversation else None
                if customer is not None:
                    await self.chat_action(customer)
            except Exception as exc:  # noqa: BLE001 - one failed indicator must not stop the relay
                log.info("%s: typing not shown in %s: %s", self.context.key, event.conversation_id, exc)

    # -- inbound ---------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """The ``X-Telegram-Bot-Api-Secret-Token`` header must equal ``secret_token``
        (compared in constant time)."""
        given = request.header(SECRET_HEADER)
        if not given or not constant_time_equals(given, self.settings.secret_token.get_secret_value()):
            raise SignatureError("missing or wrong X-Telegram-Bot-Api-Secret-Token", adapter=self.name)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """One ``Update``: a message, an edit, a button press or a block / unblock."""
        return parse_update(request.json(), adapter=self.name, channel=self.channel,
                            own=self.own_address())

    async def complete(self, request: WebhookRequest, result: ParseResult) -> ParseResult:
        """An edit changes the stored message (when we have it) instead of adding one; a
        button press gets back the whole action that was offered (kept in the kv store)."""
        kept: list[InboundMessage | Any] = []
        for item in result.items:
            if isinstance(item, InboundMessage) and item.metadata.get("edited"):
                if await self._apply_edit(item):
                    continue
            elif isinstance(item, InboundMessage) and "callback_query_id" in item.metadata:
                item = await self._resolve_action(item)
            kept.append(item)
        result.items = kept
        return result

    async def _apply_edit(self, edit: InboundMessage) -> bool:
        services = self.context.services
        stored = await services.store.find_message_by_external(self.context.key, edit.external_id)
        if stored is None:
            return False  # never seen: stored as it is now
        when = edit.metadata.get("edit_date") or 0

        def change(current: Message) -> Message | None:
            if (current.metadata.get("edit_date") or 0) > when:
                return None  # a newer edit is already applied
            old = {p.url: p for p in current.parts if isinstance(p, MediaPart) and p.blob_key}
            parts = [old[p.url].model_copy(update={"caption": p.caption})
                     if isinstance(p, MediaPart) and p.url in old else p for p in edit.parts]
            edits = int(current.metadata.get("edits") or 0) + (
                0 if current.metadata.get("edit_date") == when else 1)
            return current.model_copy(update={"parts": parts, "metadata": {
                **current.metadata, "edit_date": when, "edits": edits}})

        await services.modify_message(stored.id, change)
        return True

    async def _resolve_action(self, item: InboundMessage) -> InboundMessage:
        data = next((p.data.get("callback_data") for p in item.parts if isinstance(p, EventPart)), None)
        found = await self.context.kv.kv_get(self._action_key(str(data))) if data else None
        if found is None:
            return item
        action = Action.model_validate_json(found)
        part = EventPart(name="action", data={**action.model_dump(), "callback_data": data})
        return item.model_copy(update={"parts": [part]})

    def own_address(self) -> Address | None:
        """The bot itself (its id is the first half of the token)."""
        return self._own

    async def media_request(self, part: MediaPart) -> httpx.Request | None:
        """``getFile`` for the file's path, then the download URL (both hold the token, so
        they are built here, at download time). Files over 20 MB cannot be fetched by bots."""
        if not part.url or not part.url.startswith(FILE_SCHEME):
            return await super().media_request(part)
        result = await self._call("getFile", {"file_id": part.url[len(FILE_SCHEME):]})
        path = result.get("file_path") if isinstance(result, dict) else None
        if not isinstance(path, str) or not path or ".." in path:
            raise MediaError(f"{self.name}: getFile gave no file_path (larger than 20 MB?)")
        token = self.settings.bot_token.get_secret_value()
        return self.context.http.build_request("GET", f"{self.api_base}/file/bot{token}/{path}")

    # -- outbound --------------------------------------------------------------------------

    def _action_key(self, data: str) -> str:
        return f"{self.name}:action:{self.context.key}:{data}"

    async def _call(self, method: str, payload: dict[str, Any], files: dict[str, Any] | None = None) -> Any:
        """One Bot API call; its ``result``, or a typed error (the URL, with the token, never
        appears in an error)."""
        url = f"{self.api_base}/bot{self.settings.bot_token.get_secret_value()}/{method}"
        if files:
            form = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in payload.items()}
            response = await self.request("POST", url, data=form, files=files)
        else:
            response = await self.request("POST", url, json=payload)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict) or body.get("ok") is not True:
            if response.status_code < 400 and not isinstance(body, dict):
                raise ProviderError(f"{self.name}: {method} answered without JSON", retryable=True,
                                    status_code=response.status_code)
            raise api_error(self.name, response)
        return body.get("result")

    async def _perform(self, chat_id: str, call: Call) -> str:
        for action in call.actions:  # the button press maps back to the whole action
            await self.context.kv.kv_set(self._action_key(callback_data(action)),
                                         action.model_dump_json(), ttl=_ACTION_TTL)
        files = None
        if call.upload is not None:
            blobs = self.context.blobs
            if blobs is None or not call.upload.blob_key:
                raise MediaError(f"{self.name}: no blob store to upload from")
            data = await blobs.get(call.upload.blob_key)
            files = {call.param: (call.upload.filename or call.param, data,
                                  call.upload.content_type or "application/octet-stream")}
        result = await self._call(call.method, {"chat_id": chat_id, **call.payload}, files)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        if not isinstance(message_id, int):
            raise ProviderError(f"{self.name}: {call.method} answered without a message_id",
                                retryable=False, status_code=200)
        return f"{chat_id}:{message_id}"

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """One method call per piece (text, media, location, keyboard). Pieces accepted in an
        earlier try are not sent again (their ids are kept in the kv store)."""
        if not message.recipients:
            raise RejectedError(f"{self.name}: message {message.id} has no recipient")
        chat_id = message.recipients[0].handle
        ids: list[str] = []
        for index, call in enumerate(build_calls(parts)):
            key = f"{self.name}:sent:{self.context.key}:{message.id}:{index}"
            done = await self.context.kv.kv_get(key)
            if done is None:
                done = await self._perform(chat_id, call)
                await self.context.kv.kv_set(key, done, ttl=_SENT_TTL)
            ids.append(done)
        return SendResult(external_ids=ids, status="sent")

    async def chat_action(self, recipient: Address | str, action: ChatAction = "typing") -> None:
        """Show "typing…" (or another chat action) for about five seconds (``sendChatAction``)."""
        chat_id = recipient.handle if isinstance(recipient, Address) else recipient
        await self._call("sendChatAction", {"chat_id": chat_id, "action": action})

    def raise_for_status(self, response: httpx.Response) -> None:
        """Map a failed Bot API answer to the typed errors (see :func:`api_error`)."""
        if response.status_code >= 400:
            raise api_error(self.name, response)

