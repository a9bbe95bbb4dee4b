"""Signed visitor sessions."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omnichannel_webchat import Session, new_visitor_id, peek_session, sign_session, verify_session

from omnichannel_sdk import SignatureError

SECRET = "session-test-secret-000"


def make(**kw: object) -> Session:
    now = int(time.time())
    base = {"visitor": new_visitor_id(), "channel_key": "web", "expires": now + 60, "issued": now}
    base.update(kw)
    return Session(**base)  # type: ignore[arg-type]


def test_round_trip_keeps_everything() -> None:
    session = make(name="李雷", email="lilei@example.cn", locale="zh-CN")
    assert verify_session(sign_session(session, SECRET), SECRET, "web") == session


def test_renewed_extends_and_changes() -> None:
    session = make(expires=int(time.time()) + 5)
    fresh = session.renewed(3600, email="a@b.example")
    assert fresh.visitor == session.visitor and fresh.email == "a@b.example"
    assert fresh.expires > session.expires


@pytest.mark.parametrize("why", ["secret", "expired", "channel", "payload", "version", "empty"])
def test_refused(why: str) -> None:
    session = make()
    token = sign_session(session, SECRET)
    secret, key = SECRET, "web"
    if why == "secret":
        secret = "another-secret-00000"
    elif why == "expired":
        token = sign_session(make(expires=int(time.time()) - 1), SECRET)
    elif why == "channel":
        key = "other"
    elif why == "payload":
        prefix, _, sig = token.split(".")
        token = f"{prefix}.{sign_session(make(), SECRET).split('.')[1]}.{sig}"
    elif why == "version":
        token = "wc0" + token[3:]
    else:
        token = ""
    with pytest.raises(SignatureError) as info:
        verify_session(token, secret, key)
    assert SECRET not in str(info.value)


def test_visitor_ids_are_unguessable() -> None:
    ids = {new_visitor_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 22 for i in ids)


def test_peek_reads_without_checking() -> None:
    session = make(expires=1)
    assert peek_session(sign_session(session, "whatever-secret-x")).visitor == session.visitor


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.from_regex(r"wc1\.[A-Za-z0-9_\-]{0,80}\.[A-Za-z0-9_\-]{0,50}")))
def test_arbitrary_tokens_only_raise_signature_error(token: str) -> None:
    with pytest.raises(SignatureError):
        verify_session(token, SECRET, "web")
