"""A tool: a typed capability an agent may propose to call.

`@warden.tool` wraps a function whose first parameter is annotated with a pydantic model.
Warden validates arguments against a *strict* version of that model: no type coercion
(``"50"`` is not ``50``), unknown fields rejected, strings and lists bounded in size.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError

from warden.errors import GateError, ToolDefinitionError

__all__ = ["Limits", "RiskTier", "Tool", "ToolContext", "describe_validation_error", "tool"]


class RiskTier(StrEnum):
    """How much harm a call can do; modes and policies key off it."""

    READ = "read"
    """Reads only; no side effect."""
    DRAFT = "draft"
    """Produces a draft a person may send (a reply, a PR description)."""
    WRITE = "write"
    """Changes a system inside tight bounds (tag a ticket, create a task)."""
    HIGH_RISK = "high_risk"
    """Moves money, writes to customers, changes entitlements."""
    PROD_CONTROL = "prod_control"
    """Deploys, infrastructure changes, secret rotation."""

    @property
    def writes(self) -> bool:
        """True for tiers that change the world (write and above)."""
        return self in _WRITE_TIERS


_WRITE_TIERS = frozenset({RiskTier.WRITE, RiskTier.HIGH_RISK, RiskTier.PROD_CONTROL})


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """Size limits on a call's arguments, checked before the model validates them."""

    max_string_length: int = 10_000
    """Longest string anywhere in the arguments."""
    max_list_length: int = 1_000
    """Most items in any list or object."""
    max_depth: int = 16
    """Deepest nesting of lists and objects."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolContext:
    """What a tool receives beside its arguments when Warden executes it."""

    run_id: str
    """The run (and trace) this call belongs to."""
    agent: str
    """The agent that proposed the call."""
    idempotency_key: str
    """Pass it to the backend so it can deduplicate retries."""
    dry_run: bool = False
    """True when the call is a plan, not an effect."""


Hook = Callable[..., Any]


@dataclass(kw_only=True, slots=True, eq=False)
class Tool:
    """A registered capability. Call it like the function it wraps."""

    name: str
    """Unique name the model uses to call it."""
    description: str
    """What the model is told the tool does (the function's docstring by default)."""
    fn: Callable[..., Any]
    """The function that does the work."""
    model: type[BaseModel]
    """The strict argument model Warden validates against."""
    user_model: type[BaseModel]
    """The model as the user declared it (what `fn` expects)."""
    risk: RiskTier
    """Risk tier."""
    sensitive: frozenset[str] = frozenset()
    """Arguments that must come from trusted input (payee, recipient, URL ...)."""
    timeout_s: float = 30.0
    """Seconds an execution may take before it counts as failed."""
    retries: int = 0
    """How many times a failed execution is retried (with the same idempotency key)."""
    cache_ttl_s: float | None = None
    """For read tools: how long a result may be reused."""
    trusted_output: bool = True
    """False for tools whose output is untrusted text (a mailbox, a web page)."""
    limits: Limits = field(default_factory=Limits)
    """Argument size limits."""
    dry_run_fn: Hook | None = None
    compensate_fn: Hook | None = None
    reconcile_fn: Hook | None = None
    _schema: dict[str, Any] | None = field(default=None, init=False, repr=False)
    takes_context: bool = False
    """True when the function takes a second parameter: it gets a `ToolContext` (with the
    idempotency key) when Warden executes it."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def invoke(self, args: Mapping[str, Any] | None, *extra: Any) -> Any:
        """Validate `args` against the strict contract, then call the function with the model.

        (The strict model subclasses the user's, so the function gets its own type.) Takes
        a decision's ``args`` as they are; None (a call whose contract check failed) is
        refused with W-GATE-001.
        """
        if args is None:
            raise GateError("W-GATE-001", f"{self.name}: no validated arguments to run with")
        return self.fn(self.model.model_validate(args), *extra)

    def run(self, args: Mapping[str, Any], context: ToolContext) -> Any:
        """Execute with a decision's validated arguments, passing `context` if it is wanted."""
        model = self.model.model_validate(args)
        return self.fn(model, context) if self.takes_context else self.fn(model)

    def run_hook(
        self, hook: Hook, args: Mapping[str, Any], context: ToolContext, *more: Any
    ) -> Any:
        """Call a hook (reconcile, compensate): the argument model, then the context, then
        `more`, as far as the hook takes parameters (``def undo(args)`` is fine too)."""
        given = (self.model.model_validate(args), context, *more)
        return hook(*given[: _arity(hook, len(given))])

    def plan(self, args: Mapping[str, Any], context: ToolContext) -> Any:
        """Run the ``dry_run`` hook (None when there is none): what the call would change."""
        if self.dry_run_fn is None:
            return None
        return self.run_hook(self.dry_run_fn, args, context)

    # hooks can be given to @warden.tool or attached afterwards with these decorators
    def dry_run(self, fn: Hook) -> Hook:
        """Attach the dry-run hook: same arguments, returns the planned change (a diff)."""
        self.dry_run_fn = fn
        return fn

    def compensate(self, fn: Hook) -> Hook:
        """Attach the hook that undoes a completed call."""
        self.compensate_fn = fn
        return fn

    def reconcile(self, fn: Hook) -> Hook:
        """Attach the hook that finds out whether an interrupted call took effect."""
        self.reconcile_fn = fn
        return fn

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of the arguments (``additionalProperties: false``): a fresh copy of
        the schema generated once (pydantic takes a millisecond to build it, and every
        runner asks for it)."""
        if self._schema is None:
            self._schema = self.model.model_json_schema()
        return copy.deepcopy(self._schema)

    @property
    def field_names(self) -> frozenset[str]:
        return frozenset(self.model.model_fields)


def _arity(fn: Hook, most: int) -> int:
    """How many positional arguments `fn` takes, up to `most`."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return most
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return most
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return min(most, sum(1 for p in params if p.kind in positional))


def _strict_model(model: type[BaseModel], limits: Limits) -> type[BaseModel]:
    """A subclass of `model` that coerces nothing, forbids unknown fields and bounds strings."""
    config = ConfigDict(
        strict=True,
        extra="forbid",
        str_max_length=limits.max_string_length,
        allow_inf_nan=False,
    )
    existing = dict(model.model_config)
    if (
        existing.get("strict")
        and existing.get("extra") == "forbid"
        and existing.get("str_max_length")
        and existing.get("allow_inf_nan") is False
    ):
        return model
    derived = type(
        model.__name__, (model,), {"model_config": config, "__module__": model.__module__}
    )
    return cast(type[BaseModel], derived)


def _caller_locals(depth: int) -> dict[str, Any]:
    """The local names of the frame `depth` levels up: where the decorator was applied."""
    frame = inspect.currentframe()
    for _ in range(depth):
        frame = frame.f_back if frame is not None else None
    return dict(frame.f_locals) if frame is not None else {}


def _argument_model(fn: Callable[..., Any], localns: Mapping[str, Any]) -> type[BaseModel]:
    params = list(inspect.signature(fn).parameters.values())
    if not params:
        raise ToolDefinitionError("W-TOOL-001", f"tool {fn.__name__!r} takes no arguments")
    try:
        # localns: a model class defined in the same function as the tool (string annotations)
        hints = get_type_hints(fn, localns=dict(localns))
    except Exception as exc:  # a forward reference that cannot be resolved
        raise ToolDefinitionError(
            "W-TOOL-001", f"cannot resolve the annotations of {fn.__name__!r}: {exc}"
        ) from exc
    annotation = hints.get(params[0].name)
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        raise ToolDefinitionError(
            "W-TOOL-001",
            f"the first parameter of {fn.__name__!r} must be annotated with a pydantic model",
        )
    return annotation


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    risk: RiskTier | str = RiskTier.READ,
    description: str | None = None,
    sensitive: Iterable[str] = (),
    timeout_s: float = 30.0,
    retries: int = 0,
    cache_ttl_s: float | None = None,
    trusted_output: bool = True,
    limits: Limits | None = None,
    dry_run: Hook | None = None,
    compensate: Hook | None = None,
    reconcile: Hook | None = None,
) -> Any:
    """Declare a tool. Use bare (``@warden.tool``) or with options (``@warden.tool(risk=...)``).

    The function's first parameter must be annotated with a pydantic model; that model,
    made strict, is the tool's contract.
    """

    def wrap(f: Callable[..., Any], depth: int = 1) -> Tool:
        try:
            tier = RiskTier(risk)
        except ValueError:
            tiers = ", ".join(t.value for t in RiskTier)
            raise ToolDefinitionError(
                "W-TOOL-003", f"tool {f.__name__!r}: unknown risk tier {risk!r} (use {tiers})"
            ) from None
        if timeout_s <= 0 or retries < 0 or (cache_ttl_s is not None and cache_ttl_s < 0):
            raise ToolDefinitionError(
                "W-TOOL-003",
                f"tool {f.__name__!r}: timeout must be positive; retries and cache TTL "
                "cannot be negative",
            )
        user_model = _argument_model(f, _caller_locals(depth + 1))
        lim = limits or Limits()
        if min(lim.max_string_length, lim.max_list_length, lim.max_depth) <= 0:
            raise ToolDefinitionError(
                "W-TOOL-003", f"tool {f.__name__!r}: every limit must be positive"
            )
        model = _strict_model(user_model, lim)
        sens = frozenset(sensitive)
        unknown = sens - frozenset(model.model_fields)
        if unknown:
            raise ToolDefinitionError(
                "W-TOOL-003",
                f"tool {f.__name__!r}: sensitive argument(s) {sorted(unknown)} are not fields "
                f"of {user_model.__name__}",
            )
        if cache_ttl_s is not None and tier is not RiskTier.READ:
            raise ToolDefinitionError(
                "W-TOOL-003", f"tool {f.__name__!r}: only read tools may cache results"
            )
        positional = [
            p
            for p in inspect.signature(f).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        doc = description if description is not None else inspect.getdoc(f) or ""
        return Tool(
            name=name or f.__name__,
            description=doc.strip(),
            fn=f,
            model=model,
            user_model=user_model,
            risk=tier,
            sensitive=sens,
            timeout_s=timeout_s,
            retries=retries,
            cache_ttl_s=cache_ttl_s,
            trusted_output=trusted_output,
            limits=lim,
            dry_run_fn=dry_run,
            compensate_fn=compensate,
            reconcile_fn=reconcile,
            takes_context=len(positional) >= 2,
        )

    if fn is not None:
        return wrap(fn, depth=2)
    return wrap


def describe_validation_error(exc: ValidationError) -> tuple[str, str]:
    """The first failing field's path and a short message (no pydantic URL)."""
    err = exc.errors(include_url=False, include_context=False)[0]
    path = ".".join(str(p) for p in err["loc"]) or "(arguments)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return path, "unknown field"
    if kind == "missing":
        return path, "required field is missing"
    try:
        shown = repr(err.get("input"))
    except Exception:  # a value too large to print
        shown = type(err.get("input")).__name__
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return path, f"{err['msg']} (got {shown})"
