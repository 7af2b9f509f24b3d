"""The eval suite file: cases, expectations, models, limits and thresholds.

A suite is YAML a user wrote (docs/reference/eval-suite.md), so it is read the way the
other config files are: strict models, and every error names the file, the line and the
field. Loading checks everything that can be checked without running a case: unique
ids, the expectation's calls, the state checks (compiled in the policy condition
language), the thresholds and the model of every case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from warden.errors import ConfigError, EvalError, PolicyError
from warden.policy.expr import Condition, compile_condition
from warden.project import ModelSettings
from warden.provenance import Label
from warden.yamlsource import YamlDoc, config_error_from_validation, load_yaml

__all__ = [
    "OUTCOMES",
    "CallPattern",
    "Case",
    "Expectation",
    "Limits",
    "ModelChoice",
    "Suite",
    "Thresholds",
    "load_suite",
    "parse_model_option",
]

OUTCOMES = ("success", "deny", "needs_approval", "escalate")
"""What a case's run can come to, least serious first."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limits(_Strict):
    """Per-case limits; the tighter of these and the agent's manifest wins."""

    max_turns: int | None = Field(default=None, ge=1, le=1000)
    max_usd: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_tool_calls: int | None = Field(default=None, ge=1)
    max_wall_seconds: float | None = Field(default=None, gt=0)

    def over(self, base: Limits) -> Limits:
        """These limits, falling back to `base` for the ones not set."""
        mine = self.model_dump(exclude_none=True)
        return Limits.model_validate({**base.model_dump(exclude_none=True), **mine})


def _percent(value: Any) -> Any:
    """``7%`` -> 0.07; numbers pass through."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100.0
        except ValueError:
            return value
    return value


class Thresholds(_Strict):
    """When a run fails; see the suite reference for each key."""

    min_success_rate: float | None = Field(default=None, ge=0, le=1)
    max_success_drop: float = Field(default=0.0, ge=0, le=100)
    """Percentage points."""
    max_new_violations: int = Field(default=0, ge=0)
    max_violations: int | None = Field(default=0, ge=0)
    max_cost_regression: float | None = Field(default=0.07, ge=0)
    max_p95_regression: float | None = Field(default=0.25, ge=0)
    min_p95_delta_ms: float = Field(default=50.0, ge=0)
    fail_on_new_failures: bool = True

    @field_validator("min_success_rate", "max_cost_regression", "max_p95_regression", mode="before")
    @classmethod
    def _ratio(cls, value: Any) -> Any:
        return _percent(value)

    def override(self, pairs: Sequence[str]) -> Thresholds:
        """These thresholds with ``KEY=VALUE`` overrides (``--threshold``)."""
        data = self.model_dump()
        for pair in pairs:
            key, sep, value = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in data:
                known = ", ".join(sorted(data))
                raise EvalError(
                    "W-EVL-005",
                    f"--threshold {pair!r}: expected KEY=VALUE with KEY one of {known}",
                )
            text = value.strip()
            data[key] = None if text.lower() in ("none", "off", "") else text
        try:
            return Thresholds.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            raise EvalError("W-EVL-005", f"--threshold {first['loc'][0]}: {first['msg']}") from None


class _ContentSpec(_Strict):
    label: Literal["task", "system", "tool", "untrusted"]
    source: str = ""
    text: str


class _PricesAs(_Strict):
    provider: str
    model: str


class _Recorded(_Strict):
    run: str
    prices_as: _PricesAs | None = None
    """The model the run's usage was priced as, so the case costs what the run did."""
    turns: list[dict[str, Any]]


class _ModelSpec(_Strict):
    script: str | None = None
    turns: list[dict[str, Any]] | None = None
    recorded: _Recorded | None = None
    live: str | ModelSettings | None = None


class _Verdict(_Strict):
    approve: bool
    by: str | None = None
    role: str | None = None
    reason: str = ""


class _Approver(_Strict):
    by: str
    role: str | None = None


class _Calls(_Strict):
    match: Literal["exact", "ordered", "subset"] = "ordered"
    calls: list[str | dict[str, Any]]


class _ExpectSpec(_Strict):
    outcome: Literal["success", "deny", "needs_approval", "escalate"]
    code: str | None = None
    calls: _Calls | list[str | dict[str, Any]] | None = None
    never: list[str | dict[str, Any]] = []
    state: list[str] = []
    answer_contains: str | None = None


class _CaseSpec(_Strict):
    id: str = Field(min_length=1, max_length=200)
    key: str | None = None
    agent: str | None = None
    task: str = Field(min_length=1)
    content: list[_ContentSpec] = []
    context: dict[str, Any] = {}
    on_behalf_of: str | None = None
    model: _ModelSpec | None = None
    limits: Limits = Limits()
    verdicts: list[_Verdict] = []
    tags: list[str] = []
    backend_args: dict[str, Any] = {}
    expect: _ExpectSpec


class _SuiteSpec(_Strict):
    suite: str = Field(min_length=1)
    project: str | None = None
    agent: str | None = None
    model: _ModelSpec | None = None
    backend: str | None = None
    limits: Limits = Limits()
    thresholds: Thresholds = Thresholds()
    approver: _Approver | None = None
    cases: list[_CaseSpec] = Field(min_length=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelChoice:
    """Which model plays the agent in a case.

    kind ``script``: the scripted model of a file (`path`); ``turns``: scripted turns
    (`turns`, from the case or a recorded run); ``default``: warden.yaml's route;
    ``live``: the models in `settings`, as a route (cheapest first)."""

    kind: Literal["script", "turns", "default", "live"]
    path: Path | None = None
    turns: tuple[Mapping[str, Any], ...] = ()
    settings: tuple[ModelSettings, ...] = ()
    recorded_run: str | None = None
    prices_as: tuple[str, str] | None = None
    """For recorded turns: (provider, model) their usage is priced as."""

    def describe(self) -> str:
        if self.kind == "script":
            return f"scripted ({self.path.name if self.path else '?'})"
        if self.kind == "turns":
            return f"recorded ({self.recorded_run})" if self.recorded_run else "scripted (inline)"
        if self.kind == "default":
            return "warden.yaml's runner route"
        return " -> ".join(f"{s.provider}:{s.name or s.script}" for s in self.settings)


@dataclass(frozen=True, kw_only=True, slots=True)
class CallPattern:
    """One entry of ``calls`` or ``never``: a tool, and the arguments that must match."""

    tool: str
    args: Mapping[str, Any] = field(default_factory=dict[str, Any])

    def matches(self, tool: str, args: Mapping[str, Any]) -> bool:
        return tool == self.tool and all(
            k in args and _same(args[k], v) for k, v in self.args.items()
        )

    def __str__(self) -> str:
        if not self.args:
            return self.tool
        inner = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.tool}({inner})"


def _same(a: Any, b: Any) -> bool:
    """Equal, with numbers compared as numbers (49 == 49.0) but never booleans."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


@dataclass(frozen=True, kw_only=True, slots=True)
class Check:
    """One ``state`` check, compiled."""

    source: str
    condition: Condition
    line: int | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Expectation:
    outcome: str
    code: str | None = None
    match: str = "ordered"
    calls: tuple[CallPattern, ...] | None = None
    never: tuple[CallPattern, ...] = ()
    state: tuple[Check, ...] = ()
    answer_contains: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    approve: bool
    by: str
    role: str | None
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Case:
    """One case, with the suite's defaults applied."""

    id: str
    key: str
    agent: str
    task: str
    content: tuple[tuple[Label, str, str], ...]
    """(label, source, text) of each piece of content."""
    context: Mapping[str, Any]
    on_behalf_of: str | None
    model: ModelChoice | None
    limits: Limits
    verdicts: tuple[Verdict, ...]
    tags: tuple[str, ...]
    backend_args: Mapping[str, Any]
    """Keywords for the suite's backend function: the world this case starts from."""
    expect: Expectation
    line: int | None
    """Where the case starts in the suite file."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Suite:
    name: str
    file: Path
    """The suite file (resolved)."""
    display: str
    """The file as the user named it."""
    project: Path
    """The folder holding warden.yaml."""
    backend: str | None
    thresholds: Thresholds
    cases: tuple[Case, ...]
    backend_line: int | None = None

    def only(self, selectors: Sequence[str]) -> Suite:
        """The cases whose id or one of whose tags is in `selectors` (all when empty)."""
        if not selectors:
            return self
        wanted = set(selectors)
        chosen = tuple(c for c in self.cases if c.id in wanted or wanted & set(c.tags))
        if not chosen:
            raise EvalError(
                "W-EVL-006",
                f"--only {', '.join(selectors)} selects no case of suite {self.name!r}",
            )
        return Suite(
            name=self.name,
            file=self.file,
            display=self.display,
            project=self.project,
            backend=self.backend,
            thresholds=self.thresholds,
            cases=chosen,
            backend_line=self.backend_line,
        )


def load_suite(path: Path | str, *, display: str | None = None) -> Suite:
    """Read and check a suite file. Raises a ConfigError (W-EVL-*, W-CFG-*) at file:line."""
    path = Path(path)
    doc = load_yaml(path, display=display or str(path))
    data = doc.mapping()
    if data is None:
        raise doc.error("W-EVL-001", "a suite is a mapping with `suite:` and `cases:`")
    try:
        spec = _SuiteSpec.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(doc, exc, code="W-EVL-001") from None
    folder = path.resolve().parent
    project = _project_folder(doc, spec.project, folder)
    suite_model = _model(doc, spec.model, folder, ("model",)) if spec.model else None
    seen: dict[str, int | None] = {}
    cases: list[Case] = []
    for i, c in enumerate(spec.cases):
        loc: tuple[str | int, ...] = ("cases", i)
        if c.id in seen:
            raise doc.error(
                "W-EVL-001", f"case id {c.id!r} is used twice (first at line {seen[c.id]})", loc
            )
        seen[c.id] = doc.line_of(loc)
        agent = c.agent or spec.agent
        if not agent:
            raise doc.error(
                "W-EVL-001", "the case names no agent, and the suite has no `agent:`", loc
            )
        verdicts: list[Verdict] = []
        for j, v in enumerate(c.verdicts):
            by = v.by or (spec.approver.by if spec.approver else None)
            if not by:
                raise doc.error(
                    "W-EVL-001",
                    "a verdict needs `by:` (or the suite an `approver:`)",
                    (*loc, "verdicts", j),
                )
            role = v.role or (spec.approver.role if spec.approver else None)
            verdicts.append(Verdict(approve=v.approve, by=by, role=role, reason=v.reason))
        cases.append(
            Case(
                id=c.id,
                key=c.key or c.id,
                agent=agent,
                task=c.task,
                content=tuple((Label(x.label), x.source, x.text) for x in c.content),
                context=c.context,
                on_behalf_of=c.on_behalf_of,
                model=_model(doc, c.model, folder, (*loc, "model")) if c.model else suite_model,
                limits=c.limits.over(spec.limits),
                verdicts=tuple(verdicts),
                tags=tuple(c.tags),
                backend_args=c.backend_args,
                expect=_expectation(doc, c.expect, (*loc, "expect")),
                line=doc.line_of(loc),
            )
        )
    return Suite(
        name=spec.suite,
        file=path.resolve(),
        display=doc.file,
        project=project,
        backend=spec.backend,
        thresholds=spec.thresholds,
        cases=tuple(cases),
        backend_line=doc.line_of(("backend",)) if spec.backend else None,
    )


def _project_folder(doc: YamlDoc, named: str | None, folder: Path) -> Path:
    if named is not None:
        found = (folder / named).resolve()
        target = found / "warden.yaml" if found.is_dir() else found
        if not target.is_file():
            raise doc.error("W-EVL-001", f"no warden.yaml at {named!r}", ("project",))
        return target.parent
    for candidate in (folder, *folder.parents):
        if (candidate / "warden.yaml").is_file():
            return candidate
    raise doc.error(
        "W-EVL-001",
        "no warden.yaml in the suite's folder or above it",
        hint="name the project folder with `project:` (relative to the suite file)",
    )


def _model(doc: YamlDoc, spec: _ModelSpec, folder: Path, loc: tuple[str | int, ...]) -> ModelChoice:
    given = [k for k in ("script", "turns", "recorded", "live") if getattr(spec, k) is not None]
    if len(given) != 1:
        raise doc.error(
            "W-EVL-001",
            "a model is exactly one of `script:`, `turns:`, `recorded:` or `live:`"
            + (f" (this one has {', '.join(given)})" if given else ""),
            loc,
        )
    if spec.script is not None:
        path = (folder / spec.script).resolve()
        if not path.is_file():
            raise doc.error("W-EVL-001", f"no script file {spec.script!r}", (*loc, "script"))
        return ModelChoice(kind="script", path=path)
    if spec.turns is not None:
        return ModelChoice(kind="turns", turns=tuple(spec.turns))
    if spec.recorded is not None:
        r = spec.recorded
        return ModelChoice(
            kind="turns",
            turns=tuple(r.turns),
            recorded_run=r.run,
            prices_as=(r.prices_as.provider, r.prices_as.model) if r.prices_as else None,
        )
    live = spec.live
    if live == "default":
        return ModelChoice(kind="default")
    if isinstance(live, str):
        try:
            return parse_model_option([live], folder)
        except EvalError as exc:
            raise doc.error("W-EVL-001", exc.message, (*loc, "live")) from None
    assert live is not None
    return ModelChoice(kind="live", settings=(live,))


def parse_model_option(values: Sequence[str], folder: Path | None = None) -> ModelChoice:
    """``--model`` values: a script file, ``default``, or ``PROVIDER:NAME`` (several: a
    route, cheapest first)."""
    base = folder or Path.cwd()
    if len(values) == 1 and values[0] == "default":
        return ModelChoice(kind="default")
    if len(values) == 1 and values[0].endswith((".yaml", ".yml")):
        path = (base / values[0]).resolve()
        if not path.is_file():
            raise EvalError("W-EVL-002", f"--model {values[0]}: no such script file")
        return ModelChoice(kind="script", path=path)
    settings: list[ModelSettings] = []
    for v in values:
        provider, sep, name = v.partition(":")
        if v.endswith((".yaml", ".yml")):
            path = (base / v).resolve()
            if not path.is_file():
                raise EvalError("W-EVL-002", f"--model {v}: no such script file")
            settings.append(ModelSettings(provider="scripted", script=str(path)))
            continue
        if not sep or provider not in ("openai", "azure", "anthropic") or not name:
            raise EvalError(
                "W-EVL-002",
                f"--model {v!r}: expected a script file (.yaml), `default`, or "
                "PROVIDER:NAME with PROVIDER openai, azure or anthropic",
            )
        settings.append(ModelSettings(provider=cast(Any, provider), name=name))
    return ModelChoice(kind="live", settings=tuple(settings))


def _patterns(
    doc: YamlDoc, entries: Sequence[str | dict[str, Any]], loc: tuple[str | int, ...]
) -> tuple[CallPattern, ...]:
    out: list[CallPattern] = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            out.append(CallPattern(tool=entry))
            continue
        if len(entry) != 1:
            raise doc.error(
                "W-EVL-001", "a call is a tool name, or one `tool: {arg: value}` pair", (*loc, i)
            )
        ((tool, args),) = entry.items()
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise doc.error("W-EVL-001", f"the arguments of {tool} must be a mapping", (*loc, i))
        out.append(CallPattern(tool=str(tool), args=cast(dict[str, Any], args)))
    return tuple(out)


def _expectation(doc: YamlDoc, spec: _ExpectSpec, loc: tuple[str | int, ...]) -> Expectation:
    calls: tuple[CallPattern, ...] | None = None
    match = "ordered"
    if isinstance(spec.calls, _Calls):
        match = spec.calls.match
        calls = _patterns(doc, spec.calls.calls, (*loc, "calls", "calls"))
    elif spec.calls is not None:
        calls = _patterns(doc, spec.calls, (*loc, "calls"))
    checks: list[Check] = []
    for i, source in enumerate(spec.state):
        line = doc.line_of((*loc, "state", i))
        try:
            condition = compile_condition(source, file=doc.file, line=line or 0)
        except PolicyError as exc:
            raise ConfigError(
                "W-EVL-001",
                f"state check {source!r}: {exc.message}",
                file=doc.file,
                line=line,
                field=".".join(str(p) for p in (*loc, "state", i)),
                hint=exc.hint,
            ) from None
        checks.append(Check(source=source, condition=condition, line=line))
    return Expectation(
        outcome=spec.outcome,
        code=spec.code,
        match=match,
        calls=calls,
        never=_patterns(doc, spec.never, (*loc, "never")),
        state=tuple(checks),
        answer_contains=spec.answer_contains,
    )
