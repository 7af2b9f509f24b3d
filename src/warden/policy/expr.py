"""Policy conditions: a small, safe expression language, compiled once at load.

A condition is a Python-syntax expression (the seeds' syntax)::

    amount_usd <= 50 and customer_tier in ['standard', 'pro']

Only a safe subset is accepted; anything else is rejected at load with its file:line:

- literals (strings, numbers, true/false/null, lists, tuples, sets), ``and or not``,
  comparisons (``== != < <= > >= in not in``, ``is``/``is not`` against ``None``),
  ``+ - * / // %`` on numbers, ``x if c else y``, indexing with ``[...]``;
- the names ``args agent run context facts now history``, and bare names, which resolve
  to an argument, else a context value, else a fact;
- attribute access (never a name that starts with an underscore);
- calls to the functions in `FUNCTIONS` and the methods in `METHODS` only.

No dunder access, imports, lambdas, comprehensions, assignments, f-strings or ``**``.
The checked tree is rewritten (``args.x`` -> ``args['x']``, bare ``x`` -> ``_E['x']``) and
compiled with no builtins; evaluation errors (a missing name, a type mismatch) are caught
by the evaluator and fail the decision closed.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from warden.durations import parse_duration
from warden.errors import PolicyError

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NODES",
    "METHODS",
    "RESERVED",
    "RUN_FIELDS",
    "VIEW_FIELDS",
    "Condition",
    "compile_condition",
    "parse_duration",
]

MAX_LENGTH = 2_000
"""Longest condition, in characters."""
MAX_NODES = 400
"""Most syntax nodes in one condition."""
MAX_DEPTH = 24
"""Deepest nesting of one condition."""

RESERVED = frozenset({"args", "agent", "run", "context", "facts", "now", "history"})
"""Names with a fixed meaning in conditions."""

RUN_FIELDS = ("id", "calls", "spend", "tokens", "elapsed", "tainted")
"""``run.<field>``, in the order of `warden.policy.RunView` (conditions index the tuple)."""

VIEW_FIELDS: dict[str, tuple[str, ...]] = {
    "run": RUN_FIELDS,
    "agent": ("name", "version", "owner", "mode", "autonomy", "tags"),
    "now": ("timestamp", "hour", "minute", "weekday", "date", "iso"),
}
"""The fields ``run``, ``agent`` and ``now`` have; any other is rejected at load."""

# args.x, context.x and facts.x are mappings: attribute access becomes a key lookup
_MAPPINGS = frozenset({"args", "context", "facts"})

_CONSTANT_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None, "none": None}


def _safe_mul(a: Any, b: Any) -> Any:
    # numbers only: "x" * 10**9 would let a condition allocate without bound
    if type(a) not in (int, float) or type(b) not in (int, float):
        raise TypeError("'*' is only defined for numbers in conditions")
    return a * b


def _safe_mod(a: Any, b: Any) -> Any:
    # numbers only: "%s" % x would be string formatting
    if type(a) not in (int, float) or type(b) not in (int, float):
        raise TypeError("'%' is only defined for numbers in conditions")
    return a % b


def _lower(s: Any) -> str:
    if not isinstance(s, str):
        raise TypeError("lower() takes a string")
    return s.casefold()


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "any": any,
    "all": all,
    "sum": sum,
    "lower": _lower,
}
"""Functions a condition may call."""

_KEYWORD_FUNCTIONS = frozenset({"min", "max"})
"""Functions that accept a keyword (only ``default=``): never ``key=``, which would call."""

METHODS = frozenset(
    {
        # strings
        "lower",
        "upper",
        "casefold",
        "strip",
        "startswith",
        "endswith",
        # mappings
        "get",
        # history (see warden.history.HistoryView)
        "count",
        "sum_of",
        "approved_before",
        "happened_before",
        "seen",
    }
)
"""Method names a condition may call (on strings, mappings and `history`)."""

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
    ast.IfExp,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Call,
    ast.keyword,
)

_FORBIDDEN_WHY: dict[type[ast.AST], str] = {
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.NamedExpr: "assignments (:=)",
    ast.JoinedStr: "f-strings",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Starred: "star-unpacking",
    ast.Slice: "slices",
    ast.Dict: "dict literals",
    ast.Pow: "the ** operator",
    ast.MatMult: "the @ operator",
    ast.BitAnd: "bitwise operators",
    ast.BitOr: "bitwise operators",
    ast.BitXor: "bitwise operators",
    ast.LShift: "bitwise operators",
    ast.RShift: "bitwise operators",
    ast.Invert: "bitwise operators",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Condition:
    """A checked, rewritten condition, ready to be compiled into a rule function."""

    source: str
    """The condition as written."""
    python: str
    """The rewritten expression, as Python source over the evaluator's parameters."""
    names: frozenset[str]
    """Bare names it reads (resolved as argument, else context, else fact)."""
    uses: frozenset[str]
    """Reserved names it reads (``run``, ``now``, ``history`` ...)."""
    constants: dict[str, frozenset[Any]]
    """Constant sets hoisted out of the expression (``x in ['a', 'b']``), by global name."""
    file: str
    line: int


_hoisted = itertools.count()


def compile_condition(source: object, *, file: str, line: int) -> Condition:
    """Check `source` against the safe subset and rewrite it. Raises PolicyError."""

    def fail(code: str, message: str, hint: str | None = None) -> PolicyError:
        return PolicyError(code, message, file=file, line=line, field="if", hint=hint)

    if isinstance(source, bool):
        source = "true" if source else "false"
    if not isinstance(source, str):
        raise fail("W-POL-001", f"a condition must be a string, got {type(source).__name__}")
    if len(source) > MAX_LENGTH:
        raise fail("W-POL-003", f"condition is {len(source)} characters (limit {MAX_LENGTH})")
    if not source.strip():
        raise fail(
            "W-POL-001", "condition is empty; leave out `if:` for a rule that always matches"
        )
    try:
        # parsing is bounded: the length is limited above, and CPython limits nesting
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise fail("W-POL-001", f"not a valid expression: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise fail(
            "W-POL-003", f"condition nests too deeply to parse ({type(exc).__name__})"
        ) from None

    called = _called_attributes(tree)
    for nodes, node in enumerate(ast.walk(tree), start=1):
        if nodes > MAX_NODES:
            raise fail("W-POL-003", f"condition has more than {MAX_NODES} syntax nodes")
        _check_node(node, fail, called)
    depth = _depth(tree)
    if depth > MAX_DEPTH:
        raise fail("W-POL-003", f"condition nests {depth} deep (limit {MAX_DEPTH})")

    rewriter = _Rewriter(fail)
    body = rewriter.visit(tree.body)
    python = ast.unparse(ast.fix_missing_locations(body))
    return Condition(
        source=source,
        python=python,
        names=frozenset(rewriter.names),
        uses=frozenset(rewriter.uses),
        constants=rewriter.constants,
        file=file,
        line=line,
    )


def _depth(node: ast.AST) -> int:
    best = 0
    stack: list[tuple[ast.AST, int]] = [(node, 1)]
    while stack:
        current, d = stack.pop()
        best = max(best, d)
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(current))
    return best


def _called_attributes(tree: ast.AST) -> set[int]:
    """ids of the Attribute nodes that are the function of a call (``x.lower()``)."""
    return {
        id(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }


def _check_attribute(
    node: ast.Attribute, called: set[int], fail: Callable[..., PolicyError]
) -> None:
    """An attribute is a key of args/context/facts, a field of run/agent/now, or a called
    method; a method named but not called (``x.startswith``) is a function value and is
    refused, since it would be truthy and could be called by something else."""
    if id(node) in called:
        return
    if node.attr in METHODS:
        raise fail(
            "W-POL-002",
            f"'.{node.attr}' is a method and must be called, e.g. .{node.attr}(...)",
        )
    if _rooted_in_mapping(node.value):
        return
    if isinstance(node.value, ast.Name) and node.value.id in VIEW_FIELDS:
        return
    raise fail(
        "W-POL-002",
        f"'.{node.attr}' here is not a field: attributes are allowed on args, context, facts, "
        "run, agent and now, and methods must be called",
        "call the method, e.g. x.startswith('a'), or read a field, e.g. args.amount_usd",
    )


def _check_node(node: ast.AST, fail: Callable[..., PolicyError], called: set[int]) -> None:
    kind = type(node)
    if kind not in _ALLOWED_NODES:
        what = _FORBIDDEN_WHY.get(kind, f"'{kind.__name__}' expressions")
        raise fail("W-POL-002", f"not allowed in conditions: {what}")
    if isinstance(node, ast.Constant) and not (
        node.value is None or type(node.value) in (str, int, float, bool)
    ):
        raise fail("W-POL-002", f"constants of type {type(node.value).__name__} are not allowed")
    if isinstance(node, ast.Name) and node.id.startswith("_"):
        raise fail("W-POL-002", f"names starting with '_' are not allowed ({node.id})")
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            raise fail("W-POL-002", f"attributes starting with '_' are not allowed (.{node.attr})")
        _check_attribute(node, called, fail)
    if isinstance(node, ast.keyword) and node.arg is None:
        raise fail("W-POL-002", "**keyword unpacking is not allowed")
    if isinstance(node, ast.Compare):
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot) and not (
                (isinstance(right, ast.Constant) and right.value is None)
                or (isinstance(right, ast.Name) and right.id in ("null", "none"))
            ):
                raise fail("W-POL-002", "'is' and 'is not' may only compare with None")
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            if func.id not in FUNCTIONS:
                known = ", ".join(sorted(FUNCTIONS))
                raise fail("W-POL-007", f"unknown function {func.id}() (known: {known})")
            if node.keywords and func.id not in _KEYWORD_FUNCTIONS:
                raise fail("W-POL-002", f"{func.id}() takes no keyword arguments in conditions")
            if any(k.arg not in ("default",) for k in node.keywords):
                raise fail(
                    "W-POL-002", f"{func.id}() only takes the keyword `default` in conditions"
                )
        elif isinstance(func, ast.Attribute):
            if func.attr not in METHODS:
                known = ", ".join(sorted(METHODS))
                raise fail("W-POL-007", f"unknown method .{func.attr}() (known: {known})")
        else:
            raise fail("W-POL-002", "only named functions and methods may be called")


class _Rewriter(ast.NodeTransformer):
    """Rewrite a checked tree into Python over the evaluator's parameters."""

    def __init__(self, fail: Callable[..., PolicyError]) -> None:
        self.names: set[str] = set()
        self.uses: set[str] = set()
        self.constants: dict[str, frozenset[Any]] = {}
        self._fail = fail

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _CONSTANT_NAMES:
            return ast.Constant(_CONSTANT_NAMES[node.id])
        if node.id in RESERVED:
            self.uses.add(node.id)
            return node
        self.names.add(node.id)
        return ast.Subscript(
            value=ast.Name(id="_E", ctx=ast.Load()), slice=ast.Constant(node.id), ctx=ast.Load()
        )

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        base = node.value
        if _rooted_in_mapping(base):
            return ast.Subscript(
                value=self.visit(base), slice=ast.Constant(node.attr), ctx=ast.Load()
            )
        if isinstance(base, ast.Name) and base.id in VIEW_FIELDS:
            known = VIEW_FIELDS[base.id]
            if node.attr not in known:
                raise self._fail(
                    "W-POL-002",
                    f"{base.id} has no field {node.attr!r} (it has: {', '.join(known)})",
                )
            self.uses.add(base.id)
            if base.id == "run":  # the run's figures travel as a tuple: index, don't look up
                return ast.Subscript(
                    value=base, slice=ast.Constant(known.index(node.attr)), ctx=ast.Load()
                )
        node.value = self.visit(base)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Attribute):
            # a method call: keep the attribute, rewrite only its receiver
            node.func.value = self.visit(node.func.value)
        else:  # a known function (checked before)
            assert isinstance(node.func, ast.Name)
            node.func = ast.Name(id=f"_f_{node.func.id}", ctx=ast.Load())
        node.args = [self.visit(a) for a in node.args]
        node.keywords = [ast.keyword(arg=k.arg, value=self.visit(k.value)) for k in node.keywords]
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Mult | ast.Mod):
            helper = "_mul" if isinstance(node.op, ast.Mult) else "_mod"
            return ast.Call(
                func=ast.Name(id=helper, ctx=ast.Load()), args=[left, right], keywords=[]
            )
        node.left, node.right = left, right
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        node.left = self.visit(node.left)
        comparators: list[ast.expr] = []
        for op, right in zip(node.ops, node.comparators, strict=True):
            # `x in ['a', 'b']` with constant members: a frozenset lookup
            if isinstance(op, ast.In | ast.NotIn) and _constant_members(right):
                assert isinstance(right, ast.List | ast.Tuple | ast.Set)
                name = f"_k{next(_hoisted)}"
                self.constants[name] = frozenset(
                    e.value for e in right.elts if isinstance(e, ast.Constant)
                )
                comparators.append(ast.Name(id=name, ctx=ast.Load()))
            else:
                comparators.append(self.visit(right))
        node.comparators = comparators
        return node


def _rooted_in_mapping(node: ast.expr) -> bool:
    """True when `node` is JSON data: args/context/facts, or a bare name (an argument,
    context value or fact), so ``.x`` on it is a key lookup."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return isinstance(node, ast.Name) and (
        node.id in _MAPPINGS or (node.id not in RESERVED and node.id not in _CONSTANT_NAMES)
    )


def _constant_members(node: ast.expr) -> bool:
    return isinstance(node, ast.List | ast.Tuple | ast.Set) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str | int | float | bool)
        for e in node.elts
    )


def evaluator_globals() -> dict[str, Any]:
    """The only globals compiled conditions see: no builtins at all."""
    g: dict[str, Any] = {"__builtins__": {}, "_mul": _safe_mul, "_mod": _safe_mod}
    g.update({f"_f_{name}": fn for name, fn in FUNCTIONS.items()})
    return g
