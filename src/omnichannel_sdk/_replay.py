"""Replaying dead letters: inbound payloads parsed again, failed sends queued again."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ._errors import NotFoundError, OmnichannelError, PayloadError
from ._ids import new_id
from ._models import DeadLetter
from ._store import Job
from ._webhook import WebhookRequest

if TYPE_CHECKING:
    from ._hub import Hub

__all__ = ["ReplayReport", "replay_dead_letters"]


class ReplayReport:
    """What ``hub.replay`` did: ids replayed and ids still failing (with why)."""

    def __init__(self) -> None:
        self.replayed: list[str] = []
        self.failed: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<ReplayReport replayed={len(self.replayed)} failed={len(self.failed)}>"


async def replay_dead_letters(
    hub: Hub, letter_ids: Sequence[str] | None = None,
    progress: Callable[[DeadLetter, bool], None] | None = None,
) -> ReplayReport:
    """Replay every dead letter not yet replayed (or ``letter_ids``); see ``Hub.replay``."""
    report = ReplayReport()
    letters = await hub.store.list_dead_letters()
    if letter_ids is not None:
        wanted = set(letter_ids)
        letters = [x for x in letters if x.id in wanted]
    for letter in letters:
        try:
            await _replay_one(hub, letter)
        except Exception as exc:  # noqa: BLE001 - reported per letter
            report.failed[letter.id] = f"{type(exc).__name__}: {exc}"
            ok = False
        else:
            await hub.store.mark_replayed(letter.id)
            report.replayed.append(letter.id)
            ok = True
        if progress is not None:
            progress(letter, ok)
    return report


async def _replay_one(hub: Hub, letter: DeadLetter) -> None:
    adapter = hub.adapter(letter.channel_key)
    store = hub.store
    if letter.kind == "inbound" and letter.raw_id:
        raw = await store.get_raw(letter.raw_id)
        if raw is None:
            raise NotFoundError(f"raw payload {letter.raw_id} is gone")
        request = WebhookRequest(raw.method, raw.url, raw.headers, raw.body)
        result = await adapter.complete(request, adapter.parse(request))
        if result.failures:
            raise PayloadError("; ".join(f.error for f in result.failures), adapter=adapter.name)
        # items stored the first time are de-duplicated; only what failed is new
        await hub._store_result(adapter, result, None, raw.received_at)
        return
    if not letter.message_id:
        raise OmnichannelError("nothing to replay in this dead letter")
    message = await store.get_message(letter.message_id)
    if message is None:
        raise NotFoundError(f"message {letter.message_id} is gone")
    if letter.kind == "inbound":  # a media download that failed
        for index, part in enumerate(message.parts):
            if part.type == "media" and not part.blob_key and part.url:
                await store.enqueue_job(Job(id=new_id("job"), kind="media",
                                            channel_key=letter.channel_key,
                                            message_id=message.id, payload={"part": index}))
        hub.delivery.poke()
        return
    conversation = await store.get_conversation(message.conversation_id)
    rendered = hub._render(adapter, message.parts)
    await store.update_message(message.model_copy(update={"status": "queued", "error": None}))
    await store.enqueue_job(Job(
        id=new_id("job"), kind="send", channel_key=letter.channel_key, message_id=message.id,
        payload={"parts": [p.model_dump(mode="json") for p in rendered.parts],
                 "contact_id": conversation.contact_id if conversation else None}))
    hub.delivery.poke()
