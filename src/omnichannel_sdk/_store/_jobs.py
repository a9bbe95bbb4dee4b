"""The durable outbox's jobs in SQL: queued, leased, retried, handed back, finished."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from ._base import Job
from ._tx import SqlBase, Tx, now_us

__all__ = ["JobSql"]


class JobSql(SqlBase):
    """Jobs (sends, media downloads, follow-ups) for a store that provides the transactions."""

    claim_sql = """UPDATE jobs SET state = 'running', lease_us = $1
        WHERE id IN (SELECT id FROM jobs WHERE (state = 'pending' AND next_us <= $2)
                     OR (state = 'running' AND lease_us < $2) ORDER BY next_us LIMIT $3)
        RETURNING id, kind, channel_key, message_id, attempts, payload"""

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
                          lease_us: int | None = None) -> None:
        await tx.execute(
            "INSERT INTO jobs (id, kind, channel_key, message_id, attempts, next_us, lease_us, "
            "state, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            job.id, job.kind, job.channel_key, job.message_id, job.attempts, next_us, lease_us,
            state, orjson.dumps(job.payload).decode())

    async def enqueue_job(self, job: Job, *, delay: float = 0.0) -> None:
        """Add a job, due after ``delay`` seconds."""
        await self._write(lambda tx: self._insert_job(tx, job, now_us() + int(delay * 1e6)))

    async def claim_jobs(self, limit: int, lease: float) -> list[Job]:
        """Lease up to ``limit`` due jobs (and jobs whose lease ran out) to this process."""
        now = now_us()
        rows = await self._write(lambda tx: tx.fetchall(
            self.claim_sql, now + int(lease * 1e6), now, limit))
        return [Job(id=r[0], kind=r[1], channel_key=r[2], message_id=r[3], attempts=r[4],
                    payload=orjson.loads(r[5])) for r in rows]

    async def retry_job(self, job_id: str, delay: float, error: str) -> None:
        """Release a job to run again after ``delay`` seconds, counting the attempt."""
        await self._write(lambda tx: tx.execute(
            "UPDATE jobs SET state = 'pending', attempts = attempts + 1, next_us = $2, "
            "lease_us = NULL, last_error = $3 WHERE id = $1",
            job_id, now_us() + int(delay * 1e6), error))

    async def release_jobs(self, job_ids: Sequence[str]) -> None:
        """Hand leased jobs back to the outbox at once (a process stopping without finishing
        them), due now, their attempt count unchanged."""

        async def unit(tx: Tx) -> None:
            for job_id in job_ids:
                await tx.execute(
                    "UPDATE jobs SET state = 'pending', lease_us = NULL, next_us = $2 "
                    "WHERE id = $1 AND state = 'running'", job_id, now_us())

        await self._write(unit)

    async def finish_job(self, job_id: str) -> None:
        """Remove a completed job."""
        await self._write(lambda tx: tx.execute("DELETE FROM jobs WHERE id = $1", job_id))
