"""Invariants, as hypothesis properties."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import warden
from tests.conftest import REFUNDS
from warden.breakers import BreakerConfig, BreakerState, Phase, claim_probe, current_phase, record
from warden.budgets import Amounts, BudgetBreach, BudgetLimits, Reservation
from warden.store import MemoryStore

THREADS = 32


@settings(max_examples=25, deadline=None)
@given(
    max_calls=st.integers(min_value=0, max_value=40),
    max_usd=st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
    cost=st.floats(min_value=0.0, max_value=0.2, allow_nan=False),
    attempts=st.integers(min_value=1, max_value=6),
    settle_ratio=st.floats(min_value=0.0, max_value=1.0),
)
def test_budgets_are_never_exceeded_nor_negative_under_32_threads(
    max_calls: int, max_usd: float, cost: float, attempts: int, settle_ratio: float
) -> None:
    store = MemoryStore()
    limits = BudgetLimits(max_tool_calls=max_calls, max_usd=max_usd)
    start = threading.Barrier(THREADS)
    granted: list[Reservation] = []
    lock = threading.Lock()
    violations: list[str] = []

    def worker(n: int) -> None:
        start.wait()
        for i in range(attempts):
            held = store.reserve("run", limits, Amounts(calls=1, usd=cost), now=0.0)
            ledger = store.ledger("run")
            assert ledger is not None
            if ledger.calls > max_calls or ledger.usd > max_usd + 1e-9:
                violations.append(f"over budget: {ledger}")
            if min(ledger.reserved_calls, ledger.committed_calls) < 0 or ledger.usd < -1e-12:
                violations.append(f"negative: {ledger}")
            if isinstance(held, BudgetBreach):
                continue
            with lock:
                granted.append(held)
            if (n * attempts + i) % 100 < settle_ratio * 100:
                store.settle(held, Amounts(calls=1, usd=cost))
            else:
                store.release(held)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ledger = store.ledger("run")
    assert not violations, violations[:3]
    assert ledger is not None
    assert ledger.reserved_calls == 0 and ledger.reserved_usd >= 0
    assert ledger.committed_calls <= max_calls
    assert ledger.committed_usd <= max_usd + 1e-9


def test_64_threads_competing_for_the_last_call_exactly_one_wins() -> None:
    for _ in range(20):
        store = MemoryStore()
        limits = BudgetLimits(max_tool_calls=1)
        start = threading.Barrier(64)
        wins: list[Any] = []

        def worker(
            s: MemoryStore = store,
            b: threading.Barrier = start,
            lim: BudgetLimits = limits,
            won: list[Any] = wins,
        ) -> None:
            b.wait()
            held = s.reserve("run", lim, Amounts(calls=1), now=0.0)
            if not isinstance(held, BudgetBreach):
                won.append(held)

        threads = [threading.Thread(target=worker) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1


STEP = st.one_of(
    st.tuples(st.just("advance"), st.floats(min_value=0.0, max_value=120.0)),
    st.tuples(st.just("record"), st.booleans()),
    st.tuples(st.just("probe"), st.booleans()),
    st.tuples(st.just("look"), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(STEP, max_size=80), min_calls=st.integers(1, 5), rate=st.floats(0.0, 0.9))
def test_a_breaker_never_goes_from_open_to_closed_without_half_open(
    steps: list[tuple[str, Any]], min_calls: int, rate: float
) -> None:
    config = BreakerConfig(error_rate_max=rate, window_s=300, min_calls=min_calls, cooldown_s=60)
    state = BreakerState()
    now = 0.0
    probe_held = False
    for kind, value in steps:
        if kind == "advance":
            now += value
        elif kind == "record":
            record(state, config, value, now, probe=False)
        elif kind == "probe":
            if probe_held:
                record(state, config, value, now, probe=True)
                probe_held = False
            else:
                probe_held = claim_probe(state, config, now)
        else:
            current_phase(state, config, now)
    phases = [Phase.CLOSED, *(p for _, p in state.transitions)]
    for before, after in itertools.pairwise(phases):
        assert not (before is Phase.OPEN and after is Phase.CLOSED), phases
        assert before is not after, "every recorded transition changes the phase"


AMOUNTS = st.one_of(st.floats(min_value=-10.0, max_value=700.0), st.just(float("nan")))
TIERS = st.sampled_from(["standard", "pro", "enterprise", "trial", None])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    amount=st.one_of(AMOUNTS, st.text(max_size=5), st.integers(-5, 600)),
    tier=TIERS,
    customer=st.sampled_from(["cus_1", "cus_chargeback"]),
    agent=st.sampled_from(["refund_autopilot", "support_refund_agent", "ghost"]),
)
def test_the_same_inputs_always_give_the_same_decision(
    amount: Any, tier: str | None, customer: str, agent: str
) -> None:
    project = warden.load_project(REFUNDS)
    context = {"customer_id": customer} | ({"customer_tier": tier} if tier else {})
    seen = []
    for _ in range(2):
        gate = project.gate(
            store=MemoryStore(), clock=warden.FixedClock(), ids=warden.CountingIds()
        )
        d = gate.decide(
            warden.ToolCall(
                agent=agent,
                tool="create_refund",
                run_id="run_1",
                context=context,
                args={"order_id": "ord_123456", "amount_usd": amount, "reason": "x"},
            )
        )
        seen.append({k: v for k, v in d.to_dict().items() if k != "latency_ns"})
    assert seen[0] == seen[1]
