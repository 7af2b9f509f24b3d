"""A Warden project: ``warden.yaml`` and everything it names.

    project: support-desk
    agents: [agents/]          # manifest files, or folders of them
    tools: [refund_tools]      # Python modules (importable from the project folder)
    facts: [refund_facts]      # optional: modules with @warden.fact providers
    policies: [policies/]      # policy files, or folders of them
    store: .warden/warden.db   # optional: the SQLite file (WARDEN_DATABASE_URL overrides)
    roles:                     # optional: who may approve what
      support_lead: [alice, bob]
    approvals:
      expire_after: 24h        # how long a request stays open
    idempotency:
      retention: 24h           # how long a key returns its stored result

Loading checks everything together: every tool a manifest allows is registered, every
shorthand names a real argument, every policy names a known tool, and at least one
policy exists (Warden refuses to start without one).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warden.clock import Clock, FixedClock, IdSource
from warden.durations import parse_duration
from warden.errors import ManifestError, ProjectError, WardenError
from warden.facts import FactProvider, FactRegistry
from warden.gate import Gate
from warden.manifest import AgentManifest, parse_manifest, shorthand_policies
from warden.policy.cases import CaseResult, PolicyCase, run_cases
from warden.policy.evaluate import PolicySet
from warden.policy.load import load_policies, policy_files
from warden.store.memory import MemoryStore
from warden.store.protocol import StateStore
from warden.tools.registry import ToolRegistry
from warden.tools.spec import Tool
from warden.yamlsource import YamlDoc, config_error_from_validation, load_yaml

__all__ = [
    "PROJECT_FILE",
    "ModelSettings",
    "Project",
    "RunnerSettings",
    "find_project_file",
    "import_project_module",
    "load_project",
]

PROJECT_FILE = "warden.yaml"
DEFAULT_STORE = ".warden/warden.db"


class _ApprovalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expire_after: str | float = "24h"


class _IdempotencySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    retention: str | float = "24h"


class ModelSettings(BaseModel):
    """One model of the runner's route (``runner.models:`` in warden.yaml)."""

    model_config = ConfigDict(extra="forbid")
    provider: Literal["openai", "azure", "anthropic", "scripted"]
    """``openai`` (also any OpenAI-compatible server), ``azure``, ``anthropic`` or ``scripted``."""
    name: str = ""
    """The model id (``gpt-4o-mini``); for Azure, the deployment."""
    base_url: str | None = None
    api_key_env: str | None = None
    """The environment variable holding the API key (never the key itself)."""
    script: str | None = None
    """For ``scripted``: the YAML file of turns, relative to the project folder."""
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    api_version: str | None = None
    """For ``azure``."""


class RunnerSettings(BaseModel):
    """``runner:`` in warden.yaml: the model route and the runner's own limits."""

    model_config = ConfigDict(extra="forbid")
    models: list[ModelSettings] = Field(min_length=1)
    """Cheapest first; later models are asked when an earlier one fails or doubts."""
    min_confidence: dict[str, float] = {}
    """Risk tier → the confidence a cheaper model's turn needs to be kept."""
    max_turns: int = Field(default=20, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    """The runner's own per-run limits; the agent's manifest budgets apply too, and the
    tighter of the two wins."""
    max_usd: float | None = Field(default=None, gt=0)
    max_tool_calls: int | None = Field(default=None, ge=1)
    max_wall_seconds: float | None = Field(default=None, gt=0)
    response_cache: str | float | None = None
    """How long identical model requests are answered from memory (a duration)."""
    system: str | None = None
    """The system prompt (``{agent}`` is replaced by the agent's name)."""


class _ProjectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str = Field(default="warden-project", min_length=1)
    agents: list[str] = Field(min_length=1)
    tools: list[str] = []
    facts: list[str] = []
    policies: list[str] = Field(min_length=1)
    store: str = DEFAULT_STORE
    roles: dict[str, list[str]] = {}
    approvals: _ApprovalSettings = _ApprovalSettings()
    idempotency: _IdempotencySettings = _IdempotencySettings()
    runner: RunnerSettings | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Project:
    """Everything one warden.yaml names, loaded and checked together."""

    name: str
    root: Path
    """The folder holding warden.yaml."""
    file: Path
    tools: ToolRegistry
    agents: tuple[AgentManifest, ...]
    policies: PolicySet
    facts: FactRegistry
    policy_paths: tuple[Path, ...]
    store_path: Path | None = None
    """The SQLite file (``store:`` in warden.yaml, relative to the project folder)."""
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict[str, frozenset[str]])
    """Role name -> the people who hold it (``roles:``)."""
    approval_ttl_s: float = 86_400.0
    idempotency_retention_s: float = 86_400.0
    runner: RunnerSettings | None = None
    """``runner:``: the model route `warden runs resume` and `warden demo` use."""
    runner_line: int | None = None

    @property
    def retain_days(self) -> int | None:
        """The shortest ``log.retain_days`` any policy sets (None: keep redacted values)."""
        days = [p.log.retain_days for p in self.policies.policies if p.log.retain_days]
        return min(days) if days else None

    def gate(
        self,
        *,
        store: StateStore | None = None,
        clock: Clock | None = None,
        ids: IdSource | None = None,
    ) -> Gate:
        """A gate for this project (in-memory state unless a store is given)."""
        return Gate(
            policies=self.policies,
            agents=self.agents,
            tools=self.tools,
            store=store,
            facts=self.facts,
            clock=clock,
            ids=ids,
            approval_ttl_s=self.approval_ttl_s,
        )

    def agent(self, name: str) -> AgentManifest | None:
        return next((a for a in self.agents if a.name == name), None)

    def validate_args(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """Arguments checked against the tool's strict contract (unknown tools pass as given)."""
        t = self.tools.get(tool)
        return t.model.model_validate(args).model_dump(mode="json") if t else args

    def run_policy_cases(
        self, cases: Sequence[PolicyCase], *, display: Callable[[Path], str] | None = None
    ) -> list[CaseResult]:
        """Run policy test cases with this project's tool contracts, and a fresh in-memory
        gate (fixed clock) for each case that names an agent."""

        def fresh_gate(_case: PolicyCase) -> Gate:
            return self.gate(store=MemoryStore(), clock=FixedClock())

        return run_cases(
            cases, gate_factory=fresh_gate, validate_args=self.validate_args, display=display
        )


def find_project_file(start: Path | str = ".") -> Path:
    """warden.yaml in `start` or the nearest folder above it (or `start` itself, if a file)."""
    here = Path(start).resolve()
    if here.is_file():
        return here
    for folder in (here, *here.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    raise ProjectError("W-PRJ-001", f"no {PROJECT_FILE} in {Path(start)} or any folder above it")


def load_project(path: Path | str = ".") -> Project:
    """Find, load and check a project. Raises a ConfigError subclass naming file and line."""
    file = find_project_file(path)
    root = file.parent
    doc = load_yaml(file, display=PROJECT_FILE)
    data = doc.mapping()
    if data is None:
        raise doc.error("W-CFG-004", "warden.yaml must be a mapping", cls=ProjectError)
    try:
        spec = _ProjectSpec.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(doc, exc, cls=ProjectError) from None

    tools = ToolRegistry()
    facts = FactRegistry()
    for kind, names in (("tools", spec.tools), ("facts", spec.facts)):
        for i, module_name in enumerate(names):
            module = _import(root, module_name, doc, (kind, i))
            for value in vars(module).values():
                if isinstance(value, Tool):
                    tools.add(value)
                elif isinstance(value, FactProvider):
                    _add_fact(facts, value, doc, (kind, i))

    manifests = _load_manifests(root, spec.agents, doc)
    for m in manifests:
        for tool_name in sorted(m.allowed_tools):
            if tool_name not in tools:
                raise ProjectError(
                    "W-PRJ-003",
                    f"agent {m.name!r} allows tool {tool_name!r}, which no listed module registers",
                    file=m.file,
                    line=m.doc.line_of(("agent", "permissions", "allowed_tools")),
                    field="agent.permissions.allowed_tools",
                )

    paths = tuple(root / p for p in spec.policies)
    policies = project_policies(paths, manifests=manifests, tools=tools, root=root)
    return Project(
        name=spec.project,
        root=root,
        file=file,
        tools=tools,
        agents=tuple(manifests),
        policies=policies,
        facts=facts,
        policy_paths=paths,
        store_path=root / spec.store,
        roles={role: frozenset(people) for role, people in spec.roles.items()},
        approval_ttl_s=_seconds(doc, spec.approvals.expire_after, ("approvals", "expire_after")),
        idempotency_retention_s=_seconds(
            doc, spec.idempotency.retention, ("idempotency", "retention")
        ),
        runner=spec.runner,
        runner_line=doc.line_of(("runner",)),
    )


def _seconds(doc: YamlDoc, value: str | float, loc: tuple[str | int, ...]) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise doc.error("W-CFG-004", str(exc), loc, cls=ProjectError) from None
    if seconds <= 0:
        raise doc.error("W-CFG-004", "the duration must be positive", loc, cls=ProjectError)
    return seconds


def _add_fact(
    facts: FactRegistry, provider: FactProvider, doc: YamlDoc, loc: tuple[str | int, ...]
) -> None:
    existing = facts.get(provider.name)
    if existing is None:
        facts.add(provider)
    elif existing.fn is not provider.fn:
        raise doc.error(
            "W-PRJ-004",
            f"fact provider {provider.name!r} is declared twice "
            f"({existing.fn.__module__} and {provider.fn.__module__})",
            loc,
            cls=ProjectError,
        )


def project_policies(
    paths: Sequence[Path],
    *,
    manifests: Sequence[AgentManifest],
    tools: ToolRegistry,
    root: Path | None = None,
) -> PolicySet:
    """The policy files and folders in `paths`, with the shorthand policies of
    `manifests`, compiled for `tools`: what a project's ``policies:`` loads (and what a
    candidate policy folder is checked as). A policy naming a tool no module registers is
    W-PRJ-003 at its line."""
    fields = {t.name: t.field_names for t in tools}
    policies = load_policies(
        paths,
        root=root,
        extra=[p for m in manifests for p in shorthand_policies(m, fields=fields)],
        extra_sources=[(m.file, m.doc.text) for m in manifests],
        fields=fields,
    )
    for p in policies.policies:
        for name in sorted(p.tools or ()):
            if name not in tools:
                line, field = p.tool_lines.get(name, (p.line, ""))
                raise ProjectError(
                    "W-PRJ-003",
                    f"policy {p.id!r} names tool {name!r}, which no listed module registers",
                    file=p.file,
                    line=line,
                    field=field or None,
                )
    return policies


def import_project_module(
    root: Path, name: str, doc: YamlDoc, loc: tuple[str | int, ...]
) -> ModuleType:
    """Import module `name` from the project folder `root` (its modules win over others of
    the same name); an import that fails is W-PRJ-002 at `doc`'s `loc`."""
    return _import(root, name, doc, loc)


def _import(root: Path, name: str, doc: YamlDoc, loc: tuple[str | int, ...]) -> ModuleType:
    root_str = str(root)
    if sys.path[:1] != [root_str]:  # this project's folder first, so its modules win
        if root_str in sys.path:
            sys.path.remove(root_str)
        sys.path.insert(0, root_str)
    top = name.partition(".")[0]
    for loaded_name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        origin = getattr(sys.modules[loaded_name], "__file__", None) or ""
        if origin and not Path(origin).resolve().is_relative_to(root.resolve()):
            del sys.modules[loaded_name]  # a module of that name from another project
    importlib.invalidate_caches()
    try:
        return importlib.import_module(name)
    except Exception as exc:
        inner = (
            f"{exc.code}: {exc.message}"
            if isinstance(exc, WardenError)
            else f"{type(exc).__name__}: {exc}"
        )
        raise doc.error(
            "W-PRJ-002", f"cannot import {name!r}: {inner}", loc, cls=ProjectError
        ) from exc


def _load_manifests(root: Path, entries: Sequence[str], doc: YamlDoc) -> list[AgentManifest]:
    files: list[Path] = []
    for i, entry in enumerate(entries):
        path = root / entry
        if path.is_dir():
            files.extend(policy_files([path]))
        elif path.is_file():
            files.append(path)
        else:
            raise doc.error(
                "W-CFG-001",
                f"no such manifest file or folder: {entry}",
                ("agents", i),
                cls=ProjectError,
            )
    manifests: list[AgentManifest] = []
    seen: dict[str, str] = {}
    for f in files:
        m = parse_manifest(load_yaml(f, display=f.relative_to(root).as_posix()))
        if m.name in seen:
            raise ManifestError(
                "W-MAN-003",
                f"agent {m.name!r} is declared twice (also in {seen[m.name]})",
                file=m.file,
                line=m.doc.line_of(("agent", "name")),
            )
        seen[m.name] = m.file
        manifests.append(m)
    return manifests
