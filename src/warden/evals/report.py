"""A suite run's figures, the baseline they are held against, the verdict and the reports.

The verdict is the release gate: no success-rate drop beyond its margin, no new policy
violation, no cost-per-success or p95 regression beyond its margin, no case that the
baseline passed failing now. Each broken threshold is one reason on the RESULT line, in
the order above, with the figures that broke it.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from xml.etree import ElementTree as ET

import warden
from warden.errors import EvalError
from warden.evals.run import CaseResult
from warden.evals.suite import Suite, Thresholds
from warden.fleet import p95

__all__ = ["BASELINE_VERSION", "Baseline", "Figures", "Verdict", "judge_run", "load_baseline"]

BASELINE_VERSION = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class Figures:
    """The numbers a suite run is judged by."""

    cases: int
    passed: int
    violations: int
    usd: float
    """All model spend."""
    p95_ms: float
    errors: int = 0
    """Cases that could not run at all."""
    approvals: int = 0
    escalations: int = 0
    denials: int = 0

    @property
    def success_rate(self) -> float:
        return self.passed / self.cases if self.cases else 0.0

    @property
    def cost_per_success(self) -> float | None:
        """All spend over the cases that succeeded (failures cost money too)."""
        return self.usd / self.passed if self.passed else None

    @classmethod
    def of(cls, results: Sequence[CaseResult]) -> Figures:
        return cls(
            cases=len(results),
            passed=sum(1 for r in results if r.passed),
            violations=sum(len(r.violations) for r in results),
            usd=sum(r.usd for r in results),
            p95_ms=p95([r.wall_ms for r in results if r.error is None]),
            errors=sum(1 for r in results if r.error is not None),
            approvals=sum(r.approvals for r in results),
            escalations=sum(1 for r in results if r.outcome == "escalate"),
            denials=sum(r.denials for r in results),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "passed": self.passed,
            "success_rate": round(self.success_rate, 6),
            "violations": self.violations,
            "usd": round(self.usd, 8),
            "cost_per_success": (
                round(self.cost_per_success, 8) if self.cost_per_success is not None else None
            ),
            "p95_ms": round(self.p95_ms, 3),
            "errors": self.errors,
            "approvals": self.approvals,
            "escalations": self.escalations,
            "denials": self.denials,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Figures:
        return cls(
            cases=int(data["cases"]),
            passed=int(data["passed"]),
            violations=int(data["violations"]),
            usd=float(data["usd"]),
            p95_ms=float(data["p95_ms"]),
            errors=int(data.get("errors", 0)),
            approvals=int(data.get("approvals", 0)),
            escalations=int(data.get("escalations", 0)),
            denials=int(data.get("denials", 0)),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Baseline:
    """A saved run of a suite: its figures and each case's result."""

    suite: str
    figures: Figures
    cases: Mapping[str, Mapping[str, Any]]
    """Case id -> passed, outcome, usd, wall_ms, violations."""
    file: str = ""
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": BASELINE_VERSION,
            "suite": self.suite,
            "created_at": self.created_at,
            "warden": warden.__version__,
            "figures": self.figures.to_dict(),
            "cases": {k: dict(v) for k, v in sorted(self.cases.items())},
        }

    @classmethod
    def of(cls, suite: Suite, results: Sequence[CaseResult]) -> Baseline:
        return cls(
            suite=suite.name,
            figures=Figures.of(results),
            cases={
                r.id: {
                    "passed": r.passed,
                    "outcome": r.outcome,
                    "usd": round(r.usd, 8),
                    "wall_ms": round(r.wall_ms, 3),
                    "violations": len(r.violations),
                }
                for r in results
            },
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file (W-EVL-007 when it cannot be used)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalError(
            "W-EVL-007", f"no baseline file {path}", hint="write one with --save-baseline"
        ) from None
    except (OSError, ValueError) as exc:
        raise EvalError("W-EVL-007", f"baseline {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EvalError("W-EVL-007", f"baseline {path} is not a JSON object")
    doc = cast(dict[str, Any], data)
    if doc.get("version") != BASELINE_VERSION:
        raise EvalError(
            "W-EVL-007",
            f"baseline {path} has version {doc.get('version')!r}; this Warden reads "
            f"version {BASELINE_VERSION}",
            hint="write a new baseline with --save-baseline",
        )
    try:
        return Baseline(
            suite=str(doc["suite"]),
            figures=Figures.from_dict(doc["figures"]),
            cases=cast(dict[str, Mapping[str, Any]], doc.get("cases", {})),
            file=str(path),
            created_at=str(doc.get("created_at", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EvalError("W-EVL-007", f"baseline {path} lacks a figure: {exc}") from None


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """PASS, or FAIL with its reasons."""

    passed: bool
    reasons: tuple[str, ...]
    figures: Figures
    baseline: Baseline | None
    new_failures: tuple[str, ...] = ()
    """Cases the baseline passed that fail now."""
    fixed: tuple[str, ...] = ()
    """Cases the baseline failed that pass now."""
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def line(self) -> str:
        if self.passed:
            return "RESULT: PASS"
        return f"RESULT: FAIL ({'; '.join(self.reasons)})"


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def judge_run(
    results: Sequence[CaseResult], thresholds: Thresholds, baseline: Baseline | None
) -> Verdict:
    """Hold a run's figures against the thresholds and the baseline."""
    now = Figures.of(results)
    t = thresholds
    reasons: list[str] = []
    if t.min_success_rate is not None and now.success_rate < t.min_success_rate:
        reasons.append(
            f"success rate {_pct(now.success_rate)} < minimum {_pct(t.min_success_rate)}"
        )
    if t.max_violations is not None and now.violations > t.max_violations:
        reasons.append(f"policy violations {now.violations} > allowed {t.max_violations}")
    new_failures: list[str] = []
    fixed: list[str] = []
    if baseline is not None:
        before = baseline.figures
        drop = (before.success_rate - now.success_rate) * 100.0
        if drop > t.max_success_drop + 1e-9:
            reasons.append(
                f"success rate dropped {drop:.1f} pts ({_pct(before.success_rate)} -> "
                f"{_pct(now.success_rate)}) > budget {t.max_success_drop:g} pts"
            )
        added = now.violations - before.violations
        if added > t.max_new_violations and (
            t.max_violations is None or now.violations <= t.max_violations
        ):  # not said twice
            reasons.append(
                f"new policy violations {added} ({before.violations} -> {now.violations}) > "
                f"budget {t.max_new_violations}"
            )
        cps, base_cps = now.cost_per_success, before.cost_per_success
        if t.max_cost_regression is not None and cps is not None and base_cps:
            rise = cps / base_cps - 1.0
            if rise > t.max_cost_regression + 1e-9:
                reasons.append(
                    f"cost regression {_pct(rise)} > budget {_pct(t.max_cost_regression)} "
                    f"(${base_cps:.4f} -> ${cps:.4f} per success)"
                )
        if t.max_p95_regression is not None and before.p95_ms > 0:
            rise = now.p95_ms / before.p95_ms - 1.0
            delta = now.p95_ms - before.p95_ms
            if rise > t.max_p95_regression and delta > t.min_p95_delta_ms:
                reasons.append(
                    f"p95 latency regression {_pct(rise)} > budget "
                    f"{_pct(t.max_p95_regression)} ({before.p95_ms:.0f} -> {now.p95_ms:.0f} ms)"
                )
        for r in results:
            was = baseline.cases.get(r.id)
            if was is None:
                continue
            if was.get("passed") and not r.passed:
                new_failures.append(r.id)
            elif not was.get("passed") and r.passed:
                fixed.append(r.id)
        if t.fail_on_new_failures and new_failures:
            shown = ", ".join(new_failures[:5]) + (" ..." if len(new_failures) > 5 else "")
            reasons.append(
                f"{len(new_failures)} case(s) passed in the baseline and fail now: {shown}"
            )
    elif t.min_success_rate is None and now.passed < now.cases:
        failing = [r.id for r in results if not r.passed]
        shown = ", ".join(failing[:5]) + (" ..." if len(failing) > 5 else "")
        reasons.append(f"{len(failing)} case(s) fail and there is no baseline: {shown}")
    if now.errors:
        reasons.append(f"{now.errors} case(s) could not run")
    return Verdict(
        passed=not reasons,
        reasons=tuple(reasons),
        figures=now,
        baseline=baseline,
        new_failures=tuple(new_failures),
        fixed=tuple(fixed),
        thresholds=thresholds,
    )


# --- the summary lines and reports ------------------------------------------------------


def _money(usd: float | None) -> str:
    return "n/a" if usd is None else f"${usd:.4f}"


def _figure_cells(f: Figures) -> list[tuple[str, str]]:
    """(figure, value) for the summary, in the seed's order."""
    return [
        ("Cases", str(f.cases)),
        ("Success rate", _pct(f.success_rate)),
        ("Policy violations", str(f.violations)),
        ("Avg cost/success", _money(f.cost_per_success)),
        ("P95 latency", f"{f.p95_ms / 1000:.2f}s"),
    ]


def summary_rows(verdict: Verdict) -> list[tuple[str, str, str]]:
    """(figure, now, baseline) rows, as the summary prints them ("" without a baseline)."""
    now = _figure_cells(verdict.figures)
    f = verdict.figures
    now[1] = (now[1][0], f"{now[1][1]} ({f.passed}/{f.cases})")
    before = _figure_cells(verdict.baseline.figures) if verdict.baseline else None
    return [(name, value, before[i][1] if before else "") for i, (name, value) in enumerate(now)]


def summary_text(verdict: Verdict) -> str:
    """The plain summary: one line per figure with its baseline, then the RESULT line."""
    return "\n".join([*summary_lines(verdict), verdict.line])


def summary_lines(verdict: Verdict) -> list[str]:
    """``Figure: now (prev baseline)``, one line per figure."""
    return [
        f"{name}: {now}" + (f" (prev {before})" if before else "")
        for name, now, before in summary_rows(verdict)
    ]


def report_json(suite: Suite, results: Sequence[CaseResult], verdict: Verdict) -> dict[str, Any]:
    return {
        "suite": suite.name,
        "file": suite.display,
        "result": "pass" if verdict.passed else "fail",
        "reasons": list(verdict.reasons),
        "figures": verdict.figures.to_dict(),
        "baseline": (
            {"file": verdict.baseline.file, "figures": verdict.baseline.figures.to_dict()}
            if verdict.baseline
            else None
        ),
        "thresholds": verdict.thresholds.model_dump(),
        "new_failures": list(verdict.new_failures),
        "fixed": list(verdict.fixed),
        "cases": [r.to_dict() for r in results],
        "warden": warden.__version__,
        "python": platform.python_version(),
    }


def report_junit(suite: Suite, results: Sequence[CaseResult], verdict: Verdict) -> str:
    """JUnit XML: one testcase per case, plus one for the release gate itself."""
    failures = sum(1 for r in results if not r.passed and r.error is None)
    errors = sum(1 for r in results if r.error is not None)
    total_s = sum(r.wall_ms for r in results) / 1000.0
    root = ET.Element("testsuites")
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite.name,
        tests=str(len(results) + 1),
        failures=str(failures + (0 if verdict.passed else 1)),
        errors=str(errors),
        time=f"{total_s:.3f}",
    )
    for r in results:
        tc = ET.SubElement(
            ts, "testcase", classname=suite.name, name=r.id, time=f"{r.wall_ms / 1000:.3f}"
        )
        if r.error is not None:
            ET.SubElement(tc, "error", message=r.error).text = r.error
        elif not r.passed:
            ET.SubElement(
                tc, "failure", message=r.problems[0] if r.problems else "failed"
            ).text = "\n".join(r.problems)
        out = ET.SubElement(tc, "system-out")
        out.text = (
            f"outcome {r.outcome} (expected {r.expected}); cost ${r.usd:.5f}; "
            f"{r.tool_calls} tool calls; {r.turns} turns; run {r.run_id}"
        )
    gate = ET.SubElement(ts, "testcase", classname=suite.name, name="release gate", time="0")
    if not verdict.passed:
        ET.SubElement(gate, "failure", message=verdict.line).text = "\n".join(verdict.reasons)
    ET.SubElement(gate, "system-out").text = summary_text(verdict)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def report_markdown(suite: Suite, results: Sequence[CaseResult], verdict: Verdict) -> str:
    """A Markdown report for a pull request or a CI job summary."""
    mark = "✅ PASS" if verdict.passed else "❌ FAIL"
    lines = [f"## Eval `{_md(suite.name)}`: {mark}", ""]
    if verdict.reasons:
        lines += [f"- {_md(r)}" for r in verdict.reasons] + [""]
    head = "| figure | now |" + (" baseline |" if verdict.baseline else "")
    lines += [head, "|---|---|" + ("---|" if verdict.baseline else "")]
    for name, now, before in summary_rows(verdict):
        lines.append(f"| {name} | {now} |" + (f" {before} |" if verdict.baseline else ""))
    failed = [r for r in results if not r.passed]
    if failed:
        lines += ["", f"### Failing cases ({len(failed)})", "", "| case | outcome | why |"]
        lines.append("|---|---|---|")
        for r in failed:
            new = " (new)" if r.id in verdict.new_failures else ""
            lines.append(
                f"| `{_md(r.id)}`{new} | {r.outcome} (expected {r.expected}) | "
                f"{_md('; '.join(r.problems))} |"
            )
    if verdict.fixed:
        lines += ["", "Fixed since the baseline: " + ", ".join(f"`{c}`" for c in verdict.fixed)]
    return "\n".join(lines) + "\n"
