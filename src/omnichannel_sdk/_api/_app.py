"""The service API (SPEC §11) as a Starlette app, and the table of its operations that both the
routes and the OpenAPI document are made from."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._models import Contact, Conversation, Message
from .._service_settings import ApiSettings
from .._timeline import ContactTimeline
from ._pages import conversations_page, dead_letters_page
from ._problems import ApiProblem, from_exception, from_validation, problem_response
from ._schemas import (
    ContactMergePage,
    ConversationPage,
    DeadLetterPage,
    DecisionRequest,
    FeedEvent,
    FieldProblem,
    MergeProposalPage,
    MergeRequest,
    MessagePage,
    ReplayRequest,
    ReplayResult,
    SendRequest,
    UnmergeResult,
)

if TYPE_CHECKING:
    from .._hub import Hub

__all__ = ["OPERATIONS", "Operation", "Param", "ServiceApi"]

PREFIX = "/api/v1"
MAX_BODY = 1024 * 1024

Handler = Callable[["ServiceApi", Request], Awaitable[Response]]


@dataclass(frozen=True)
class Param:
    """A documented path, query or header parameter."""

    name: str
    where: str  # path | query | header
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """One route of the API and what the OpenAPI document says about it."""

    method: str
    path: str
    id: str
    summary: str
    handler: Handler
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    body_required: bool = True
    status: int = 200
    answer: type[BaseModel] | None = None
    media_type: str = "application/json"
    problems: tuple[int, ...] = (401, 422)
    auth: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def json_response(model: BaseModel, status: int = 200) -> Response:
    """A model as JSON."""
    return Response(model.__pydantic_serializer__.to_json(model), status, media_type="application/json")


def _invalid(name: str, message: str) -> ApiProblem:
    return ApiProblem(422, "invalid", "the request is invalid", [FieldProblem(field=name, message=message)])


def _limit(api: ServiceApi, request: Request, default: int = 50) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return min(default, api.settings.max_page)
    if not raw.isdigit() or not 1 <= int(raw) <= api.settings.max_page:
        raise _invalid("limit", f"an integer from 1 to {api.settings.max_page}")
    return int(raw)


def _text_param(request: Request, name: str, *, max_length: int = 200) -> str | None:
    value = request.query_params.get(name)
    if value is not None and (not value or len(value) > max_length or "\x00" in value):
        raise _invalid(name, f"1 to {max_length} characters")
    return value


async def _json_body(request: Request, model: type[BaseModel], *, required: bool = True) -> Any:
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > MAX_BODY:
        raise ApiProblem(413, "too_large", f"bodies are {MAX_BODY} bytes at most")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY:
            raise ApiProblem(413, "too_large", f"bodies are {MAX_BODY} bytes at most")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip() and not required:
        return model()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _invalid("body", "not JSON (UTF-8)") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc) from None


# -- handlers -----------------------------------------------------------------------------------


async def _openapi(api: ServiceApi, request: Request) -> Response:
    from ._openapi import openapi_document

    return Response(orjson.dumps(openapi_document()), media_type="application/json")


async def _list_conversations(api: ServiceApi, request: Request) -> Response:
    status = _text_param(request, "status")
    if status is not None and status not in ("open", "closed"):
        raise _invalid("status", "open or closed")
    items, cursor = await conversations_page(
        api.hub.store, channel_key=_text_param(request, "channel_key"), status=status,
        contact_id=_text_param(request, "contact_id"), limit=_limit(api, request),
        cursor=_text_param(request, "cursor", max_length=400))
    return json_response(ConversationPage(items=items, next=cursor))


async def _conversation(api: ServiceApi, request: Request) -> Conversation:
    found = await api.hub.store.get_conversation(request.path_params["id"])
    if found is None:
        raise ApiProblem(404, "not_found", "no such conversation")
    return found


async def _get_conversation(api: ServiceApi, request: Request) -> Response:
    return json_response(await _conversation(api, request))


async def _list_messages(api: ServiceApi, request: Request) -> Response:
    conversation = await _conversation(api, request)
    limit = _limit(api, request)
    after = _text_param(request, "after")
    found = await api.hub.store.list_messages(conversation.id, limit=limit + 1, after=after)
    items = found[:limit]
    return json_response(MessagePage(items=items, next=items[-1].id if len(found) > limit else None))


async def _send(api: ServiceApi, request: Request) -> Response:
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= 255 and key.isprintable()):
        raise _invalid("Idempotency-Key", "1 to 255 printable characters")
    body: SendRequest = await _json_body(request, SendRequest)
    if not body.text and not body.parts:
        raise _invalid("text", "give text or parts")
    message = await api.hub.send(
        request.path_params["id"], body.text, parts=body.parts, author=body.author,
        reply_to=body.reply_to, subject=body.subject, metadata=body.metadata,
        idempotency_key=f"api:{key}" if key else None)
    return json_response(message, 202)


async def _get_contact(api: ServiceApi, request: Request) -> Response:
    found = await api.hub.store.get_contact(request.path_params["id"])
    if found is None:
        raise ApiProblem(404, "not_found", "no such contact")
    return json_response(found)


async def _contact_timeline(api: ServiceApi, request: Request) -> Response:
    timeline = await api.hub.contact_timeline(
        request.path_params["id"], limit=_limit(api, request),
        before=_text_param(request, "before"))
    return json_response(timeline)


async def _contact_merges(api: ServiceApi, request: Request) -> Response:
    found = await api.hub.merges(request.path_params["id"])
    if not found and await api.hub.store.get_contact(request.path_params["id"]) is None:
        raise ApiProblem(404, "not_found", "no such contact")  # an absorbed one has its merges
    return json_response(ContactMergePage(items=found))


async def _merge_contact(api: ServiceApi, request: Request) -> Response:
    body: MergeRequest = await _json_body(request, MergeRequest)
    return json_response(await api.hub.merge_contacts(request.path_params["id"], body.other_id,
                                                      by=body.by))


async def _list_merge_proposals(api: ServiceApi, request: Request) -> Response:
    status = _text_param(request, "status") or "open"
    if status not in ("open", "confirmed", "rejected", "all"):
        raise _invalid("status", "open, confirmed, rejected or all")
    found = await api.hub.merge_proposals(None if status == "all" else status)  # type: ignore[arg-type]
    return json_response(MergeProposalPage(items=found))


async def _confirm_merge(api: ServiceApi, request: Request) -> Response:
    body: DecisionRequest = await _json_body(request, DecisionRequest, required=False)
    return json_response(await api.hub.confirm_merge(request.path_params["id"], by=body.by))


async def _reject_merge(api: ServiceApi, request: Request) -> Response:
    body: DecisionRequest = await _json_body(request, DecisionRequest, required=False)
    await api.hub.reject_merge(request.path_params["id"], by=body.by)
    return Response(status_code=204)


async def _unmerge(api: ServiceApi, request: Request) -> Response:
    body: DecisionRequest = await _json_body(request, DecisionRequest, required=False)
    kept, restored = await api.hub.unmerge(request.path_params["id"], by=body.by)
    return json_response(UnmergeResult(contact=kept, restored=restored))


async def _list_dead_letters(api: ServiceApi, request: Request) -> Response:
    items, cursor = await dead_letters_page(api.hub.store, limit=_limit(api, request),
                                            after=_text_param(request, "after"))
    return json_response(DeadLetterPage(items=items, next=cursor))


async def _replay(api: ServiceApi, request: Request) -> Response:
    body: ReplayRequest = await _json_body(request, ReplayRequest, required=False)
    report = await api.hub.replay(body.ids)
    return json_response(ReplayResult(replayed=report.replayed, failed=report.failed))


async def _events(api: ServiceApi, request: Request) -> Response:
    from ._sse import event_stream

    return await event_stream(api, request)


_ID = Param("id", "path", {"type": "string"}, "The id.", required=True)
_LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000},
               "Items per page (50 by default; at most `[api] max_page`).")

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", f"{PREFIX}/openapi.json", "openapi", "This OpenAPI 3.1 document.", _openapi,
              auth=False, problems=(), extra={"content": {"type": "object"}}),
    Operation("GET", f"{PREFIX}/conversations", "listConversations",
              "Conversations, most recently active first.", _list_conversations,
              params=(Param("channel_key", "query", {"type": "string"}, "Only this channel."),
                      Param("status", "query", {"type": "string", "enum": ["open", "closed"]}, "Only these."),
                      Param("contact_id", "query", {"type": "string"}, "Only this contact's."),
                      _LIMIT, Param("cursor", "query", {"type": "string"}, "`next` of the page before.")),
              answer=ConversationPage),
    Operation("GET", f"{PREFIX}/conversations/{{id}}", "getConversation", "One conversation.",
              _get_conversation, params=(_ID,), answer=Conversation, problems=(401, 404)),
    Operation("GET", f"{PREFIX}/conversations/{{id}}/messages", "listMessages",
              "A conversation's messages, oldest first.", _list_messages,
              params=(_ID, Param("after", "query", {"type": "string"}, "`next` of the page before."),
                      _LIMIT),
              answer=MessagePage, problems=(401, 404, 422)),
    Operation("POST", f"{PREFIX}/conversations/{{id}}/messages", "sendMessage",
              "Queue a reply; delivery follows from the durable outbox.", _send,
              params=(_ID, Param("Idempotency-Key", "header", {"type": "string", "maxLength": 255},
                                 "A repeated key returns the message queued the first time.")),
              body=SendRequest, status=202, answer=Message, problems=(401, 404, 409, 413, 422)),
    Operation("GET", f"{PREFIX}/contacts/{{id}}", "getContact", "One contact.", _get_contact,
              params=(_ID,), answer=Contact, problems=(401, 404)),
    Operation("GET", f"{PREFIX}/contacts/{{id}}/timeline", "getContactTimeline",
              "The customer's whole story: the contact, its addresses, profile and conversations, "
              "and their messages on every channel by time (oldest first).", _contact_timeline,
              params=(_ID, _LIMIT, Param("before", "query", {"type": "string"},
                                         "`next_before` of the page before (older messages).")),
              answer=ContactTimeline, problems=(401, 404, 422)),
    Operation("GET", f"{PREFIX}/contacts/{{id}}/merges", "listContactMerges",
              "The contact's merge records, oldest first, undone ones included.", _contact_merges,
              params=(_ID,), answer=ContactMergePage, problems=(401, 404)),
    Operation("POST", f"{PREFIX}/contacts/{{id}}/merge", "mergeContacts",
              "Merge the contact with `other_id` (the older id stays); reversible.", _merge_contact,
              params=(_ID,), body=MergeRequest, answer=Contact, problems=(401, 404, 409, 413, 422)),
    Operation("GET", f"{PREFIX}/merge-proposals", "listMergeProposals",
              "Contacts that may be one person, oldest first.", _list_merge_proposals,
              params=(Param("status", "query",
                            {"type": "string", "enum": ["open", "confirmed", "rejected", "all"]},
                            "Only these (`open` by default)."),),
              answer=MergeProposalPage),
    Operation("POST", f"{PREFIX}/merge-proposals/{{id}}/confirm", "confirmMergeProposal",
              "Merge the proposal's two contacts (the older id stays); reversible.", _confirm_merge,
              params=(_ID,), body=DecisionRequest, body_required=False, answer=Contact,
              problems=(401, 404, 409, 413, 422)),
    Operation("POST", f"{PREFIX}/merge-proposals/{{id}}/reject", "rejectMergeProposal",
              "Reject the proposal: nothing merges, the pair is not proposed again.", _reject_merge,
              params=(_ID,), body=DecisionRequest, body_required=False, status=204,
              problems=(401, 404, 409, 413, 422), extra={"no_content": True}),
    Operation("POST", f"{PREFIX}/merges/{{id}}/unmerge", "unmerge",
              "Undo a merge: both contacts as before it.", _unmerge, params=(_ID,),
              body=DecisionRequest, body_required=False, answer=UnmergeResult,
              problems=(401, 404, 409, 413, 422)),
    Operation("GET", f"{PREFIX}/dead-letters", "listDeadLetters", "Dead letters not yet replayed.",
              _list_dead_letters,
              params=(Param("after", "query", {"type": "string"}, "`next` of the page before."), _LIMIT),
              answer=DeadLetterPage),
    Operation("POST", f"{PREFIX}/dead-letters/replay", "replayDeadLetters",
              "Process dead letters again (all not yet replayed, or `ids`).", _replay,
              body=ReplayRequest, body_required=False, answer=ReplayResult, problems=(401, 413, 422)),
    Operation("GET", f"{PREFIX}/events", "streamEvents",
              "Server-Sent Events of the feed: `id:` is `seq`, `event:` the type, `data:` the event.",
              _events,
              params=(Param("Last-Event-ID", "header", {"type": "string"}, "Resume after this `seq`."),
                      Param("after", "query", {"type": "integer", "minimum": 0},
                            "Resume after this `seq` (for clients that cannot set headers).")),
              answer=FeedEvent, media_type="text/event-stream", problems=(401, 422, 429)),
)


class ServiceApi:
    """The API's Starlette app over one hub."""

    def __init__(self, hub: Hub, settings: ApiSettings) -> None:
        self.hub = hub
        self.settings = settings
        self._keys = [k.encode() for k in settings.keys]
        self.streams = 0
        """Event streams open now."""
        routes = [Route(op.path, self._endpoint(op), methods=[op.method]) for op in OPERATIONS]
        middleware = []
        if settings.cors_origins:
            middleware.append(Middleware(
                CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type", "idempotency-key", "last-event-id"]))
        self.app = Starlette(routes=routes, middleware=middleware,
                             exception_handlers={HTTPException: self._http_error})

    def authorized(self, request: Request) -> bool:
        """Whether the request carries one of the keys (every key compared, in constant time)."""
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        token = given.strip().encode("utf-8", "replace")
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(token, key)
        return found

    def _endpoint(self, op: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if op.auth and not self.authorized(request):
                return problem_response(ApiProblem(
                    401, "unauthorized", "give an API key: Authorization: Bearer <key>",
                    headers={"www-authenticate": 'Bearer realm="omnichannel"'}))
            try:
                return await op.handler(self, request)
            except Exception as exc:  # noqa: BLE001 - every error becomes a problem answer
                return problem_response(from_exception(exc))

        endpoint.__name__ = op.id
        return endpoint

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http")
        return problem_response(ApiProblem(status, code, "no such route" if status == 404 else None))
