"""The service API in process: keys, routes, pagination, typed errors, OpenAPI, webhooks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from omnichannel_sdk import Hub
from omnichannel_sdk._api import with_api
from omnichannel_sdk._api._app import ServiceApi
from omnichannel_sdk._api._openapi import openapi_document
from omnichannel_sdk._api._routes import OPERATIONS
from omnichannel_sdk.testing import PUBLIC_URL

from .conftest import signed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]

KEY = "test-key-0123456789abcdef"
NEW_KEY = "rotated-key-0123456789abc"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
HOOK = "https://helpdesk.example.test/omnichannel"


@pytest.fixture
def omni_config(omni_config: dict[str, Any]) -> dict[str, Any]:
    omni_config["api"] = {"keys": [KEY, NEW_KEY], "webhooks": [
        {"url": HOOK, "secret": [SECRET, OLD_SECRET], "events": ["message.received"],
         "base_delay": 0.05, "max_delay": 0.1, "max_attempts": 3}]}
    omni_config["omnichannel"]["feed"] = {"poll_interval": 0.05}
    return omni_config


@pytest.fixture
async def api(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=with_api(hub, hub.asgi(lifespan=False)))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL,
                                 headers={"authorization": f"Bearer {KEY}"}) as client:
        yield client


async def _inbound(api: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    body, headers = signed(events)
    assert (await api.post("/webhooks/fake", content=body, headers=headers)).status_code == 200


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["type"].endswith(code)
    return body


async def test_keys_are_required_and_every_configured_key_works(api: httpx.AsyncClient) -> None:
    url = "/api/v1/conversations"
    assert (await api.get(url)).status_code == 200
    assert (await api.get(url, headers={"authorization": f"Bearer {NEW_KEY}"})).status_code == 200
    for value in (None, "Bearer", f"Bearer {KEY}x", f"Basic {KEY}", ("Bearer " + "é" * 30).encode(), f"bearer {KEY[:-1]}"):
        headers = {} if value is None else {"authorization": value}
        client = httpx.AsyncClient(transport=api._transport, base_url=PUBLIC_URL, headers=headers)
        async with client:
            response = await client.get(url)
        body = _problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert KEY not in response.text and NEW_KEY not in response.text and body["errors"] == []


async def test_no_keys_means_nothing_is_allowed(omni_config: dict[str, Any], register_plugin: list[object]) -> None:
    omni_config["api"] = {"keys": []}
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        transport = httpx.ASGITransport(app=with_api(hub, hub.asgi(lifespan=False)))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            _problem(await client.get("/api/v1/conversations", headers={"authorization": "Bearer "}),
                     401, "unauthorized")


async def test_unknown_routes_and_methods(api: httpx.AsyncClient) -> None:
    _problem(await api.get("/api/v1/nothing"), 404, "not_found")
    _problem(await api.get("/api/v2/conversations"), 404, "not_found")
    _problem(await api.delete("/api/v1/conversations"), 405, "method_not_allowed")
    # the gateway is untouched
    assert (await api.get("/healthz")).json()["ok"] is True


async def test_conversations_page_with_cursors_each_exactly_once(api: httpx.AsyncClient) -> None:
    await _inbound(api, [{"id": f"p{i}", "from": f"person{i}", "text": "hi"} for i in range(7)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/api/v1/conversations", params=params)).json()
        seen.extend(c["id"] for c in page["items"])
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 7
    only = (await api.get("/api/v1/conversations", params={"status": "closed"})).json()
    assert only == {"items": [], "next": None}
    body = _problem(await api.get("/api/v1/conversations", params={"cursor": "garbage!"}), 422, "invalid")
    assert body["errors"][0]["field"] == "cursor"
    for bad in ("0", "-1", "x", "100000"):
        body = _problem(await api.get("/api/v1/conversations", params={"limit": bad}), 422, "invalid")
        assert body["errors"][0]["field"] == "limit"
    body = _problem(await api.get("/api/v1/conversations", params={"status": "weird"}), 422, "invalid")
    assert body["errors"][0]["field"] == "status"


async def test_messages_contacts_and_unknown_ids(api: httpx.AsyncClient) -> None:
    await _inbound(api, [{"id": f"q{i}", "from": "quinn", "text": f"m{i}"} for i in range(5)])
    conversation = (await api.get("/api/v1/conversations")).json()["items"][0]
    assert (await api.get(f"/api/v1/conversations/{conversation['id']}")).json() == conversation
    first = (await api.get(f"/api/v1/conversations/{conversation['id']}/messages", params={"limit": 3})).json()
    second = (await api.get(f"/api/v1/conversations/{conversation['id']}/messages",
                            params={"limit": 3, "after": first["next"]})).json()
    texts = [m["parts"][0]["text"] for m in first["items"] + second["items"]]
    assert texts == [f"m{i}" for i in range(5)] and second["next"] is None
    contact = (await api.get(f"/api/v1/contacts/{conversation['contact_id']}")).json()
    assert contact["addresses"][0]["handle"] == "quinn"
    _problem(await api.get("/api/v1/conversations/conv_nope"), 404, "not_found")
    _problem(await api.get("/api/v1/conversations/conv_nope/messages"), 404, "not_found")
    _problem(await api.get("/api/v1/contacts/ct_nope"), 404, "not_found")


async def test_send_with_idempotency_and_typed_errors(api: httpx.AsyncClient, hub: Hub) -> None:
    await _inbound(api, [{"id": "s1", "from": "sam", "text": "help"}])
    conversation = (await api.get("/api/v1/conversations")).json()["items"][0]
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    with respx.mock() as router:
        router.post("https://api.fake.test/messages").respond(200, json={"id": "v-9"})
        router.route(url__startswith=HOOK).respond(200)
        first = await api.post(url, json={"text": "on it", "author": {"kind": "human", "name": "Ann"}},
                               headers={"idempotency-key": "k-1"})
        assert first.status_code == 202 and first.json()["status"] == "queued"
        again = await api.post(url, json={"text": "on it"}, headers={"idempotency-key": "k-1"})
        assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
        other = await api.post(url, json={"parts": [{"type": "text", "text": "more"}]})
        assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
        await asyncio.sleep(0.3)
    assert _problem(await api.post(url, content=b"{not json"), 422, "invalid")["errors"][0]["field"] == "body"
    assert _problem(await api.post(url, json={"text": 5}), 422, "invalid")["errors"][0]["field"] == "text"
    assert _problem(await api.post(url, json={}), 422, "invalid")["errors"][0]["field"] == "text"
    assert _problem(await api.post(url, json={"text": "x", "colour": 1}), 422,
                    "invalid")["errors"][0]["field"] == "colour"
    assert _problem(await api.post(url, json={"parts": [{"type": "media", "kind": "nope"}]}), 422,
                    "invalid")["errors"][0]["field"].startswith("parts.0")
    _problem(await api.post(url, json={"text": "x"}, headers={"idempotency-key": "\x01"}), 422, "invalid")
    _problem(await api.post(url, content=b"x" * (1024 * 1024 + 1)), 413, "too_large")
    _problem(await api.post("/api/v1/conversations/conv_nope/messages", json={"text": "x"}), 404, "not_found")
    # a closed window: the conversation's window ran out
    stored = await hub.store.get_conversation(conversation["id"])
    assert stored is not None
    await hub.store.update_conversation(stored.model_copy(
        update={"window_expires_at": datetime.now(UTC) - timedelta(hours=1)}))
    body = _problem(await api.post(url, json={"text": "late"}), 409, "window_closed")
    assert "window" in body["detail"]
    # an opted-out contact
    await _inbound(api, [{"id": "o1", "from": "olga", "text": "stop"}, {"id": "o2", "from": "olga", "event": "opt_out"}])
    olga = next(c for c in (await api.get("/api/v1/conversations")).json()["items"]
            if c["participants"][0]["handle"] == "olga")
    _problem(await api.post(f"/api/v1/conversations/{olga['id']}/messages", json={"text": "hi"}), 409, "opted_out")


async def test_dead_letters_listed_and_replayed(api: httpx.AsyncClient) -> None:
    body, headers = signed(b'{"events": "not a list"}')
    assert (await api.post("/webhooks/fake", content=body, headers=headers)).status_code == 200
    letters = (await api.get("/api/v1/dead-letters")).json()
    assert len(letters["items"]) == 1 and letters["next"] is None
    result = (await api.post("/api/v1/dead-letters/replay", json={"ids": [letters["items"][0]["id"]]})).json()
    assert result["replayed"] == [] and list(result["failed"]) == [letters["items"][0]["id"]]
    assert (await api.post("/api/v1/dead-letters/replay")).status_code == 200
    assert _problem(await api.post("/api/v1/dead-letters/replay", json={"ids": "x"}), 422,
                    "invalid")["errors"][0]["field"] == "ids"


async def test_the_openapi_document_matches_the_routes(api: httpx.AsyncClient, hub: Hub) -> None:
    from openapi_spec_validator import validate

    document = (await api.get("/api/v1/openapi.json", headers={"authorization": ""})).json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    app = ServiceApi(hub, hub.settings.api).app  # type: ignore[arg-type]
    routes = {(method, r.path) for r in app.routes if isinstance(r, Route) for method in (r.methods or ())
              if method != "HEAD"}
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert routes == documented == {(op.method, op.path) for op in OPERATIONS}
    schemas = document["components"]["schemas"]
    for name in ("Message", "Conversation", "Contact", "SendRequest", "Problem", "ConversationPage"):
        assert name in schemas
    assert set(schemas["Message"]["properties"]) >= {"id", "conversation_id", "parts", "status"}
    assert document == openapi_document()


async def test_webhooks_are_signed_retried_with_the_same_id_and_dead_lettered(
        api: httpx.AsyncClient, hub: Hub) -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    got: list[httpx.Request] = []
    answers = iter([500, 500, 500, 200, 200, 200])  # first event: 3 failures -> dead letter

    def receive(request: httpx.Request) -> httpx.Response:
        got.append(request)
        return httpx.Response(next(answers))

    with respx.mock(assert_all_called=False) as router:
        router.route(url__startswith=HOOK).mock(side_effect=receive)
        await _inbound(api, [{"id": "w1", "from": "wendy", "text": "first"}])
        for _ in range(100):
            await asyncio.sleep(0.05)
            if len(got) >= 3 and (await hub.store.list_dead_letters()):
                break
        assert len(got) == 3
        ids = {r.headers["webhook-id"] for r in got}
        assert len(ids) == 1
        for request in got:  # the reference library accepts each try, under either secret
            for secret in (SECRET, OLD_SECRET):
                event = Webhook(secret).verify(request.content, dict(request.headers))
                assert event["type"] == "message.received" and event["seq"] >= 1
        letter = next(x for x in await hub.store.list_dead_letters() if x.kind == "webhook")
        assert "HTTP 500" in letter.error
        report = await hub.replay([letter.id])
        assert report.replayed == [letter.id]
        for _ in range(100):
            await asyncio.sleep(0.05)
            if len(got) >= 4:
                break
        assert got[3].headers["webhook-id"] in ids  # the replay repeats the id
        # only message.received is delivered to this endpoint (conversation.opened is filtered)
        assert all(Webhook(SECRET).verify(r.content, dict(r.headers))["type"] == "message.received" for r in got)
    with pytest.raises(WebhookVerificationError, match="signature"):
        Webhook("whsec_" + "B" * 32).verify(got[0].content, dict(got[0].headers))


@settings(derandomize=True, max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(st.binary(max_size=300), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["text", "parts", "author", "type", "kind", "metadata", "x"]), inner, max_size=4),
    max_leaves=12).map(lambda v: json.dumps(v).encode())))
async def test_hostile_bodies_never_give_a_500(api: httpx.AsyncClient, body: bytes) -> None:
    response = await api.post("/api/v1/conversations/conv_x/messages", content=body)
    assert response.status_code in (404, 413, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_the_documented_openapi_copy_is_current() -> None:
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(openapi_document())), \
        "regenerate docs/openapi.json (see docs/service-api.md)"
