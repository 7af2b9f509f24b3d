"""Policy what-if: every decision of a window under candidate policies, changes by rule."""

from __future__ import annotations

from tests.replay import world
from tests.replay.conftest import Desk
from warden.replay import what_if


def _stricter() -> dict[str, str]:
    texts = dict(world.POLICIES)
    texts["policies/refunds.yaml"] = world.REFUNDS.replace("amount <= 10", "amount <= 5")
    return texts


def _seed(desk: Desk) -> float:
    """Small refunds by both agents; returns the time before the first. The desk's fourth
    and fifth refunds of the hour are held back by refunds-many, before and after."""
    start = desk.clock.timestamp()
    for n, amount in enumerate([3, 6, 9, 12, 8]):
        desk.execute(
            world.call(customer="c2", amount=amount, note="card 4242 4242 4242 4242", run=f"r{n}")
        )
    desk.execute(world.call(agent="cautious", customer="c2", amount=7, run="r9"))
    return start


def test_changes_are_grouped_by_rule_with_redacted_examples(desk: Desk) -> None:
    start = _seed(desk)
    report = what_if(
        desk.replayer(),
        world.policies(_stricter()),
        since=start,
        until=desk.clock.timestamp() + 1,
        examples=2,
    )
    assert (report.total, report.changed, report.unchanged, report.not_replayable) == (6, 3, 3, 0)
    by_rule = {(c.rule, c.before, c.after): c for c in report.changes}
    desk_change = by_rule["refunds-small", "allow", "needs_approval"]
    assert desk_change.count == 2 and desk_change.now == "refunds-rest"
    assert str(desk_change) == "refunds-small: 2 decisions allow → needs_approval"
    assert len(desk_change.examples) == 2
    for e in desk_change.examples:
        assert e.tool == "refund" and e.args["note"] != "card 4242 4242 4242 4242"
        assert e.args["amount"] in (6, 9)
    # the cautious agent's suggest_then_act approval now comes from the rule itself
    cautious = by_rule["refunds-small", "needs_approval", "needs_approval"]
    assert cautious.count == 1 and cautious.now == "refunds-rest"
    assert report.transitions == {"allow → needs_approval": 2, "needs_approval → needs_approval": 1}
    data = report.to_dict()
    assert data["totals"]["changed"] == 3 and data["changes"][0]["count"] == 2


def test_the_window_and_the_agent_narrow_what_is_re_decided(desk: Desk) -> None:
    start = _seed(desk)
    middle = start + 3.5  # after the first three calls
    end = desk.clock.timestamp() + 1
    stricter = world.policies(_stricter())
    later = what_if(desk.replayer(), stricter, since=middle, until=end)
    assert later.total == 3 and later.changed == 1  # refunds-many still decides the desk's
    mine = what_if(desk.replayer(), stricter, since=start, until=end, agent="cautious")
    assert (mine.total, mine.changed, mine.agent) == (1, 1, "cautious")


def test_unchanged_policies_change_nothing(desk: Desk) -> None:
    start = _seed(desk)
    report = what_if(
        desk.replayer(), world.policies(), since=start, until=desk.clock.timestamp() + 1
    )
    assert report.total == 6 and report.changed == 0 and report.changes == ()
