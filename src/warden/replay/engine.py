"""The replay engine: recorded decisions decided again by `Gate.decide`, and compared.

A `Replayer` builds a gate over a `RecordedState` (so the very same checks run) with the
current tools and fact providers, and decides each recorded call again under the
policies asked for: each under the revision it was recorded under (rebuilt from the
stored sources, see `warden.replay.revisions`), or one policy set for all. The outcome,
the code, the stage and the rule ids are compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from warden.decision import Decision
from warden.errors import ReplayError
from warden.facts import FactRegistry
from warden.gate import Gate, ToolCall
from warden.manifest import AgentManifest
from warden.policy.evaluate import PolicySet
from warden.project import Project
from warden.provenance import Content, Label
from warden.replay.revisions import rebuild_revision
from warden.replay.state import RecordedFacts, RecordedState, Recordings, ReplayClock
from warden.store.protocol import RecordedDecision
from warden.tools.registry import ToolRegistry
from warden.tools.spec import Tool

__all__ = [
    "NOT_RECORDED",
    "ReplayReport",
    "ReplayStatus",
    "Replayed",
    "Replayer",
    "Verdict",
    "replay_run",
]

NOT_RECORDED = "not replayable (recorded before Warden kept decision inputs)"


class ReplayStatus(StrEnum):
    """How a recorded decision came out when decided again."""

    SAME = "same"
    """Re-decided as recorded: outcome, code, stage and rule ids."""
    CHANGED = "changed"
    """Re-decided otherwise; `Replayed.differences` says in what."""
    NOT_REPLAYABLE = "not_replayable"
    """Recorded before Warden kept decision inputs."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """The parts of a decision a replay compares."""

    outcome: str
    code: str | None
    stage: str | None
    rules: tuple[str, ...]

    @classmethod
    def of(cls, decision: Decision) -> Verdict:
        return cls(
            outcome=decision.outcome.value,
            code=decision.code,
            stage=decision.stage.value,
            rules=tuple(r.id for r in decision.rules),
        )

    @property
    def label(self) -> str:
        """What decided, for people: the rule ids, else the stage and its code."""
        if self.rules:
            return ", ".join(self.rules)
        return " ".join(p for p in (self.stage, self.code) if p) or "-"

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "code": self.code,
            "stage": self.stage,
            "rules": list(self.rules),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Replayed:
    """One recorded decision, decided again."""

    action_id: str
    run_id: str
    agent: str
    tool: str
    step: int | None
    decided_at: float
    args: Mapping[str, Any]
    """The recorded arguments (not redacted: redact before showing them)."""
    recorded: Verdict
    replayed: Verdict | None
    """None when the decision could not be replayed."""
    status: ReplayStatus
    revision: str | None = None
    """The policy revision it was re-decided under."""
    differences: tuple[str, ...] = ()
    """Which of outcome, code, stage, rules differ."""
    looked_up_now: tuple[str, ...] = ()
    """Facts the recorded decision never consulted, asked of the providers now."""
    notes: tuple[str, ...] = ()
    """Why it is not replayable, or which inputs were assumed."""
    redact_fields: frozenset[str] = frozenset()
    """What the replaying policies redact from this call's arguments."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "run_id": self.run_id,
            "agent": self.agent,
            "tool": self.tool,
            "step": self.step,
            "decided_at": self.decided_at,
            "status": self.status.value,
            "recorded": self.recorded.to_dict(),
            "replayed": self.replayed.to_dict() if self.replayed is not None else None,
            "revision": self.revision,
            "differences": list(self.differences),
            "looked_up_now": list(self.looked_up_now),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayReport:
    """Recorded decisions re-decided under one choice of policies."""

    policies: str
    """``recorded``, ``current``, or where the candidate policies came from."""
    decisions: tuple[Replayed, ...]
    revisions: tuple[str, ...]
    """The revisions the decisions were re-decided under."""

    def count(self, status: ReplayStatus) -> int:
        return sum(1 for d in self.decisions if d.status is status)

    @property
    def reproduced(self) -> bool:
        """True when no replayed decision came out otherwise than recorded."""
        return self.count(ReplayStatus.CHANGED) == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "policies": self.policies,
            "revisions": list(self.revisions),
            "totals": {s.value: self.count(s) for s in ReplayStatus},
            "reproduced": self.reproduced,
            "decisions": [d.to_dict() for d in self.decisions],
        }


class Replayer:
    """Re-decides recorded decisions with the current tools and fact providers.

    `agents` are the current manifests: under a recorded revision, the manifests among
    its sources take their place (an agent's mode, tools, budgets and breaker as they
    were)."""

    def __init__(
        self,
        recordings: Recordings,
        *,
        tools: ToolRegistry | Iterable[Tool],
        agents: Iterable[AgentManifest],
        facts: FactRegistry | None = None,
        history_days: float = 90.0,
    ) -> None:
        self.recordings = recordings
        self.tools = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.agents = tuple(agents)
        self.facts = facts
        self.state = RecordedState(recordings, history_s=history_days * 86_400.0)
        self._clock = ReplayClock()
        self._recorded: dict[str, Gate] = {}

    @classmethod
    def for_project(cls, recordings: Recordings, project: Project) -> Replayer:
        """A replayer with a project's tools, fact providers and agents."""
        return cls(recordings, tools=project.tools, agents=project.agents, facts=project.facts)

    def gate(self, policies: PolicySet, agents: Iterable[AgentManifest] | None = None) -> Gate:
        """A gate deciding from the recording (nothing it decides is written anywhere)."""
        return Gate(
            policies=policies,
            agents=self.agents if agents is None else agents,
            tools=self.tools,
            store=self.state,
            facts=self.facts,
            clock=self._clock,
        )

    def recorded_gate(self, revision: str) -> Gate:
        """The gate of a recorded revision, rebuilt from the sources the store kept."""
        found = self._recorded.get(revision)
        if found is None:
            stored = self.recordings.policy_revision(revision)
            if stored is None:
                raise ReplayError(
                    "W-RPL-001",
                    f"policy revision {revision} is not stored in this database, so the "
                    "decisions made under it cannot be replayed under it",
                )
            policies, manifests = rebuild_revision(stored, tools=self.tools)
            then = {m.name: m for m in manifests}
            agents = [*manifests, *(a for a in self.agents if a.name not in then)]
            found = self._recorded[revision] = self.gate(policies, agents)
        return found

    def replay(
        self, decisions: Sequence[RecordedDecision], policies: PolicySet | None = None
    ) -> list[Replayed]:
        """Re-decide `decisions` (in their order) under `policies`, or, with None, each
        under the revision it was recorded under."""
        self.state.expect(decisions)
        gate = self.gate(policies) if policies is not None else None
        out: list[Replayed] = []
        for d in decisions:
            if d.inputs is None or d.stage is None:
                out.append(_not_replayable(d))
                continue
            if gate is not None:
                out.append(self._one(d, d.inputs, gate))
            elif d.policy_revision is None:
                out.append(_not_replayable(d))
            else:
                out.append(self._one(d, d.inputs, self.recorded_gate(d.policy_revision)))
        return out

    def _one(self, d: RecordedDecision, inputs: Mapping[str, Any], gate: Gate) -> Replayed:
        state = self.state
        state.begin(d, inputs)
        self._clock.at = d.decided_at
        values: Mapping[str, Any] = inputs.get("facts") or {}
        errors: Mapping[str, str | None] = inputs.get("fact_errors") or {}
        raw = inputs.get("raw_args")
        decision = gate.decide(
            ToolCall(
                agent=d.agent,
                tool=d.tool,
                args=cast(Mapping[str, Any], raw) if raw is not None else d.args,
                run_id=d.run_id,
                context=inputs.get("context") or {},
                principal=inputs.get("principal"),
                estimated_usd=inputs.get("estimated_usd", d.est_usd),
                estimated_tokens=inputs.get("estimated_tokens", d.est_tokens),
                facts=RecordedFacts(values, errors) if values or errors else None,
                step=d.step,
                content=_TAINTED if inputs.get("tainted") else (),
            )
        )
        recorded = Verdict(outcome=d.outcome, code=d.code, stage=d.stage, rules=d.rule_ids)
        replayed = Verdict.of(decision)
        differences = tuple(
            name
            for name, a, b in (
                ("outcome", recorded.outcome, replayed.outcome),
                ("code", recorded.code, replayed.code),
                ("stage", recorded.stage, replayed.stage),
                ("rules", recorded.rules, replayed.rules),
            )
            if a != b
        )
        looked_up: tuple[str, ...] = ()
        if state.asked and decision.inputs is not None:  # which facts a provider answered now
            given = {*values, *(n for n, why in errors.items() if why is not None)}
            now = decision.inputs
            answered = {
                *now.get("facts", {}),
                *(n for n, why in now.get("fact_errors", {}).items() if why is not None),
            }
            looked_up = tuple(sorted(answered - given))
        return Replayed(
            action_id=d.action_id,
            run_id=d.run_id,
            agent=d.agent,
            tool=d.tool,
            step=d.step,
            decided_at=d.decided_at,
            args=d.args,
            recorded=recorded,
            replayed=replayed,
            status=ReplayStatus.CHANGED if differences else ReplayStatus.SAME,
            revision=decision.policy_revision,
            differences=differences,
            looked_up_now=looked_up,
            notes=tuple(state.notes),
            redact_fields=decision.redact_fields,
        )


_TAINTED = (Content(text="", label=Label.UNTRUSTED, source="replay: the run was tainted"),)


def _not_replayable(d: RecordedDecision) -> Replayed:
    return Replayed(
        action_id=d.action_id,
        run_id=d.run_id,
        agent=d.agent,
        tool=d.tool,
        step=d.step,
        decided_at=d.decided_at,
        args=d.args,
        recorded=Verdict(outcome=d.outcome, code=d.code, stage=d.stage, rules=d.rule_ids),
        replayed=None,
        status=ReplayStatus.NOT_REPLAYABLE,
        notes=(NOT_RECORDED,),
    )


def replay_run(
    replayer: Replayer, run_id: str, policies: PolicySet | None = None, *, label: str = ""
) -> ReplayReport:
    """Re-decide every recorded decision of a run, in order: under `policies`, or with
    None under the revisions they were recorded under. `label` names the policies in the
    report (default ``recorded`` or the revision)."""
    replayed = replayer.replay(replayer.recordings.recorded_decisions(run_id=run_id), policies)
    revisions = tuple(dict.fromkeys(r.revision for r in replayed if r.revision is not None))
    name = label or ("recorded" if policies is None else policies.revision)
    return ReplayReport(policies=name, decisions=tuple(replayed), revisions=revisions)
