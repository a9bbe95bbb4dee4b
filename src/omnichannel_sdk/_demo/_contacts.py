"""The customer's whole story in the inbox: the contact panel (addresses, profile, a timeline
of every conversation on every channel), merge proposals the agent confirms or rejects, and
unmerge.

The endpoints call the hub's contact API (``merge_proposals``, ``confirm_merge``,
``reject_merge``, ``merges``, ``unmerge``, ``contact_timeline``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from .._errors import NotFoundError, OmnichannelError
from .._hub import Hub
from .._models import MergeProposal
from ._present import channel_name, contact_json, message_json, readable_name
from ._state import demo_state, refused

__all__ = ["api_contact", "api_merge_action", "api_merges", "api_timeline", "api_unmerge"]


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


_TIMELINE_PAGE = 200
"""Timeline messages the contact panel loads at a time (``?limit=`` between 1 and 500)."""


def _page_size(request: Request, name: str) -> int:
    try:
        return max(1, min(500, int(request.query_params.get(name, _TIMELINE_PAGE))))
    except ValueError:
        return _TIMELINE_PAGE


async def _timeline(hub: Hub, contact_id: str, limit: int,
                    before: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the contact's messages on every channel, oldest first, with their channel,
    and the cursor of the page before it (``None`` at the first message)."""
    timeline = await hub.contact_timeline(contact_id, limit=limit, before=before)
    return ([{**message_json(item.message), "channel_name": channel_name(item.message.channel)}
             for item in timeline.items], timeline.next_before)


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
    return JSONResponse([await _proposal_json(hub, p) for p in await hub.merge_proposals(status="open")])


async def api_contact(request: Request) -> JSONResponse:
    """``GET /demo/api/contacts/{id}``: the contact panel."""
    hub = demo_state(request).hub
    contact_id = request.path_params["contact_id"]
    contact = await hub.store.get_contact(contact_id)
    if contact is None:
        return JSONResponse({"error": "no such contact"}, 404)
    merges: list[Any] = []
    for merge in await hub.merges(contact_id):
        plain = _plain(merge)
        # the moved addresses as people read them ("Visitor 7384", never ``v_Rj0l…``)
        plain["moved"] = [f"{channel_name(a.channel)}: {readable_name(a)}" for a in merge.addresses]
        merges.append(plain)
    proposals = [await _proposal_json(hub, p) for p in await hub.merge_proposals(status="open")
                 if contact_id in (p.contact_id, p.existing_contact_id)]
    conversations = await hub.store.list_conversations(contact_id=contact_id)
    timeline, earlier = await _timeline(hub, contact_id, _page_size(request, "timeline_limit"))
    out = contact_json(contact)
    out["name"] = contact.display_name or next(
        (readable_name(a) for a in contact.addresses), None)
    return JSONResponse({**out, "merges": merges, "proposals": proposals,
                         "conversations": [{"id": c.id, "channel_name": channel_name(c.channel),
                                            "status": c.status} for c in conversations],
                         "timeline": timeline, "timeline_before": earlier})


async def api_timeline(request: Request) -> JSONResponse:
    """``GET /demo/api/contacts/{id}/timeline?before=…&limit=…``: older timeline messages
    (``before`` is the ``timeline_before`` / ``next_before`` of the page after them)."""
    hub = demo_state(request).hub
    try:
        items, earlier = await _timeline(hub, request.path_params["contact_id"],
                                         _page_size(request, "limit"),
                                         request.query_params.get("before") or None)
    except NotFoundError as exc:
        return JSONResponse({"error": str(exc)}, 404)
    return JSONResponse({"items": items, "next_before": earlier})


async def api_merge_action(request: Request) -> JSONResponse:
    """``POST /demo/api/merges/{id}/confirm`` or ``…/reject``."""
    state = demo_state(request)
    if not state.allowed(request):
        return refused()
    action = request.path_params["action"]
    if action not in ("confirm", "reject"):
        return JSONResponse({"error": f"no merge action {action!r}"}, 404)
    proposal_id = request.path_params["proposal_id"]
    try:
        if action == "reject":
            await state.hub.reject_merge(proposal_id)
            return JSONResponse({"ok": True, "contact": None})
        result = await state.hub.confirm_merge(proposal_id)
    except OmnichannelError as exc:
        return JSONResponse({"error": str(exc)}, 409)
    return JSONResponse({"ok": True, "contact": _plain(result)})


async def api_unmerge(request: Request) -> JSONResponse:
    """``POST /demo/api/unmerge/{merge_id}``: restore both contacts."""
    state = demo_state(request)
    if not state.allowed(request):
        return refused()
    try:
        result = await state.hub.unmerge(request.path_params["merge_id"])
    except OmnichannelError as exc:
        return JSONResponse({"error": str(exc)}, 409)
    return JSONResponse({"ok": True, "result": _plain(result)})
