"""Replaying dead letters: inbound payloads parsed again, failed sends queued again."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pluggy

from ._channels import ChannelRegistry
from ._delivery import Delivery
from ._errors import NotFoundError, OmnichannelError, PayloadError
from ._ids import new_id
from ._inbound import Inbound
from ._models import DeadLetter
from ._outbound import render
from ._store import Job, SqlStore
from ._webhook import WebhookRequest

__all__ = ["Replayer", "ReplayReport"]


class ReplayReport:
    """What ``hub.replay`` did: ids replayed and ids still failing (with why)."""

    def __init__(self) -> None:
        self.replayed: list[str] = []
        self.failed: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<ReplayReport replayed={len(self.replayed)} failed={len(self.failed)}>"


class Replayer:
    """Processes dead letters again: its collaborators are the hub's parts, never the hub."""

    def __init__(self, store: SqlStore, channels: ChannelRegistry, pm: pluggy.PluginManager,
                 inbound: Inbound, delivery: Delivery) -> None:
        self.store = store
        self.channels = channels
        self.pm = pm
        self.inbound = inbound
        self.delivery = delivery

    async def replay(
        self, letter_ids: Sequence[str] | None = None,
        progress: Callable[[DeadLetter, bool], None] | None = None,
    ) -> ReplayReport:
        """Replay every dead letter not yet replayed (or ``letter_ids``); see ``Hub.replay``."""
        report = ReplayReport()
        letters = await self.store.list_dead_letters()
        if letter_ids is not None:
            wanted = set(letter_ids)
            letters = [x for x in letters if x.id in wanted]
        for letter in letters:
            try:
                await self._replay_one(letter)
            except Exception as exc:  # noqa: BLE001 - reported per letter
                report.failed[letter.id] = f"{type(exc).__name__}: {exc}"
                ok = False
            else:
                await self.store.mark_replayed(letter.id)
                report.replayed.append(letter.id)
                ok = True
            if progress is not None:
                progress(letter, ok)
        return report

    async def _replay_one(self, letter: DeadLetter) -> None:
        store = self.store
        if letter.kind == "webhook":
            from ._api._webhooks import replay_webhook

            await replay_webhook(store, self.delivery, letter)
            return
        adapter = self.channels.adapter(letter.channel_key)
        if letter.kind == "inbound" and letter.raw_id:
            raw = await store.get_raw(letter.raw_id)
            if raw is None:
                raise NotFoundError(f"raw payload {letter.raw_id} is gone")
            request = WebhookRequest(raw.method, raw.url, raw.headers, raw.body)
            result = await adapter.complete(request, await adapter.parse_request(request))
            if result.failures:
                raise PayloadError("; ".join(f.error for f in result.failures),
                                   adapter=adapter.name)
            # items stored the first time are de-duplicated; only what failed is new
            await self.inbound.store_result(adapter, result, None, raw.received_at)
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
            self.delivery.poke()
            return
        conversation = await store.get_conversation(message.conversation_id)
        rendered = render(self.pm, adapter, message.parts)
        await store.update_message(message.model_copy(update={"status": "queued", "error": None}))
        await store.enqueue_job(Job(
            id=new_id("job"), kind="send", channel_key=letter.channel_key, message_id=message.id,
            payload={"parts": [p.model_dump(mode="json") for p in rendered.parts],
                     "contact_id": conversation.contact_id if conversation else None}))
        self.delivery.poke()
