"""The SQLite schema, as numbered migrations.

``PRAGMA user_version`` holds the number of the last migration applied. Opening a
database applies the missing ones in order, each in its own transaction; a database
whose version is newer than the last migration here is refused (W-STO-002), never
guessed at. Migrations are append-only: a released one is never edited.
"""

from __future__ import annotations

import sqlite3

from warden.errors import StoreError

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "runs, actions, approvals, kill switches, breakers, audit log",
        """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        INSERT INTO meta (key, value) VALUES ('kill_version', '0');

        CREATE TABLE runs (
            id              TEXT PRIMARY KEY,
            agent           TEXT NOT NULL,
            status          TEXT NOT NULL,
            policy_revision TEXT NOT NULL,
            started_at      REAL NOT NULL,
            ended_at        REAL,
            outcome         TEXT,
            reason          TEXT,
            calls           INTEGER NOT NULL DEFAULT 0,
            usd             REAL NOT NULL DEFAULT 0,
            tokens          INTEGER NOT NULL DEFAULT 0,
            started_by      TEXT
        );
        CREATE INDEX runs_started ON runs (started_at);

        CREATE TABLE actions (
            id           TEXT PRIMARY KEY,
            run_id       TEXT NOT NULL,
            agent        TEXT NOT NULL,
            tool         TEXT NOT NULL,
            step         INTEGER,
            state        TEXT NOT NULL,
            outcome      TEXT NOT NULL,
            code         TEXT,
            reasons      TEXT NOT NULL,
            args         TEXT NOT NULL,
            idem_key     TEXT,
            request_hash TEXT NOT NULL,
            approval_id  TEXT,
            owner        TEXT NOT NULL,
            decided_at   REAL NOT NULL,
            finished_at  REAL,
            attempts     INTEGER NOT NULL DEFAULT 0,
            result       TEXT,
            error        TEXT,
            approved     INTEGER NOT NULL DEFAULT 0,
            est_usd      REAL NOT NULL DEFAULT 0,
            est_tokens   INTEGER NOT NULL DEFAULT 0
        );
        CREATE UNIQUE INDEX actions_key ON actions (agent, idem_key) WHERE idem_key IS NOT NULL;
        CREATE INDEX actions_run ON actions (run_id, decided_at);
        CREATE INDEX actions_agent ON actions (agent, decided_at);
        CREATE INDEX actions_open ON actions (state)
            WHERE state IN ('executing', 'awaiting_approval');

        CREATE TABLE approvals (
            id              TEXT PRIMARY KEY,
            action_id       TEXT NOT NULL UNIQUE,
            binding         TEXT NOT NULL,
            policy_revision TEXT NOT NULL,
            roles           TEXT NOT NULL,
            count           INTEGER NOT NULL,
            requested_by    TEXT NOT NULL,
            requested_at    REAL NOT NULL,
            expires_at      REAL NOT NULL,
            status          TEXT NOT NULL,
            used_at         REAL
        );
        CREATE INDEX approvals_status ON approvals (status, requested_at);

        CREATE TABLE verdicts (
            approval_id TEXT NOT NULL,
            approver    TEXT NOT NULL,
            role        TEXT NOT NULL,
            approve     INTEGER NOT NULL,
            reason      TEXT NOT NULL,
            at          REAL NOT NULL,
            PRIMARY KEY (approval_id, approver)
        );

        CREATE TABLE kills (
            scope  TEXT PRIMARY KEY,
            by     TEXT NOT NULL,
            reason TEXT NOT NULL,
            at     REAL NOT NULL
        );

        CREATE TABLE breakers (
            agent TEXT PRIMARY KEY,
            state TEXT NOT NULL
        );

        CREATE TABLE audit (
            seq        INTEGER PRIMARY KEY,
            stream     TEXT NOT NULL,
            stream_seq INTEGER NOT NULL,
            at         REAL NOT NULL,
            kind       TEXT NOT NULL,
            body       BLOB NOT NULL,
            hash       BLOB NOT NULL,
            UNIQUE (stream, stream_seq)
        );

        CREATE TABLE audit_vault (
            seq        INTEGER NOT NULL,
            path       TEXT NOT NULL,
            kind       TEXT NOT NULL,
            commitment TEXT NOT NULL,
            salt       BLOB NOT NULL,
            value      TEXT NOT NULL,
            at         REAL NOT NULL,
            PRIMARY KEY (seq, path)
        );
        CREATE INDEX audit_vault_at ON audit_vault (at);
        """,
    ),
    (
        2,
        "the runner's conversations and escalation packets; task keys; time spent waiting",
        """
        ALTER TABLE runs ADD COLUMN waited_s REAL NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN task TEXT;

        CREATE TABLE run_states (
            run_id     TEXT PRIMARY KEY,
            state      TEXT NOT NULL,
            escalation TEXT,
            updated_at REAL NOT NULL
        );
        """,
    ),
    (
        3,
        "API keys and operator tokens (hashes only)",
        """
        CREATE TABLE api_keys (
            id          TEXT PRIMARY KEY,
            kind        TEXT NOT NULL,
            name        TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            tools       TEXT,
            roles       TEXT NOT NULL,
            created_at  REAL NOT NULL,
            created_by  TEXT NOT NULL,
            expires_at  REAL,
            revoked_at  REAL,
            revoked_by  TEXT,
            replaces    TEXT
        );
        """,
    ),
    (
        4,
        "what each decision read (replay), and the policy revisions gates loaded",
        """
        ALTER TABLE actions ADD COLUMN stage TEXT;
        ALTER TABLE actions ADD COLUMN rule_ids TEXT;
        ALTER TABLE actions ADD COLUMN mode TEXT;
        ALTER TABLE actions ADD COLUMN policy_revision TEXT;
        ALTER TABLE actions ADD COLUMN inputs TEXT;
        CREATE INDEX actions_decided ON actions (decided_at);

        CREATE TABLE policy_revisions (
            revision   TEXT PRIMARY KEY,
            sources    TEXT NOT NULL,
            first_seen REAL NOT NULL
        );
        """,
    ),
)


def migrate(conn: sqlite3.Connection, *, path: str) -> int:
    """Bring the schema up to date; returns the version. The connection is in autocommit."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise StoreError("W-STO-003", f"{path} is not a Warden database: {exc}") from None
    latest = MIGRATIONS[-1][0]
    if version > latest:
        raise StoreError(
            "W-STO-002",
            f"{path} has schema version {version}; this Warden knows up to {latest}",
        )
    if version == 0:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[
            0
        ]
        if tables:
            raise StoreError("W-STO-003", f"{path} holds tables but no Warden schema version")
    for number, _title, sql in MIGRATIONS:
        if number <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = number
    return version


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]
