"""Warden's pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

- ``warden_clock``: a `FixedClock` at 2026-01-01T09:00:00Z;
- ``warden_project``: the project named by ``--warden-project`` or the ``warden_project``
  ini option (a relative path is taken from pytest's root folder; default: that folder);
- ``warden_gate``: a `CapturingGate` over that project, a fresh in-memory store and the
  fixed clock;
- ``warden_decisions``: the list of decisions ``warden_gate`` made;
- ``warden_eval``: runs an eval suite and returns its `EvalRun` (results and verdict);
  ``warden_eval("evals/desk.yaml", baseline="evals/baseline.json").assert_passed()``.

With ``--warden-policy-tests`` (or ``warden_policy_tests = true`` in the ini file), every
``*_test.yaml`` policy test file becomes a pytest file whose cases are test items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from warden.clock import CountingIds, FixedClock
from warden.decision import Decision
from warden.errors import ProjectError
from warden.evals.report import Verdict, judge_run, load_baseline, summary_text
from warden.evals.run import CaseResult as EvalCaseResult
from warden.evals.run import run_suite
from warden.evals.suite import Suite, load_suite, parse_model_option
from warden.policy.cases import CaseResult, PolicyCase, load_cases, run_cases
from warden.project import Project, find_project_file, load_project
from warden.store.memory import MemoryStore
from warden.testing.capture import CapturingGate


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("warden")
    group.addoption(
        "--warden-project", default=None, help="Warden project folder for the fixtures."
    )
    group.addoption(
        "--warden-policy-tests",
        action="store_true",
        default=False,
        help="Collect *_test.yaml policy tests as pytest items.",
    )
    parser.addini("warden_project", "Warden project folder for the fixtures.", default=None)
    parser.addini(
        "warden_policy_tests", "Collect *_test.yaml policy tests.", type="bool", default=False
    )


@pytest.fixture
def warden_clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def warden_project(request: pytest.FixtureRequest) -> Project:
    config = request.config
    named = config.getoption("--warden-project") or config.getini("warden_project")
    return load_project(config.rootpath / str(named) if named else config.rootpath)


@pytest.fixture
def warden_gate(warden_project: Project, warden_clock: FixedClock) -> CapturingGate:
    return CapturingGate(
        warden_project.gate(store=MemoryStore(), clock=warden_clock, ids=CountingIds())
    )


@pytest.fixture
def warden_decisions(warden_gate: CapturingGate) -> list[Decision]:
    return warden_gate.decisions


@dataclass(frozen=True, kw_only=True, slots=True)
class EvalRun:
    """One run of an eval suite inside a test: its cases' results and the verdict."""

    suite: Suite
    results: list[EvalCaseResult]
    verdict: Verdict

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    def result(self, case_id: str) -> EvalCaseResult:
        """One case's result (KeyError naming the known ids when there is none)."""
        for r in self.results:
            if r.id == case_id:
                return r
        raise KeyError(f"no case {case_id!r}; the suite has {[r.id for r in self.results]}")

    def assert_passed(self) -> None:
        """Fail the test with the summary and every failing case when the gate fails."""
        if self.verdict.passed:
            return
        lines = [summary_text(self.verdict), ""]
        lines += [f"{r.id}: {'; '.join(r.problems)}" for r in self.results if not r.passed]
        pytest.fail("\n".join(lines), pytrace=False)


@pytest.fixture
def warden_eval(request: pytest.FixtureRequest) -> Callable[..., EvalRun]:
    """Run a suite: ``warden_eval(path, baseline=None, workers=1, model=(), only=(),
    thresholds=())``; relative paths are taken from pytest's root folder."""
    root = request.config.rootpath

    def run(
        suite: str | Path,
        *,
        baseline: str | Path | None = None,
        workers: int = 1,
        model: Sequence[str] = (),
        only: Sequence[str] = (),
        thresholds: Sequence[str] = (),
    ) -> EvalRun:
        loaded = load_suite(root / suite).only(only)
        results = run_suite(
            loaded,
            workers=workers,
            model=parse_model_option(model, root) if model else None,
        )
        verdict = judge_run(
            results,
            loaded.thresholds.override(thresholds),
            load_baseline(root / baseline) if baseline is not None else None,
        )
        return EvalRun(suite=loaded, results=results, verdict=verdict)

    return run


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    config = parent.config
    enabled = config.getoption("--warden-policy-tests") or config.getini("warden_policy_tests")
    if enabled and file_path.name.endswith(("_test.yaml", "_test.yml")):
        return PolicyTestFile.from_parent(parent, path=file_path)  # pyright: ignore[reportUnknownMemberType]
    return None


class PolicyTestFile(pytest.File):  # pyright: ignore[reportUnknownMemberType]
    def collect(self) -> Iterator[pytest.Item]:
        for case in load_cases(self.path, display=self.path.name):
            yield PolicyTestItem.from_parent(self, name=case.name, case=case)  # pyright: ignore[reportUnknownMemberType]


class PolicyTestItem(pytest.Item):
    def __init__(self, *, case: PolicyCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # pyright: ignore[reportUnknownMemberType]
        self.case = case

    def runtest(self) -> None:
        project = _project_for(self.path)
        cases = [self.case]
        results = project.run_policy_cases(cases) if project else run_cases(cases)
        if not results[0].passed:
            raise PolicyCaseFailed(results[0])

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, PolicyCaseFailed):
            r = excinfo.value.result
            lines = [f"{self.case.file}:{self.case.line} {self.case.name}", *r.problems]
            if r.reasons:
                lines.append("reasons: " + "; ".join(r.reasons))
            return "\n".join(lines)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"policy test: {self.case.name}"


class PolicyCaseFailed(Exception):
    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.problems)
        self.result = result


def _project_for(path: Path) -> Project | None:
    try:
        find_project_file(path.parent)
    except ProjectError:
        return None
    return load_project(path.parent)
