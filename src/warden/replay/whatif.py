"""Policy what-if: every decision recorded in a window, decided again under candidate
policies, and the decisions that would change grouped by the rule that decided them.

Each decision is re-decided against recorded history (see `warden.replay.state`): a
decision the candidate would change does not change what later decisions see.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warden.audit.redact import Redactor
from warden.policy.evaluate import PolicySet
from warden.replay.engine import Replayed, Replayer, ReplayStatus

__all__ = ["Change", "Example", "WhatIfReport", "what_if"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Example:
    """One decision a change would affect; its arguments redacted."""

    action_id: str
    run_id: str
    tool: str
    decided_at: float
    args: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "run_id": self.run_id,
            "tool": self.tool,
            "decided_at": self.decided_at,
            "args": dict(self.args),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Change:
    """Decisions that one rule decided and the candidate policies decide otherwise."""

    rule: str
    """What decided them (rule ids, else the stage and its code)."""
    now: str
    """What decides them under the candidate policies."""
    before: str
    """The recorded outcome."""
    after: str
    """The outcome under the candidate policies."""
    count: int
    examples: tuple[Example, ...]

    def __str__(self) -> str:
        return f"{self.rule}: {self.count} decisions {self.before} → {self.after}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "now": self.now,
            "before": self.before,
            "after": self.after,
            "count": self.count,
            "examples": [e.to_dict() for e in self.examples],
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class WhatIfReport:
    """Every recorded decision of a window re-decided under candidate policies."""

    since: float
    until: float
    agent: str | None
    revision: str
    """The candidate policies' revision."""
    total: int
    changed: int
    not_replayable: int
    looked_up_now: int
    """Decisions for which a fact was looked up now."""
    changes: tuple[Change, ...]
    """Grouped by (recorded rule, candidate rule, outcome before, after), largest first."""

    @property
    def unchanged(self) -> int:
        return self.total - self.changed - self.not_replayable

    @property
    def transitions(self) -> dict[str, int]:
        """``allow → needs_approval``: how many decisions, over all rules."""
        counts: Counter[str] = Counter()
        for c in self.changes:
            counts[f"{c.before} → {c.after}"] += c.count
        return dict(counts.most_common())

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "agent": self.agent,
            "revision": self.revision,
            "totals": {
                "decisions": self.total,
                "changed": self.changed,
                "unchanged": self.unchanged,
                "not_replayable": self.not_replayable,
                "looked_up_now": self.looked_up_now,
            },
            "transitions": self.transitions,
            "changes": [c.to_dict() for c in self.changes],
        }


def what_if(
    replayer: Replayer,
    candidate: PolicySet,
    *,
    since: float,
    until: float,
    agent: str | None = None,
    examples: int = 3,
    redactor: Redactor | None = None,
    redact_fields: frozenset[str] = frozenset(),
) -> WhatIfReport:
    """Re-decide every decision recorded in ``[since, until)`` (of `agent`) under
    `candidate`, and group the decisions that would change by rule.

    Up to `examples` decisions per group are kept, their arguments redacted: the fields
    the candidate policies redact, `redact_fields` (say, those the current policies
    redact) and whatever the redactor's detectors find."""
    decisions = replayer.recordings.recorded_decisions(agent=agent, since=since, until=until)
    replayed = replayer.replay(decisions, candidate)
    redact = redactor if redactor is not None else Redactor()
    groups: dict[tuple[str, str, str, str], list[Replayed]] = {}
    for r in replayed:
        if r.status is ReplayStatus.CHANGED and r.replayed is not None:
            key = (r.recorded.label, r.replayed.label, r.recorded.outcome, r.replayed.outcome)
            groups.setdefault(key, []).append(r)
    changes = [
        Change(
            rule=rule,
            now=now,
            before=before,
            after=after,
            count=len(members),
            examples=tuple(
                Example(
                    action_id=m.action_id,
                    run_id=m.run_id,
                    tool=m.tool,
                    decided_at=m.decided_at,
                    args=redact.redact(dict(m.args), m.redact_fields | redact_fields)[0],
                )
                for m in members[:examples]
            ),
        )
        for (rule, now, before, after), members in groups.items()
    ]
    changes.sort(key=lambda c: (-c.count, c.rule, c.now))
    return WhatIfReport(
        since=since,
        until=until,
        agent=agent,
        revision=candidate.revision,
        total=len(replayed),
        changed=sum(c.count for c in changes),
        not_replayable=sum(1 for r in replayed if r.status is ReplayStatus.NOT_REPLAYABLE),
        looked_up_now=sum(1 for r in replayed if r.looked_up_now),
        changes=tuple(changes),
    )
