"""Modes and autonomy levels: how far an agent may act on its own.

=========  ====================  ==============================================================
level      mode                  what an allowed call of a write-tier tool becomes
=========  ====================  ==============================================================
L0         draft_only            a recorded proposal (outcome suggest_only); only read and
                                 draft tools execute
L1         suggest_only          a recorded proposal a person may carry out (shadow mode)
L2         suggest_then_act      an approval request; it executes once approved
L3, L4     act                   it executes, as the policy allows
=========  ====================  ==============================================================

Read and draft tools are never demoted by a mode. An open circuit breaker demotes an
``act`` or ``suggest_then_act`` agent to ``suggest_only`` until its probe succeeds.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AUTONOMY_MODES", "Mode"]


class Mode(StrEnum):
    DRAFT_ONLY = "draft_only"
    SUGGEST_ONLY = "suggest_only"
    SUGGEST_THEN_ACT = "suggest_then_act"
    ACT = "act"


AUTONOMY_MODES: dict[str, Mode] = {
    "L0": Mode.DRAFT_ONLY,
    "L1": Mode.SUGGEST_ONLY,
    "L2": Mode.SUGGEST_THEN_ACT,
    "L3": Mode.ACT,
    "L4": Mode.ACT,
}
"""Autonomy level -> mode."""
