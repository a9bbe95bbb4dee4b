"""The durable outbox's jobs in SQL: queued, leased, retried, handed back, finished."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from .._ids import new_id
from ._base import Job
from ._tx import SqlBase, Tx, from_us, now_us

IDENTITY_SLOTS = 64
"""How many identities ``base``, ``base#2``… a store tries before taking a one-off one."""

__all__ = ["ATTEMPT_STARTED", "JobSql", "claim_statement"]

ATTEMPT_STARTED = (
    # the earliest call of unknown outcome is kept: a reconcile looks from there
    "UPDATE jobs SET attempt_us = COALESCE(attempt_us, $2), "
    "vendor_attempts = vendor_attempts + 1, "
    "possible_duplicates = possible_duplicates + $3 WHERE id = $1")
"""A job's vendor call starts: ``$1`` the job, ``$2`` now (µs), ``$3`` 1 for a possible
duplicate (an earlier call's outcome unknown), else 0."""


def claim_statement(skip: str = "", lock: str = "") -> str:
    """The statement that leases due jobs (and jobs whose lease ran out): ``$1`` the new
    lease's end, ``$2`` now, ``$3`` how many, ``$4`` the owner. ``skip``: a condition on the
    jobs left alone (the database's way to leave the sends of the channel keys in ``$5``);
    ``lock``: how the chosen rows are locked."""
    return f"""UPDATE jobs SET state = 'running', lease_us = $1, owner = $4
        WHERE id IN (SELECT id FROM jobs WHERE ((state = 'pending' AND next_us <= $2)
                     OR (state = 'running' AND lease_us < $2)){skip}
                     ORDER BY next_us LIMIT $3{lock})
        RETURNING id, kind, channel_key, message_id, attempts, payload, attempt_us,
                  vendor_attempts, possible_duplicates"""  # noqa: S608 (the store's own text)


class JobSql(SqlBase):
    """Jobs (sends, media downloads, follow-ups) for a store that provides the transactions."""

    claim_sql = claim_statement()

    claim_skipping_sql = claim_statement(
        " AND NOT (kind = 'send' AND channel_key IN (SELECT value FROM json_each($5)))")
    """:attr:`claim_sql` leaving alone the sends of the channel keys in ``$5``."""

    identity: str | None = None
    """The process identity this store's leases carry (see :meth:`hold_identity`)."""

    async def pending_jobs(self) -> int:
        """How many jobs are waiting or running."""
        row = await self._read(lambda tx: tx.fetchone("SELECT count(*) FROM jobs"))
        return int(row[0]) if row else 0

    async def outbox_stats(self) -> list[tuple[str, str, int, str]]:
        """Per channel key and job kind: the jobs waiting or running, and the oldest one's id
        (ids sort by creation time, so the age needs no column of its own)."""
        rows = await self._read(lambda tx: tx.fetchall(
            "SELECT channel_key, kind, count(*), min(id) FROM jobs GROUP BY channel_key, kind"))
        return [(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]

    async def _insert_job(self, tx: Tx, job: Job, next_us: int, *, state: str = "pending",
                          lease_us: int | None = None, owner: str | None = None,
                          attempt_us: int | None = None) -> None:
        """Insert ``job``; ``attempt_us``: its first vendor call starts then (what
        :meth:`begin_attempt` records, in the insert)."""
        await tx.execute(
            "INSERT INTO jobs (id, kind, channel_key, message_id, attempts, next_us, lease_us, "
            "state, payload, owner, attempt_us, vendor_attempts) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            job.id, job.kind, job.channel_key, job.message_id, job.attempts, next_us, lease_us,
            state, orjson.dumps(job.payload).decode(), owner, attempt_us,
            0 if attempt_us is None else 1)

    async def enqueue_job(self, job: Job, *, delay: float = 0.0) -> None:
        """Add a job, due after ``delay`` seconds."""
        await self._write(lambda tx: self._insert_job(tx, job, now_us() + int(delay * 1e6)))

    async def claim_jobs(self, limit: int, lease: float, *,
                         skip_channels: Sequence[str] = ()) -> list[Job]:
        """Lease up to ``limit`` due jobs (and jobs whose lease ran out) to this process;
        ``skip_channels``: leave the sends of these channel keys to other processes (this
        one's line for them is long already)."""
        now = now_us()
        args: tuple[object, ...]
        sql, args = self.claim_sql, ()
        if skip_channels:
            sql, args = self.claim_skipping_sql, (self._key_list(skip_channels),)
        rows = await self._write(lambda tx: tx.fetchall(
            sql, now + int(lease * 1e6), now, limit, self.identity, *args))
        return [Job(id=r[0], kind=r[1], channel_key=r[2], message_id=r[3], attempts=r[4],
                    payload=orjson.loads(r[5]), attempt_started_at=from_us(r[6]),
                    vendor_attempts=int(r[7] or 0), possible_duplicates=int(r[8] or 0))
                for r in rows]

    def _key_list(self, keys: Sequence[str]) -> object:
        """``keys`` as :attr:`claim_skipping_sql` takes them (SQLite: a JSON array)."""
        return orjson.dumps(list(keys)).decode()

    async def retry_job(self, job_id: str, delay: float, error: str, *,
                        uncertain: bool = False) -> None:
        """Release a job to run again after ``delay`` seconds, counting the attempt.

        ``uncertain``: the vendor call may have reached the vendor (a timeout), so the job keeps
        its "attempt started" record for the next try to reconcile."""
        await self._write(lambda tx: tx.execute(
            "UPDATE jobs SET state = 'pending', attempts = attempts + 1, next_us = $2, "
            "lease_us = NULL, last_error = $3, "
            "attempt_us = CASE WHEN $4 THEN attempt_us ELSE NULL END WHERE id = $1",
            job_id, now_us() + int(delay * 1e6), error, uncertain))

    async def begin_attempt(self, job_id: str, *, possible_duplicate: bool = False) -> None:
        """Record, durably and before the vendor is called, that a vendor call of the job
        starts now (a process recovering the job then knows it may have reached the vendor);
        ``possible_duplicate``: an earlier call of unknown outcome may have reached it too."""
        await self._write(lambda tx: tx.execute(
            ATTEMPT_STARTED, job_id, now_us(), 1 if possible_duplicate else 0))

    async def hold_identity(self, base: str) -> str:
        """Take a process identity derived from ``base`` that no live process holds: ``base``
        itself, else ``base#2``, ``base#3``… (held until :meth:`close`, by a lock the
        operating system or the database drops when the process dies). Leases this store
        takes from then on carry it. Where no lock can be had, a one-off identity nobody
        will ever take over. Returns it."""
        if self.identity is not None:
            return self.identity
        for n in range(1, IDENTITY_SLOTS + 1):
            name = base if n == 1 else f"{base}#{n}"
            if await self._lock_identity(name):
                self.identity = name
                return name
        self.identity = f"{base}#{new_id('once')}"
        return self.identity

    async def _lock_identity(self, name: str) -> bool:
        """Hold the lock of identity ``name`` if no live process does; whether held."""
        return False

    async def take_over_leases(self) -> int:
        """Make the jobs leased to this process's identity by a previous (dead) holder due
        now; how many. Only safe once :meth:`hold_identity` succeeded: no live process has
        the identity, so whoever leased those jobs under it is gone."""
        if self.identity is None:
            return 0
        return await self._write(lambda tx: tx.execute(
            "UPDATE jobs SET lease_us = 0 WHERE state = 'running' AND owner = $1 "
            "AND lease_us >= $2", self.identity, now_us()))

    async def release_jobs(self, job_ids: Sequence[str]) -> None:
        """Hand leased jobs back to the outbox at once (a process stopping without finishing
        them), due now, their attempt count unchanged."""

        async def unit(tx: Tx) -> None:
            for job_id in job_ids:
                await tx.execute(
                    "UPDATE jobs SET state = 'pending', lease_us = NULL, next_us = $2 "
                    "WHERE id = $1 AND state = 'running'", job_id, now_us())

        await self._write(unit)

    async def renew_leases(self, job_ids: Sequence[str], lease: float) -> int:
        """Lease ``job_ids`` to this process for ``lease`` seconds from now, those still
        running under its identity; how many. A job waiting in a busy process's line (or a
        vendor call that takes long) stays its own instead of being taken over, and sent a
        second time, by another process once the first lease runs out. A job another process
        took over meanwhile stays that one's."""
        if not job_ids:
            return 0
        until = now_us() + int(lease * 1e6)
        ids = list(job_ids)
        return await self._write(lambda tx: self._renew(tx, ids, until))

    async def _renew(self, tx: Tx, job_ids: list[str], until: int) -> int:
        renewed = 0
        for job_id in job_ids:  # (in process: a statement a job costs no round trip)
            renewed += await tx.execute(
                "UPDATE jobs SET lease_us = $1 WHERE id = $2 AND state = 'running' "
                "AND owner IS $3", until, job_id, self.identity)
        return renewed

    async def finish_job(self, job_id: str) -> None:
        """Remove a completed job."""
        await self._write(lambda tx: tx.execute("DELETE FROM jobs WHERE id = $1", job_id))
