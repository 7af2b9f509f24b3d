"""Gate.decide: every check, in order, on the refund example (the seeds' cases)."""

from __future__ import annotations

import pytest

import warden
from tests.conftest import CallFactory, refund
from warden import Outcome, Stage
from warden.testing import CapturingGate

PRO = {"customer_tier": "pro", "customer_id": "cus_1"}
STANDARD = {"customer_tier": "standard", "customer_id": "cus_1"}
ENTERPRISE = {"customer_tier": "enterprise", "customer_id": "cus_1"}
CHARGEBACK = {"customer_tier": "pro", "customer_id": "cus_chargeback"}


# --- the seeds' refund examples ------------------------------------------------------------

SEED_TABLE = [
    # agent, amount, context, outcome, code, rule that decides (or None)
    ("refund_autopilot", 30.0, PRO, Outcome.ALLOW, None, "refunds#1"),
    ("refund_autopilot", 50.0, STANDARD, Outcome.ALLOW, None, "refunds#1"),
    ("refund_autopilot", 50.01, STANDARD, Outcome.NEEDS_APPROVAL, None, "refunds#3"),
    ("refund_autopilot", 180.0, ENTERPRISE, Outcome.ALLOW, None, "refunds#2"),
    ("refund_autopilot", 200.0, ENTERPRISE, Outcome.ALLOW, None, "refunds#2"),
    ("refund_autopilot", 250.0, ENTERPRISE, Outcome.NEEDS_APPROVAL, None, "refunds#3"),
    ("refund_autopilot", 75.0, PRO, Outcome.NEEDS_APPROVAL, None, "refunds#3"),
    (
        "refund_autopilot",
        30.0,
        CHARGEBACK,
        Outcome.DENY,
        "W-POL-101",
        "refund_autopilot.create_refund.deny_if_chargeback_last_180d",
    ),
    (
        "refund_autopilot",
        20.0,
        {"customer_tier": "trial", "customer_id": "c"},
        Outcome.DENY,
        "W-POL-102",
        None,
    ),
    ("refund_autopilot", 20.0, {"customer_id": "c"}, Outcome.DENY, "W-POL-103", "refunds#1"),
    # the seed's agent: suggest_then_act, max 100, approval over 50, chargeback deny
    ("support_refund_agent", 30.0, PRO, Outcome.NEEDS_APPROVAL, "W-MODE-002", "refunds#1"),
    ("support_refund_agent", 75.0, STANDARD, Outcome.NEEDS_APPROVAL, None, "refunds#3"),
    (
        "support_refund_agent",
        120.0,
        ENTERPRISE,
        Outcome.DENY,
        "W-POL-101",
        "support_refund_agent.create_refund.max_amount_usd",
    ),
    (
        "support_refund_agent",
        30.0,
        CHARGEBACK,
        Outcome.DENY,
        "W-POL-101",
        "support_refund_agent.create_refund.deny_if_chargeback_last_180d",
    ),
]


@pytest.mark.parametrize(
    ("agent", "amount", "context", "outcome", "code", "rule"),
    SEED_TABLE,
    ids=[
        f"{a}-{amt}-{ctx.get('customer_tier', 'no-tier')}-{ctx.get('customer_id')}"
        for a, amt, ctx, *_ in SEED_TABLE
    ],
)
def test_seed_refund_examples_get_the_seeds_decisions(
    gate: CapturingGate,
    call: CallFactory,
    agent: str,
    amount: float,
    context: dict[str, str],
    outcome: Outcome,
    code: str | None,
    rule: str | None,
) -> None:
    d = gate.decide(call(args=refund(amount), agent=agent, context=context))
    assert d.outcome is outcome, d.reasons
    assert d.code == code
    if rule is not None:
        assert rule in [r.id for r in d.rules]
    assert d.reasons, "every decision says why"
    assert d.policy_revision == gate.policies.revision


def test_an_approval_names_the_role_and_the_rule_with_file_and_line(
    gate: CapturingGate, call: CallFactory
) -> None:
    d = gate.decide(call(args=refund(75.0), context=STANDARD))
    assert d.approval is not None and d.approval.roles == ("support_manager",)
    (ref,) = d.rules
    assert (ref.file, ref.line) == ("policies/refunds.yaml", 9)


def test_redact_fields_of_the_policy_travel_with_the_decision(
    gate: CapturingGate, call: CallFactory
) -> None:
    d = gate.decide(call(context=PRO))
    assert d.redact_fields == {"card_number", "bank_account"}


# --- identity, scope and contract ----------------------------------------------------------

IDENTITY = [
    ("unknown agent", {"agent": "ghost"}, "W-IDN-001"),
    ("caller is someone else", {"principal": "support_refund_agent"}, "W-IDN-002"),
    (
        "tool not in the allowlist",
        {"tool": "delete_customer", "args": {"customer_id": "cus"}},
        "W-IDN-003",
    ),
    ("tool not registered", {"tool": "wire_money", "args": {}}, "W-IDN-003"),
]


@pytest.mark.parametrize(("what", "change", "code"), IDENTITY, ids=[i[0] for i in IDENTITY])
def test_identity_and_scope_are_checked_before_anything_else(
    gate: CapturingGate, call: CallFactory, what: str, change: dict[str, object], code: str
) -> None:
    d = gate.decide(call(**change, context=PRO))  # type: ignore[arg-type]
    assert (d.outcome, d.stage, d.code) == (Outcome.DENY, Stage.IDENTITY, code)


CONTRACT = [
    ("string for a number", refund("30"), "W-CON-001", "amount_usd"),
    ("integer-looking string is not coerced", refund("30.0"), "W-CON-001", "amount_usd"),
    ("bool for a number", refund(True), "W-CON-001", "amount_usd"),
    ("over the model's cap", refund(650.0), "W-CON-001", "amount_usd"),
    ("zero amount", refund(0.0), "W-CON-001", "amount_usd"),
    ("NaN amount", refund(float("nan")), "W-CON-001", "amount_usd"),
    ("unknown field", {**refund(30.0), "payout_iban": "DE89"}, "W-CON-001", "payout_iban"),
    ("missing field", {"order_id": "ord_123456", "amount_usd": 3.0}, "W-CON-001", "reason"),
    ("short order id", refund(30.0, order="ord"), "W-CON-001", "order_id"),
    ("huge string", refund(30.0, reason="x" * 20_000), "W-CON-002", None),
    ("not an object", ["ord_123456", 30.0], "W-CON-001", "(arguments)"),
]


@pytest.mark.parametrize(("what", "args", "code", "field"), CONTRACT, ids=[c[0] for c in CONTRACT])
def test_arguments_must_match_the_strict_contract(
    gate: CapturingGate, call: CallFactory, what: str, args: object, code: str, field: str | None
) -> None:
    d = gate.decide(call(args=args, context=PRO))  # type: ignore[arg-type]
    assert (d.outcome, d.stage, d.code) == (Outcome.DENY, Stage.CONTRACT, code)
    if field is not None:
        assert d.extra["field"] == field
        assert field in d.reasons[0]


def test_nested_arguments_beyond_the_size_limits_are_refused(clock: warden.FixedClock) -> None:
    from pydantic import BaseModel

    class Payload(BaseModel):
        items: list[object]

    @warden.tool(risk="read", limits=warden.Limits(max_list_length=3, max_depth=3))
    def ingest(args: Payload) -> None:
        """Ingest items."""

    g = _tiny_gate([ingest], clock)
    too_long = g.decide(
        warden.ToolCall(agent="a", tool="ingest", run_id="r", args={"items": [1, 2, 3, 4]})
    )
    too_deep = g.decide(
        warden.ToolCall(agent="a", tool="ingest", run_id="r", args={"items": [[[[1]]]]})
    )
    fine = g.decide(warden.ToolCall(agent="a", tool="ingest", run_id="r", args={"items": [1, [2]]}))
    assert (too_long.code, too_deep.code, fine.outcome) == ("W-CON-002", "W-CON-002", Outcome.ALLOW)


# --- loops, budgets, kill switch ---------------------------------------------------------


def _lookup(call: CallFactory, customer: str, run_id: str = "run_b") -> warden.ToolCall:
    return call("lookup_customer", {"customer_id": customer}, run_id=run_id)


def test_the_same_call_too_often_in_a_run_stops_the_run(
    gate: CapturingGate, call: CallFactory
) -> None:
    for _ in range(2):  # refund_autopilot: max_identical_calls 2
        gate.settle(gate.decide(_lookup(call, "cus_042")), ok=True)
    d = gate.decide(_lookup(call, "cus_042"))
    assert (d.outcome, d.stage, d.code, d.stop_run) == (
        Outcome.DENY,
        Stage.LOOP,
        "W-LOOP-001",
        True,
    )
    other_run = gate.decide(_lookup(call, "cus_042", run_id="run_other"))
    assert other_run.allowed


def test_the_seed_budget_guard_stops_the_ninth_tool_call(
    gate: CapturingGate, call: CallFactory
) -> None:
    outcomes = []
    for i in range(9):
        d = gate.decide(_lookup(call, f"cus_{i:03d}"))
        outcomes.append(d.outcome)
        if d.allowed:
            gate.settle(d, ok=True)
    assert outcomes == [Outcome.ALLOW] * 8 + [Outcome.DENY]
    last = gate.last()
    assert (last.stage, last.code, last.stop_run) == (Stage.BUDGET, "W-BUD-001", True)


def test_the_seed_budget_guard_stops_after_twelve_thousand_tokens(
    gate: CapturingGate, call: CallFactory
) -> None:
    gate.record_usage("run_b", tokens=11_999)
    assert gate.decide(_lookup(call, "cus_1")).allowed
    gate.record_usage("run_b", tokens=2)
    d = gate.decide(_lookup(call, "cus_2"))
    assert (d.code, d.stop_run) == ("W-BUD-003", True)


def test_spend_and_wall_time_budgets_stop_the_run(
    gate: CapturingGate, call: CallFactory, clock: warden.FixedClock
) -> None:
    d = gate.decide(
        call("lookup_customer", {"customer_id": "cus_1"}, run_id="r", estimated_usd=0.25)
    )
    assert d.code == "W-BUD-002"  # max_usd_per_task 0.20
    first = gate.decide(call("lookup_customer", {"customer_id": "cus_1"}, run_id="r2"))
    gate.settle(first, ok=True)
    clock.advance(121)  # max_wall_seconds 120
    late = gate.decide(call("lookup_customer", {"customer_id": "cus_2"}, run_id="r2"))
    assert late.code == "W-BUD-004"


def test_a_denied_call_gives_its_budget_back(gate: CapturingGate, call: CallFactory) -> None:
    for i in range(20):  # denied refunds must not eat the 8-call budget
        d = gate.decide(
            call(
                args=refund(20.0, order=f"ord_{i:06d}"),
                context={"customer_tier": "trial", "customer_id": "c"},
            )
        )
        assert d.code == "W-POL-102"
    ledger = gate.store.ledger("run_1")
    assert ledger is not None and ledger.calls == 0


@pytest.mark.parametrize("scope", ["all", "agent:refund_autopilot", "tool:create_refund"])
def test_the_kill_switch_denies_first_and_lifts_cleanly(
    gate: CapturingGate, call: CallFactory, scope: str
) -> None:
    gate.kill(scope, by="oncall", reason="incident 42")
    d = gate.decide(call(context=PRO))
    assert (d.stage, d.code, d.stop_run) == (Stage.KILL_SWITCH, "W-KIL-001", True)
    assert "incident 42" in d.reasons[0] and scope in d.reasons[0]
    gate.unkill(scope, by="oncall")
    assert gate.decide(call(context=PRO, run_id="run_2")).allowed


def test_a_kill_switch_on_another_tool_does_not_stop_this_one(
    gate: CapturingGate, call: CallFactory
) -> None:
    gate.kill("tool:list_invoices", by="oncall", reason="invoices API down")
    assert gate.decide(call(context=PRO)).allowed


def test_a_bad_kill_scope_is_refused(gate: CapturingGate) -> None:
    with pytest.raises(warden.GateError, match="scope") as exc:
        gate.kill("everything", by="x", reason="y")
    assert exc.value.code == "W-GATE-001"


# --- breaker and modes -------------------------------------------------------------------


def _fail_refunds(gate: CapturingGate, call: CallFactory, n: int) -> None:
    for i in range(n):
        d = gate.decide(
            call(args=refund(10.0, order=f"ord_fail{i:02d}"), context=PRO, run_id=f"f{i}")
        )
        assert d.allowed
        gate.settle(d, ok=False)


def test_an_open_breaker_demotes_writes_but_not_reads(
    gate: CapturingGate, call: CallFactory
) -> None:
    _fail_refunds(gate, call, 5)  # 20% threshold, min_calls 5
    write = gate.decide(call(context=PRO, run_id="after"))
    assert (write.outcome, write.stage, write.code) == (
        Outcome.SUGGEST_ONLY,
        Stage.BREAKER,
        "W-BRK-001",
    )
    read = gate.decide(call("lookup_customer", {"customer_id": "cus_1"}, run_id="after"))
    assert read.allowed


def test_after_cooldown_one_probe_runs_and_its_success_closes_the_breaker(
    gate: CapturingGate, call: CallFactory, clock: warden.FixedClock
) -> None:
    _fail_refunds(gate, call, 5)
    clock.advance(61)
    probe = gate.decide(call(context=PRO, run_id="p1"))
    assert probe.allowed and probe.breaker_probe
    second = gate.decide(call(args=refund(11.0), context=PRO, run_id="p2"))
    assert second.outcome is Outcome.SUGGEST_ONLY, "only one probe at a time"
    gate.settle(probe, ok=True)
    assert gate.decide(call(context=PRO, run_id="p3")).allowed


def test_a_failed_probe_reopens_the_breaker(
    gate: CapturingGate, call: CallFactory, clock: warden.FixedClock
) -> None:
    _fail_refunds(gate, call, 5)
    clock.advance(61)
    probe = gate.decide(call(context=PRO, run_id="p1"))
    gate.settle(probe, ok=False)
    assert gate.decide(call(context=PRO, run_id="p2")).outcome is Outcome.SUGGEST_ONLY
    phases = [p for _, p in gate.store.breaker_state("refund_autopilot").transitions]  # type: ignore[union-attr]
    assert [p.value for p in phases] == ["open", "half_open", "open"]


def test_contract_errors_count_as_action_errors(gate: CapturingGate, call: CallFactory) -> None:
    for i in range(5):
        gate.decide(call(args=refund("bad"), context=PRO, run_id=f"c{i}"))
    assert gate.decide(call(context=PRO, run_id="x")).outcome is Outcome.SUGGEST_ONLY


MODES = [
    # mode, tier of tool, expected outcome when the policy allows
    ("draft_only", "read", Outcome.ALLOW),
    ("draft_only", "draft", Outcome.ALLOW),
    ("draft_only", "write", Outcome.SUGGEST_ONLY),
    ("suggest_only", "high_risk", Outcome.SUGGEST_ONLY),
    ("suggest_only", "read", Outcome.ALLOW),
    ("suggest_then_act", "write", Outcome.NEEDS_APPROVAL),
    ("suggest_then_act", "read", Outcome.ALLOW),
    ("act", "prod_control", Outcome.ALLOW),
]


@pytest.mark.parametrize(("mode", "tier", "outcome"), MODES, ids=[f"{m}-{t}" for m, t, _ in MODES])
def test_modes_turn_allowed_writes_into_proposals_or_approvals(
    clock: warden.FixedClock, mode: str, tier: str, outcome: Outcome
) -> None:
    from pydantic import BaseModel

    class Note(BaseModel):
        text: str

    @warden.tool(name="act_on", risk=tier)
    def act_on(args: Note) -> None:
        """Do something."""

    g = _tiny_gate([act_on], clock, mode=mode)
    d = g.decide(warden.ToolCall(agent="a", tool="act_on", run_id="r", args={"text": "hi"}))
    assert d.outcome is outcome
    assert d.mode == mode


def test_a_deny_is_never_softened_by_a_mode(clock: warden.FixedClock) -> None:
    from pydantic import BaseModel

    class Note(BaseModel):
        text: str

    @warden.tool(risk="write")
    def post(args: Note) -> None:
        """Post."""

    g = _tiny_gate([post], clock, mode="suggest_only", rule="deny: never")
    assert (
        g.decide(warden.ToolCall(agent="a", tool="post", run_id="r", args={"text": "x"})).code
        == "W-POL-101"
    )


# --- facts --------------------------------------------------------------------------------


def test_a_fact_provider_is_asked_once_per_run_and_key(
    refunds_project: warden.Project, clock: warden.FixedClock, call: CallFactory
) -> None:
    asked: list[object] = []
    facts = warden.FactRegistry()

    def chargeback(q: warden.FactQuery) -> bool:
        asked.append(q.value("customer_id"))
        return False

    facts.register("chargeback_last_180d", chargeback, keys=["customer_id"])
    g = warden.Gate(
        policies=refunds_project.policies,
        agents=refunds_project.agents,
        tools=refunds_project.tools,
        clock=clock,
        facts=facts,
    )
    for i in range(3):
        d = g.decide(call(args=refund(10.0 + i), context=PRO))
        g.settle(d, ok=True)
    g.decide(call(args=refund(10.0), context={**PRO, "customer_id": "cus_2"}))
    assert asked == ["cus_1", "cus_2"]


@pytest.mark.parametrize("failure", ["raises", "times out"])
def test_a_failing_fact_provider_fails_the_decision_closed(
    refunds_project: warden.Project, clock: warden.FixedClock, call: CallFactory, failure: str
) -> None:
    import threading

    release = threading.Event()

    def broken(q: warden.FactQuery) -> bool:
        if failure == "raises":
            raise ConnectionError("billing API unreachable")
        release.wait(5)
        return False

    facts = warden.FactRegistry()
    facts.register("chargeback_last_180d", broken, timeout_s=0.05)
    g = warden.Gate(
        policies=refunds_project.policies,
        agents=refunds_project.agents,
        tools=refunds_project.tools,
        clock=clock,
        facts=facts,
    )
    try:
        d = g.decide(call(context=PRO))
    finally:
        release.set()
        facts.close()
    assert (d.outcome, d.code) == (Outcome.DENY, "W-POL-104")
    assert "chargeback_last_180d" in d.reasons[0]


# --- settle and release -------------------------------------------------------------------


def test_settling_twice_or_settling_a_deny_is_a_misuse(
    gate: CapturingGate, call: CallFactory
) -> None:
    d = gate.decide(call(context=PRO))
    gate.settle(d, ok=True, usd=0.001)
    with pytest.raises(warden.GateError) as twice:
        gate.settle(d, ok=True)
    assert twice.value.code == "W-GATE-001"
    denied = gate.decide(
        call(args=refund(20.0), context={"customer_tier": "trial", "customer_id": "c"})
    )
    with pytest.raises(warden.GateError):
        gate.release(denied)


def test_settle_commits_the_real_cost(gate: CapturingGate, call: CallFactory) -> None:
    d = gate.decide(call("lookup_customer", {"customer_id": "cus_1"}, estimated_usd=0.05))
    gate.settle(d, ok=True, usd=0.01, tokens=100)
    ledger = gate.store.ledger("run_1")
    assert ledger is not None
    assert (ledger.committed_calls, ledger.committed_tokens, ledger.reserved_calls) == (1, 100, 0)
    assert ledger.committed_usd == pytest.approx(0.01)


def test_a_gate_without_policies_refuses_to_start(refunds_project: warden.Project) -> None:
    with pytest.raises(warden.PolicyError) as exc:
        warden.Gate(policies=warden.PolicySet([], revision="x"), agents=[], tools=[])
    assert exc.value.code == "W-POL-005"


# --- helpers ------------------------------------------------------------------------------


def _tiny_gate(
    tools: list[warden.Tool],
    clock: warden.FixedClock,
    *,
    mode: str = "act",
    rule: str = "allow: true",
) -> warden.Gate:
    from warden.manifest import parse_manifest
    from warden.yamlsource import parse_yaml

    names = ", ".join(t.name for t in tools)
    manifest = parse_manifest(
        parse_yaml(
            f"agent:\n  name: a\n  mode: {mode}\n  permissions:\n    allowed_tools: [{names}]\n",
            file="a.yaml",
        )
    )
    policies = warden.policy_from_text(
        f"policy:\n  tools: ['*']\n  rules:\n    - {rule}\n", file="all.yaml"
    )
    return warden.Gate(policies=policies, agents=[manifest], tools=tools, clock=clock)


def test_a_probe_that_never_reports_is_given_up_after_a_cooldown(
    gate: CapturingGate, call: CallFactory, clock: warden.FixedClock
) -> None:
    _fail_refunds(gate, call, 5)
    clock.advance(61)
    lost = gate.decide(call(context=PRO, run_id="p1"))
    assert lost.breaker_probe  # its caller crashes: never settled
    assert (
        gate.decide(call(args=refund(12.0), context=PRO, run_id="p2")).outcome
        is Outcome.SUGGEST_ONLY
    )
    clock.advance(61)
    retry = gate.decide(call(args=refund(13.0), context=PRO, run_id="p3"))
    assert retry.allowed and retry.breaker_probe


def test_invoke_refuses_a_decision_without_validated_arguments(
    gate: CapturingGate, call: CallFactory
) -> None:
    d = gate.decide(call(args=refund("bad"), context=PRO))
    with pytest.raises(warden.GateError):
        gate.tools["create_refund"].invoke(d.args)


def test_ending_a_run_forgets_its_ledger_and_loop_counts(
    gate: CapturingGate, call: CallFactory
) -> None:
    for _ in range(2):
        gate.settle(gate.decide(_lookup(call, "cus_042")), ok=True)
    gate.end_run("run_b")
    assert gate.store.ledger("run_b") is None
    assert gate.decide(_lookup(call, "cus_042")).allowed, "loop counts start again"
