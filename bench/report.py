"""Show a results document as a table (rich) and write it as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["render", "write_json"]

_LABELS = {
    "warden": "warden policy stage",
    "python": "hand-written python",
    "cel": "CEL (flat vars)",
    "cedar": "Cedar (batch)",
    "cel_nested": "CEL (nested maps)",
}
# (measured engine, baseline engine, target name or None for an information-only row)
_POLICY_ROWS = (
    ("warden", "python", "warden / hand-written python"),
    ("warden", "cel", "cel / warden"),
    ("warden", "cedar", "cedar / warden"),
    ("warden", "cel_nested", None),
)


def _verdict(target: dict[str, Any] | None) -> tuple[str, str]:
    if target is None:
        return "-", "[dim]info[/dim]"
    goal = f"{target['op']} {target['limit']:g}{'x' if target['unit'] == 'x' else ' us'}"
    ok = target["result"] == "PASS"
    return goal, "[bold green]PASS[/bold green]" if ok else "[bold red]MISS[/bold red]"


def _ratio(measured: float, baseline: float) -> str:
    """How the measurement compares with its baseline, in words."""
    if measured <= baseline:
        return f"{baseline / measured:.2f}x faster"
    return f"{measured / baseline:.2f}x slower"


def _table(results: dict[str, Any]) -> Table:
    policy, gate = results["policy"], results["gate"]
    by_name = {t["name"]: t for t in results["targets"]}
    us = {name: t["median_us"] for name, t in policy["per_request"].items()}
    table = Table(
        title="Warden benchmarks: policy time per request, Gate.decide with every check on",
        title_justify="left",
    )
    for col, justify in (
        ("measurement", "left"),
        ("time", "right"),
        ("baseline", "left"),
        ("baseline time", "right"),
        ("ratio", "right"),
        ("target", "right"),
        ("result", "center"),
    ):
        table.add_column(col, justify=justify)  # pyright: ignore[reportArgumentType]
    for measured, baseline, target in _POLICY_ROWS:
        if measured not in us or baseline not in us:
            continue
        goal, verdict = _verdict(by_name[target] if target else None)
        table.add_row(
            _LABELS[measured],
            f"{us[measured]:.2f} us",
            _LABELS[baseline],
            f"{us[baseline]:.2f} us",
            _ratio(us[measured], us[baseline]),
            goal,
            verdict,
        )
    table.add_section()
    goal, verdict = _verdict(by_name["Gate.decide p50"])
    table.add_row(
        "Gate.decide p50",
        f"{gate['p50_us']:.2f} us",
        "warden policy only",
        f"{us['warden']:.2f} us",
        f"{gate['ratio_p50_to_policy']:.2f}x",
        goal,
        verdict,
    )
    goal, verdict = _verdict(by_name["Gate.decide p99"])
    row = ("Gate.decide p99", f"{gate['p99_us']:.2f} us", "-", "-", "-", goal, verdict)
    table.add_row(*row)
    return table


def render(results: dict[str, Any], console: Console | None = None) -> None:
    """Print the table and the notes a reader needs to trust it."""
    console = console or Console()
    policy, gate, m = results["policy"], results["gate"], results["machine"]
    agreement = policy["agreement"]
    console.print(_table(results))
    outcomes = ", ".join(f"{k} {v}" for k, v in agreement["outcomes"].items())
    console.print(
        f"[green]agreement:[/green] {len(agreement['engines'])} engines agree on all "
        f"{policy['requests']} requests (seed {policy['seed']}): {outcomes}; "
        f"{policy['rules']}/21 rules exercised; {agreement['default_denies']} default denies."
    )
    console.print(
        f"policy: median of {policy['per_request']['warden']['repeats']} interleaved repeats "
        f"per engine. gate: {gate['repeats']} x {gate['decisions_per_repeat']:,} timed "
        f"decisions (pooled p50 {gate['pooled']['p50_us']:.2f} us, p99 "
        f"{gate['pooled']['p99_us']:.2f} us), outcomes {gate['outcomes']}."
    )
    console.print(
        "encodings: CEL is judged on its fastest variable layout (flat; nested maps shown for "
        "information), Cedar on one is_authorized_batch call per pass; see bench/engine_*.py."
    )
    console.print(
        "method: time.perf_counter_ns; gc.collect() then gc.disable() around every timed "
        "loop (re-enabled after); MemoryStore, FixedClock; Gate.decide has no tracing to "
        "turn off."
    )
    console.print(
        f"machine: Python {m['python']} on {m['platform']}, {m['cpu_count']} CPUs. "
        f"mode {results['mode']}, {results['elapsed_s']:.1f} s."
    )
    missed = [t["name"] for t in results["targets"] if t["result"] != "PASS"]
    if missed:
        console.print(f"[bold red]MISS[/bold red]: {', '.join(missed)}")
    else:
        console.print("[bold green]all targets met[/bold green]")


def write_json(results: dict[str, Any], path: Path) -> None:
    """Write the results document, pretty-printed."""
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
