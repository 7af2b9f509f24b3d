"""Replay recorded decisions, under the policies that made them or under others.

Every decision records what it read (`Decision.inputs`): the call's context, the kill
switch, the loop count, the budget check, the breaker, the run's ledger, the facts its
policy consulted and `now`. A replay hands these back to the very same `Gate.decide`
through `RecordedState`, a `StateStore` that answers from the recording, and compares
the outcome, the code, the stage and the rule ids:

- under the recorded revision (rebuilt from the sources the gate stored, see
  `warden.replay.revisions`), every decision must come out as recorded: that is what
  proves the record complete;
- under other policies (the project's current ones, or a candidate folder), what differs
  is what the change would have done; `what_if` groups the changes by rule.

History (``history.*`` in conditions) is not copied into each record: it is rebuilt from
the agent's recorded actions decided before the one replayed (their recorded outcomes
and arguments) and the approvals spent before it. Each decision is re-decided against
recorded history, so a changed earlier decision does not ripple into later ones.

A fact a policy reads that the recorded decision never consulted is looked up now,
through the project's fact providers, and the result says so (`Replayed.looked_up_now`).
Inputs a check needs that the recording lacks (the recorded gate stopped the call before
that check; a store with shared budgets reads the run's ledger only for policies that
read ``run``) are assumed (no repeat, within budget, breaker closed, run figures zero)
and the result notes it (`Replayed.notes`).

The package: `state` (the recorded `StateStore`), `engine` (`Replayer`, `replay_run`),
`whatif` (`what_if`), `revisions` (a recorded revision rebuilt; candidate policies).
"""

from warden.replay.engine import (
    NOT_RECORDED,
    Replayed,
    Replayer,
    ReplayReport,
    ReplayStatus,
    Verdict,
    replay_run,
)
from warden.replay.revisions import candidate_policies, rebuild_revision
from warden.replay.state import RecordedState, Recordings
from warden.replay.whatif import Change, Example, WhatIfReport, what_if

__all__ = [
    "NOT_RECORDED",
    "Change",
    "Example",
    "RecordedState",
    "Recordings",
    "ReplayReport",
    "ReplayStatus",
    "Replayed",
    "Replayer",
    "Verdict",
    "WhatIfReport",
    "candidate_policies",
    "rebuild_revision",
    "replay_run",
    "what_if",
]
