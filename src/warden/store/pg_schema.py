"""The PostgreSQL schema, as numbered migrations, and the server-side functions.

``warden_schema`` holds one row per migration applied. Opening a database applies the
missing ones in one transaction that first takes a transaction-scoped advisory lock, so
replicas starting together apply each migration once and the others wait, then find
nothing to do. A database whose version is newer than the last migration here is refused
(W-STO-002), never guessed at. Migrations are append-only: a released one is never edited.

Where the SQLite schema keeps hot state in the process, this one keeps it in tables every
replica shares: ``ledgers`` (one budget row per run), ``loop_counts``, ``breakers`` with
their events, and ``audit_heads`` (one head per audit stream). Three functions run the
steps that must not be split between statements:

- ``warden_audit_append`` locks one stream's head row, takes the global number from a
  sequence, composes the record's body exactly as `warden.audit.chain.compose` does (the
  caller passes the JSON pieces it encoded), hashes it with ``sha256`` and moves the head;
- ``warden_breaker_record`` and ``warden_breaker_claim`` apply
  `warden.breakers.record` and `warden.breakers.claim_probe` to an agent's breaker row
  under its lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, LiteralString

from warden.errors import StoreError

if TYPE_CHECKING:
    from warden.store.pg_connection import Connection

__all__ = ["LOCK_ID", "MIGRATIONS", "migrate"]

LOCK_ID = 0x57A2_D3E7_0001
"""The advisory lock migrations run under (any constant no other application uses)."""

_AUDIT_APPEND = r"""
-- Lock the heads of `p_streams` in name order, creating a new stream's head at its
-- genesis value, sha256('warden-audit-v1' || NUL || name). A batch that appends to
-- several streams calls it first, so two replicas' batches never wait for each other's
-- heads in a cycle.
CREATE FUNCTION warden_audit_lock(p_streams text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_heads (stream, stream_seq, hash)
        SELECT s, 0, sha256('\x77617264656e2d61756469742d763100'::bytea || convert_to(s, 'UTF8'))
        FROM unnest(p_streams) AS s
        ORDER BY s
        ON CONFLICT (stream) DO NOTHING;
    PERFORM 1 FROM audit_heads WHERE stream = ANY(p_streams) ORDER BY stream FOR UPDATE;
END
$$;

CREATE FUNCTION warden_audit_append(
    p_stream      text,     -- the stream's name
    p_at          double precision,
    p_kind        text,
    p_head        bytea,    -- {"at":<at>,"data":
    p_data        bytea,    -- canonical JSON of the data
    p_kind_json   bytea,    -- ,"kind":<JSON string>
    p_stream_json bytea     -- ,"stream":<JSON string>
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_stream_seq bigint;
    v_prev       bytea;
    v_seq        bigint;
    v_body       bytea;
    v_hash       bytea;
BEGIN
    -- the stream's head, locked until this transaction ends
    SELECT stream_seq, hash INTO v_stream_seq, v_prev
        FROM audit_heads WHERE stream = p_stream FOR UPDATE;
    IF NOT FOUND THEN  -- a new stream
        PERFORM warden_audit_lock(ARRAY[p_stream]);
        SELECT stream_seq, hash INTO v_stream_seq, v_prev
            FROM audit_heads WHERE stream = p_stream;
    END IF;
    v_seq := nextval('audit_seq');
    v_stream_seq := v_stream_seq + 1;
    v_body := p_head || p_data || p_kind_json
        || convert_to(',"seq":' || v_seq::text, 'UTF8')
        || p_stream_json
        || convert_to(',"stream_seq":' || v_stream_seq::text || ',"v":1}', 'UTF8');
    v_hash := sha256(v_prev || v_body);
    INSERT INTO audit (seq, stream, stream_seq, at, kind, body, hash)
        VALUES (v_seq, p_stream, v_stream_seq, p_at, p_kind, v_body, v_hash);
    UPDATE audit_heads SET stream_seq = v_stream_seq, hash = v_hash WHERE stream = p_stream;
    RETURN v_seq;
END
$$;
"""

_BREAKERS = r"""
CREATE FUNCTION warden_breaker_record(
    p_agent    text,
    p_ok       boolean,
    p_now      double precision,
    p_probe    boolean,
    p_window   double precision,
    p_min      integer,
    p_rate_max double precision,
    p_cooldown double precision
) RETURNS breakers
LANGUAGE plpgsql AS $$
DECLARE
    b            breakers;
    v_gone       integer;
    v_gone_error integer;
BEGIN
    INSERT INTO breakers (agent) VALUES (p_agent) ON CONFLICT (agent) DO NOTHING;
    SELECT * INTO b FROM breakers WHERE agent = p_agent FOR UPDATE;
    -- current_phase: an open breaker past its cooldown is half-open
    IF b.phase = 'open' AND p_now - b.opened_at >= p_cooldown THEN
        b.phase := 'half_open';
        b.probe_out := false;
        INSERT INTO breaker_transitions (agent, at, phase) VALUES (p_agent, p_now, b.phase);
    END IF;
    IF b.phase = 'half_open' THEN
        IF p_probe THEN  -- the probe's outcome closes or reopens it; others do not count
            b.probe_out := false;
            IF p_ok THEN
                DELETE FROM breaker_events WHERE agent = p_agent;
                b.calls := 0;
                b.errors := 0;
                b.phase := 'closed';
            ELSE
                b.opened_at := p_now;
                b.phase := 'open';
            END IF;
            INSERT INTO breaker_transitions (agent, at, phase) VALUES (p_agent, p_now, b.phase);
        END IF;
    ELSE
        INSERT INTO breaker_events (agent, at, ok) VALUES (p_agent, p_now, p_ok);
        b.calls := b.calls + 1;
        b.errors := b.errors + CASE WHEN p_ok THEN 0 ELSE 1 END;
        WITH gone AS (
            DELETE FROM breaker_events WHERE agent = p_agent AND at < p_now - p_window
            RETURNING ok
        )
        SELECT count(*), count(*) FILTER (WHERE NOT ok) INTO v_gone, v_gone_error FROM gone;
        b.calls := b.calls - v_gone;
        b.errors := b.errors - v_gone_error;
        IF b.phase = 'closed' AND b.calls >= p_min AND b.calls > 0
           AND b.errors::double precision / b.calls > p_rate_max THEN
            b.opened_at := p_now;
            b.phase := 'open';
            INSERT INTO breaker_transitions (agent, at, phase) VALUES (p_agent, p_now, b.phase);
        END IF;
    END IF;
    UPDATE breakers SET phase = b.phase, opened_at = b.opened_at, probe_out = b.probe_out,
                        probe_at = b.probe_at, calls = b.calls, errors = b.errors
        WHERE agent = p_agent;
    RETURN b;
END
$$;

CREATE FUNCTION warden_breaker_claim(
    p_agent    text,
    p_now      double precision,
    p_cooldown double precision
) RETURNS TABLE (phase text, opened_at double precision, probe_out boolean,
                 probe_at double precision, claimed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    b breakers;
BEGIN
    SELECT * INTO b FROM breakers WHERE agent = p_agent FOR UPDATE;
    IF NOT FOUND OR b.phase = 'closed' THEN
        RETURN QUERY SELECT 'closed'::text, 0::double precision, false, 0::double precision,
                            false;
        RETURN;
    END IF;
    claimed := false;
    IF b.phase = 'open' AND p_now - b.opened_at >= p_cooldown THEN
        b.phase := 'half_open';
        b.probe_out := false;
        INSERT INTO breaker_transitions (agent, at, phase) VALUES (p_agent, p_now, b.phase);
    END IF;
    IF b.phase = 'half_open' AND NOT (b.probe_out AND p_now - b.probe_at < p_cooldown) THEN
        b.probe_out := true;  -- this caller is the probe
        b.probe_at := p_now;
        claimed := true;
    END IF;
    UPDATE breakers SET phase = b.phase, probe_out = b.probe_out, probe_at = b.probe_at
        WHERE agent = p_agent;
    RETURN QUERY SELECT b.phase, b.opened_at, b.probe_out, b.probe_at, claimed;
END
$$;
"""

MIGRATIONS: tuple[tuple[int, str, LiteralString], ...] = (
    (
        1,
        "runs, actions, approvals, keys, kill switches; shared budgets, loop counts and "
        "breakers; the audit log in streams",
        """
        CREATE TABLE meta (
            key   text PRIMARY KEY,
            value bigint NOT NULL
        );
        INSERT INTO meta (key, value) VALUES ('kill_version', 0);

        CREATE TABLE runs (
            id              text PRIMARY KEY,
            agent           text NOT NULL,
            status          text NOT NULL,
            policy_revision text NOT NULL,
            started_at      double precision NOT NULL,
            ended_at        double precision,
            outcome         text,
            reason          text,
            calls           bigint NOT NULL DEFAULT 0,
            usd             double precision NOT NULL DEFAULT 0,
            tokens          bigint NOT NULL DEFAULT 0,
            started_by      text,
            task            text,
            waited_s        double precision NOT NULL DEFAULT 0
        );
        CREATE INDEX runs_started ON runs (started_at);
        CREATE INDEX runs_status ON runs (status, started_at);

        CREATE TABLE run_states (
            run_id     text PRIMARY KEY,
            state      text NOT NULL,
            escalation text,
            updated_at double precision NOT NULL
        );

        -- a run's budget: what is committed and what decided calls hold; every
        -- reservation is one conditional upsert of this row
        CREATE TABLE ledgers (
            run_id           text PRIMARY KEY,
            started_at       double precision NOT NULL,
            committed_calls  bigint NOT NULL DEFAULT 0,
            committed_usd    double precision NOT NULL DEFAULT 0,
            committed_tokens bigint NOT NULL DEFAULT 0,
            reserved_calls   bigint NOT NULL DEFAULT 0,
            reserved_usd     double precision NOT NULL DEFAULT 0,
            reserved_tokens  bigint NOT NULL DEFAULT 0
        );

        CREATE TABLE loop_counts (
            run_id      text NOT NULL,
            fingerprint text NOT NULL,
            count       integer NOT NULL,
            PRIMARY KEY (run_id, fingerprint)
        );

        CREATE TABLE actions (
            id           text PRIMARY KEY,
            n            bigint GENERATED ALWAYS AS IDENTITY,
            run_id       text NOT NULL,
            agent        text NOT NULL,
            tool         text NOT NULL,
            step         integer,
            state        text NOT NULL,
            outcome      text NOT NULL,
            code         text,
            reasons      text NOT NULL,
            args         text NOT NULL,
            idem_key     text,
            request_hash text NOT NULL,
            approval_id  text,
            owner        text NOT NULL,
            decided_at   double precision NOT NULL,
            finished_at  double precision,
            attempts     integer NOT NULL DEFAULT 0,
            result       text,
            error        text,
            approved     boolean NOT NULL DEFAULT false,
            est_usd      double precision NOT NULL DEFAULT 0,
            est_tokens   bigint NOT NULL DEFAULT 0,
            recorded     timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE UNIQUE INDEX actions_key ON actions (agent, idem_key) WHERE idem_key IS NOT NULL;
        CREATE INDEX actions_run ON actions (run_id, decided_at);
        CREATE INDEX actions_agent ON actions (agent, decided_at);
        CREATE INDEX actions_recorded ON actions (agent, recorded);
        CREATE INDEX actions_open ON actions (state)
            WHERE state IN ('executing', 'awaiting_approval');

        CREATE TABLE approvals (
            id              text PRIMARY KEY,
            action_id       text NOT NULL UNIQUE,
            binding         text NOT NULL,
            policy_revision text NOT NULL,
            roles           text NOT NULL,
            count           integer NOT NULL,
            requested_by    text NOT NULL,
            requested_at    double precision NOT NULL,
            expires_at      double precision NOT NULL,
            status          text NOT NULL,
            used_at         double precision,
            used_recorded   timestamptz
        );
        CREATE INDEX approvals_status ON approvals (status, requested_at);
        CREATE INDEX approvals_used ON approvals (used_recorded) WHERE used_recorded IS NOT NULL;

        CREATE TABLE verdicts (
            approval_id text NOT NULL,
            approver    text NOT NULL,
            role        text NOT NULL,
            approve     boolean NOT NULL,
            reason      text NOT NULL,
            at          double precision NOT NULL,
            PRIMARY KEY (approval_id, approver)
        );

        CREATE TABLE kills (
            scope  text PRIMARY KEY,
            by     text NOT NULL,
            reason text NOT NULL,
            at     double precision NOT NULL
        );

        CREATE TABLE breakers (
            agent     text PRIMARY KEY,
            phase     text NOT NULL DEFAULT 'closed',
            opened_at double precision NOT NULL DEFAULT 0,
            probe_out boolean NOT NULL DEFAULT false,
            probe_at  double precision NOT NULL DEFAULT 0,
            calls     integer NOT NULL DEFAULT 0,
            errors    integer NOT NULL DEFAULT 0
        );
        -- the outcomes inside each breaker's window (calls and errors count them)
        CREATE TABLE breaker_events (
            agent text NOT NULL,
            at    double precision NOT NULL,
            ok    boolean NOT NULL
        );
        CREATE INDEX breaker_events_at ON breaker_events (agent, at);
        CREATE TABLE breaker_transitions (
            agent text NOT NULL,
            at    double precision NOT NULL,
            phase text NOT NULL
        );
        CREATE INDEX breaker_transitions_at ON breaker_transitions (agent, at);

        CREATE TABLE api_keys (
            id          text PRIMARY KEY,
            kind        text NOT NULL,
            name        text NOT NULL,
            secret_hash text NOT NULL,
            tools       text,
            roles       text NOT NULL,
            created_at  double precision NOT NULL,
            created_by  text NOT NULL,
            expires_at  double precision,
            revoked_at  double precision,
            revoked_by  text,
            replaces    text
        );

        -- the audit log: one chain per stream, numbered across streams by a sequence
        -- (a rolled-back append leaves a gap in seq, never in a stream's stream_seq)
        CREATE SEQUENCE audit_seq;
        CREATE TABLE audit_heads (
            stream     text PRIMARY KEY,
            stream_seq bigint NOT NULL,
            hash       bytea NOT NULL
        );
        CREATE TABLE audit (
            seq        bigint PRIMARY KEY,
            stream     text NOT NULL,
            stream_seq bigint NOT NULL,
            at         double precision NOT NULL,
            kind       text NOT NULL,
            body       bytea NOT NULL,
            hash       bytea NOT NULL,
            UNIQUE (stream, stream_seq)
        );
        CREATE TABLE audit_vault (
            seq        bigint NOT NULL,
            path       text NOT NULL,
            kind       text NOT NULL,
            commitment text NOT NULL,
            salt       bytea NOT NULL,
            value      text NOT NULL,
            at         double precision NOT NULL,
            PRIMARY KEY (seq, path)
        );
        CREATE INDEX audit_vault_at ON audit_vault (at);
        """
        + _AUDIT_APPEND
        + _BREAKERS,
    ),
    (
        2,
        "what each decision read (replay), and the policy revisions gates loaded",
        """
        ALTER TABLE actions ADD COLUMN stage text;
        ALTER TABLE actions ADD COLUMN rule_ids text;
        ALTER TABLE actions ADD COLUMN mode text;
        ALTER TABLE actions ADD COLUMN policy_revision text;
        ALTER TABLE actions ADD COLUMN inputs text;
        CREATE INDEX actions_decided ON actions (decided_at);

        CREATE TABLE policy_revisions (
            revision   text PRIMARY KEY,
            sources    text NOT NULL,
            first_seen double precision NOT NULL
        );
        """,
    ),
)

_WARDEN_TABLES = ("actions", "audit", "runs", "ledgers")


def migrate(conn: Connection, *, where: str) -> int:
    """Bring the schema up to date under the advisory lock; returns the version.

    `conn` is a psycopg connection not in a transaction; `where` names the database in
    messages (never with its password).
    """

    def value(query: LiteralString, params: tuple[object, ...] = ()) -> Any:
        row = conn.execute(query, params).fetchone()
        assert row is not None
        return row[0]

    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
        if not value("SELECT to_regclass('warden_schema') IS NOT NULL"):
            clash = value(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename = ANY(%s)",
                (list(_WARDEN_TABLES),),
            )
            if clash:
                raise StoreError(
                    "W-STO-003", f"{where} holds tables Warden uses but no Warden schema version"
                )
            conn.execute(
                "CREATE TABLE warden_schema ("
                " version integer PRIMARY KEY,"
                " title text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        version = int(value("SELECT coalesce(max(version), 0) FROM warden_schema"))
        latest = MIGRATIONS[-1][0]
        if version > latest:
            raise StoreError(
                "W-STO-002",
                f"{where} has schema version {version}; this Warden knows up to {latest}",
            )
        for number, title, sql in MIGRATIONS:
            if number <= version:
                continue
            conn.execute(sql)
            conn.execute(
                "INSERT INTO warden_schema (version, title) VALUES (%s, %s)", (number, title)
            )
            version = number
    return version
