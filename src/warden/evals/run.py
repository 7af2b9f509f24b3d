"""Running a suite: every case on a fresh workspace, in worker processes.

Each case gets its own folder with its own SQLite store (so no breaker, budget, loop or
history state leaks from one case into the next; its commits skip fsync, as the folder
is deleted after the case) and, when the suite names one, a fresh
tool backend. The runner is Warden's own (`warden.runner.Runner`) over the project's
gate, so a case is governed exactly as production is. After the run — and after each
verdict the case gives when its run waits for people — the result is judged against
the case's expectations.

With ``workers > 1`` cases run in separate processes (the project and models are loaded
once per process); results come back as plain dicts so they cross the process boundary,
and are sorted back into suite order.
"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, cast

from warden.approvals import ApprovalStatus
from warden.decision import Outcome
from warden.errors import EvalError, WardenError
from warden.evals.suite import CallPattern, Case, Check, ModelChoice, Suite, load_suite
from warden.execution import Approvals
from warden.models.base import Model
from warden.models.config import build_model, build_route, build_runner, runner_limits
from warden.models.route import Route
from warden.models.scripted import ScriptedModel
from warden.policy.expr import FUNCTIONS
from warden.project import Project, import_project_module, load_project
from warden.provenance import Content
from warden.runner import RunResult, Task
from warden.runs import ActionState, ActionView, RunStatus
from warden.store.sqlite import SQLiteStore
from warden.yamlsource import YamlDoc

__all__ = ["EXECUTED", "CaseResult", "judge", "outcome_of", "run_suite"]

EXECUTED = frozenset(
    {
        ActionState.EXECUTING,
        ActionState.SUCCEEDED,
        ActionState.FAILED,
        ActionState.OUTCOME_UNKNOWN,
        ActionState.COMPENSATED,
    }
)
"""Action states in which the tool was (or may have been) called: the calls `expect.calls`
and `expect.never` are matched against."""


class Backend(Protocol):
    def state(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class CaseResult:
    """One case's run, judged. Plain values only: it crosses process boundaries."""

    id: str
    passed: bool
    outcome: str
    """What the run came to: success, deny, needs_approval or escalate (or error)."""
    expected: str
    code: str | None = None
    problems: tuple[str, ...] = ()
    """Each expectation the run did not meet, in words."""
    violations: tuple[str, ...] = ()
    """Executed calls that matched the case's `never`."""
    usd: float = 0.0
    tokens: int = 0
    tool_calls: int = 0
    turns: int = 0
    wall_ms: float = 0.0
    model_ms: float = 0.0
    tool_ms: float = 0.0
    approvals: int = 0
    """Approval requests the case's run opened."""
    denials: int = 0
    calls: tuple[Mapping[str, Any], ...] = ()
    """Every decided call: tool, args, state, outcome, code."""
    run_id: str = ""
    answer: str | None = None
    error: str | None = None
    """Why the case could not run (a bad script, a backend that failed ...)."""
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseResult:
        data = dict(data)
        for key in ("problems", "violations", "calls", "tags"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


# --- one case --------------------------------------------------------------------------


@dataclass(kw_only=True, slots=True)
class _Worker:
    """What one process keeps between cases: the project, the backend factory, models."""

    suite: Suite
    project: Project
    override: ModelChoice | None
    root: Path
    backend: Callable[..., Any] | None = None
    routes: dict[Any, Route] = field(default_factory=dict[Any, Route])
    template: Path | None = None
    """An empty, migrated Warden database each case starts from as a copy."""
    n: int = 0

    @classmethod
    def start(cls, suite: Suite, override: ModelChoice | None, root: Path) -> _Worker:
        project = load_project(suite.project)
        worker = cls(suite=suite, project=project, override=override, root=root)
        if suite.backend:
            worker.backend = _factory(suite, project)
        template = root / "template.db"
        SQLiteStore(template).close()  # migrate once, not once per case
        worker.template = template
        return worker

    def route(self, case: Case) -> Route:
        choice = self.override or case.model
        if choice is None:
            raise EvalError(
                "W-EVL-002",
                f"case {case.id!r} has no model: give the suite or the case `model:`, or "
                "pass --model",
            )
        if choice.kind == "turns":  # built per case: the turns are the case's own
            return Route.of(
                ScriptedModel(
                    {case.key: [dict(t) for t in choice.turns]},
                    name="recorded" if choice.recorded_run else "scripted",
                    prices_as=choice.prices_as,
                    file=self.suite.display,
                )
            )
        key = (choice.kind, choice.path, tuple(m.model_dump_json() for m in choice.settings))
        found = self.routes.get(key)
        if found is None:
            found = self.routes[key] = self._build(choice)
        return found

    def _build(self, choice: ModelChoice) -> Route:
        if choice.kind == "script":
            assert choice.path is not None
            return Route.of(ScriptedModel.load(choice.path))
        if choice.kind == "default":
            return build_route(self.project)
        models: list[Model] = [build_model(s, self.project) for s in choice.settings]
        settings = self.project.runner
        return Route(
            models=tuple(models),
            min_confidence=settings.min_confidence if settings is not None else {},
        )

    def run(self, case: Case) -> CaseResult:
        self.n += 1
        folder = self.root / f"{self.n:05d}"
        folder.mkdir(parents=True)
        started = time.perf_counter()
        backend: Any = None
        store: SQLiteStore | None = None
        try:
            if self.backend is not None:
                backend = self.backend(folder, **case.backend_args)
            elif case.backend_args:
                raise EvalError(
                    "W-EVL-004", "the case gives `backend_args`, but the suite names no backend"
                )
            if self.template is not None:
                shutil.copyfile(self.template, folder / "warden.db")
            store = SQLiteStore(
                folder / "warden.db",
                idempotency_retention_s=self.project.idempotency_retention_s,
                fsync=False,  # the case's workspace is deleted after it: no power-loss to survive
            )
            result, approvals = self._drive(case, store)
            actions = store.run(result.run_id)
            state: Mapping[str, Any] = _state(backend) if case.expect.state else {}
            return judge(
                case, result, actions.actions if actions else (), state, approvals=approvals
            )
        except WardenError as exc:
            return _broken(case, f"{exc.code}: {exc.message}", started)
        except Exception as exc:  # a backend or tool module fault: the case fails, the run goes on
            return _broken(case, f"{type(exc).__name__}: {exc}", started)
        finally:
            if store is not None:
                store.close()
            close = getattr(backend, "close", None)
            if callable(close):
                close()
            shutil.rmtree(folder, ignore_errors=True)

    def _drive(self, case: Case, store: SQLiteStore) -> tuple[RunResult, int]:
        project = self.project
        runner = build_runner(
            project,
            store,
            route=self.route(case),
            limits=replace(runner_limits(project), **case.limits.model_dump(exclude_none=True)),
        )
        task = Task(
            agent=case.agent,
            key=case.key,
            goal=case.task,
            content=tuple(
                Content(text=text, label=label, source=source)
                for label, source, text in case.content
            ),
            context=case.context,
            on_behalf_of=case.on_behalf_of,
        )
        result = runner.run(task)
        desk = Approvals(store, roles=project.roles, clock=runner.gate.clock)
        opened = 0
        verdicts = iter(case.verdicts)
        while result.status is RunStatus.WAITING:
            opened += 1
            verdict = next(verdicts, None)
            if verdict is None:
                break
            approval_id = (result.escalation or {}).get("proposed", {}).get("approval_id")
            if not approval_id:
                raise EvalError("W-EVL-003", "the run waits, but its packet names no approval")
            request = store.approval(str(approval_id))
            while request is not None and request.status is ApprovalStatus.PENDING:
                request = (
                    desk.approve(
                        approval_id, approver=verdict.by, role=verdict.role, reason=verdict.reason
                    )
                    if verdict.approve
                    else desk.deny(
                        approval_id,
                        approver=verdict.by,
                        role=verdict.role,
                        reason=verdict.reason or "denied in an eval",
                    )
                )
                if request.status is ApprovalStatus.PENDING:  # a two-person rule: next verdict
                    verdict = next(verdicts, None)
                    if verdict is None:
                        return result, opened
            result = runner.resume(result.run_id)
        return result, opened


def _factory(suite: Suite, project: Project) -> Callable[..., Any]:
    assert suite.backend is not None
    module_name, sep, attr = suite.backend.partition(":")
    if not sep or not module_name or not attr:
        raise EvalError(
            "W-EVL-004",
            f"backend {suite.backend!r}: expected module:function (a module beside warden.yaml)",
        )
    lines: dict[tuple[str | int, ...], int] = (
        {("backend",): suite.backend_line} if suite.backend_line else {}
    )
    doc = YamlDoc(file=suite.display, data={}, lines=lines, text="")
    module = import_project_module(project.root, module_name, doc, ("backend",))
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise EvalError(
            "W-EVL-004", f"backend {suite.backend!r}: {module_name} has no function {attr!r}"
        )
    return cast(Callable[..., Any], fn)


def _state(backend: Any) -> Mapping[str, Any]:
    if backend is None:
        raise EvalError(
            "W-EVL-004",
            "the case checks `state`, but the suite names no `backend:` to read it from",
        )
    state = backend.state()
    if not isinstance(state, Mapping):
        raise EvalError("W-EVL-004", "the backend's state() must return a mapping")
    return cast(Mapping[str, Any], state)


def _broken(case: Case, error: str, started: float) -> CaseResult:
    return CaseResult(
        id=case.id,
        passed=False,
        outcome="error",
        expected=case.expect.outcome,
        problems=(f"the case could not run: {error}",),
        wall_ms=(time.perf_counter() - started) * 1000.0,
        error=error,
        tags=case.tags,
    )


# --- judging ---------------------------------------------------------------------------


def outcome_of(result: RunResult, actions: tuple[ActionView, ...]) -> tuple[str, str | None]:
    """What a run came to, most serious first, and the code that says why."""
    if result.status is RunStatus.WAITING:
        return "needs_approval", result.code
    if result.status is not RunStatus.SUCCEEDED:
        return "escalate", result.code
    denied = [a for a in actions if _refused(a)]
    if denied:
        return "deny", denied[0].code
    return "success", None


def _refused(action: ActionView) -> bool:
    """Whether the gate denied the call, or the people it waited for refused it."""
    return action.outcome == Outcome.DENY.value or action.state is ActionState.REJECTED


def judge(
    case: Case,
    result: RunResult,
    actions: tuple[ActionView, ...],
    state: Mapping[str, Any],
    *,
    approvals: int = 0,
) -> CaseResult:
    """A run measured against its case's expectations."""
    expect = case.expect
    outcome, code = outcome_of(result, actions)
    problems: list[str] = []
    if outcome != expect.outcome:
        why = (
            f" [{code}: {result.reason}]"
            if code and result.reason
            else f" [{code}]"
            if code
            else ""
        )
        problems.append(f"outcome {outcome}{why}, expected {expect.outcome}")
    if expect.code is not None and code != expect.code:
        problems.append(f"code {code}, expected {expect.code}")
    ran = [(a.tool, a.args) for a in actions if a.state in EXECUTED]
    if expect.calls is not None:
        missing = _calls_problem(expect.match, expect.calls, ran)
        if missing:
            problems.append(missing)
    violations = [
        f"{tool} executed, matching never: {p}"
        for tool, args in ran
        for p in expect.never
        if p.matches(tool, args)
    ]
    problems.extend(violations)
    for check in expect.state:
        failed = _check(check, state)
        if failed:
            problems.append(failed)
    if expect.answer_contains is not None and expect.answer_contains not in (result.answer or ""):
        problems.append(f"the answer does not contain {expect.answer_contains!r}")
    return CaseResult(
        id=case.id,
        passed=not problems,
        outcome=outcome,
        expected=expect.outcome,
        code=code,
        problems=tuple(problems),
        violations=tuple(violations),
        usd=result.usd,
        tokens=result.tokens,
        tool_calls=result.tool_calls,
        turns=result.turns,
        wall_ms=result.wall_ms,
        model_ms=result.model_ms,
        tool_ms=result.tool_ms,
        approvals=approvals,
        denials=sum(1 for a in actions if _refused(a)),
        calls=tuple(
            {
                "tool": a.tool,
                "args": dict(a.args),
                "state": a.state.value,
                "outcome": a.outcome,
                "code": a.code,
            }
            for a in actions
        ),
        run_id=result.run_id,
        answer=result.answer,
        tags=case.tags,
    )


def _calls_problem(
    match: str, want: tuple[CallPattern, ...], ran: list[tuple[str, Mapping[str, Any]]]
) -> str | None:
    made = ", ".join(t for t, _ in ran) or "none"
    if match == "exact":
        ok = len(want) == len(ran) and all(
            p.matches(t, a) for p, (t, a) in zip(want, ran, strict=False)
        )
        return None if ok else f"calls {made}; expected exactly {', '.join(map(str, want))}"
    if match == "subset":
        absent = [p for p in want if not any(p.matches(t, a) for t, a in ran)]
        return None if not absent else f"calls {made}; expected also {', '.join(map(str, absent))}"
    i = 0  # ordered: each pattern matches a later call than the one before
    for t, a in ran:
        if i < len(want) and want[i].matches(t, a):
            i += 1
    if i == len(want):
        return None
    return f"calls {made}; expected in order {', '.join(map(str, want))} (missing from {want[i]})"


_NAMESPACE: dict[str, Any] = {"__builtins__": {}, **{f"_f_{k}": v for k, v in FUNCTIONS.items()}}


def _check(check: Check, state: Mapping[str, Any]) -> str | None:
    """None when the check holds; otherwise what went wrong."""
    cond = check.condition
    where = f" (line {check.line})" if check.line else ""
    try:
        code = compile(cond.python, f"<check {check.source}>", "eval")
        value = eval(code, {**_NAMESPACE, **cond.constants, "_E": state})  # noqa: S307
    except KeyError as exc:
        return f"state check {check.source!r}{where}: no {exc.args[0]!r} in the state"
    except Exception as exc:
        return f"state check {check.source!r}{where} failed: {type(exc).__name__}: {exc}"
    if value is not True:
        return f"state check {check.source!r}{where} is false"
    return None


# --- many cases ------------------------------------------------------------------------

_STATE: dict[str, _Worker] = {}


def _init(suite_file: str, only: tuple[str, ...], override: ModelChoice | None, root: str) -> None:
    suite = load_suite(suite_file).only(only)
    folder = Path(tempfile.mkdtemp(prefix="case-", dir=root))
    _STATE["worker"] = _Worker.start(suite, override, folder)


def _one(index: int) -> dict[str, Any]:
    worker = _STATE["worker"]
    return worker.run(worker.suite.cases[index]).to_dict()


def run_suite(
    suite: Suite,
    *,
    workers: int = 1,
    model: ModelChoice | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run every case of `suite`; results in suite order.

    `on_result` is called as each case finishes (for a progress bar). With one worker
    the cases run in this process."""
    root = Path(tempfile.mkdtemp(prefix="warden-eval-"))
    try:
        return list(_run(suite, workers, model, on_result, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(
    suite: Suite,
    workers: int,
    model: ModelChoice | None,
    on_result: Callable[[CaseResult], None] | None,
    root: Path,
) -> Iterator[CaseResult]:
    n = len(suite.cases)
    results: list[CaseResult | None] = [None] * n
    if workers <= 1 or n == 1:
        worker = _Worker.start(suite, model, root)
        for i, case in enumerate(suite.cases):
            results[i] = r = worker.run(case)
            if on_result is not None:
                on_result(r)
    else:
        # a project, backend or model that cannot load says so here, once, instead of
        # as a broken pool in every worker
        _Worker.start(suite, model, root).route(suite.cases[0])
        selectors = tuple(c.id for c in suite.cases)
        context = multiprocessing.get_context(
            "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        )
        with ProcessPoolExecutor(
            max_workers=min(workers, n),
            mp_context=context,
            initializer=_init,
            initargs=(str(suite.file), selectors, model, str(root)),
        ) as pool:
            futures: dict[Future[dict[str, Any]], int] = {pool.submit(_one, i): i for i in range(n)}
            for future in as_completed(futures):
                i = futures[future]
                try:
                    r = CaseResult.from_dict(future.result())
                except Exception as exc:  # a worker died: that case failed, say why
                    r = _broken(suite.cases[i], f"{type(exc).__name__}: {exc}", time.perf_counter())
                results[i] = r
                if on_result is not None:
                    on_result(r)
    for r in results:
        assert r is not None
        yield r
