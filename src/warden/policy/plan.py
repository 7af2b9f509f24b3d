"""Compile every policy that covers one (tool, agent) into one Python function.

This is the fast path of `PolicySet.evaluate`. For each policy, in order, its rules become
one ``if / elif`` chain; a deny returns its precomputed result at once (nothing is
stricter), an allow or approval records which rule decided the policy, and the results
of the policies are combined (strictest wins) through a memo of precomputed results.

Bare names are resolved when the plan is built, not on every call:

- a name that is an argument of the tool (the tool's fields are known) reads ``args[name]``;
- any other name reads ``context.get(name)`` once, and falls back to ``facts[name]`` only
  at the point of use, so a fact provider is asked only when a rule needs the fact.

The plan records which of ``run``, ``now``, ``history``, ``agent``, ``context`` and
``facts`` its conditions read, so callers build only those views.

A condition that raises (a missing name, a type mismatch) sends the call down the slow,
per-rule path, which names the failing rule; a failing fact provider denies at once. The
two paths decide identically; a test checks it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from warden.decision import ApprovalRequirement, Outcome, RuleRef
from warden.facts import FactError
from warden.policy.expr import evaluator_globals
from warden.policy.model import CompiledPolicy, Rule

__all__ = ["Plan", "PolicyResult", "build_plan", "combine_rules", "nothing_matched"]

_MISSING = object()
_PARAMS = "args, context, facts, agent, run, now, history"


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyResult:
    """What the policy stage says about one call."""

    outcome: Outcome
    code: str | None
    reasons: tuple[str, ...]
    rules: tuple[RuleRef, ...]
    approval: ApprovalRequirement | None = None
    redact_fields: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """The compiled decision for one (tool, agent)."""

    policies: tuple[CompiledPolicy, ...]
    """The covering policies, in evaluation order."""
    decide: Callable[..., PolicyResult]
    """``(args, context, facts, agent, run, now, history) -> PolicyResult``. Never raises:
    a fault is decided (closed) on the per-rule path. Views the plan does not `use` may be
    None; ``run`` is a `RunView` or a plain tuple in its field order."""
    uses: frozenset[str]
    """Which of run, now, history, agent, context, facts the conditions read."""
    uses_run: bool = False
    uses_now: bool = False
    uses_history: bool = False
    uses_facts: bool = False
    static_redact: frozenset[str]
    """Redacted fields from the policies' ``log`` settings."""
    redact_rules: tuple[Rule, ...]
    """Conditional redact rules, evaluated after the decision (rare)."""
    source: str
    """The generated Python, for debugging (``warden policy explain`` does not need it)."""


def nothing_matched(policies: Sequence[CompiledPolicy], redact: frozenset[str]) -> PolicyResult:
    """Deny (W-POL-102): no rule of the covering `policies` matched."""
    considered = sum(len(p.rules) for p in policies)
    files = ", ".join(sorted({p.file for p in policies}))
    why = f"no rule matched ({considered} rules considered in {files})"
    return _no_match(redact, why)


def _no_match(redact: frozenset[str], why: str) -> PolicyResult:
    return PolicyResult(
        outcome=Outcome.DENY, code="W-POL-102", reasons=(why,), rules=(), redact_fields=redact
    )


def combine_rules(rules: Sequence[Rule], redact: frozenset[str]) -> PolicyResult:
    """The combined result when `rules` (one per policy that matched) decided: the
    strictest outcome wins, and the approvals of every rule that asks for it merge."""
    best = max(rules, key=lambda r: r.outcome.strictness if r.outcome else -1)
    deciding = [r for r in rules if r.outcome is best.outcome]
    approval: ApprovalRequirement | None = None
    if best.outcome is Outcome.NEEDS_APPROVAL:
        for r in deciding:
            if r.approval is not None:
                approval = r.approval if approval is None else approval.merge(r.approval)
    assert best.outcome is not None
    return PolicyResult(
        outcome=best.outcome,
        code="W-POL-101" if best.outcome is Outcome.DENY else None,
        reasons=tuple(r.reason for r in deciding),
        rules=tuple(r.ref for r in deciding),
        approval=approval,
        redact_fields=redact,
    )


class _Names(ast.NodeTransformer):
    """Rewrite ``_E['x']`` (a bare name) into the plan's resolution of ``x``."""

    def __init__(self, fields: frozenset[str] | None) -> None:
        self.fields = fields
        self.hoisted: dict[str, str] = {}

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        value = node.value
        if (
            isinstance(value, ast.Name)
            and value.id == "_E"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            name = node.slice.value
            if self.fields is not None and name in self.fields:
                return ast.Subscript(
                    value=ast.Name("args", ast.Load()), slice=ast.Constant(name), ctx=ast.Load()
                )
            local = self.hoisted.setdefault(name, f"_b{len(self.hoisted)}")
            # the hoisted value, or (only when it is missing) the fact of that name
            return ast.IfExp(
                test=ast.Compare(
                    left=ast.Name(local, ast.Load()),
                    ops=[ast.IsNot()],
                    comparators=[ast.Name("_M", ast.Load())],
                ),
                body=ast.Name(local, ast.Load()),
                orelse=ast.Subscript(
                    value=ast.Name("facts", ast.Load()), slice=ast.Constant(name), ctx=ast.Load()
                ),
            )
        self.generic_visit(node)
        return node


Fallback = Callable[[Sequence[CompiledPolicy], frozenset[str], tuple[Any, ...]], PolicyResult]
"""``(policies, static_redact, (args, context, facts, agent, run, now, history)) -> result``"""


def _key_of(node: ast.AST) -> tuple[str, str] | None:
    """``("args", "x")`` for ``args['x']``, ``("facts", "x")`` for ``facts['x']``."""
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("args", "facts")
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return node.value.id, node.slice.value
    return None


class _Repeats(ast.NodeVisitor):
    """Count reads of ``args['x']`` (only for the tool's own fields) and ``facts['x']``."""

    def __init__(self, fields: frozenset[str] | None) -> None:
        self.fields = fields
        self.counts: dict[tuple[str, str], int] = {}

    def visit_Subscript(self, node: ast.Subscript) -> None:
        key = _key_of(node)
        if key is not None and (
            key[0] == "facts" or (self.fields is not None and key[1] in self.fields)
        ):
            self.counts[key] = self.counts.get(key, 0) + 1
        self.generic_visit(node)

    def repeated(self) -> list[tuple[str, str]]:
        return [k for k, n in self.counts.items() if n > 1]


class _Locals(ast.NodeTransformer):
    """Replace repeated reads by a local: an argument directly, a fact memoised at first use."""

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        self.names = {key: f"_{key[0][0]}{i}" for i, key in enumerate(keys)}

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        key = _key_of(node)
        local = self.names.get(key) if key is not None else None
        if local is None:
            self.generic_visit(node)
            return node
        if key is not None and key[0] == "args":
            return ast.Name(local, ast.Load())
        # facts: (_fN if _fN is not _M else (_fN := facts['x']))
        return ast.IfExp(
            test=ast.Compare(
                left=ast.Name(local, ast.Load()),
                ops=[ast.IsNot()],
                comparators=[ast.Name("_M", ast.Load())],
            ),
            body=ast.Name(local, ast.Load()),
            orelse=ast.NamedExpr(target=ast.Name(local, ast.Store()), value=node),
        )


def build_plan(
    tool: str,
    policies: Sequence[CompiledPolicy],
    fields: frozenset[str] | None,
    *,
    on_error: Fallback,
    on_fact_error: Callable[[Exception, frozenset[str]], PolicyResult],
    redact: Callable[[PolicyResult, Sequence[Rule], tuple[Any, ...]], PolicyResult],
) -> Plan:
    """Compile the covering `policies` for `tool`; `fields` are its argument names, if known.

    `on_error` decides, rule by rule, a call the compiled function raised on (it names the
    failing rule); `on_fact_error` turns a failed fact provider into a deny; `redact` adds
    the fields of conditional redact rules.
    """
    static_redact = frozenset[str]().union(*(p.log.redact_fields for p in policies))
    redact_rules = tuple(r for p in policies for r in p.redact_rules)
    if not policies:
        none = _no_match(static_redact, f"no policy covers tool {tool!r} for this agent")
        return Plan(
            policies=(),
            decide=lambda *_: none,
            uses=frozenset(),
            static_redact=static_redact,  # pyright: ignore[reportUnknownLambdaType]
            redact_rules=(),
            source="",
        )

    names = _Names(fields)
    namespace = evaluator_globals()
    namespace["_M"] = _MISSING
    uses: set[str] = set()
    # pass 1: resolve bare names in every condition
    trees: dict[tuple[int, int], ast.expr] = {}
    for pi, policy in enumerate(policies):
        for ri, rule in enumerate(policy.rules):
            if rule.condition is not None:
                namespace.update(rule.condition.constants)
                uses.update(rule.condition.uses)
                trees[pi, ri] = names.visit(ast.parse(rule.condition.python, mode="eval").body)
    # pass 2: an argument or fact read more than once is read once
    repeats = _Repeats(fields)
    for tree in trees.values():
        repeats.visit(tree)
    locals_ = _Locals(repeats.repeated())
    blocks: list[str] = []
    for pi, policy in enumerate(policies):
        lines: list[str] = []
        for ri, rule in enumerate(policy.rules):
            keyword = "if" if ri == 0 else "elif"
            tree = trees.get((pi, ri))
            test = (
                "True"
                if tree is None
                else ast.unparse(ast.fix_missing_locations(locals_.visit(tree)))
            )
            if rule.outcome is Outcome.DENY:
                result_name = f"_D{pi}_{ri}"
                namespace[result_name] = combine_rules([rule], static_redact)
                lines.append(f"{keyword} {test}: return {result_name}")
            else:
                lines.append(f"{keyword} {test}: m{pi} = {ri}")
        lines.append(f"else: m{pi} = -1" if lines else f"m{pi} = -1")
        blocks.append("\n".join(lines))

    hoist: list[str] = []
    for name, local in names.hoisted.items():
        if fields is None:
            hoist.append(f"{local} = args.get({name!r}, _M)")
            hoist.append(f"if {local} is _M: {local} = context.get({name!r}, _M)")
        else:
            hoist.append(f"{local} = context.get({name!r}, _M)")
    # an argument (always present once validated) is read up front; a fact only when
    # first needed, so a provider is asked only if a rule gets that far
    for (mapping, key), local in locals_.names.items():
        hoist.append(f"{local} = args[{key!r}]" if mapping == "args" else f"{local} = _M")
    if names.hoisted:
        uses.update(("context", "facts"))

    final = _final_lookup(policies, static_redact, namespace)
    covering = tuple(policies)

    def add_redactions(result: PolicyResult, *call: Any) -> PolicyResult:
        return redact(result, redact_rules, call)

    def slow(*call: Any) -> PolicyResult:
        try:
            return on_error(covering, static_redact, call)
        except Exception as exc:  # never let a fault escape the decision: deny
            return PolicyResult(
                outcome=Outcome.DENY,
                code="W-POL-103",
                reasons=(f"condition could not be evaluated ({type(exc).__name__})",),
                rules=(),
                redact_fields=static_redact,
            )

    def fact_failed(exc: Exception) -> PolicyResult:
        return on_fact_error(exc, static_redact)

    if redact_rules:  # rare: conditional redaction on top of the decision
        namespace["_redact"] = add_redactions
        final = final.replace("return ", "return _redact(", 1) + f", {_PARAMS})"
    namespace["_slow"] = slow
    namespace["_fact_failed"] = fact_failed
    namespace["_FactError"] = FactError
    namespace["_Exception"] = Exception
    body = "\n".join([*hoist, *blocks, final])
    source = "\n".join(
        [
            f"def _plan({_PARAMS}):",
            "    try:",
            *(f"        {line}" for line in body.splitlines()),
            "    except _FactError as exc:",
            "        return _fact_failed(exc)",
            "    except _Exception:",
            f"        return _slow({_PARAMS})",
        ]
    )
    # Built only from conditions that passed the safe-subset check, re-serialised from their
    # checked syntax trees; the function sees no builtins.
    exec(compile(source, f"<plan {tool}>", "exec"), namespace)  # noqa: S102
    return Plan(
        policies=tuple(policies),
        decide=namespace["_plan"],
        uses=frozenset(uses),
        uses_run="run" in uses,
        uses_now="now" in uses,
        uses_history="history" in uses,
        uses_facts="facts" in uses,
        static_redact=static_redact,
        redact_rules=redact_rules,
        source=source,
    )


_TABLE_LIMIT = 4096


def _final_lookup(
    policies: Sequence[CompiledPolicy], redact: frozenset[str], namespace: dict[str, Any]
) -> str:
    """The plan's last line: the combined result for the rule each policy matched.

    Every combination is precomputed into nested tuples indexed by the matched rule (with
    -1, no match, as the last entry), so combining is a few tuple lookups. Past
    `_TABLE_LIMIT` combinations a memo is used instead.
    """
    nothing = nothing_matched(policies, redact)
    sizes = [len(p.rules) + 1 for p in policies]
    total = 1
    for size in sizes:
        total *= size
    matched = [f"m{i}" for i in range(len(policies))]

    def result(indices: tuple[int, ...]) -> PolicyResult:
        rules = [p.rules[i] for p, i in zip(policies, indices, strict=True) if i >= 0]
        return combine_rules(rules, redact) if rules else nothing

    if total <= _TABLE_LIMIT:

        def table(prefix: tuple[int, ...]) -> Any:
            level = len(prefix)
            if level == len(policies):
                return result(prefix)
            n = len(policies[level].rules)
            # index -1 (no match) lands on the last entry
            return tuple(table((*prefix, i)) for i in (*range(n), -1))

        namespace["_T"] = table(())
        return "return _T" + "".join(f"[{m}]" for m in matched)

    memo: dict[tuple[int, ...], PolicyResult] = {}

    def combine(*indices: int) -> PolicyResult:
        found = memo.get(indices)
        if found is None:
            found = memo[indices] = result(indices)
        return found

    namespace["_combine"] = combine
    return f"return _combine({', '.join(matched)})"
