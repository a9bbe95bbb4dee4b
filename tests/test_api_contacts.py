"""The service API's contact routes: the timeline, merge proposals, merges and unmerges."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from omnichannel_sdk import Address, Hub
from omnichannel_sdk._api import with_api
from omnichannel_sdk.testing import PUBLIC_URL

from .test_contacts import T0, say

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]

KEY = "test-key-0123456789abcdef"


@pytest.fixture
def omni_config(omni_config: dict[str, Any]) -> dict[str, Any]:
    omni_config["api"] = {"keys": [KEY]}
    return omni_config


@pytest.fixture
async def api(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=with_api(hub, hub.asgi(lifespan=False)))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL,
                                 headers={"authorization": f"Bearer {KEY}"}) as client:
        yield client


def _problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_proposals_merges_and_the_timeline_over_http(hub: Hub, api: httpx.AsyncClient) -> None:
    customer = await say(hub.store, "email", "ann@example.com", "order late", at=T0)
    visitor = await say(hub.store, "webchat", "v_1", "hello", at=T0 + timedelta(1),
                        claimed=[Address(channel="email", handle="ann@example.com")])
    assert customer.contact and visitor.contact
    page = (await api.get("/api/v1/merge-proposals")).json()
    [proposal] = page["items"]
    assert proposal["reason"] == "claimed" and proposal["verified"] is False and page["next"] is None
    _problem(await api.get("/api/v1/merge-proposals?status=maybe"), 422, "invalid")
    _problem(await api.post("/api/v1/merge-proposals/ct_x~ct_y/confirm"), 404, "not_found")
    _problem(await api.post(f"/api/v1/merge-proposals/{proposal['id']}/confirm",
                            json={"by": "ann", "extra": 1}), 422, "invalid")
    merged = await api.post(f"/api/v1/merge-proposals/{proposal['id']}/confirm", json={"by": "ann"})
    assert merged.status_code == 200 and merged.json()["id"] == customer.contact.id
    _problem(await api.post(f"/api/v1/merge-proposals/{proposal['id']}/reject"), 409,
             "merge_conflict")
    assert [p["status"] for p in (await api.get("/api/v1/merge-proposals?status=all")).json()[
        "items"]] == ["confirmed"]

    timeline = (await api.get(f"/api/v1/contacts/{customer.contact.id}/timeline?limit=1")).json()
    assert [i["channel"] for i in timeline["items"]] == ["webchat"] and timeline["next_before"]
    older = (await api.get(f"/api/v1/contacts/{customer.contact.id}/timeline",
                           params={"before": timeline["next_before"]})).json()
    assert [i["channel"] for i in older["items"]] == ["email"] and older["next_before"] is None
    _problem(await api.get("/api/v1/contacts/ct_nope/timeline"), 404, "not_found")

    [record] = (await api.get(f"/api/v1/contacts/{customer.contact.id}/merges")).json()["items"]
    assert record["absorbed_id"] == visitor.contact.id and record["by"] == "ann"
    undone = await api.post(f"/api/v1/merges/{record['id']}/unmerge", json={"by": "bo"})
    assert undone.status_code == 200
    assert undone.json()["restored"]["id"] == visitor.contact.id
    _problem(await api.post(f"/api/v1/merges/{record['id']}/unmerge"), 409, "merge_conflict")
    _problem(await api.get("/api/v1/contacts/ct_nope/merges"), 404, "not_found")
    # the helpdesk undid a confirmed proposal: the pair stays decided
    assert (await api.get("/api/v1/merge-proposals")).json()["items"] == []

    again = await api.post(f"/api/v1/contacts/{visitor.contact.id}/merge",
                           json={"other_id": customer.contact.id})
    assert again.status_code == 200 and again.json()["id"] == customer.contact.id
    _problem(await api.post(f"/api/v1/contacts/{customer.contact.id}/merge",
                            json={"other_id": customer.contact.id}), 409, "merge_conflict")
    _problem(await api.post(f"/api/v1/contacts/{customer.contact.id}/merge", json={}), 422,
             "invalid")


async def test_rejecting_a_proposal_answers_204(hub: Hub, api: httpx.AsyncClient) -> None:
    await say(hub.store, "sms", "+14155550100", "sms", at=T0)
    await say(hub.store, "whatsapp", "+14155550100", "wa", at=T0 + timedelta(1))
    [proposal] = (await api.get("/api/v1/merge-proposals")).json()["items"]
    assert proposal["reason"] == "same_phone" and proposal["verified"] is True
    rejected = await api.post(f"/api/v1/merge-proposals/{proposal['id']}/reject")
    assert rejected.status_code == 204 and rejected.content == b""
    assert (await api.get("/api/v1/merge-proposals")).json()["items"] == []
