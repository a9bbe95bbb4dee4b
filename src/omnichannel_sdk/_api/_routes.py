"""The service API's operations (SPEC §11): their handlers and :data:`OPERATIONS`, the table that
both the routes and the OpenAPI document are made from."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from .._models import Contact, Conversation, Message
from .._timeline import ContactTimeline
from ._operation import ApiContext, Operation, Param
from ._pages import conversations_page, dead_letters_page
from ._problems import ApiProblem, from_validation
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
from ._sse import event_stream

__all__ = ["MAX_BODY", "OPERATIONS", "PREFIX", "json_response"]

PREFIX = "/api/v1"
MAX_BODY = 1024 * 1024


def json_response(model: BaseModel, status: int = 200) -> Response:
    """A model as JSON."""
    return Response(model.__pydantic_serializer__.to_json(model), status, media_type="application/json")


def _invalid(name: str, message: str) -> ApiProblem:
    return ApiProblem(422, "invalid", "the request is invalid", [FieldProblem(field=name, message=message)])


def _limit(api: ApiContext, request: Request, default: int = 50) -> int:
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


async def _openapi(api: ApiContext, request: Request) -> Response:
    return Response(orjson.dumps(api.openapi()), media_type="application/json")


async def _list_conversations(api: ApiContext, request: Request) -> Response:
    status = _text_param(request, "status")
    if status is not None and status not in ("open", "closed"):
        raise _invalid("status", "open or closed")
    items, cursor = await conversations_page(
        api.hub.store, channel_key=_text_param(request, "channel_key"), status=status,
        contact_id=_text_param(request, "contact_id"), limit=_limit(api, request),
        cursor=_text_param(request, "cursor", max_length=400))
    return json_response(ConversationPage(items=items, next=cursor))


async def _conversation(api: ApiContext, request: Request) -> Conversation:
    found = await api.hub.store.get_conversation(request.path_params["id"])
    if found is None:
        raise ApiProblem(404, "not_found", "no such conversation")
    return found


async def _get_conversation(api: ApiContext, request: Request) -> Response:
    return json_response(await _conversation(api, request))


async def _list_messages(api: ApiContext, request: Request) -> Response:
    conversation = await _conversation(api, request)
    limit = _limit(api, request)
    after = _text_param(request, "after")
    found = await api.hub.store.list_messages(conversation.id, limit=limit + 1, after=after)
    items = found[:limit]
    return json_response(MessagePage(items=items, next=items[-1].id if len(found) > limit else None))


async def _send(api: ApiContext, request: Request) -> Response:
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


async def _get_contact(api: ApiContext, request: Request) -> Response:
    found = await api.hub.store.get_contact(request.path_params["id"])
    if found is None:
        raise ApiProblem(404, "not_found", "no such contact")
    return json_response(found)


async def _contact_timeline(api: ApiContext, request: Request) -> Response:
    timeline = await api.hub.contact_timeline(
        request.path_params["id"], limit=_limit(api, request),
        before=_text_param(request, "before"))
    return json_response(timeline)


async def _contact_merges(api: ApiContext, request: Request) -> Response:
    found = await api.hub.merges(request.path_params["id"])
    if not found and await api.hub.store.get_contact(request.path_params["id"]) is None:
        raise ApiProblem(404, "not_found", "no such contact")  # an absorbed one has its merges
    return json_response(ContactMergePage(items=found))


async def _merge_contact(api: ApiContext, request: Request) -> Response:
    body: MergeRequest = await _json_body(request, MergeRequest)
    return json_response(await api.hub.merge_contacts(request.path_params["id"], body.other_id,
                                                      by=body.by))


async def _list_merge_proposals(api: ApiContext, request: Request) -> Response:
    status = _text_param(request, "status") or "open"
    if status not in ("open", "confirmed", "rejected", "all"):
        raise _invalid("status", "open, confirmed, rejected or all")
    found = await api.hub.merge_proposals(None if status == "all" else status)  # type: ignore[arg-type]
    return json_response(MergeProposalPage(items=found))


async def _confirm_merge(api: ApiContext, request: Request) -> Response:
    body: DecisionRequest = await _json_body(request, DecisionRequest, required=False)
    return json_response(await api.hub.confirm_merge(request.path_params["id"], by=body.by))


async def _reject_merge(api: ApiContext, request: Request) -> Response:
    body: DecisionRequest = await _json_body(request, DecisionRequest, required=False)
    await api.hub.reject_merge(request.path_params["id"], by=body.by)
    return Response(status_code=204)


async def _unmerge(api: ApiContext, request: Request) -> Response:
    body: DecisionRequest = await _json_body(request, DecisionRequest, required=False)
    kept, restored = await api.hub.unmerge(request.path_params["id"], by=body.by)
    return json_response(UnmergeResult(contact=kept, restored=restored))


async def _list_dead_letters(api: ApiContext, request: Request) -> Response:
    items, cursor = await dead_letters_page(api.hub.store, limit=_limit(api, request),
                                            after=_text_param(request, "after"))
    return json_response(DeadLetterPage(items=items, next=cursor))


async def _replay(api: ApiContext, request: Request) -> Response:
    body: ReplayRequest = await _json_body(request, ReplayRequest, required=False)
    report = await api.hub.replay(body.ids)
    return json_response(ReplayResult(replayed=report.replayed, failed=report.failed))


async def _events(api: ApiContext, request: Request) -> Response:
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
