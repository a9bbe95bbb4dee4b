"""``claim_jobs(..., skip_channels=...)`` leaves the sends of busy channels to other processes
and claims everything else, on SQLite and PostgreSQL; ``renew_leases`` keeps a process's own
jobs only."""

from __future__ import annotations

import pytest

from omnichannel_sdk._ids import new_id
from omnichannel_sdk._store import Job, SqlStore

from .test_store import store as store  # the fixture, both databases

pytestmark = pytest.mark.anyio


async def _jobs(store: SqlStore) -> dict[str, Job]:
    jobs = {name: Job(id=new_id("job"), kind=kind, channel_key=key, message_id=None)
            for name, kind, key in [("busy send", "send", "sms"), ("busy media", "media", "sms"),
                                    ("other send", "send", "chat"), ("odd key", "send", "it's")]}
    for job in jobs.values():
        await store.enqueue_job(job)
    return jobs


async def test_a_claim_leaves_the_sends_of_the_skipped_channels(store: SqlStore) -> None:
    jobs = await _jobs(store)
    claimed = await store.claim_jobs(10, 60, skip_channels=["sms", "it's"])
    assert {j.id for j in claimed} == {jobs["busy media"].id, jobs["other send"].id}
    rest = await store.claim_jobs(10, 60)
    assert {j.id for j in rest} == {jobs["busy send"].id, jobs["odd key"].id}


async def test_no_skipped_channel_claims_as_before(store: SqlStore) -> None:
    jobs = await _jobs(store)
    claimed = await store.claim_jobs(10, 60, skip_channels=[])
    assert {j.id for j in claimed} == {j.id for j in jobs.values()}


async def test_renew_leases_keeps_only_this_identity_s_running_jobs(store: SqlStore) -> None:
    await store.hold_identity("renewer")
    jobs = await _jobs(store)
    claimed = await store.claim_jobs(2, 60)
    assert len(claimed) == 2
    ids = [j.id for j in jobs.values()]  # two of them still pending: not renewed
    assert await store.renew_leases(ids, 60) == 2
    assert await store.renew_leases([], 60) == 0
    await store.finish_job(claimed[0].id)
    assert await store.renew_leases(ids, 60) == 1
    store.identity = "someone-else"  # (as another process would see them)
    assert await store.renew_leases(ids, 60) == 0
