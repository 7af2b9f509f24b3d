"""Circuit breakers on an agent's action error rate.

closed --(error rate over the window > threshold, with at least `min_calls`)--> open
open   --(cooldown passed; the next write becomes the single probe)--------> half_open
half_open --(probe succeeded)--> closed;  half_open --(probe failed)--> open

An open (or half-open, for every call but the probe) breaker demotes the agent to
suggest-only: writes become proposals. There is no path from open to closed that skips
half-open. The functions here are pure; a store keeps one `BreakerState` per agent and
calls them under its lock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["BreakerConfig", "BreakerState", "Phase", "claim_probe", "current_phase", "record"]


class Phase(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakerConfig:
    """An agent's breaker settings (manifest ``circuit_breakers``)."""

    error_rate_max: float
    """Trip when errors / calls over the window exceeds this (0.005 for 0.5%)."""
    window_s: float = 300.0
    """The sliding window, in seconds."""
    min_calls: int = 10
    """Calls needed in the window before the rate is judged."""
    cooldown_s: float = 60.0
    """How long the breaker stays open before one probe is let through."""
    on_trigger: str = "downgrade_to_suggest_only"
    """What tripping does; only ``downgrade_to_suggest_only`` exists."""


@dataclass(kw_only=True, slots=True)
class BreakerState:
    """One agent's breaker. Mutated only through the functions below."""

    phase: Phase = Phase.CLOSED
    opened_at: float = 0.0
    probe_out: bool = False
    probe_at: float = 0.0
    events: deque[tuple[float, bool]] = field(default_factory=lambda: deque[tuple[float, bool]]())
    errors: int = 0
    transitions: list[tuple[float, Phase]] = field(
        default_factory=lambda: list[tuple[float, Phase]]()
    )

    def prune(self, now: float, window: float) -> None:
        events = self.events
        horizon = now - window
        while events and events[0][0] < horizon:
            _, ok = events.popleft()
            if not ok:
                self.errors -= 1

    def move(self, phase: Phase, now: float) -> None:
        self.phase = phase
        self.transitions.append((now, phase))
        if len(self.transitions) > 1000:
            del self.transitions[:500]

    @property
    def rate(self) -> float:
        return self.errors / len(self.events) if self.events else 0.0


def current_phase(state: BreakerState, config: BreakerConfig, now: float) -> Phase:
    """The phase at `now`; an open breaker past its cooldown becomes half-open."""
    if state.phase is Phase.OPEN and now - state.opened_at >= config.cooldown_s:
        state.move(Phase.HALF_OPEN, now)
        state.probe_out = False
    return state.phase


def claim_probe(state: BreakerState, config: BreakerConfig, now: float) -> bool:
    """In half-open, the first caller to ask gets to be the probe; everyone else does not.

    A probe whose outcome never arrives (its caller crashed) is given up after another
    cooldown, and the next caller probes instead.
    """
    if current_phase(state, config, now) is not Phase.HALF_OPEN:
        return False
    if state.probe_out and now - state.probe_at < config.cooldown_s:
        return False
    state.probe_out = True
    state.probe_at = now
    return True


def record(
    state: BreakerState, config: BreakerConfig, ok: bool, now: float, *, probe: bool = False
) -> Phase:
    """Feed one action outcome (ok or error) into the breaker; returns the new phase."""
    phase = current_phase(state, config, now)
    if phase is Phase.HALF_OPEN:
        if probe:
            state.probe_out = False
            if ok:
                state.events.clear()
                state.errors = 0
                state.move(Phase.CLOSED, now)
            else:
                state.opened_at = now
                state.move(Phase.OPEN, now)
        return state.phase
    state.events.append((now, ok))
    if not ok:
        state.errors += 1
    state.prune(now, config.window_s)
    if (
        phase is Phase.CLOSED
        and len(state.events) >= config.min_calls
        and state.rate > config.error_rate_max
    ):
        state.opened_at = now
        state.move(Phase.OPEN, now)
    return state.phase
