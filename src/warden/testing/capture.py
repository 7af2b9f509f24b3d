"""Capture decisions and script calls, for tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from warden.clock import CountingIds, FixedClock
from warden.decision import Decision, Outcome
from warden.gate import Gate, ToolCall
from warden.project import load_project
from warden.store.memory import MemoryStore
from warden.yamlsource import load_yaml

__all__ = ["CapturingGate", "project_gate", "scripted_calls"]


class CapturingGate:
    """Wraps a gate; every decision it returns is also kept in `decisions`."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.decisions: list[Decision] = []

    def decide(self, call: ToolCall) -> Decision:
        d = self.gate.decide(call)
        self.decisions.append(d)
        return d

    def __getattr__(self, name: str) -> Any:
        return getattr(self.gate, name)

    def outcomes(self) -> list[Outcome]:
        return [d.outcome for d in self.decisions]

    def codes(self) -> list[str | None]:
        return [d.code for d in self.decisions]

    def last(self) -> Decision:
        if not self.decisions:
            raise AssertionError("no decision was captured")
        return self.decisions[-1]

    def clear(self) -> None:
        self.decisions.clear()


def project_gate(path: Path | str, *, clock: FixedClock | None = None) -> CapturingGate:
    """A capturing gate over a fresh in-memory store and a fixed clock, for a project folder."""
    project = load_project(path)
    return CapturingGate(
        project.gate(store=MemoryStore(), clock=clock or FixedClock(), ids=CountingIds())
    )


def scripted_calls(
    script: Iterable[Mapping[str, Any]] | Path | str,
    *,
    run_id: str = "run_scripted",
    agent: str | None = None,
) -> Iterator[ToolCall]:
    """Tool calls from a list of dicts, or a YAML file holding ``calls: [...]``.

    Each entry has ``tool`` and ``args``, and optionally ``agent``, ``context``, ``facts``,
    ``run_id``, ``estimated_usd`` and ``estimated_tokens``.
    """
    if isinstance(script, Path | str):
        data = load_yaml(Path(script)).mapping() or {}
        entries: list[Mapping[str, Any]] = list(data.get("calls", []))
    else:
        entries = list(script)
    for entry in entries:
        yield ToolCall(
            agent=str(entry.get("agent", agent or "")),
            tool=str(entry["tool"]),
            args=dict(entry.get("args", {})),
            run_id=str(entry.get("run_id", run_id)),
            context=dict(entry.get("context", {})),
            facts=entry.get("facts"),
            estimated_usd=float(entry.get("estimated_usd", 0.0)),
            estimated_tokens=int(entry.get("estimated_tokens", 0)),
        )
