"""The release gate: figures against thresholds and a baseline, and the reports."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warden.errors import EvalError
from warden.evals.report import (
    Baseline,
    Figures,
    judge_run,
    load_baseline,
    report_json,
    report_junit,
    report_markdown,
    summary_text,
)
from warden.evals.run import CaseResult
from warden.evals.suite import Thresholds, load_suite

from .conftest import TILL


def case(
    id: str, *, passed: bool = True, usd: float = 0.01, ms: float = 100.0, violations: int = 0
) -> CaseResult:
    return CaseResult(
        id=id,
        passed=passed,
        outcome="success" if passed else "deny",
        expected="success",
        problems=() if passed else ("outcome deny, expected success",),
        violations=tuple(f"v{i}" for i in range(violations)),
        usd=usd,
        wall_ms=ms,
    )


def baseline_of(results: list[CaseResult]) -> Baseline:
    return Baseline(
        suite="t",
        figures=Figures.of(results),
        cases={r.id: {"passed": r.passed} for r in results},
    )


BASE = [case(f"c{i}") for i in range(10)]


@pytest.mark.parametrize(
    ("now", "overrides", "reason"),
    [
        ([*BASE[:9], case("c9", usd=0.02)], [], "cost regression 10.0% > budget 7.0%"),
        ([*BASE[:9], case("c9", usd=0.0169)], [], None),  # 6.9%: within the budget
        ([*BASE[:9], case("c9", violations=1)], [], "policy violations 1 > allowed 0"),
        (
            [*BASE[:9], case("c9", violations=1)],
            ["max_violations=none"],
            "new policy violations 1 (0 -> 1) > budget 0",
        ),
        ([*BASE[:9], case("c9", passed=False)], [], "success rate dropped 10.0 pts"),
        (
            [*BASE[:9], case("c9", passed=False)],
            ["max_success_drop=10", "fail_on_new_failures=false"],
            "cost regression",  # the failure's spend still counts: 11.1% per success
        ),
        ([*BASE[:9], case("c9", passed=False)], [], "1 case(s) passed in the baseline"),
        ([*BASE[:9], case("c9", ms=400.0)], [], "p95 latency regression 300.0%"),
        ([*BASE[:9], case("c9", ms=140.0)], [], None),  # +40%, but only 40 ms
        ([*BASE[:9], case("c9", ms=400.0)], ["max_p95_regression=none"], None),
        (BASE, ["min_success_rate=100%"], None),
        ([*BASE[:9], case("c9", passed=False)], ["min_success_rate=95%"], "success rate 90.0%"),
    ],
)
def test_each_threshold_fails_the_run_with_its_reason(
    now: list[CaseResult], overrides: list[str], reason: str | None
) -> None:
    verdict = judge_run(now, Thresholds().override(overrides), baseline_of(BASE))
    if reason is None:
        assert verdict.passed, verdict.reasons
        assert verdict.line == "RESULT: PASS"
    else:
        assert not verdict.passed
        assert any(reason in r for r in verdict.reasons), verdict.reasons
        assert verdict.line.startswith("RESULT: FAIL (")


def test_the_seed_shaped_summary() -> None:
    now = [*BASE[:9], case("c9", usd=0.02)]
    text = summary_text(judge_run(now, Thresholds(), baseline_of(BASE)))
    assert text.splitlines() == [
        "Cases: 10 (prev 10)",
        "Success rate: 100.0% (10/10) (prev 100.0%)",
        "Policy violations: 0 (prev 0)",
        "Avg cost/success: $0.0110 (prev $0.0100)",
        "P95 latency: 0.10s (prev 0.10s)",
        "RESULT: FAIL (cost regression 10.0% > budget 7.0% ($0.0100 -> $0.0110 per success))",
    ]


def test_without_a_baseline_every_case_must_pass_unless_a_floor_is_set() -> None:
    now = [*BASE[:9], case("c9", passed=False)]
    assert not judge_run(now, Thresholds(), None).passed
    assert judge_run(now, Thresholds(min_success_rate=0.9), None).passed
    assert judge_run(BASE, Thresholds(), None).passed


@given(
    st.lists(
        st.tuples(st.booleans(), st.floats(0, 1), st.floats(1, 10_000), st.integers(0, 2)),
        min_size=1,
        max_size=30,
    )
)
def test_a_run_always_passes_against_its_own_baseline(
    rows: list[tuple[bool, float, float, int]],
) -> None:
    results = [
        case(f"c{i}", passed=p, usd=u, ms=m, violations=v) for i, (p, u, m, v) in enumerate(rows)
    ]
    verdict = judge_run(results, Thresholds(max_violations=None), baseline_of(results))
    assert verdict.passed, verdict.reasons


def test_baselines_round_trip_and_bad_ones_are_w_evl_007(tmp_path: Path) -> None:
    suite = load_suite(TILL / "suite.yaml")
    results = [case("a"), case("b", passed=False, usd=0.5)]
    path = tmp_path / "b.json"
    Baseline.of(suite, results).save(path)
    loaded = load_baseline(path)
    assert loaded.suite == "till"
    assert loaded.figures == Figures.of(results)
    assert loaded.cases["b"]["passed"] is False
    for text in ("{", "[]", '{"version": 99}', '{"version": 1, "suite": "x"}'):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(EvalError) as caught:
            load_baseline(path)
        assert caught.value.code == "W-EVL-007"
    with pytest.raises(EvalError, match="--save-baseline"):
        load_baseline(tmp_path / "missing.json")


def test_the_reports_say_the_same_thing() -> None:
    suite = load_suite(TILL / "suite.yaml")
    base = [case("a"), case("b")]
    now = [case("a"), case("b", passed=False, violations=1)]
    verdict = judge_run(now, Thresholds(), baseline_of(base))
    doc = report_json(suite, now, verdict)
    assert doc["result"] == "fail" and doc["new_failures"] == ["b"]
    assert doc["figures"]["violations"] == 1
    json.dumps(doc)  # JSON-ready
    root = ET.fromstring(report_junit(suite, now, verdict).split("?>", 1)[1])
    ts = root.find("testsuite")
    assert ts is not None and ts.get("tests") == "3" and ts.get("failures") == "2"
    names = [tc.get("name") for tc in ts.iter("testcase")]
    assert names == ["a", "b", "release gate"]
    md = report_markdown(suite, now, verdict)
    assert "❌ FAIL" in md and "| `b` (new) | deny (expected success) |" in md
    assert "policy violations 1 > allowed 0" in md
