"""Twilio reconciliation: a send whose answer was lost is looked up in the Messages list before
it goes again; a listed message that may be another send's is never taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from omnichannel_sdk import Hub

from .test_hub import SID, TWILIO_API, conversation_of

pytestmark = pytest.mark.anyio


def listed(sid: str, body: str, *, to: str = "+14155550100", created: datetime | None = None,
           direction: str = "outbound-api") -> dict[str, Any]:
    """One entry of Twilio's Messages list, in its documented shape."""
    when = format_datetime(created or datetime.now(UTC))
    return {"account_sid": SID, "api_version": "2010-04-01", "body": body, "date_created": when,
            "date_sent": None, "date_updated": when, "direction": direction, "error_code": None,
            "error_message": None, "from": "+15005550006", "messaging_service_sid": None,
            "num_media": "0", "num_segments": "1", "price": None, "price_unit": "USD",
            "sid": sid, "status": "queued", "subresource_uris": {}, "to": to,
            "uri": f"/2010-04-01/Accounts/{SID}/Messages/{sid}.json"}


def page(*messages: dict[str, Any]) -> dict[str, Any]:
    uri = f"/2010-04-01/Accounts/{SID}/Messages.json?PageSize=100&Page=0"
    return {"messages": list(messages), "end": max(0, len(messages) - 1), "first_page_uri": uri,
            "next_page_uri": None, "page": 0, "page_size": 100, "previous_page_uri": None,
            "start": 0, "uri": uri}


async def _conversation(hub: Hub, samples: Any) -> str:
    await hub.handle_webhook("twilio", samples.twilio("twilio_inbound_sms"))
    return str((await conversation_of(hub, "twilio")).id)


async def test_a_send_whose_answer_was_lost_is_found_and_not_sent_again(
        hub: Hub, samples: Any) -> None:
    conversation = await _conversation(hub, samples)
    posts: list[dict[str, str]] = []
    queries: list[dict[str, str]] = []

    def post(request: httpx.Request) -> httpx.Response:
        posts.append(dict(parse_qsl(request.content.decode())))
        raise httpx.ReadTimeout("Twilio took it, the answer never came")

    def lookup(request: httpx.Request) -> httpx.Response:
        queries.append(dict(request.url.params))
        return httpx.Response(200, json=page(
            listed("SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "Your order ships today"),
            listed("SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "Older, same text",
                   created=datetime.now(UTC) - timedelta(days=2))))

    with respx.mock(assert_all_called=False) as router:
        router.post(TWILIO_API).mock(side_effect=post)
        router.get(TWILIO_API).mock(side_effect=lookup)
        sent = await hub.send(conversation, text="Your order ships today", wait=True)
    assert len(posts) == 1  # never sent twice
    assert sent.status == "sent" and sent.external_id == "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    assert sent.metadata["reconciled"] is True and "possible_duplicates" not in sent.metadata
    assert queries[0]["To"] == "+14155550100" and queries[0]["From"] == "+15005550006"
    assert hub.metrics.uncertain_sends.labels("twilio", "reconciled")._value.get() == 1


async def test_a_listed_message_of_another_send_is_never_taken(hub: Hub, samples: Any) -> None:
    conversation = await _conversation(hub, samples)
    first_sid = "SM11111111111111111111111111111111"
    answers: list[Any] = [httpx.Response(201, json={"sid": first_sid, "status": "queued"}),
                          httpx.ReadTimeout("lost"),  # the second never reached Twilio
                          httpx.Response(201, json={"sid": "SM2222222222222222222222222222222"
                                                           "2", "status": "queued"})]

    def post(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with respx.mock(assert_all_called=False) as router:
        router.post(TWILIO_API).mock(side_effect=post)
        # Twilio lists only the first "Thanks!": it is the first send's, not the second's
        router.get(TWILIO_API).respond(200, json=page(listed(first_sid, "Thanks!")))
        first = await hub.send(conversation, text="Thanks!", wait=True)
        second = await hub.send(conversation, text="Thanks!", wait=True)
    assert first.external_id == first_sid and answers == []
    assert second.status == "sent" and second.external_id == "SM" + "2" * 32
    # sent again without the vendor's word: counted as a possible duplicate
    assert second.metadata["possible_duplicates"] == 1
    assert hub.metrics.uncertain_sends.labels("twilio", "resent")._value.get() == 1


async def test_a_failing_list_retries_later_and_keeps_the_question(hub: Hub, samples: Any) -> None:
    conversation = await _conversation(hub, samples)
    posts: list[int] = []
    lookups: list[int] = []

    def post(request: httpx.Request) -> httpx.Response:
        posts.append(1)
        raise httpx.ReadTimeout("lost")

    def lookup(request: httpx.Request) -> httpx.Response:
        lookups.append(1)
        if len(lookups) == 1:
            return httpx.Response(503, json={"code": 20500, "message": "try later"})
        return httpx.Response(200, json=page(listed("SM" + "c" * 32, "Hello")))

    with respx.mock(assert_all_called=False) as router:
        router.post(TWILIO_API).mock(side_effect=post)
        router.get(TWILIO_API).mock(side_effect=lookup)
        sent = await hub.send(conversation, text="Hello", wait=True)
    # the list failed once: asked again on the next try, never sent blind
    assert len(posts) == 1 and len(lookups) == 2
    assert sent.status == "sent" and sent.external_id == "SM" + "c" * 32
