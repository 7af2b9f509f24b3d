"""The shared state's SQL agrees with the pure functions it stands for: any sequence of
budget, breaker and audit operations gives on PostgreSQL what it gives in memory."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.audit.logs import json_values
from tests.store.conftest import postgres_database
from warden.audit.chain import compose
from warden.breakers import BreakerConfig, current_phase
from warden.budgets import Amounts, BudgetBreach, BudgetLimits, Reservation
from warden.canonical import canonical_json
from warden.store.memory import MemoryStore
from warden.store.postgres import PostgresStore

PROPS = settings(max_examples=40, deadline=None)
_names = (f"n{i}" for i in itertools.count())


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresStore]:
    """One store for the module (hypothesis runs many examples); each example works on
    names of its own. Breaker phases and kill switches are read afresh on every call."""
    store = PostgresStore(postgres_database(), kill_poll_s=0.0)
    yield store
    store.close()


limits = st.builds(
    BudgetLimits,
    max_usd=st.none() | st.sampled_from([0.1, 0.5, 1.0]),
    max_tool_calls=st.none() | st.integers(0, 4),
    max_tokens=st.none() | st.integers(0, 300),
    max_wall_seconds=st.none() | st.sampled_from([0.0, 5.0, 30.0]),
)
amounts = st.builds(
    Amounts,
    calls=st.integers(0, 2),
    usd=st.sampled_from([0.0, 0.1, 0.2, 0.3, 0.45]),
    tokens=st.sampled_from([0, 50, 120]),
)
budget_ops = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "settle", "release", "usage"]), amounts, st.floats(0, 20)
    ),
    min_size=1,
    max_size=12,
)


@PROPS
@given(limit=limits, ops=budget_ops)
def test_reservations_on_postgresql_match_the_in_memory_check(
    pg: PostgresStore, limit: BudgetLimits, ops: list[tuple[str, Amounts, float]]
) -> None:
    run, memory = next(_names), MemoryStore()
    held: list[tuple[Reservation, Reservation]] = []
    now = 100.0
    for op, amount, dt in ops:
        now += dt
        if op == "reserve":
            mine, theirs = (s.reserve(run, limit, amount, now) for s in (memory, pg))
            if isinstance(mine, BudgetBreach):
                assert isinstance(theirs, BudgetBreach)
                assert (theirs.code, theirs.would_be) == (mine.code, mine.would_be)
                assert theirs.reason == mine.reason
            else:
                assert isinstance(theirs, Reservation) and theirs.amounts == mine.amounts
                held.append((mine, theirs))
        elif op in ("settle", "release") and held:
            mine, theirs = held.pop(0)
            if op == "settle":
                memory.settle(mine, amount)
                pg.settle(theirs, amount)
            else:
                memory.release(mine)
                pg.release(theirs)
        elif op == "usage":
            memory.add_usage(run, amount, now)
            pg.add_usage(run, amount, now)
        expected, found = memory.ledger(run), pg.ledger(run)
        if found is None:  # memory opens a ledger even for a refused first reservation
            assert expected is None or (expected.calls, expected.usd, expected.tokens) == (0, 0, 0)
        else:
            assert found == expected


breaker_ops = st.lists(
    st.tuples(
        st.sampled_from(["ok", "error", "probe_ok", "probe_error", "check", "ask_probe", "return"]),
        st.sampled_from([0.0, 0.5, 1.0, 3.0, 6.0, 12.0]),
    ),
    min_size=1,
    max_size=30,
)
CONFIG = BreakerConfig(error_rate_max=0.3, window_s=10.0, min_calls=3, cooldown_s=5.0)


@PROPS
@given(ops=breaker_ops)
def test_a_shared_breaker_moves_as_the_in_memory_one(
    pg: PostgresStore, ops: list[tuple[str, float]]
) -> None:
    agent, memory = next(_names), MemoryStore()
    now = 1000.0
    for op, dt in ops:
        now += dt
        if op == "check" or op == "ask_probe":
            want = op == "ask_probe"
            got = [s.breaker_check(agent, CONFIG, now, want_probe=want) for s in (memory, pg)]
            assert got[1] == got[0], op
        elif op == "return":
            memory.breaker_return_probe(agent)
            pg.breaker_return_probe(agent)
        else:
            ok, probe = op.endswith("ok"), op.startswith("probe")
            got = [
                s.breaker_record(agent, CONFIG, ok=ok, now=now, probe=probe) for s in (memory, pg)
            ]
            assert got[1] == got[0], op
    expected, found = memory.breaker_state(agent), pg.breaker_state(agent)
    if expected is None or found is None:
        return
    # a plain check writes nothing on PostgreSQL: an open breaker past its cooldown is
    # stored as open until the next claim or outcome, where memory moved it at the check
    assert (current_phase(found, CONFIG, now), found.opened_at, found.errors) == (
        current_phase(expected, CONFIG, now),
        expected.opened_at,
        expected.errors,
    )
    assert list(found.events) == list(expected.events)


names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=12,
)
moments = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)


@PROPS
@given(
    records=st.lists(
        st.tuples(st.sampled_from(["system", "agent:é✓"]) | names, names, moments, json_values),
        min_size=1,
        max_size=6,
    )
)
def test_the_server_composes_bodies_exactly_as_compose_does(
    pg: PostgresStore, records: list[tuple[str, str, Any, Any]]
) -> None:
    suffix = next(_names)
    last = max((r[0] for r in pg.audit_rows()), default=0)
    for stream, kind, at, data in records:
        pg.audit(f"{stream}/{suffix}", kind, data, at=at)
    rows = list(pg.audit_rows(after=last))
    assert len(rows) == len(records)
    counts: dict[str, int] = {}
    for (stream, kind, at, data), (seq, name, stream_seq, body, _) in zip(
        records, rows, strict=True
    ):
        counts[name] = counts.get(name, 0) + 1
        assert (name, stream_seq) == (f"{stream}/{suffix}", counts[name])
        expected = compose(
            seq=seq,
            stream=name,
            stream_seq=stream_seq,
            at=at,
            kind=kind,
            data_json=canonical_json(data),
        )
        assert body == expected
