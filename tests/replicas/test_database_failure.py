"""`warden serve` when its PostgreSQL database goes away, or turns read-only, under load.

The database is a private cluster (tests/replicas/cluster.py), so stopping it disturbs no
other test. While it is gone every decision fails closed: 503 with W-STO-001 (or
W-STO-004 for a read-only database) and ``Retry-After``, never another 5xx, never a hang,
and nothing runs that is not recorded. When it is back, the same server process answers
200 again by itself.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString

import httpx2
import psycopg
import pytest

from tests.replicas.cluster import PrivateCluster, postgres_bin
from tests.replicas.crowd import CLIENT_TIMEOUT_S
from tests.replicas.replica import (
    Replica,
    Tokens,
    create_tokens,
    duplicates,
    effects,
    payments_copy,
)

THREADS = 16
OUTAGE_S = 8.0
"""How long the database stays down while the clients keep calling: longer than the
store's connection timeout (5 s), which the calls in flight when it went down may wait
for the pool before they fail."""
LONGEST_WAIT_S = 15.0
"""No answer may take longer, outage or not (the clients would wait 60 s)."""
RECOVERY_DEADLINE_S = 30.0
"""How long the server may take to answer 200 again once the database is back (the
store reconnects on the next call; this only catches "never")."""
STORE_DOWN = frozenset({"W-STO-001", "W-STO-004"})


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    if postgres_bin() is None:
        pytest.skip(
            "PostgreSQL is not installed (no initdb under /usr/lib/postgresql or on PATH): "
            "these tests stop and start a private cluster"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root needs runuser to start PostgreSQL as its own user")
    found = PrivateCluster(Path(tempfile.mkdtemp(prefix="warden-pg-")))
    try:
        found.start()
        yield found
    finally:
        found.close()


@dataclass
class Served:
    """One replica of the payments project on a database of the private cluster."""

    cluster: PrivateCluster
    db: str
    root: Path
    backend: Path
    tokens: Tokens
    replica: Replica

    @property
    def agent(self) -> dict[str, str]:
        return Tokens.header(self.tokens.payer)

    def client(self) -> httpx2.Client:
        return httpx2.Client(base_url=self.replica.url, timeout=CLIENT_TIMEOUT_S)

    def rows(self, query: LiteralString, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()


@pytest.fixture
def served(cluster: PrivateCluster, tmp_path: Path) -> Iterator[Served]:
    if not cluster.running:  # a test before this one failed with the cluster down
        cluster.start()
    db = cluster.create_database(f"warden_{secrets.token_hex(4)}")
    found: Served | None = None
    try:
        root = payments_copy(tmp_path)
        tokens = create_tokens(root, db)
        backend = tmp_path / "effects.jsonl"
        found = Served(cluster, db, root, backend, tokens, Replica.start(root, db, backend=backend))
        yield found
    finally:
        if found is not None:
            found.replica.stop()  # the one serving now: a test may have restarted it
        if not cluster.running:
            cluster.start()
        cluster.drop_database(db)


def pay(run: str, step: int) -> dict[str, Any]:
    args = {"payee": "acme", "amount_usd": 5.0}
    return {"agent": "payer", "tool": "pay", "run_id": run, "step": step, "args": args}


@dataclass(frozen=True)
class Answer:
    """One request of the load and what came back."""

    path: str
    sent: float
    """When it was sent (monotonic)."""
    answered: float
    status: int
    code: str | None
    retry_after: str | None


def answer_of(path: str, sent: float, response: httpx2.Response) -> Answer:
    body = response.json()
    error = body.get("error") if set(body) == {"error"} else None
    return Answer(
        path=path.rsplit("/", 1)[-1],
        sent=sent,
        answered=time.monotonic(),
        status=response.status_code,
        code=error["code"] if error else None,
        retry_after=response.headers.get("retry-after"),
    )


@dataclass
class Load:
    """`THREADS` clients deciding (and reporting) and executing, until told to stop."""

    served: Served
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[Answer] = field(default_factory=list[Answer])
    faults: list[BaseException] = field(default_factory=list[BaseException])
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list[threading.Thread])

    def __enter__(self) -> Load:
        for i in range(THREADS):
            thread = threading.Thread(target=self._client, args=(i,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=2 * CLIENT_TIMEOUT_S)
        assert not any(t.is_alive() for t in self._threads), "a client hangs"

    def _post(self, client: httpx2.Client, path: str, body: dict[str, Any]) -> Answer:
        sent = time.monotonic()
        found = answer_of(path, sent, client.post(path, json=body, headers=self.served.agent))
        with self._lock:
            self.answers.append(found)
        if found.status == 503:
            time.sleep(0.02)  # a real client would wait Retry-After; this one keeps probing
        return found

    def _client(self, i: int) -> None:
        step = 0
        try:
            with self.served.client() as client:
                while not self.stop.is_set():
                    step += 1
                    if step % 2:  # the caller runs the tool: decide, then report
                        body, sent = pay(f"decide-{i}", step), time.monotonic()
                        decided = client.post("/v1/decide", json=body, headers=self.served.agent)
                        found = answer_of("/v1/decide", sent, decided)
                        with self._lock:
                            self.answers.append(found)
                        if found.status == 200 and decided.json()["state"] == "executing":
                            action = decided.json()["action_id"]
                            self._post(client, f"/v1/actions/{action}/outcome", {"ok": True})
                        elif found.status == 503:
                            time.sleep(0.02)
                    else:  # Warden runs the tool
                        self._post(client, "/v1/execute", pay(f"execute-{i}", step))
        except BaseException as exc:  # a timeout is a hang: the test fails on it
            with self._lock:
                self.faults.append(exc)

    def since(self, moment: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.sent >= moment]

    def wait_for(self, ok: int, *, after: float, deadline_s: float) -> float:
        """Wait until `ok` answers sent after `after` were 200; when the first came."""
        deadline = time.monotonic() + deadline_s
        while True:
            good = [a for a in self.since(after) if a.status == 200]
            if len(good) >= ok:
                return min(a.answered for a in good)
            assert not self.faults, self.faults
            assert time.monotonic() < deadline, f"no 200 within {deadline_s} s"
            time.sleep(0.02)


def test_a_database_that_goes_away_under_load_fails_closed_and_comes_back_by_itself(
    served: Served, request: pytest.FixtureRequest
) -> None:
    pid = served.replica.proc.pid
    with Load(served) as load:
        load.wait_for(50, after=0.0, deadline_s=RECOVERY_DEADLINE_S)
        served.cluster.stop()
        down = time.monotonic()
        time.sleep(OUTAGE_S)
        back = time.monotonic()
        served.cluster.start()
        first_ok = load.wait_for(THREADS, after=back, deadline_s=RECOVERY_DEADLINE_S)
        measured = request.node.user_properties  # shown with -rP; no junit warning
        measured.append(("recovered_after_s", round(first_ok - back, 3)))
        time.sleep(0.3)
    assert load.faults == []  # no client timed out or lost its connection
    answers = load.answers
    assert {a.status for a in answers} == {200, 503}, {(a.status, a.code) for a in answers}
    refused = [a for a in answers if a.status == 503]
    assert {a.code for a in refused} <= STORE_DOWN
    assert {a.retry_after for a in refused} == {"1"}
    outage = [a for a in answers if down <= a.sent and a.answered < back]
    assert len(outage) >= THREADS and {a.path for a in outage} >= {"decide", "execute"}
    assert {(a.status, a.code) for a in outage} == {(503, "W-STO-001")}
    longest = max(a.answered - a.sent for a in answers)
    measured.append(("longest_answer_s", round(longest, 3)))
    print(dict(measured))
    assert longest < LONGEST_WAIT_S
    assert served.replica.proc.poll() is None and served.replica.proc.pid == pid

    # Nothing ran unrecorded: once a restarted server has settled what the first one left
    # executing (through the tool's reconcile hook), every effect in the backend is one
    # succeeded action of /v1/execute, and every such action is one effect.
    assert served.replica.stop() == 0
    served.replica = Replica.start(served.root, served.db, backend=served.backend)
    done = effects(served.backend)
    assert done and duplicates(done) == {}
    executed = served.rows("SELECT idem_key, state FROM actions WHERE run_id LIKE %s", "execute-%")
    # failed: recorded, then the commit's answer was lost, so the tool never ran
    assert {state for _, state in executed} <= {"succeeded", "failed"}
    succeeded = {key for key, state in executed if state == "succeeded"}
    assert {e["key"] for e in done} == succeeded
    assert served.rows("SELECT id FROM actions WHERE state = 'executing'") == []
    with served.client() as client:
        assert client.post("/v1/decide", json=pay("after", 1), headers=served.agent).is_success


def test_a_read_only_database_fails_closed_with_w_sto_004_and_comes_back(
    served: Served,
) -> None:
    with served.client() as client:

        def post(path: str, step: int) -> Answer:
            sent = time.monotonic()
            body = pay("read-only", step)
            return answer_of(path, sent, client.post(path, json=body, headers=served.agent))

        assert post("/v1/decide", 0).status == 200
        served.cluster.set_read_only(served.db, True)
        deadline = time.monotonic() + RECOVERY_DEADLINE_S
        step = 1
        while (seen := post("/v1/decide", step)).code != "W-STO-004":
            assert (seen.status, seen.code) == (503, "W-STO-001"), seen  # a session cut short
            assert time.monotonic() < deadline, "the server never saw the database read-only"
            step += 1
        for n in range(10):
            for path in ("/v1/decide", "/v1/execute"):
                refused = post(path, 100 + 2 * n + (path == "/v1/execute"))
                assert (refused.status, refused.code, refused.retry_after) == (
                    503,
                    "W-STO-004",
                    "1",
                ), refused
        assert effects(served.backend) == []  # nothing ran that could not be recorded
        served.cluster.set_read_only(served.db, False)
        deadline = time.monotonic() + RECOVERY_DEADLINE_S
        while (seen := post("/v1/execute", 1000 + step)).status != 200:
            assert seen.status == 503 and seen.code in STORE_DOWN, seen
            assert time.monotonic() < deadline, "the server did not take writes again"
            step += 1
            time.sleep(0.05)
    assert len(effects(served.backend)) == 1
    assert served.replica.proc.poll() is None
