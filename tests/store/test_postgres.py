"""PostgreSQL as the shared store: two `PostgresStore` instances on one database stand for
two replicas, and whatever they do at once, budgets, keys, approvals, kill switches and
the audit chain stay right. Failures surface as W-STO codes, and the store recovers."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.store.conftest import postgres_database
from tests.store.test_contract import action, outcome, request
from warden.approvals import ApprovalStatus, check_verdict
from warden.audit.verify import verify_rows
from warden.budgets import Amounts, BudgetBreach, BudgetLimits, Reservation
from warden.errors import ApprovalError, AuditError, AuthError, StoreError
from warden.history import ActionRecord
from warden.identity import KeyKind, new_key
from warden.runs import ActionState
from warden.store.pg_schema import MIGRATIONS
from warden.store.postgres import PostgresStore
from warden.store.protocol import NewAction
from warden.testing.postgres import set_read_only, terminate_sessions

T = TypeVar("T")
THREADS = 64


@pytest.fixture
def url() -> str:
    return postgres_database()


@pytest.fixture
def replicas(url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    a, b = PostgresStore(url), PostgresStore(url)
    yield a, b
    a.close()
    b.close()


def at_once(n: int, fn: Callable[[int], T]) -> list[T]:
    """Call ``fn(0) ... fn(n - 1)`` from `n` threads released together."""
    barrier = threading.Barrier(n)

    def go(i: int) -> T:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(go, range(n)))


def test_64_threads_on_two_replicas_never_overspend_a_budget(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    limits = BudgetLimits(max_tool_calls=10, max_usd=1.0)
    held = at_once(
        THREADS,
        lambda i: replicas[i % 2].reserve("run_1", limits, Amounts(calls=1, usd=0.05), 1.0),
    )
    won = [h for h in held if isinstance(h, Reservation)]
    refused = [h for h in held if isinstance(h, BudgetBreach)]
    assert (len(won), len(refused)) == (10, THREADS - 10)
    assert {b.code for b in refused} == {"W-BUD-001"}
    # the other replica settles what this one reserved: the row, not a process, holds it
    at_once(10, lambda i: replicas[(i + 1) % 2].settle(won[i], Amounts(calls=1, usd=0.01)))
    ledger = replicas[0].ledger("run_1")
    assert ledger is not None
    assert (ledger.committed_calls, ledger.reserved_calls) == (10, 0)
    assert (ledger.committed_usd, ledger.reserved_usd) == pytest.approx((0.1, 0.0), abs=1e-9)
    again = replicas[1].reserve("run_1", limits, Amounts(calls=1), 1.0)
    assert isinstance(again, BudgetBreach) and again.would_be == 11


def test_a_refused_reservation_is_explained_as_the_in_memory_check_would(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = replicas
    limits = BudgetLimits(max_usd=1.0, max_tokens=100, max_wall_seconds=60.0)
    assert isinstance(a.reserve("r", limits, Amounts(usd=0.6, tokens=10), 100.0), Reservation)
    usd = b.reserve("r", limits, Amounts(usd=0.6), 100.0)
    assert isinstance(usd, BudgetBreach) and usd.code == "W-BUD-002"
    tokens = b.reserve("r", limits, Amounts(tokens=91), 100.0)
    assert isinstance(tokens, BudgetBreach) and tokens.code == "W-BUD-003"
    wall = b.reserve("r", limits, Amounts(calls=1), 161.0)
    assert isinstance(wall, BudgetBreach) and wall.code == "W-BUD-004"
    b.credit_wait("r", 30.0)  # time spent waiting for people does not count
    assert isinstance(a.reserve("r", limits, Amounts(calls=1), 161.0), Reservation)
    fresh = a.reserve("new", limits, Amounts(usd=2.0), 1.0)
    assert isinstance(fresh, BudgetBreach) and fresh.code == "W-BUD-002"


def test_loop_counts_are_shared(replicas: tuple[PostgresStore, PostgresStore]) -> None:
    counts = at_once(THREADS, lambda i: replicas[i % 2].note_call("run_1", "same call"))
    assert sorted(counts) == list(range(1, THREADS + 1))
    replicas[0].forget_run("run_1")
    assert replicas[1].note_call("run_1", "same call") == 1


def test_one_idempotency_key_is_claimed_once_across_replicas(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    claims = [action(replicas[i % 2], key="race") for i in range(THREADS)]
    found = at_once(THREADS, lambda i: replicas[i % 2].record_decision(claims[i]))
    winners = [claims[i].id for i, f in enumerate(found) if f is None]
    assert len(winners) == 1
    assert {f.id for f in found if f is not None} == set(winners)
    assert replicas[1].action_by_key("a1", "race").id == winners[0]  # type: ignore[union-attr]


def test_an_approval_is_used_once_across_replicas(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = replicas
    req = request("act_apr")
    a.record_decision(
        action(a, id="act_apr", state=ActionState.AWAITING_APPROVAL, approval=req, key="k")
    )

    def judge(approver: str) -> Callable[..., Any]:
        return lambda r: check_verdict(
            r,
            approver=approver,
            approver_roles=frozenset({"finance", "ops"}),
            approve=True,
            role=None,
            reason="",
            now=1500.0,
        )

    assert b.add_verdict(req.id, judge("fiona")).status is ApprovalStatus.APPROVED

    def spend(i: int) -> str:
        try:
            replicas[i % 2].start_approved(req.id, "act_apr", owner="x", at=1600.0)
        except ApprovalError as exc:
            return exc.code
        return "won"

    assert sorted(at_once(THREADS, spend)) == ["W-APR-004"] * (THREADS - 1) + ["won"]
    assert a.approval(req.id).status is ApprovalStatus.USED  # type: ignore[union-attr]


def test_concurrent_verdicts_on_two_replicas_both_count(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, _ = replicas
    req = request("act_two", roles=("finance", "ops"), count=2)
    a.record_decision(
        action(a, id="act_two", state=ActionState.AWAITING_APPROVAL, approval=req, key="k2")
    )
    people = {"fiona": frozenset({"finance"}), "olga": frozenset({"ops"})}

    def verdict(i: int) -> ApprovalStatus:
        who = sorted(people)[i]
        return (
            replicas[i]
            .add_verdict(
                req.id,
                lambda r: check_verdict(
                    r,
                    approver=who,
                    approver_roles=people[who],
                    approve=True,
                    role=None,
                    reason="",
                    now=1500.0,
                ),
            )
            .status
        )

    statuses = at_once(2, verdict)
    assert sorted(statuses) == [ApprovalStatus.APPROVED, ApprovalStatus.PENDING]
    final = a.approval(req.id)
    assert final is not None and len(final.verdicts) == 2


def test_a_kill_switch_reaches_the_other_replica_within_its_poll_interval(url: str) -> None:
    with PostgresStore(url, kill_poll_s=0.2) as agent_side, PostgresStore(url) as operator:
        assert agent_side.killed("a1", "pay") is None
        operator.set_kill("agent:a1", engaged=True, by="olga", reason="incident", at=1.0)
        time.sleep(0.2)  # one poll interval: the next check reads the switches again
        found = agent_side.killed("a1", "pay")
        assert found is not None and found.by == "olga"
        operator.set_kill("agent:a1", engaged=False, by="olga", reason="", at=2.0)
        time.sleep(0.2)
        assert agent_side.killed("a1", "pay") is None


def test_history_shows_what_other_replicas_recorded(url: str) -> None:
    poll = 0.2
    with PostgresStore(url) as a, PostgresStore(url, kill_poll_s=poll) as b:
        assert b.history("a1") == []
        a.record_decision(action(a, key="h1"))
        a.record_decision(action(a, key="h2", args={"amount_usd": 7.0}))
        time.sleep(poll)  # b reads the actions table again once its poll interval passed
        assert [r.args["amount_usd"] for r in b.history("a1")] == [5.0, 7.0]
        mine = ActionRecord(at=9e9, run_id="r", tool="pay", outcome="allow", args={})
        b.record_action("a1", mine)
        assert b.history("a1")[-1] == mine  # its own decision counts at once
        time.sleep(poll)
        assert len(b.history("a1")) == 2  # never recorded durably: gone after the next read


def test_a_stale_ledger_figure_from_one_replica_does_not_overwrite_the_shared_row(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = replicas
    for _ in range(5):
        a.add_usage("run_1", Amounts(calls=1, usd=0.5), 1.0)
    first = action(b)
    b.record_decision(first)
    b.record_outcome(outcome(first, ledger=(1, 0.5, 0)))  # b's view: one call
    run = a.run("run_1")
    assert run is not None and (run.calls, run.usd) == (5, 2.5)


def test_concurrent_appends_from_two_replicas_leave_verifying_chains(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    streams = ["system", "agent:a", "agent:b", "agent:c"]

    def write(i: int) -> None:
        for n in range(10):
            replicas[i % 2].audit(streams[(i + n) % 4], "note", {"i": i, "n": n}, at=float(n))

    at_once(32, write)
    rows = list(replicas[0].audit_rows())
    report = verify_rows(rows, contiguous=False)
    assert report.records == 320 and set(report.streams) == set(streams)
    assert sum(h.stream_seq for h in report.streams.values()) == 320


def test_a_rolled_back_append_leaves_a_gap_that_only_gaps_allowed_accepts(url: str) -> None:
    with PostgresStore(url) as store:
        store.audit("system", "note", {"n": 1}, at=1.0)
        with psycopg.connect(url) as conn:  # an append whose transaction rolls back
            conn.execute(
                "SELECT warden_audit_append('system', 2.0, 'note', '\\x'::bytea, "
                "'{}'::bytea, '\\x'::bytea, '\\x'::bytea)"
            )
            conn.rollback()
        store.audit("system", "note", {"n": 2}, at=3.0)
        rows = list(store.audit_rows())
        assert [r[0] for r in rows] == [1, 3] and [r[2] for r in rows] == [1, 2]
        assert verify_rows(rows, contiguous=False).records == 2
        with pytest.raises(AuditError) as caught:
            verify_rows(rows)
        assert caught.value.code == "W-AUD-002"


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (
            "UPDATE audit SET body = overlay(body placing 'X' from 10 for 1) WHERE seq = 2",
            "W-AUD-001",
        ),
        ("DELETE FROM audit WHERE seq = 2", "W-AUD-002"),
        ("UPDATE audit SET seq = 9 WHERE seq = 3", "W-AUD-003"),
    ],
    ids=["altered-body", "deleted-record", "renumbered"],
)
def test_a_tampered_log_fails_verification(url: str, tamper: str, code: str) -> None:
    with PostgresStore(url) as store:
        for n in range(3):
            store.audit("agent:a", "note", {"n": n}, at=float(n))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(tamper)  # type: ignore[arg-type]
        with closing(store.audit_rows()) as rows, pytest.raises(AuditError) as caught:
            verify_rows(rows, contiguous=False)
        assert caught.value.code == code


def test_replicas_starting_together_migrate_once(url: str) -> None:
    stores = at_once(8, lambda _: PostgresStore(url))
    for s in stores:
        s.close()
    with psycopg.connect(url) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM warden_schema ORDER BY 1")]
    assert versions == [n for n, _, _ in MIGRATIONS]


def test_a_database_from_a_newer_warden_is_refused(url: str) -> None:
    PostgresStore(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO warden_schema (version, title) VALUES (999, 'the future')")
    with pytest.raises(StoreError) as caught:
        PostgresStore(url)
    assert caught.value.code == "W-STO-002" and "999" in caught.value.message


def test_a_database_with_other_tables_is_not_taken_over(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE actions (id int)")
    with pytest.raises(StoreError) as caught:
        PostgresStore(url)
    assert caught.value.code == "W-STO-003"


def test_without_create_an_empty_database_is_not_set_up(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        PostgresStore(url, create=False)
    assert caught.value.code == "W-STO-001" and "no Warden schema" in caught.value.message
    PostgresStore(url).close()
    PostgresStore(url, create=False).close()


def test_an_unreachable_server_is_w_sto_001_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        PostgresStore("postgresql://warden:s3cret@127.0.0.1:1/warden", connect_timeout_s=1.0)
    error = caught.value
    assert error.code == "W-STO-001"
    assert "postgresql://warden@127.0.0.1:1/warden" in error.message
    assert "s3cret" not in error.render() and "Traceback" not in error.render()


def test_the_store_works_again_after_the_server_ends_its_sessions(url: str) -> None:
    with PostgresStore(url) as store:
        store.record_decision(action(store, key="before"))
        assert store.note_call("run_1", "f") == 1
        assert terminate_sessions(url) >= 2  # the pool's connection and the writer's
        # every connection the store holds is dead now: it notices, reconnects, goes on
        assert store.note_call("run_1", "f") == 2
        assert store.record_decision(action(store, key="after")) is None
        assert store.action_by_key("a1", "after") is not None
        assert verify_rows(store.audit_rows(), contiguous=False).records == 2


def test_a_read_only_database_refuses_writes_with_w_sto_004_and_recovers(url: str) -> None:
    with PostgresStore(url) as store:
        store.record_decision(action(store, key="before"))
        set_read_only(url, True)
        try:
            for write in (
                lambda: store.record_decision(action(store, key="during")),
                lambda: store.reserve("run_1", BudgetLimits(), Amounts(calls=1), 1.0),
                lambda: store.audit("system", "note", {}, at=1.0),
            ):
                with pytest.raises(StoreError) as caught:
                    write()
                assert caught.value.code == "W-STO-004"
            assert store.action_by_key("a1", "before") is not None  # reads still work
        finally:
            set_read_only(url, False)
        assert store.record_decision(action(store, key="after")) is None
        assert isinstance(
            store.reserve("run_1", BudgetLimits(), Amounts(calls=1), 1.0), Reservation
        )


def test_without_group_commit_every_write_is_its_own_transaction(url: str) -> None:
    with PostgresStore(url, group_commit=False) as store:
        at_once(8, lambda i: store.record_decision(action(store, key=f"k{i}")))
        assert store.writer_stats == (8, 8)
        assert verify_rows(store.audit_rows(), contiguous=False).records == 8


def test_keys_are_stored_rotated_and_revoked_with_an_audit_record_each(url: str) -> None:
    with PostgresStore(url) as store:
        old, _ = new_key(KeyKind.AGENT, "payer", created_at=10.0, created_by="olga")
        store.add_key(old)
        new, _ = new_key(
            KeyKind.AGENT, "payer", created_at=20.0, created_by="olga", replaces=old.id
        )
        store.add_key(new, retire_at=30.0)
        listed = store.keys()
        assert [k.id for k in listed] == [new.id, old.id]
        assert store.key(old.id).expires_at == 30.0  # type: ignore[union-attr]
        assert store.key(new.id) == new
        revoked = store.revoke_key(new.id, at=40.0, by="olga")
        assert (revoked.revoked_at, revoked.revoked_by) == (40.0, "olga")
        with pytest.raises(AuthError) as caught:
            store.revoke_key("nope", at=41.0, by="olga")
        assert caught.value.code == "W-AUTH-002"
        kinds = [json.loads(body)["kind"] for _, _, _, body, _ in store.audit_rows()]
        assert kinds == ["key.create", "key.create", "key.revoke"]


def test_purge_releases_old_keys_of_finished_actions_only(url: str) -> None:
    with PostgresStore(url, idempotency_retention_s=100.0) as store:
        done, live = action(store, key="done"), action(store, key="live")
        store.record_decision(done)
        store.record_decision(live)
        store.record_outcome(outcome(done))
        store.purge(done.decided_at + 101.0)
        assert store.action_by_key("a1", "done") is None
        assert store.action_by_key("a1", "live") is not None  # still executing: kept


class Proxy:
    """A TCP proxy in front of the PostgreSQL server that a test can take down and bring
    back on the same port: "the server" goes away without stopping the one other tests
    share."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        assert self._listener is not None
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread in accept()
        self._listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def test_while_the_server_is_gone_calls_fail_with_w_sto_001_then_work_again(url: str) -> None:
    parts = urlsplit(url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    through = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    with PostgresStore(through, connect_timeout_s=1.0) as store:
        store.record_decision(action(store, key="before"))
        proxy.stop()
        for call in (
            lambda: store.record_decision(action(store, key="during")),
            lambda: store.reserve("run_1", BudgetLimits(), Amounts(calls=1), 1.0),
            lambda: store.action_by_key("a1", "before"),
            lambda: store.killed("a1", "pay") if store.kills() else None,
        ):
            with pytest.raises(StoreError) as caught:
                call()
            assert caught.value.code == "W-STO-001", caught.value
            assert "Traceback" not in caught.value.render()
        proxy.start()  # the server is back, on the same address
        assert store.record_decision(action(store, key="after")) is None
        assert store.action_by_key("a1", "before") is not None
        assert isinstance(
            store.reserve("run_1", BudgetLimits(), Amounts(calls=1), 1.0), Reservation
        )
        assert verify_rows(store.audit_rows(), contiguous=False).records == 2
    proxy.stop()


def test_redacted_values_are_vaulted_with_their_own_record_only(url: str) -> None:
    card = "4242 4242 4242 4242"
    with PostgresStore(url) as store:

        def paying(key: str) -> NewAction:
            return dataclasses.replace(
                action(store, key=key),
                decision={"outcome": "allow", "args": {"card_number": card}},
                redact_fields=frozenset({"card_number"}),
            )

        store.audit("system", "note", {"before": True}, at=1.0)
        first = paying("card")
        assert store.record_decision(first) is None
        assert store.record_decision(paying("card")) is not None  # key taken: no record
        secret = outcome(first, result={"card_number": card}, redact_fields=first.redact_fields)
        assert store.record_outcome(secret)
        assert not store.record_outcome(secret)  # settled already: nothing written
        with psycopg.connect(url) as conn:
            vaulted = conn.execute(
                "SELECT a.kind, v.path, v.value FROM audit_vault v JOIN audit a USING (seq) "
                "ORDER BY seq"
            ).fetchall()
        assert vaulted == [
            ("decision", "decision.args.card_number", f'"{card}"'),
            ("outcome", "result.card_number", f'"{card}"'),
        ]
        bodies = [body for _, _, _, body, _ in store.audit_rows()]
        assert len(bodies) == 3 and not any(card.encode() in b for b in bodies)
