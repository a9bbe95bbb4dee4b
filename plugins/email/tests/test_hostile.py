"""Hostile and real-world input through the real parts (issue 11): 8-bit Message-IDs and
envelopes through the aiosmtpd listener and the webhook gateway on SQLite and PostgreSQL,
Mailgun replays, Mailgun's parsed-fields route and ``body-mime`` file parts, Postmark's
attachment limits and names, and our own Message-ID on every API send."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import respx
from omnichannel_email import _plugin

from omnichannel_sdk import Hub, MediaPart, TextPart, WebhookRequest
from omnichannel_sdk.testing import free_port, require_service

pytestmark = pytest.mark.anyio
PG_DSN = os.environ.get("OMNICHANNEL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SIGNING_KEY = "mg-signing-key-hostile"
PM_BASIC = "Basic " + base64.b64encode(b"postmark:pm-pass").decode()
B = "hostileB"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """A SQLite file, or a fresh PostgreSQL schema (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hostile.db'}"
        return
    require_service("PostgreSQL", 5432)
    schema = "t_" + uuid.uuid4().hex[:12]
    yield f"{PG_DSN}?schema={schema}"
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def _config(omni_config: dict[str, Any], store: str, port: int) -> dict[str, Any]:
    omni_config["omnichannel"]["store"] = store
    common = {"from_address": "support@shop.example"}
    omni_config["channels"] = {
        "mx": {"adapter": "email-smtp", **common, "listen": f"127.0.0.1:{port}"},
        "mg": {"adapter": "mailgun", **common, "signing_key": SIGNING_KEY, "api_key": "mg-api",
               "max_attachments": 3},
        "sg": {"adapter": "sendgrid", **common, "api_key": "sg-api", "basic_auth_username": "u",
               "basic_auth_password": "p"},
        "pm": {"adapter": "postmark", **common, "server_token": "pm-token",
               "basic_auth_username": "postmark", "basic_auth_password": "pm-pass",
               "max_attachments": 5},
    }
    return omni_config


@pytest.fixture
async def hub(omni_config: dict[str, Any], store: str) -> AsyncIterator[Hub]:
    port = free_port()
    hub = Hub.from_config(_config(omni_config, store, port), plugins=[_plugin])
    hub.smtp_port = port  # type: ignore[attr-defined]
    async with hub:
        yield hub


# 8-bit ids: raw Latin-1 in Message-ID and References, valid UTF-8 (RFC 6532) in In-Reply-To,
# a NUL in References
EIGHT_BIT = (b"From: J\xfcrgen <juergen@example.de>\r\nTo: support@shop.example\r\n"
             b"Subject: Gr\xfc\xdfe\r\nMessage-ID: <caf\xe9-1@example.de>\r\n"
             b"In-Reply-To: <r\xc3\xa9ponse@example.fr>\r\nReferences: <a\xe9@x.example> <b\x00@y.example>"
             b"\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nSch\xf6ne Gr\xfc\xdfe\r\n")


async def _smtp(port: int, mail_from: bytes, raw: bytes) -> list[bytes]:
    """A plain SMTP client on a socket, so MAIL FROM can carry any byte."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = [await reader.readline()]

    async def say(line: bytes) -> bytes:
        writer.write(line + b"\r\n")
        await writer.drain()
        reply = b""
        while True:
            chunk = await reader.readline()
            reply += chunk
            if len(chunk) < 4 or chunk[3:4] != b"-":
                return reply

    replies.append(await say(b"EHLO client.example"))
    replies.append(await say(b"MAIL FROM:<" + mail_from + b">"))
    replies.append(await say(b"RCPT TO:<support@shop.example>"))
    replies.append(await say(b"DATA"))
    replies.append(await say(raw.replace(b"\r\n.", b"\r\n..") + b"\r\n."))
    replies.append(await say(b"QUIT"))
    writer.close()
    return replies


async def test_smtp_listener_stores_8bit_ids_and_envelope(hub: Hub) -> None:
    replies = await _smtp(hub.smtp_port, b"bounce-j\xfcrgen@example.de", EIGHT_BIT)  # type: ignore[attr-defined]
    assert replies[5].startswith(b"250"), replies
    (conversation,) = await hub.store.list_conversations()
    (message,) = await hub.store.list_messages(conversation.id)
    assert message.external_id == "café-1@example.de"
    assert message.subject == "Grüße"
    assert message.sender.handle == "juergen@example.de"
    assert message.metadata["in_reply_to"] == "réponse@example.fr"
    assert "\x00" not in message.model_dump_json()


async def test_smtp_listener_sender_fallback_is_stored(hub: Hub) -> None:
    raw = b"From: nobody at all\r\nTo: support@shop.example\r\nSubject: who\r\n\r\nhi\r\n"
    replies = await _smtp(hub.smtp_port, b"", raw)  # type: ignore[attr-defined]
    assert replies[5].startswith(b"250"), replies
    (conversation,) = await hub.store.list_conversations()
    (message,) = await hub.store.list_messages(conversation.id)
    assert message.metadata["sender_unknown"] is True
    assert not await hub.store.list_dead_letters()


def _mailgun_fields(token: str | None = None) -> dict[str, bytes]:
    timestamp = str(int(time.time()))
    token = token or uuid.uuid4().hex
    signature = hmac.new(SIGNING_KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp.encode(), "token": token.encode(), "signature": signature.encode(),
            "recipient": b"support@shop.example", "sender": b"juergen@example.de"}


def _form(fields: dict[str, bytes], files: dict[str, tuple[str | None, str, bytes]] | None = None
          ) -> tuple[bytes, str]:
    body = b""
    for name, value in fields.items():
        body += f'--{B}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
    for name, (filename, ctype, data) in (files or {}).items():
        extra = f'; filename="{filename}"' if filename else ""
        body += (f'--{B}\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n'
                 f"Content-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{B}--\r\n".encode(), f"multipart/form-data; boundary={B}"


async def _post(hub: Hub, key: str, body: bytes, ctype: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=hub.asgi()),
                                 base_url="http://gw.test") as client:
        return await client.post(f"/webhooks/{key}", content=body,
                                 headers={"content-type": ctype, **headers})


async def _only_message(hub: Hub) -> Any:
    (conversation,) = await hub.store.list_conversations()
    (message,) = await hub.store.list_messages(conversation.id)
    return message


async def test_webhooks_store_8bit_ids(hub: Hub) -> None:
    body, ctype = _form({**_mailgun_fields(), "body-mime": EIGHT_BIT})
    assert (await _post(hub, "mg", body, ctype)).status_code == 200
    message = await _only_message(hub)
    assert message.external_id == "café-1@example.de"
    body, ctype = _form({"email": EIGHT_BIT.replace(b"caf\xe9-1", b"caf\xe9-2"),
                         "envelope": b'{"to":["support@shop.example"],"from":"bounce-j\xfcrgen@x.de"}'})
    basic = "Basic " + base64.b64encode(b"u:p").decode()
    assert (await _post(hub, "sg", body, ctype, authorization=basic)).status_code == 200
    postmark = orjson.dumps({"FromFull": {"Email": "ann@example.org", "Name": "Ann"},
                             "Subject": "x", "TextBody": "hi\x00there", "MessageID": "pm-\x00-1",
                             "Headers": [{"Name": "References", "Value": "<\x00\u00e9@x>"}]})
    assert (await _post(hub, "pm", postmark, "application/json", authorization=PM_BASIC)).status_code == 200
    ids = set()
    for conversation in await hub.store.list_conversations():
        ids |= {m.external_id for m in await hub.store.list_messages(conversation.id)}
    assert ids == {"café-1@example.de", "café-2@example.de", "pm- -1@postmark.invalid"}
    assert not await hub.store.list_dead_letters()


async def test_mailgun_replayed_token_with_another_body_is_refused(hub: Hub) -> None:
    adapter = hub.adapter("mg")
    fields = _mailgun_fields()
    first, ctype = _form({**fields, "body-mime": b"From: a@example.org\r\nSubject: one\r\n\r\nhi\r\n"})
    forged, _ = _form({**fields, "body-mime": b"From: boss@example.org\r\nSubject: pay\r\n\r\nnow\r\n"})
    url = hub.request_url("mg")
    await adapter.check_replay(WebhookRequest("POST", url, {"content-type": ctype}, first))  # type: ignore[attr-defined]
    # Mailgun retrying the same post passes (the hub de-duplicates it) …
    await adapter.check_replay(WebhookRequest("POST", url, {"content-type": ctype}, first))  # type: ignore[attr-defined]
    # … the same signature with another body does not
    from omnichannel_sdk import SignatureError

    with pytest.raises(SignatureError, match="replay"):
        await adapter.check_replay(WebhookRequest("POST", url, {"content-type": ctype}, forged))  # type: ignore[attr-defined]


async def test_mailgun_replay_through_the_gateway_is_403(hub: Hub) -> None:
    fields = _mailgun_fields()
    first, ctype = _form({**fields, "body-mime": b"From: a@example.org\r\nSubject: one\r\n\r\nhi\r\n"})
    forged, _ = _form({**fields, "body-mime": b"From: boss@example.org\r\nSubject: pay\r\n\r\nnow\r\n"})
    assert (await _post(hub, "mg", first, ctype)).status_code == 200
    assert (await _post(hub, "mg", forged, ctype)).status_code == 403
    message = await _only_message(hub)
    assert message.subject == "one"


async def test_mailgun_parsed_fields_route(hub: Hub) -> None:
    headers = orjson.dumps([["From", "=?utf-8?Q?B=C3=BCrling,_Andreas?= <andreas@example.de>"],
                            ["To", "support@shop.example"], ["Subject", "Rechnung"],
                            ["Message-Id", "<parsed-1@example.de>"],
                            ["References", "<earlier@example.de>"]])
    files = {f"attachment-{i}": (name, "application/pdf", f"pdf {i}".encode())
             for i, name in enumerate(["a.pdf", "../../b.pdf", "c.pdf", "d.pdf", "e.pdf"], 1)}
    files["attachment-0"] = ("logo.png", "image/png", b"\x89PNG")
    body, ctype = _form({**_mailgun_fields(), "message-headers": headers,
                         "from": "Bürling, Andreas <andreas@example.de>".encode(),
                         "subject": b"Rechnung", "body-plain": b"Hallo,\r\nanbei.\r\n\r\n> alt",
                         "stripped-text": b"Hallo,\r\nanbei.", "body-html": b"<p>Hallo</p>",
                         "content-id-map": b'{"<logo@x>": "attachment-0"}'}, files)
    assert (await _post(hub, "mg", body, ctype)).status_code == 200
    message = await _only_message(hub)
    assert message.external_id == "parsed-1@example.de"
    assert message.sender.handle == "andreas@example.de"
    assert message.sender.display_name == "Bürling, Andreas"
    assert message.metadata["route"] == "parsed"
    assert message.metadata["stripped_text"] == "Hallo,\r\nanbei."
    assert [p.text for p in message.parts if isinstance(p, TextPart)] == ["Hallo,\nanbei."]
    media = [p for p in message.parts if isinstance(p, MediaPart)]
    assert [p.filename for p in media] == ["logo.png", "a.pdf", "_.._b.pdf"]  # max_attachments = 3
    assert message.metadata["inline_images"] == {"logo@x": media[0].sha256}
    assert len(message.metadata["attachments_skipped"]) == 3
    assert message.metadata["original_filenames"] == {media[2].sha256: "../../b.pdf"}


async def test_mailgun_body_mime_as_a_message_rfc822_part(hub: Hub) -> None:
    mime = b"From: Ann <ann@example.org>\r\nSubject: as a file\r\nMessage-ID: <file-1@x.example>\r\n\r\nbody\r\n"
    body, ctype = _form(_mailgun_fields(), {"body-mime": ("message.mime", "message/rfc822", mime)})
    assert (await _post(hub, "mg", body, ctype)).status_code == 200
    message = await _only_message(hub)
    assert (message.external_id, message.subject) == ("file-1@x.example", "as a file")


async def test_postmark_attachment_limit_and_names(hub: Hub) -> None:
    attachments = [{"Name": f"f{i}.txt", "Content": base64.b64encode(b"x").decode(),
                    "ContentType": "text/plain"} for i in range(10_000)]
    attachments[0]["Name"] = "../../etc/pass\x00wd"
    body = orjson.dumps({"FromFull": {"Email": "ann@example.org"}, "Subject": "many",
                         "TextBody": "hi", "MessageID": "pm-many", "Attachments": attachments})
    assert (await _post(hub, "pm", body, "application/json", authorization=PM_BASIC)).status_code == 200
    message = await _only_message(hub)
    media = [p for p in message.parts if isinstance(p, MediaPart)]
    assert len(media) == 5
    assert media[0].filename == "_.._etc_passwd"
    assert message.metadata["original_filenames"][media[0].sha256] == "../../etc/pass\x00wd".replace("\x00", "")
    assert len(message.metadata["attachments_skipped"]) == 1000


async def test_large_mime_is_parsed_off_the_event_loop(hub: Hub) -> None:
    """A 2 MB message is parsed in a worker thread: the loop keeps ticking meanwhile."""
    big = (b"From: a@example.org\r\nSubject: big\r\nMessage-ID: <big@x.example>\r\n"
           b"Content-Type: text/plain\r\n\r\n" + b"line of text\r\n" * 150_000)
    adapter = hub.adapter("mx")
    assert adapter.parse_in_thread_above is not None and len(big) > adapter.parse_in_thread_above
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await adapter.deliver(big, mail_from="a@example.org", rcpt_tos=["support@shop.example"])  # type: ignore[attr-defined]
    finally:
        task.cancel()
    assert ticks > 3
    message = await _only_message(hub)
    assert message.external_id == "big@x.example"


async def test_api_sends_carry_our_message_id(hub: Hub) -> None:
    """Mailgun (our MIME), SendGrid (``headers``) and Postmark (``Headers``) get the same
    Message-ID on every attempt: ``<message id>@domain``, the handle that makes a re-sent mail
    recognisable after a crash."""
    seen: dict[str, str] = {}
    with respx.mock(assert_all_called=True) as router:
        def mailgun(request: httpx.Request) -> httpx.Response:
            part = request.content.split(b"Message-ID: <", 1)[1].split(b">", 1)[0]
            seen["mg"] = part.decode()
            return httpx.Response(200, json={"id": "<mg-1@x>", "message": "Queued"})

        def sendgrid(request: httpx.Request) -> httpx.Response:
            seen["sg"] = orjson.loads(request.content)["headers"]["Message-ID"].strip("<>")
            return httpx.Response(202)

        def postmark(request: httpx.Request) -> httpx.Response:
            headers = {h["Name"]: h["Value"] for h in orjson.loads(request.content)["Headers"]}
            seen["pm"] = headers["Message-ID"].strip("<>")
            return httpx.Response(200, json={"MessageID": "pm-1", "ErrorCode": 0})

        router.post(url__regex=r".*/messages\.mime$").mock(side_effect=mailgun)
        router.post("https://api.sendgrid.com/v3/mail/send").mock(side_effect=sendgrid)
        router.post("https://api.postmarkapp.com/email").mock(side_effect=postmark)
        sent = {}
        for key in ("mg", "sg", "pm"):
            conversation = await hub.start_conversation(key, "customer@example.org", subject="Hi")
            message = await hub.send(conversation.id, text="Hello")
            sent[key] = message.id
            for _ in range(200):
                stored = await hub.store.get_message(message.id)
                if stored is not None and stored.status != "queued":
                    break
                await asyncio.sleep(0.02)
    for key, message_id in sent.items():
        assert seen[key] == f"{message_id}@shop.example", (key, seen)
        stored = await hub.store.get_message(message_id)
        assert stored is not None and f"{message_id}@shop.example" in (stored.external_id or "")
