"""The support-desk example's world: its billing backend, its tools through the gate, its
policy tests, its tickets and the scripted model that works them.

Every test gets a billing database of its own (``$SUPPORT_DESK_BILLING_DB`` in tmp_path),
seeded on first use from the example's fixed data.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

import warden
from tests.examples.conftest import EXAMPLE
from warden.cli import cli
from warden.execution import Approvals
from warden.models.scripted import ScriptedModel
from warden.runs import ActionState, RunStatus
from warden.store.sqlite import SQLiteStore

DAY = date(2026, 3, 2)
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# scripted calls that break the contract on purpose (marked `# on purpose` in the YAML):
# (ticket, turn, tool) -> why
DELIBERATE = {
    ("T-1014", 0, "delete_customer_account"): "a tool that does not exist",
    ("T-1016", 1, "create_refund"): "amount_usd over the contract's $500",
    ("T-1019", 1, "create_refund"): "arguments cut off mid-string",
}


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def gate(desk: warden.Project, billing_db: Path) -> Iterator[warden.Gate]:
    with SQLiteStore.temporary() as store:
        g = desk.gate(store=store, ids=warden.CountingIds())
        yield g
        g.executor.close()


TICKET = {"ticket_id": "T-9001", "ticket_customer": "cus_1001"}


def call(
    tool: str, args: dict[str, Any], *, run: str = "run_1", step: int = 0, **context: Any
) -> warden.ToolCall:
    return warden.ToolCall(
        agent="support_agent",
        tool=tool,
        args=args,
        run_id=run,
        step=step,
        context={**TICKET, **context},
    )


def refund_args(
    order: str = "ord_2001", customer: str = "cus_1001", amount: float = 49.0
) -> dict[str, Any]:
    return {
        "order_id": order,
        "customer_id": customer,
        "amount_usd": amount,
        "reason": "cracked keycaps",
        "method": "original_payment",
    }


def refund_kwargs(key: str, amount: float = 20.0, order: str = "ord_2001") -> dict[str, Any]:
    return {
        "order_id": order,
        "customer_id": "cus_1001",
        "amount_usd": amount,
        "reason": "cracked keycaps",
        "method": "original_payment",
        "idempotency_key": key,
    }


def wait_for(check: Any, timeout_s: float = 15.0) -> Any:
    """Poll until `check()` returns something truthy (a late write from a worker thread)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


# --- the billing backend --------------------------------------------------------------------


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_seeding_the_same_day_twice_gives_the_same_database(bl: ModuleType, tmp_path: Path) -> None:
    a = bl.seed(tmp_path / "a.db", today=DAY)
    b = bl.seed(tmp_path / "b.db", today=DAY)
    later = bl.seed(tmp_path / "c.db", today=date(2026, 3, 9))
    assert _dump(a) == _dump(b)
    assert _dump(a) != _dump(later)  # dates move with the day; nothing else does
    assert [ISO_DATE.sub("DATE", line) for line in _dump(a)] == [
        ISO_DATE.sub("DATE", line) for line in _dump(later)
    ]


def test_opening_a_missing_database_seeds_a_world_of_tiers_and_chargebacks(
    backend: Any, billing_db: Path
) -> None:
    assert billing_db.is_file()
    conn = sqlite3.connect(billing_db)
    try:
        tiers = dict(conn.execute("SELECT tier, COUNT(*) FROM customers GROUP BY tier").fetchall())
        orders, invoices = conn.execute(
            "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM invoices)"
        ).fetchone()
        ids = [i for (i,) in conn.execute("SELECT id FROM customers ORDER BY id")]
    finally:
        conn.close()
    assert sum(tiers.values()) == 25 and set(tiers) == {"standard", "pro", "enterprise"}
    assert orders >= 40 and invoices > orders  # one duplicate charge
    recent = [c for c in ids if backend.chargeback_within(c, days=180)]
    assert recent == ["cus_1009", "cus_1014"]
    assert backend.customer("cus_1011").chargeback_at is not None  # 300 days ago: too old
    assert backend.customer("cus_1001") == backend.customer("cus_1001")
    with pytest.raises(LookupError):
        backend.customer("cus_404")


def test_the_same_key_from_many_threads_at_once_refunds_once(backend: Any) -> None:
    start = threading.Barrier(8)
    results: list[Any] = []
    errors: list[BaseException] = []

    def refund() -> None:
        start.wait()
        try:
            results.append(backend.create_refund(**refund_kwargs("ik_same", amount=49.0)))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=refund) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.id for r in results}) == 1 and len(results) == 8
    assert [r.amount_usd for r in backend.refunds_for("ord_2001")] == [49.0]
    assert backend.order("ord_2001").refundable_usd == 0.0


def test_the_key_is_unique_in_the_table_itself(backend: Any, billing_db: Path) -> None:
    backend.create_refund(**refund_kwargs("ik_1"))
    conn = sqlite3.connect(billing_db)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO refunds (id, order_id, customer_id, amount_usd, reason, method,"
                " idempotency_key, created_at) VALUES ('re_x', 'ord_2001', 'cus_1001', 1.0,"
                " 'x', 'store_credit', 'ik_1', '2026-03-02')"
            )
    finally:
        conn.close()


def test_a_retry_returns_the_first_refund_even_when_the_order_is_used_up(backend: Any) -> None:
    first = backend.create_refund(**refund_kwargs("ik_1", amount=49.0))
    assert backend.create_refund(**refund_kwargs("ik_1", amount=49.0)) == first


def test_the_same_key_with_other_arguments_is_refused(bl: ModuleType, backend: Any) -> None:
    backend.create_refund(**refund_kwargs("ik_1", amount=20.0))
    with pytest.raises(bl.RefundRejected, match="used for another refund"):
        backend.create_refund(**refund_kwargs("ik_1", amount=21.0))


def test_refunds_never_exceed_what_was_paid_for_the_order(bl: ModuleType, backend: Any) -> None:
    backend.create_refund(**refund_kwargs("ik_1", amount=30.0))
    backend.create_refund(**refund_kwargs("ik_2", amount=19.0))  # exactly the $49.00 paid
    with pytest.raises(bl.RefundRejected, match=r"\$0\.00 of \$49\.00"):
        backend.create_refund(**refund_kwargs("ik_3", amount=0.01))
    assert backend.order("ord_2001").refunded_usd == 49.0


def test_a_refund_of_another_customers_order_is_refused(bl: ModuleType, backend: Any) -> None:
    with pytest.raises(bl.RefundRejected, match="does not belong"):
        backend.create_refund(**refund_kwargs("ik_1", order="ord_2028"))
    with pytest.raises(LookupError):
        backend.create_refund(**refund_kwargs("ik_2", order="ord_9999"))


def test_a_reversed_refund_gives_the_balance_back(backend: Any) -> None:
    refund = backend.create_refund(**refund_kwargs("ik_1", amount=49.0))
    reversed_ = backend.reverse_refund(refund.id)
    assert reversed_.reversed_at is not None
    assert backend.reverse_refund(refund.id) == reversed_  # once is enough
    assert backend.order("ord_2001").refundable_usd == 49.0


def test_a_reply_is_saved_once_per_key(backend: Any) -> None:
    draft = backend.save_reply(ticket_id="T-1", body="Hi", status="draft", idempotency_key="k1")
    again = backend.save_reply(ticket_id="T-1", body="Hi", status="draft", idempotency_key="k1")
    sent = backend.save_reply(ticket_id="T-1", body="Hi!", status="sent", idempotency_key="k2")
    assert again == draft
    assert [(r.status, r.body) for r in backend.replies("T-1")] == [
        ("draft", "Hi"),
        ("sent", "Hi!"),
    ]
    assert sent.id != draft.id


# --- the tools, through Gate.execute ----------------------------------------------------------


def test_reads_return_the_ticket_customers_record_and_invoices(gate: warden.Gate) -> None:
    customer = gate.execute(call("lookup_customer", {"customer_id": "cus_1001"}))
    assert customer.state is ActionState.SUCCEEDED
    assert customer.result == {
        "customer_id": "cus_1001",
        "name": "Maya Okafor",
        "email": "maya.okafor@fastmail.com",
        "tier": "pro",
        "chargeback_last_180d": False,
    }
    invoices = gate.execute(call("list_invoices", {"customer_id": "cus_1001"}, step=1))
    assert [i["order_id"] for i in invoices.result["invoices"]] == ["ord_2001", "ord_2002"]
    other = gate.execute(call("list_invoices", {"customer_id": "cus_1020"}, step=2))
    assert other.state is ActionState.DECIDED and other.code == "W-POL-101"


def test_a_small_refund_runs_once_under_warden_s_key(gate: warden.Gate, backend: Any) -> None:
    done = gate.execute(call("create_refund", refund_args()))
    retry = gate.execute(call("create_refund", refund_args()))
    assert done.state is ActionState.SUCCEEDED and retry.replayed
    assert retry.result == done.result
    made = backend.refund_by_key(done.idempotency_key)
    assert made is not None and made.id == done.result["refund_id"]
    assert len(backend.refunds_for("ord_2001")) == 1


def test_a_second_ticket_about_the_same_order_is_refused_by_the_backend(
    gate: warden.Gate, backend: Any
) -> None:
    first = gate.execute(call("create_refund", refund_args(), run="run_ticket_1"))
    second = gate.execute(call("create_refund", refund_args(), run="run_ticket_2"))
    assert first.state is ActionState.SUCCEEDED
    assert second.idempotency_key != first.idempotency_key  # another run, another key
    assert second.state is ActionState.FAILED and second.code == "W-EXE-001"
    assert second.error is not None and "exceeds what is left on order" in second.error["message"]
    assert len(backend.refunds_for("ord_2001")) == 1


def test_the_injected_refund_of_another_customers_order_is_denied(
    gate: warden.Gate, backend: Any
) -> None:
    args = {**refund_args("ord_2028", "cus_1012", 480.0), "method": "store_credit"}
    done = gate.execute(call("create_refund", args, ticket_customer="cus_1012"))
    assert done.state is ActionState.DECIDED and done.code == "W-POL-101"
    assert done.decision is not None
    assert [r.id for r in done.decision.rules] == ["refunds-own-orders-only"]
    assert backend.refunds_for("ord_2028") == []


def test_a_large_refund_waits_for_a_support_manager_then_runs_once(
    gate: warden.Gate, desk: warden.Project, backend: Any
) -> None:
    args = refund_args("ord_2009", "cus_1006", 149.0)
    waiting = gate.execute(call("create_refund", args, ticket_customer="cus_1006"))
    assert waiting.state is ActionState.AWAITING_APPROVAL and waiting.approval_id is not None
    assert backend.refunds_for("ord_2009") == []
    desk_approvals = Approvals(gate.executor.store, roles=desk.roles, clock=gate.clock)
    desk_approvals.approve(waiting.approval_id, approver="sasha", reason="dead PCB")
    done = gate.resume(waiting.action_id)
    assert done.state is ActionState.SUCCEEDED
    assert gate.resume(waiting.action_id).replayed
    assert [r.amount_usd for r in backend.refunds_for("ord_2009")] == [149.0]


def test_the_slow_processor_times_out_and_reconcile_finds_the_refund_later(
    gate: warden.Gate, desk: warden.Project, backend: Any
) -> None:
    args = refund_args("ord_2033", "cus_slowpay", 34.9)
    done = gate.execute(call("create_refund", args, ticket_customer="cus_slowpay"))
    assert done.state is ActionState.OUTCOME_UNKNOWN and done.code == "W-EXE-002"
    assert done.idempotency_key is not None
    late = wait_for(lambda: backend.refund_by_key(done.idempotency_key))
    assert late is not None and late.amount_usd == 34.9
    hook = desk.tools["create_refund"].reconcile_fn
    assert hook is not None

    def reconcile(key: str) -> Any:
        ctx = warden.ToolContext(run_id="run_1", agent="support_agent", idempotency_key=key)
        return desk.tools["create_refund"].run_hook(hook, args, ctx)

    assert reconcile(done.idempotency_key)["refund_id"] == late.id
    assert reconcile("ik_never_used") is None


def test_a_refund_is_compensated_by_reversing_it(gate: warden.Gate, backend: Any) -> None:
    done = gate.execute(call("create_refund", refund_args()))
    undone = gate.compensate(done.action_id, by="sam", reason="customer kept the keycaps")
    assert undone.state is ActionState.COMPENSATED
    assert backend.refunds_for("ord_2001")[0].reversed_at is not None
    assert backend.order("ord_2001").refundable_usd == 49.0


def test_the_dry_run_shows_the_order_balance_before_and_after(
    desk: warden.Project, backend: Any
) -> None:
    backend.create_refund(**refund_kwargs("ik_1", amount=20.0))
    ctx = warden.ToolContext(run_id="run_1", agent="support_agent", idempotency_key="k")
    plan = desk.tools["create_refund"].plan(refund_args(amount=25.0), ctx)
    assert plan["order_total_usd"] == 49.0
    assert plan["refunded_so_far_usd"] == 20.0
    assert plan["this_refund_usd"] == 25.0
    assert plan["balance_after_usd"] == 4.0
    assert plan["would_be_refused"] is False
    assert backend.order("ord_2001").refunded_usd == 20.0  # a plan writes nothing


def test_replies_are_saved_as_drafts_or_sent(gate: warden.Gate, backend: Any) -> None:
    body = {"ticket_id": "T-9001", "body": "Hi Maya, your refund is on its way."}
    draft = gate.execute(call("send_reply", {**body, "mode": "draft"}))
    sent = gate.execute(call("send_reply", {**body, "mode": "send"}, step=1))
    elsewhere = gate.execute(call("send_reply", {**body, "ticket_id": "T-1"}, step=2))
    assert (draft.result["status"], sent.result["status"]) == ("draft", "sent")
    assert elsewhere.code == "W-CON-001"  # no mode given
    assert [r.status for r in backend.replies("T-9001")] == ["draft", "sent"]


# --- the policy tests -----------------------------------------------------------------------


def test_the_example_s_policy_tests_pass(desk: warden.Project, billing_db: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["policy", "test", "-p", str(EXAMPLE)],
        env={"SUPPORT_DESK_BILLING_DB": str(billing_db)},
    )
    assert result.exit_code == 0, result.output
    assert ", 0 failed (" in result.output and "in 3 files" in result.output


# --- tickets and the scripted model ---------------------------------------------------------


def _tickets() -> list[dict[str, Any]]:
    return yaml.safe_load((EXAMPLE / "tickets.yaml").read_text())["tickets"]


def _scripts() -> dict[str, list[dict[str, Any]]]:
    return yaml.safe_load((EXAMPLE / "model_script.yaml").read_text())["scripts"]


def test_every_ticket_has_a_script_and_a_known_customer(backend: Any) -> None:
    tickets = _tickets()
    keys = [t["id"] for t in tickets]
    assert len(tickets) >= 22 and len(set(keys)) == len(keys)
    assert sorted(set(_scripts()) - {"default"}) == sorted(keys)
    for t in tickets:
        assert set(t) <= {"id", "customer_id", "subject", "body", "context"}
        assert backend.customer(t["customer_id"]).id == t["customer_id"]


def test_the_scripted_model_file_loads(desk: warden.Project) -> None:
    model = ScriptedModel.load(EXAMPLE / "model_script.yaml")
    assert model.name == "scripted-support" and model.prices_as == "gpt-4o-mini"
    assert sorted(model.tasks()) == sorted(t["id"] for t in _tickets())


def test_every_scripted_call_is_a_real_tool_with_arguments_its_contract_accepts(
    desk: warden.Project, backend: Any
) -> None:
    customers = {t["id"]: t["customer_id"] for t in _tickets()}
    seen: set[tuple[str, int, str]] = set()
    for key, turns in _scripts().items():
        for n, turn in enumerate(turns):
            for entry in turn.get("calls", []):
                if "raw" in entry:  # arguments that are not JSON
                    seen.add((key, n, entry["tool"]))
                    continue
                ((name, args),) = entry.items()
                where = (key, n, name)
                tool = desk.tools.get(name)
                if where in DELIBERATE:
                    seen.add(where)
                    if tool is not None:
                        with pytest.raises(ValidationError):
                            tool.model.model_validate(args)
                    continue
                assert tool is not None, f"{where}: no tool {name}"
                tool.model.model_validate(args)
                if "customer_id" in args:  # reads and refunds stay with the ticket's customer
                    assert args["customer_id"] == customers[key], where
                if "ticket_id" in args:
                    assert args["ticket_id"] == key, where
                if name == "create_refund" and key != "T-1010":
                    assert backend.order(args["order_id"]).customer_id == customers[key], where
    assert seen == set(DELIBERATE)


def test_usage_grows_turn_by_turn_like_a_real_conversation() -> None:
    for key, turns in _scripts().items():
        if key == "default":
            continue
        inputs = [t["usage"]["input_tokens"] for t in turns]
        assert inputs == sorted(inputs) and 1000 < inputs[0] < 2000, key
        for t in turns:
            assert t["usage"]["cached_input_tokens"] <= t["usage"]["input_tokens"], key


# --- the whole queue, as `warden demo` runs it ----------------------------------------------

EXPECTED: dict[str, tuple[RunStatus, str | None, tuple[str, ...]]] = {
    # ticket: (how the run ends, its code, the codes of the calls that were refused or failed)
    "T-1001": (RunStatus.SUCCEEDED, None, ()),
    "T-1002": (RunStatus.SUCCEEDED, None, ()),
    "T-1003": (RunStatus.SUCCEEDED, None, ()),
    "T-1004": (RunStatus.SUCCEEDED, None, ()),
    "T-1005": (RunStatus.WAITING, "W-APR-009", ()),
    "T-1006": (RunStatus.SUCCEEDED, None, ()),
    "T-1007": (RunStatus.WAITING, "W-APR-009", ()),
    "T-1008": (RunStatus.SUCCEEDED, None, ("W-POL-101",)),
    "T-1009": (RunStatus.SUCCEEDED, None, ()),
    "T-1010": (RunStatus.SUCCEEDED, None, ("W-POL-101",)),
    "T-1011": (RunStatus.ESCALATED, "W-EXE-002", ("W-EXE-002",)),
    "T-1012": (RunStatus.SUCCEEDED, None, ()),
    "T-1013": (RunStatus.SUCCEEDED, None, ()),
    "T-1014": (RunStatus.SUCCEEDED, None, ("W-IDN-003",)),
    "T-1015": (RunStatus.ESCALATED, "W-LOOP-001", ("W-LOOP-001",)),
    "T-1016": (RunStatus.SUCCEEDED, None, ("W-CON-001",)),
    "T-1017": (RunStatus.SUCCEEDED, None, ("W-EXE-001",)),
    "T-1018": (RunStatus.SUCCEEDED, None, ()),
    "T-1019": (RunStatus.SUCCEEDED, None, ()),
    "T-1020": (RunStatus.SUCCEEDED, None, ()),
    "T-1021": (RunStatus.SUCCEEDED, None, ()),
    "T-1022": (RunStatus.SUCCEEDED, None, ()),
    "T-1023": (RunStatus.ESCALATED, "W-BUD-001", ("W-BUD-001",)),
    "T-1024": (RunStatus.WAITING, "W-APR-009", ()),
}


def test_the_ticket_queue_ends_the_way_the_readme_says(
    desk: warden.Project, backend: Any, tmp_path: Path
) -> None:
    from warden.cli.demo import load_tickets
    from warden.models.config import build_runner

    with SQLiteStore(tmp_path / "warden.db") as store:
        runner = build_runner(desk, store)
        try:
            ended = {}
            for task in load_tickets(EXAMPLE / "tickets.yaml"):
                r = runner.run(task)
                refused = tuple(
                    e["code"] for e in r.timeline if e["kind"] == "tool" and e.get("code")
                )
                ended[task.key] = (r.status, r.code, refused)
            assert ended == EXPECTED
            slow = wait_for(lambda: backend.refunds_for("ord_2033"))  # lands after the timeout
            assert [r.amount_usd for r in slow] == [34.9]
            assert len(backend.refunds_for("ord_2010")) == 1  # T-1004 and T-1017: one refund
        finally:
            runner.gate.executor.close()
