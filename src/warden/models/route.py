"""Routing a step to a model: cascades from a cheap model to a stronger one, and a cache.

A `Route` lists models cheapest first. Each step goes to the first; its turn is kept
unless it fails (a `ModelError` after the adapter's retries, or a malformed tool call) or
its confidence is below the minimum set for the riskiest tool it proposes — then the step
goes to the next model. ``min_confidence`` is per risk tier, so a cheap model may answer
reads on its own while a high-risk write is proposed only by a model confident enough
(a turn without a confidence counts as 0 against any minimum above 0).

`ResponseCache` answers an identical request (same model, messages, tools, settings)
from memory within its TTL; the runner records the hit and what it saved.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from warden.errors import ModelError
from warden.models.base import Model, ModelRequest, ModelTurn

__all__ = ["Attempt", "ResponseCache", "Route", "Routed"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Attempt:
    """One model asked for one step."""

    model: str
    provider: str
    turn: ModelTurn | None
    error: ModelError | None
    ms: float
    escalated: str | None = None
    """Why the next model was asked, when it was."""
    cached: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Routed:
    """The turn a route settled on, and every attempt it took."""

    turn: ModelTurn | None
    model: Model | None
    attempts: tuple[Attempt, ...]

    @property
    def error(self) -> ModelError | None:
        return self.attempts[-1].error if self.turn is None and self.attempts else None


@dataclass(frozen=True, kw_only=True, slots=True)
class Route:
    """Models to try for a step, cheapest first."""

    models: tuple[Model, ...]
    min_confidence: Mapping[str, float] = field(default_factory=dict[str, float])
    """Risk tier (read, draft, write, high_risk, prod_control) → the confidence a turn
    proposing a tool of that tier needs to be kept."""

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("a route needs at least one model")

    @classmethod
    def of(cls, model: Model | Route) -> Route:
        return model if isinstance(model, Route) else cls(models=(model,))

    def ask(
        self,
        request: ModelRequest,
        *,
        risk_of: Callable[[str], str | None],
        ask: Callable[[Model, ModelRequest], tuple[ModelTurn, float, bool]],
    ) -> Routed:
        """Ask the models in order until one's turn can be kept.

        `risk_of` names a tool's risk tier (None: unknown tool); `ask` calls one model
        and returns (turn, milliseconds, from_cache) or raises ModelError."""
        attempts: list[Attempt] = []
        last = len(self.models) - 1
        for i, model in enumerate(self.models):
            try:
                turn, ms, cached = ask(model, request)
            except ModelError as exc:
                attempts.append(
                    Attempt(
                        model=model.name,
                        provider=model.provider,
                        turn=None,
                        error=exc,
                        ms=0.0,
                        escalated=f"{exc.code}: {exc.message}" if i < last else None,
                    )
                )
                continue
            why = None if i == last else self._doubt(turn, risk_of)
            attempts.append(
                Attempt(
                    model=model.name,
                    provider=model.provider,
                    turn=turn,
                    error=None,
                    ms=ms,
                    escalated=why,
                    cached=cached,
                )
            )
            if why is None:
                return Routed(turn=turn, model=model, attempts=tuple(attempts))
        return Routed(turn=None, model=None, attempts=tuple(attempts))

    def _doubt(self, turn: ModelTurn, risk_of: Callable[[str], str | None]) -> str | None:
        """Why a cheaper model's turn is not kept, or None."""
        if turn.malformed:
            return "a tool call's arguments are not a JSON object"
        unknown = [t.name for t in turn.tool_calls if risk_of(t.name) is None]
        if unknown:
            return f"it called unknown tools: {', '.join(unknown)}"
        need = max(
            (self.min_confidence.get(risk_of(t.name) or "", 0.0) for t in turn.tool_calls),
            default=self.min_confidence.get("answer", 0.0),
        )
        have = turn.confidence if turn.confidence is not None else 0.0
        if need > 0 and have < need:
            return f"confidence {have:.2f} is below {need:.2f} for this step's risk"
        return None

    @property
    def names(self) -> Sequence[str]:
        return [m.name for m in self.models]


class ResponseCache:
    """Turns of identical requests, kept for `ttl_s` seconds (LRU, bounded)."""

    def __init__(self, *, ttl_s: float = 300.0, max_entries: int = 1_000) -> None:
        self.ttl_s = ttl_s
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, ModelTurn, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> tuple[ModelTurn, float] | None:
        """(the cached turn, the milliseconds it took when asked), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry[0]:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1], entry[2]

    def put(self, key: str, turn: ModelTurn, *, ms: float, now: float) -> None:
        with self._lock:
            self._entries[key] = (now + self.ttl_s, turn, ms)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
