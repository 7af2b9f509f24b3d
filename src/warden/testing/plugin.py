"""Warden's pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

- ``warden_clock``: a `FixedClock` at 2026-01-01T09:00:00Z;
- ``warden_project``: the project named by ``--warden-project`` or the ``warden_project``
  ini option (a relative path is taken from pytest's root folder; default: that folder);
- ``warden_gate``: a `CapturingGate` over that project, a fresh in-memory store and the
  fixed clock;
- ``warden_decisions``: the list of decisions ``warden_gate`` made.

With ``--warden-policy-tests`` (or ``warden_policy_tests = true`` in the ini file), every
``*_test.yaml`` policy test file becomes a pytest file whose cases are test items.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from warden.clock import CountingIds, FixedClock
from warden.decision import Decision
from warden.errors import ProjectError
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
