"""The four policy engines behind one interface, and the check that they agree.

=========  ===========================================================================
engine     what decides
=========  ===========================================================================
warden     `warden.PolicySet.evaluate` over ``bench/rules21/*.yaml``
python     a hand-written function (`bench.engine_python`)
cel        CEL programs, one per policy file (`bench.engine_cel`)
cedar      Cedar permit / forbid policies (`bench.engine_cedar`)
=========  ===========================================================================

One more variant is measured for information only: ``cel_nested`` (the CEL rules over
nested ``args`` / ``context`` / ``facts`` maps). It takes part in the agreement check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.engine_cedar import CEDAR_FILES, CedarEngine
from bench.engine_cel import CEL_FILES, CelEngine
from bench.engine_python import PythonEngine
from bench.engine_warden import WardenEngine
from bench.workload import Request

__all__ = [
    "DESCRIPTIONS",
    "REQUIRED",
    "Agreement",
    "CoverageError",
    "DisagreementError",
    "Engine",
    "build_engines",
    "check_agreement",
    "rule_coverage",
]

REQUIRED = ("warden", "python", "cel", "cedar")
"""The engines whose figures have targets."""

DESCRIPTIONS = {
    "warden": "the gate's policy stage: the compiled plan for (tool, agent) over "
    "bench/rules21/*.yaml, with the run/now/history views it reads built per call",
    "python": "hand-written if-chains, same first-match / strictest-wins semantics",
    "cel": "one compiled CEL program per file returning the first matching index; "
    "flat top-level variables in one cel.Context per request; combined in Python",
    "cedar": "permit/forbid per rule with first-match guards, @outcome annotations; "
    "amounts in cents; one is_authorized_batch call per pass",
    "cel_nested": "info: the CEL programs over nested args/context/facts/run maps",
}
"""What each engine's figure measures (written to results.json)."""


class Engine(Protocol):
    """What every engine offers the benchmark."""

    name: str

    def decide_all(self, requests: Sequence[Request]) -> list[str]:
        """The outcome of each request, in order: allow, deny or needs_approval."""
        ...


class DisagreementError(AssertionError):
    """Two engines decided the same request differently (the rules are not equivalent)."""


class CoverageError(AssertionError):
    """The workload leaves a rule unexercised, so agreement would prove less than it claims."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Agreement:
    """The result of `check_agreement`: the agreed outcomes and how often each fired."""

    requests: int
    engines: tuple[str, ...]
    outcomes: dict[str, int]
    rules_fired: dict[str, int] = field(default_factory=dict[str, int])
    """How often each rule was the first match of its file."""
    default_denies: int = 0
    """Requests no rule matched (denied by default)."""


def build_engines(*, extras: bool = True) -> dict[str, Engine]:
    """The engines, by name; `extras` adds the information-only variants."""
    warden = WardenEngine()
    engines: dict[str, Engine] = {
        "warden": warden,
        "python": PythonEngine(),
        "cel": CelEngine("flat"),
        "cedar": CedarEngine(),
    }
    if extras:
        engines["cel_nested"] = CelEngine("nested")
    _check_rule_ids(warden)
    return engines


def _check_rule_ids(warden: WardenEngine) -> None:
    """The CEL and Cedar encodings name the same 21 rules, in the same order, as the YAML."""
    order = {p.id: i for i, p in enumerate(warden.policies.policies)}
    yaml_ids = [r.ref.id for p in warden.policies.policies for r in p.rules]
    cel_files = sorted(CEL_FILES, key=lambda f: order[f[0]])
    cel_ids = [rule_id for _, _, rules in cel_files for rule_id, _, _ in rules]
    cedar_ids = sorted(rule_id for _, rules in CEDAR_FILES for rule_id, _, _ in rules)
    if sorted(cel_ids) != sorted(yaml_ids) or cedar_ids != sorted(yaml_ids) or len(yaml_ids) != 21:
        raise DisagreementError("the CEL or Cedar encoding does not name the 21 YAML rules")
    if cel_ids != yaml_ids:
        raise DisagreementError("the CEL rules are not in the YAML files' order")


def rule_coverage(warden: WardenEngine, requests: Sequence[Request]) -> dict[str, int]:
    """How often each rule was the first match of its file; every rule must appear."""
    fired = Counter(rule_id for r in requests for rule_id in warden.first_matches(r))
    every = [r.ref.id for p in warden.policies.policies for r in p.rules]
    missing = [rule_id for rule_id in every if rule_id not in fired]
    if missing:
        raise CoverageError(f"the requests never exercise rule(s) {', '.join(missing)}")
    return {rule_id: fired[rule_id] for rule_id in every}


def check_agreement(engines: dict[str, Engine], requests: Sequence[Request]) -> Agreement:
    """Decide every request with every engine; raise `DisagreementError` on any difference."""
    missing = [name for name in REQUIRED if name not in engines]
    if missing:
        raise DisagreementError(f"engine(s) missing from the check: {', '.join(missing)}")
    if len(requests) < 256:
        raise DisagreementError(f"only {len(requests)} requests; the check needs 256 or more")
    decided = {name: engine.decide_all(requests) for name, engine in engines.items()}
    reference = decided["warden"]
    problems: list[str] = []
    for name, outcomes in decided.items():
        for i, (want, got) in enumerate(zip(reference, outcomes, strict=True)):
            if want != got:
                problems.append(f"request {i} ({requests[i].tool}): warden {want}, {name} {got}")
    if problems:
        shown = "\n  ".join(problems[:20])
        raise DisagreementError(f"{len(problems)} disagreement(s):\n  {shown}")
    warden = engines["warden"]
    assert isinstance(warden, WardenEngine)
    return Agreement(
        requests=len(requests),
        engines=tuple(decided),
        outcomes=dict(sorted(Counter(str(o) for o in reference).items())),
        rules_fired=rule_coverage(warden, requests),
        default_denies=sum(1 for r in requests if not warden.first_matches(r)),
    )
