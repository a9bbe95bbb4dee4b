"""The customer's whole story in the inbox: the contact panel (addresses, profile, a timeline
of every conversation on every channel), merge proposals the agent confirms or rejects, and
unmerge.

The endpoints call the hub's contact API (``merge_proposals``, ``confirm_merge``,
``reject_merge``, ``merges``, ``unmerge``, ``contact_timeline``); where a hub offers only part
of it, the rest answers 501 and the timeline is put together from the store."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from .._errors import OmnichannelError
from .._hub import Hub
from .._models import MergeProposal, Message
from ._present import channel_name, contact_json, message_json, readable_name
from ._state import demo_state, refused

__all__ = ["api_contact", "api_merge_action", "api_merges", "api_unmerge"]


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


async def _timeline(hub: Hub, contact_id: str) -> list[dict[str, Any]]:
    """Every message of the contact's conversations, oldest first, with its conversation."""
    found = getattr(hub, "contact_timeline", None)
    messages: list[Message] = []
    if callable(found):
        timeline = await found(contact_id, limit=200)
        for item in getattr(timeline, "items", []):
            message = getattr(item, "message", None)
            if isinstance(message, Message):
                messages.append(message)
    else:
        for conv in await hub.store.list_conversations(contact_id=contact_id):
            messages.extend(await hub.store.list_messages(conv.id))
    messages.sort(key=lambda m: (m.created_at, m.id))
    return [{**message_json(m), "channel_name": channel_name(m.channel)} for m in messages]


async def _proposals(hub: Hub) -> list[MergeProposal]:
    found = getattr(hub, "merge_proposals", None)
    if callable(found):
        return list(await found(status="open"))
    return await hub.store.list_merge_proposals()


async def _proposal_json(hub: Hub, proposal: MergeProposal) -> dict[str, Any]:
    new, existing = (await hub.store.get_contact(proposal.contact_id),
                     await hub.store.get_contact(proposal.existing_contact_id))
    return {"id": proposal.id, "address": proposal.address.handle,
            "channel_name": channel_name(proposal.address.channel),
            "contact": contact_json(new), "existing": contact_json(existing),
            "created_at": proposal.created_at.isoformat()}


async def api_merges(request: Request) -> JSONResponse:
    """``GET /demo/api/merges``: the open merge proposals, both contacts described."""
    hub = demo_state(request).hub
    return JSONResponse([await _proposal_json(hub, p) for p in await _proposals(hub)])


async def api_contact(request: Request) -> JSONResponse:
    """``GET /demo/api/contacts/{id}``: the contact panel."""
    hub = demo_state(request).hub
    contact_id = request.path_params["contact_id"]
    contact = await hub.store.get_contact(contact_id)
    if contact is None:
        return JSONResponse({"error": "no such contact"}, 404)
    merges: list[Any] = []
    listed = getattr(hub, "merges", None)
    if callable(listed):
        for merge in await listed(contact_id):
            plain = _plain(merge)
            # the moved addresses as people read them ("Visitor 7384", never ``v_Rj0l…``)
            plain["moved"] = [f"{channel_name(a.channel)}: {readable_name(a)}"
                              for a in getattr(merge, "addresses", [])]
            merges.append(plain)
    proposals = [await _proposal_json(hub, p) for p in await _proposals(hub)
                 if contact_id in (p.contact_id, p.existing_contact_id)]
    conversations = await hub.store.list_conversations(contact_id=contact_id)
    out = contact_json(contact)
    out["name"] = contact.display_name or next(
        (readable_name(a) for a in contact.addresses), None)
    return JSONResponse({**out, "merges": merges, "proposals": proposals,
                         "can_unmerge": callable(getattr(hub, "unmerge", None)),
                         "conversations": [{"id": c.id, "channel_name": channel_name(c.channel),
                                            "status": c.status} for c in conversations],
                         "timeline": await _timeline(hub, contact_id)})


async def api_merge_action(request: Request) -> JSONResponse:
    """``POST /demo/api/merges/{id}/confirm`` or ``…/reject``."""
    state = demo_state(request)
    if not state.allowed(request):
        return refused()
    action = request.path_params["action"]
    method = getattr(state.hub, "confirm_merge" if action == "confirm" else "reject_merge", None)
    if action not in ("confirm", "reject") or not callable(method):
        return JSONResponse({"error": f"this hub cannot {action} merges"}, 501)
    try:
        result = await method(request.path_params["proposal_id"])
    except OmnichannelError as exc:
        return JSONResponse({"error": str(exc)}, 409)
    return JSONResponse({"ok": True, "contact": _plain(result) if result is not None else None})


async def api_unmerge(request: Request) -> JSONResponse:
    """``POST /demo/api/unmerge/{merge_id}``: restore both contacts."""
    state = demo_state(request)
    if not state.allowed(request):
        return refused()
    method = getattr(state.hub, "unmerge", None)
    if not callable(method):
        return JSONResponse({"error": "this hub cannot unmerge"}, 501)
    try:
        result = await method(request.path_params["merge_id"])
    except OmnichannelError as exc:
        return JSONResponse({"error": str(exc)}, 409)
    return JSONResponse({"ok": True, "result": _plain(result)})
