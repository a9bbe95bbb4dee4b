"""The store's schema as numbered upgrade steps, and the version it records.

Each step is a list of statements (``{blob}`` stands for the backend's bytes type) run in one
transaction with the ``schema_version`` row update, so a database is always at a whole step.
A store opening a database applies every step above the recorded version, in order, keeping every
row; a database recorded at a version above :data:`SCHEMA_VERSION` was written by a newer release
and is refused. Never edit a released step: append a new one.
"""

from __future__ import annotations

from .._errors import ConfigurationError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "VERSION_TABLE", "newer_database_error"]

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
"""One row: the last step applied. Databases of 0.1.0 had no such table (their step is 1)."""

MIGRATIONS: list[list[str]] = [
    # 1 — the schema of 0.1.0
    [
        """CREATE TABLE IF NOT EXISTS messages (
            id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, channel_key TEXT NOT NULL,
            external_id TEXT, direction TEXT NOT NULL, status TEXT NOT NULL,
            created_us BIGINT NOT NULL, data TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS messages_conv ON messages (conversation_id, id)",
        """CREATE TABLE IF NOT EXISTS message_refs (
            channel_key TEXT NOT NULL, external_id TEXT NOT NULL, message_id TEXT NOT NULL,
            PRIMARY KEY (channel_key, external_id))""",
        """CREATE TABLE IF NOT EXISTS conversations (
            id TEXT PRIMARY KEY, channel_key TEXT NOT NULL, thread_key TEXT NOT NULL,
            contact_id TEXT NOT NULL, status TEXT NOT NULL, updated_us BIGINT NOT NULL,
            data TEXT NOT NULL)""",
        """CREATE UNIQUE INDEX IF NOT EXISTS conversations_open_thread
            ON conversations (channel_key, thread_key) WHERE status = 'open'""",
        "CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated_us)",
        "CREATE INDEX IF NOT EXISTS conversations_contact ON conversations (contact_id)",
        "CREATE TABLE IF NOT EXISTS contacts (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS contact_addresses (
            channel TEXT NOT NULL, handle TEXT NOT NULL, contact_id TEXT NOT NULL,
            PRIMARY KEY (channel, handle))""",
        """CREATE TABLE IF NOT EXISTS raw_payloads (
            id TEXT PRIMARY KEY, channel_key TEXT NOT NULL, received_us BIGINT NOT NULL,
            method TEXT NOT NULL, url TEXT NOT NULL, headers TEXT NOT NULL, body {blob} NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS dead_letters (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, channel_key TEXT NOT NULL, adapter TEXT NOT NULL,
            error TEXT NOT NULL, created_us BIGINT NOT NULL, replayed_us BIGINT, raw_id TEXT,
            message_id TEXT, fragment TEXT)""",
        """CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, channel_key TEXT NOT NULL, message_id TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, next_us BIGINT NOT NULL, lease_us BIGINT,
            state TEXT NOT NULL, last_error TEXT, payload TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, next_us)",
        """CREATE TABLE IF NOT EXISTS kv (
            key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_us BIGINT)""",
    ],
    # 2 — the durable event feed (issue 15): the event log (``seq`` is given when a reader
    # sequences committed events, so it only grows in commit order), each consumer's resume
    # point, the events leased to a consumer's processes, and the sequence counter
    [
        """CREATE TABLE IF NOT EXISTS feed_events (
            id TEXT NOT NULL, seq BIGINT, conversation_id TEXT, type TEXT NOT NULL,
            at_us BIGINT NOT NULL, data TEXT NOT NULL)""",
        # partial indexes only: an append touches one small index, numbering moves rows to the other
        "CREATE UNIQUE INDEX IF NOT EXISTS feed_events_seq ON feed_events (seq) WHERE seq IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS feed_events_new ON feed_events (id) WHERE seq IS NULL",
        """CREATE TABLE IF NOT EXISTS feed_consumers (
            name TEXT PRIMARY KEY, acked BIGINT NOT NULL, created_us BIGINT NOT NULL,
            seen_us BIGINT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS feed_leases (
            name TEXT NOT NULL, seq BIGINT NOT NULL, conversation_id TEXT, owner TEXT NOT NULL,
            lease_us BIGINT NOT NULL, acked INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (name, seq))""",
        "CREATE TABLE IF NOT EXISTS feed_sequence (last BIGINT NOT NULL)",
        "INSERT INTO feed_sequence (last) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM feed_sequence)",
    ],
    # 3 — reversible contact merges (issues 11 and 18): merge proposals get a table of their
    # own (those 0.1 kept in kv move over, still open), each merge is recorded with what it
    # moved so it can be undone, and addresses are found by handle across channels (the same
    # phone number on SMS and WhatsApp proposes a merge)
    [
        """CREATE TABLE IF NOT EXISTS merge_proposals (
            id TEXT PRIMARY KEY, status TEXT NOT NULL, data TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS merge_proposals_status ON merge_proposals (status)",
        """INSERT INTO merge_proposals (id, status, data)
            SELECT substr(key, 16), 'open', value FROM kv
            WHERE substr(key, 1, 15) = 'merge-proposal:' ON CONFLICT DO NOTHING""",
        "DELETE FROM kv WHERE substr(key, 1, 15) = 'merge-proposal:'",
        """CREATE TABLE IF NOT EXISTS contact_merges (
            id TEXT PRIMARY KEY, kept_id TEXT NOT NULL, absorbed_id TEXT NOT NULL,
            merged_us BIGINT NOT NULL, unmerged_us BIGINT, data TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS contact_merges_kept ON contact_merges (kept_id)",
        "CREATE INDEX IF NOT EXISTS contact_merges_absorbed ON contact_merges (absorbed_id)",
        "CREATE INDEX IF NOT EXISTS contact_addresses_handle ON contact_addresses (handle)",
    ],
    # 4 — a conversation's reply window in columns (issue 19), so that an inbound message moves
    # it with a small update instead of rewriting the conversation's JSON. When
    # ``last_inbound_us`` is set the two columns hold ``last_inbound_at`` and
    # ``window_expires_at``; when it is NULL (every row written before this step) the JSON does,
    # so no row needs converting.
    [
        "ALTER TABLE conversations ADD COLUMN last_inbound_us BIGINT",
        "ALTER TABLE conversations ADD COLUMN window_expires_us BIGINT",
    ],
    # 5 — crash recovery of sends (issue 11): the process identity holding a job's lease, and
    # when a vendor call of the job started without its outcome being recorded yet
    [
        "ALTER TABLE jobs ADD COLUMN owner TEXT",
        "ALTER TABLE jobs ADD COLUMN attempt_us BIGINT",
        "ALTER TABLE jobs ADD COLUMN vendor_attempts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN possible_duplicates INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner) WHERE state = 'running'",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this release writes."""


def newer_database_error(found: int) -> ConfigurationError:
    """The error for a database written by a newer release."""
    return ConfigurationError(
        f"the database is at schema version {found}, newer than this release supports "
        f"({SCHEMA_VERSION}): upgrade omnichannel-sdk, or open a database of this release",
        field="store")
