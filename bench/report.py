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


def _amount(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:g}x"
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:g} {unit}"


def _verdict(target: dict[str, Any] | None) -> tuple[str, str]:
    if target is None:
        return "-", "[dim]info[/dim]"
    goal = f"{target['op']} {_amount(target['limit'], target['unit'])}"
    ok = target["result"] == "PASS"
    return goal, "[bold green]PASS[/bold green]" if ok else "[bold red]MISS[/bold red]"


def _ratio(measured: float, baseline: float) -> str:
    """How the measurement compares with its baseline, in words."""
    if measured <= baseline:
        return f"{baseline / measured:.2f}x faster"
    return f"{measured / baseline:.2f}x slower"


def _columns(table: Table, names: tuple[str, ...]) -> Table:
    for i, col in enumerate(names):
        justify = "left" if i in (0, 2) else "center" if col == "result" else "right"
        table.add_column(col, justify=justify, no_wrap=i == 0)  # pyright: ignore[reportArgumentType]
    return table


def _table(results: dict[str, Any]) -> Table:
    policy, gate = results["policy"], results["gate"]
    by_name = {t["name"]: t for t in results["targets"]}
    us = {name: t["median_us"] for name, t in policy["per_request"].items()}
    table = Table(
        title="Warden benchmarks: policy time per request, Gate.decide with every check on",
        title_justify="left",
    )
    _columns(
        table,
        ("measurement", "time", "baseline", "baseline time", "ratio", "target", "result"),
    )
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


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def _us(value: float) -> str:
    return f"{value:,.0f} us" if value >= 100 else f"{value:.1f} us"


def _durable_table(results: dict[str, Any]) -> Table:
    durable = results["durable"]
    execute, audit = durable["execute"], durable["audit"]
    by_name = {t["name"]: t for t in results["targets"]}
    group, single = execute["group_commit"], execute["one_commit_per_call"]
    threads = execute["threads"]
    table = Table(
        title=f"Warden benchmarks: durable path (SQLite, synchronous=FULL, WAL, "
        f"temp dir in {durable['folder']}); calls/s and records/s",
        title_justify="left",
    )
    _columns(
        table,
        ("measurement", "measured", "baseline", "value", "ratio", "target", "result"),
    )
    goal, verdict = _verdict(by_name["Gate.execute on SQLite / one commit per call"])
    table.add_row(
        f"execute, {threads} callers, group commit",
        _rate(group["rate_per_s"]),
        "1 commit per call",
        _rate(single["rate_per_s"]),
        f"{execute['ratio']:.2f}x",
        goal,
        verdict,
    )
    goal, verdict = _verdict(by_name["Gate.execute on SQLite, calls/s"])
    row = (f"execute, {threads} callers, group commit", _rate(group["rate_per_s"]))
    table.add_row(*row, "-", "-", "-", goal, verdict)
    raw = execute["raw_sqlite"]["rate_per_s"]
    goal, verdict = _verdict(None)
    table.add_row(
        "raw SQLite 1-row INSERT+COMMIT",
        _rate(raw),
        "execute, grouped",
        _rate(group["rate_per_s"]),
        f"{group['rate_per_s'] / raw:.2f}x",
        goal,
        verdict,
    )
    table.add_row(
        "writer requests per commit",
        f"{group['writer']['requests_per_batch']:.1f}",
        "1 commit per call",
        f"{single['writer']['requests_per_batch']:.1f}",
        "-",
        goal,
        verdict,
    )
    for label, key in ((f"{threads} callers", "concurrent"), ("1 caller", "one_caller")):
        lat = execute["latency"][key]
        for q in ("p50", "p99"):
            table.add_row(
                f"execute {q}, {label}",
                _us(lat["sqlite"][f"{q}_us"]),
                "in memory",
                _us(lat["memory"][f"{q}_us"]),
                f"+{_us(lat[f'added_{q}_us'])}",
                goal,
                verdict,
            )
    table.add_section()
    append, verify, export = audit["append"], audit["verify"], audit["export"]
    goal, verdict = _verdict(by_name["audit append_batch, records/s"])
    label = f"append_batch, {audit['batch']:,} x {audit['streams']} streams"
    table.add_row(label, _rate(append["rate_per_s"]), "-", "-", "-", goal, verdict)
    goal, verdict = _verdict(by_name["audit verify, records/s"])
    label = f"verify_rows, database, {verify['records']:,}"
    table.add_row(label, _rate(verify["rate_per_s"]), "-", "-", "-", goal, verdict)
    goal, verdict = _verdict(None)
    table.add_row(
        "verify_rows, export file",
        _rate(export["verify_rate_per_s"]),
        "verify, database",
        _rate(verify["rate_per_s"]),
        _ratio(1 / export["verify_rate_per_s"], 1 / verify["rate_per_s"]),
        goal,
        verdict,
    )
    row = ("export_line, writing the file", _rate(export["write_rate_per_s"]))
    table.add_row(*row, "-", "-", "-", goal, verdict)
    return table


def _render_policy(results: dict[str, Any], console: Console) -> None:
    policy, gate = results["policy"], results["gate"]
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


def _render_durable(results: dict[str, Any], console: Console) -> None:
    durable = results["durable"]
    execute, audit = durable["execute"], durable["audit"]
    group = execute["group_commit"]
    console.print(_durable_table(results))
    console.print(
        f"execute: payments fixture (agent payer, tool pay), {execute['threads']} threads x "
        f"{execute['seconds_per_repeat']:g} s x {execute['repeats']} repeats per store, "
        f"fresh SQLite file each; runs of {execute['calls_per_run']} calls; group commit "
        f"{group['writer']['requests']:,} writer requests in {group['writer']['batches']:,} "
        f"commits. in memory (decide + tool.run + settle on a MemoryStore): "
        f"{execute['in_memory_rate_per_s']['concurrent']:,.0f}/s "
        f"({execute['threads']} callers), {execute['in_memory_rate_per_s']['one_caller']:,.0f}/s "
        f"(1 caller); Gate.execute 1 caller: {execute['one_caller_sqlite_rate_per_s']:,.0f}/s."
    )
    load = durable["load_average_1min"]
    console.print(
        f"audit: {audit['append']['records']:,} decision records of {audit['data_bytes']} "
        f"bytes of data each; export {audit['export']['bytes'] / 1e6:,.1f} MB. "
        f"load average (1 min) {load['start']:.1f} before, {load['end']:.1f} after."
    )


def _render_runner(results: dict[str, Any], console: Console) -> None:
    section = results["runner"]
    by_name = {t["name"]: t for t in results["targets"]}
    table = Table(
        title="Warden benchmarks: agent runner (SQLite, synchronous=FULL); per step, "
        "model time excluded",
        title_justify="left",
    )
    _columns(
        table, ("measurement", "p50", "p90", "p99", "of which Gate.execute p50", "target", "result")
    )
    raw = section.get("raw_commit_ms", {})
    for latency, row in section["by_model_latency"].items():
        o, g = row["overhead_ms"], row["gate_execute_ms"]
        name = f"runner overhead, model answering in {latency} ms"
        goal, verdict = _verdict(
            by_name["runner overhead per step p50"] if latency == "0" else None
        )
        table.add_row(
            name,
            f"{o['p50']:.2f} ms",
            f"{o['p90']:.2f} ms",
            f"{o['p99']:.2f} ms",
            f"{g['p50']:.2f} ms",
            goal,
            verdict,
        )
        if latency in raw:
            table.add_row(
                f"  raw SQLite commit, {latency} ms apart (the floor)",
                f"{raw[latency]:.2f} ms",
                "-",
                "-",
                "-",
                "-",
                "[dim]info[/dim]",
            )
    if "demo_wall_s" in section:
        goal, verdict = _verdict(by_name["demo wall time"])
        table.add_row(
            "warden demo, end to end",
            f"{section['demo_wall_s']:.1f} s",
            "-",
            "-",
            "-",
            goal,
            verdict,
        )
    console.print(table)
    console.print(
        "runner: payments fixture, one `pay` call per turn from a scripted model; the turn's "
        "save and the previous outcome ride with the decision's commit (or commit in the "
        "background 2 ms later, while the model thinks)."
    )


def _pg_table(results: dict[str, Any]) -> Table:
    section = results["pg"]
    decide, raw = section["decide"], section["raw_insert"]
    group, single = decide["group_commit"], decide["one_commit_per_decision"]
    threads = section["threads"]
    by_name = {t["name"]: t for t in results["targets"]}
    server = section["server"]
    table = Table(
        title=f"Warden benchmarks: durable decisions on PostgreSQL {server['server_version']} "
        f"(synchronous_commit={server['synchronous_commit']}, fsync={server['fsync']}); "
        "decisions/s",
        title_justify="left",
    )
    _columns(table, ("measurement", "measured", "baseline", "value", "ratio", "target", "result"))
    goal, verdict = _verdict(by_name["durable decisions on PostgreSQL / one commit per decision"])
    table.add_row(
        f"record_decision, {threads} callers, group commit",
        _rate(group["rate_per_s"]),
        "1 commit per decision",
        _rate(single["rate_per_s"]),
        f"{decide['ratio']:.2f}x",
        goal,
        verdict,
    )
    goal, verdict = _verdict(None)
    table.add_row(
        "decisions per transaction",
        f"{group['writer']['requests_per_transaction']:.1f}",
        "1 commit per decision",
        f"{single['writer']['requests_per_transaction']:.1f}",
        "-",
        goal,
        verdict,
    )
    for q in ("p50", "p99"):
        table.add_row(
            f"record_decision {q}, {threads} callers",
            _us(group[f"{q}_us"]),
            "1 commit per decision",
            _us(single[f"{q}_us"]),
            _ratio(group[f"{q}_us"], single[f"{q}_us"]),
            goal,
            verdict,
        )
    for key, label in (("one_caller", "1 caller"), ("concurrent", f"{threads} callers")):
        rate = raw[key]["rate_per_s"]
        table.add_row(
            f"raw 1-row INSERT+COMMIT, {label}",
            _rate(rate),
            "record_decision, grouped",
            _rate(group["rate_per_s"]),
            f"{group['rate_per_s'] / rate:.2f}x",
            goal,
            verdict,
        )
    execute = section.get("execute")
    if execute is not None:
        table.add_row(
            f"Gate.execute, {threads} callers, group commit",
            _rate(execute["group_commit"]["rate_per_s"]),
            "1 commit per write",
            _rate(execute["one_commit_per_call"]["rate_per_s"]),
            f"{execute['ratio']:.2f}x",
            goal,
            verdict,
        )
    return table


def _render_pg(results: dict[str, Any], console: Console) -> None:
    section = results["pg"]
    if "skipped" in section:
        console.print(f"[yellow]PostgreSQL section skipped:[/yellow] {section['skipped']}")
        return
    console.print(_pg_table(results))
    console.print(
        f"pg: {section['threads']} threads x {section['seconds_per_repeat']:g} s x "
        f"{section['repeats']} repeats per store, a fresh database each; decisions for "
        f"{section['agents']} agents (one audit stream each), runs of "
        f"{section['calls_per_run']}; pool of {section['pool_size']} connections. Group "
        "commit: one writer thread, pipelined, commits what the callers hand it; one "
        "commit per decision: each caller's own transaction on a pool connection."
    )


def _render_server(results: dict[str, Any], console: Console) -> None:
    section = results["server"]
    by_name = {t["name"]: t for t in results["targets"]}
    table = Table(
        title="Warden benchmarks: the HTTP decision path, one `warden serve` worker",
        title_justify="left",
    )
    _columns(table, ("measurement", "measured", "baseline", "value", "ratio", "target", "result"))
    goal, verdict = _verdict(by_name["warden serve: decisions per second, one worker"])
    table.add_row(
        "POST /v1/decide, saturated",
        _rate(section["decide_per_s"]),
        "-",
        "-",
        "-",
        goal,
        verdict,
    )
    goal, verdict = _verdict(by_name["warden serve decide / bare ASGI echo"])
    table.add_row(
        "POST /v1/decide / echo",
        _rate(section["decide_per_s"]),
        "bare ASGI echo",
        _rate(section["echo_per_s"]),
        f"{section['ratio']:.2f}x",
        goal,
        verdict,
    )
    half = section["half_load"]
    goal, verdict = _verdict(by_name["warden serve decide p99 at half of saturation"])
    table.add_row(
        f"p99 at {_rate(half['rate'])} (half of saturation)",
        f"{half['p99_ms']:.2f} ms",
        "p50",
        f"{half['p50_ms']:.2f} ms",
        "-",
        goal,
        verdict,
    )
    console.print(table)
    statuses = ", ".join(
        f"{code}: {n}" for run in section["decide_runs"] for code, n in run["statuses"].items()
    )
    console.print(
        f"server: {section['connections']} keep-alive connections from bench.http_load in "
        f"its own process; decide answers by status: {statuses}. Every decide is a new call "
        "(payments fixture, `pay` 5 USD), recorded in SQLite (synchronous=FULL, group "
        "commit) before the answer."
    )


def _render_evals(results: dict[str, Any], console: Console) -> None:
    section = results["evals"]
    by_name = {t["name"]: t for t in results["targets"]}
    table = Table(title="Warden benchmarks: eval suites", title_justify="left")
    _columns(table, ("measurement", "measured", "baseline", "value", "ratio", "target", "result"))
    goal, verdict = _verdict(by_name["eval run: 500 scripted cases, 2 workers"])
    table.add_row(
        f"{section['cases']} cases, {section['workers']} workers",
        f"{section['wall_s']:.1f} s",
        "-",
        "-",
        "-",
        goal,
        verdict,
    )
    console.print(table)
    console.print(
        f"evals: {section['cases_per_s']:.0f} cases/s; a case takes {section['mean_case_ms']:.0f} "
        f"ms of run time on average; {section['passed']} passed, {section['errors']} could not "
        f"run (the support-desk suite of {section['suite_cases']} cases, repeated)."
    )


def _render_replay(results: dict[str, Any], console: Console) -> None:
    section = results["replay"]
    by_name = {t["name"]: t for t in results["targets"]}
    n = section["decisions"]
    table = Table(
        title="Warden benchmarks: replay of recorded decisions (SQLite)", title_justify="left"
    )
    _columns(table, ("measurement", "measured", "baseline", "value", "ratio", "target", "result"))
    target = by_name["replay of 10,000 recorded decisions"]
    scale = 10_000 / n
    goal, verdict = _verdict(target)
    table.add_row(
        "replay 10,000 decisions, recorded revision"
        + ("" if n == 10_000 else f" ({n:,} replayed, scaled)"),
        f"{target['measured']:.2f} s",
        "Gate.decide live, in memory",
        f"{section['live_s'] * scale:.2f} s",
        f"{section['ratio_to_live']:.2f}x",
        goal,
        verdict,
    )
    goal, verdict = _verdict(None)
    table.add_row(
        f"what-if {n:,} decisions, candidate policies",
        f"{section['whatif_s']:.2f} s",
        "replay, recorded revision",
        f"{section['replay_s']:.2f} s",
        f"{section['whatif_s'] / section['replay_s']:.2f}x",
        goal,
        verdict,
    )
    table.add_row(
        "replayed decisions per second",
        _rate(section["replay_per_s"]),
        "-",
        "-",
        "-",
        goal,
        verdict,
    )
    console.print(table)
    recorded = ", ".join(f"{k} {v:,}" for k, v in section["recorded"].items())
    console.print(
        f"replay: the gate benchmark's calls recorded by Gate.execute ({recorded}); every "
        "replayed decision reproduced (outcome, code, stage, rules); reading the decisions "
        f"from the store is timed. what-if (R06 lowered to $25) changes "
        f"{section['whatif_changed']:,} decisions."
    )


def _render_mcp(results: dict[str, Any], console: Console) -> None:
    section = results["mcp"]
    if "skipped" in section:
        console.print(f"[yellow]MCP section skipped:[/yellow] {section['skipped']}")
        return
    by_name = {t["name"]: t for t in results["targets"]}
    table = Table(
        title="Warden benchmarks: `warden mcp proxy`, one tools/call over stdio (SQLite, "
        "synchronous=FULL)",
        title_justify="left",
    )
    _columns(table, ("measurement", "measured", "baseline", "value", "added", "target", "result"))
    direct, proxied = section["direct_ms"], section["proxied_ms"]
    goal, verdict = _verdict(by_name["warden mcp proxy: added tools/call p50, stdio"])
    table.add_row(
        "tools/call through the proxy, p50",
        f"{proxied['p50']:.2f} ms",
        "upstream directly",
        f"{direct['p50']:.2f} ms",
        f"+{section['added_p50_ms']:.2f} ms",
        goal,
        verdict,
    )
    goal, verdict = _verdict(None)
    table.add_row(
        "tools/call through the proxy, p99",
        f"{proxied['p99']:.2f} ms",
        "upstream directly",
        f"{direct['p99']:.2f} ms",
        f"+{section['added_p99_ms']:.2f} ms",
        goal,
        verdict,
    )
    table.add_row(
        "raw SQLite commit (the floor)",
        f"{section['raw_commit_ms']:.2f} ms",
        "-",
        "-",
        "-",
        goal,
        verdict,
    )
    console.print(table)
    console.print(
        f"mcp: {section['calls']} calls per side after {section['warmup']} warm-up calls. The "
        "proxied call adds a second MCP hop (the SDK's server and client inside the proxy), "
        "the gate, and the decision record committed before the upstream is called."
    )


def render(results: dict[str, Any], console: Console | None = None) -> None:
    """Print the tables and the notes a reader needs to trust them."""
    console = console or Console()
    m = results["machine"]
    if "policy" in results:
        _render_policy(results, console)
    if "durable" in results:
        _render_durable(results, console)
    if "runner" in results:
        _render_runner(results, console)
    if "pg" in results:
        _render_pg(results, console)
    if "server" in results:
        _render_server(results, console)
    if "evals" in results:
        _render_evals(results, console)
    if "replay" in results:
        _render_replay(results, console)
    if "mcp" in results:
        _render_mcp(results, console)
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
