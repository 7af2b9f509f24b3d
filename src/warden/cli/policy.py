"""`warden policy test` and `warden policy explain`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from warden.cli.main import cli, console, project_option
from warden.clock import FixedClock
from warden.errors import ProjectError
from warden.history import HistoryView
from warden.policy.cases import CaseResult, PolicyCase, discover_test_files, load_cases, run_cases
from warden.policy.evaluate import AgentView, NowView, RunView
from warden.policy.explain import explain as explain_call
from warden.project import Project, find_project_file, load_project
from warden.store.memory import MemoryStore

_OUTCOME_STYLE = {
    "allow": "green",
    "deny": "red",
    "needs_approval": "yellow",
    "suggest_only": "cyan",
}


def outcome_text(outcome: str) -> str:
    return f"[{_OUTCOME_STYLE.get(outcome, 'magenta')}]{outcome}[/]"


@cli.group()
def policy() -> None:
    """Test and explain policies."""


def _try_project(path: Path) -> Project | None:
    try:
        find_project_file(path)
    except ProjectError:
        return None
    return load_project(path)


@policy.command("test")
@project_option
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--verbose", "-v", is_flag=True, help="Show every case, not only failures.")
def test_policies(project: Path, paths: tuple[Path, ...], verbose: bool) -> None:
    """Run the *_test.yaml cases beside the policies.

    With no PATHS, runs every test file in the project's policy folders. Fails (exit 1)
    when a case fails, and (exit 2, W-PTS-002) when no case ran at all.
    """
    proj = _try_project(project)
    if not paths:
        if proj is None:
            raise ProjectError(
                "W-PRJ-001", "no warden.yaml here; name the test files or folders to run"
            )
        paths = proj.policy_paths
    root = proj.root if proj else Path.cwd()
    cases: list[PolicyCase] = []
    for f in discover_test_files(paths):
        cases.extend(load_cases(f, display=_shown(f, root)))

    def shown(f: Path) -> str:
        return _shown(f, root)

    if proj is not None:
        results = proj.run_policy_cases(cases, display=shown)
    else:
        results = run_cases(cases, display=shown)
    _report(results, verbose)
    if not all(r.passed for r in results):
        sys.exit(1)


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _report(results: list[CaseResult], verbose: bool) -> None:
    out = console()
    for r in results:
        c = r.case
        if r.passed and not verbose:
            continue
        mark = "[green]PASS[/]" if r.passed else "[bold red]FAIL[/]"
        out.print(f"{mark} {escape(c.file)}:{c.line} {escape(c.name)}", markup=True)
        for problem in r.problems:
            out.print(f"     {escape(problem)}", markup=True)
        if not r.passed and r.reasons:
            out.print(f"     [dim]reasons: {escape('; '.join(r.reasons))}[/]", markup=True)
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    files = len({r.case.file for r in results})
    colour = "green" if not failed else "red"
    out.print(
        f"[{colour}]{passed} passed, {failed} failed[/] ({len(results)} cases in {files} files)",
        markup=True,
    )


def _json_option(name: str, help: str) -> Any:
    return click.option(name, default="{}", show_default=True, help=help, metavar="JSON")


def _parse_json(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=option)
    return value  # pyright: ignore[reportUnknownVariableType]


@policy.command("explain")
@project_option
@click.option("--tool", "-t", required=True, help="The tool being called.")
@click.option("--agent", "-a", default=None, help="The calling agent (default: any).")
@_json_option("--args", "The call's arguments.")
@_json_option("--context", "Caller-supplied context (customer tier ...).")
@_json_option("--facts", "Fact values to use instead of asking providers.")
@click.option("--run-calls", type=int, default=0, help="run.calls: tool calls so far.")
@click.option("--run-spend", type=float, default=0.0, help="run.spend: USD so far.")
@click.option(
    "--now", "now_text", default=None, help="ISO time for `now` (default: the real clock)."
)
@click.option(
    "--ask-providers", is_flag=True, help="Ask registered fact providers for missing facts."
)
def explain(
    project: Path,
    tool: str,
    agent: str | None,
    args: str,
    context: str,
    facts: str,
    run_calls: int,
    run_spend: float,
    now_text: str | None,
    ask_providers: bool,
) -> None:
    """Show, for one call, every rule considered and why it matched or not.

    \b
    Example:
      warden policy explain -t create_refund \\
        --args '{"order_id": "ord_123456", "amount_usd": 75.0, "reason": "late"}' \\
        --context '{"customer_tier": "standard"}'
    """
    p = load_project(project)
    args_d = _parse_json(args, "--args")
    t = p.tools.get(tool)
    if t is None:
        raise click.BadParameter(
            f"no tool named {tool!r} (known: {', '.join(p.tools.names())})", param_hint="--tool"
        )
    args_d = t.model.model_validate(args_d).model_dump(mode="json")
    ctx = _parse_json(context, "--context")
    given = _parse_json(facts, "--facts")
    clock = FixedClock(now_text) if now_text else None
    ts = clock.timestamp() if clock else _real_now()
    view = AgentView(name=agent or "*")
    fact_view: Any = given
    if ask_providers:
        from warden.facts import FactView
        from warden.gate import ToolCall

        probe = ToolCall(agent=view.name, tool=tool, run_id="explain", args=args_d, context=ctx)
        fact_view = FactView(p.facts, probe, args_d, MemoryStore(), given)
    if agent is not None and p.agent(agent) is None:
        raise click.BadParameter(f"no agent named {agent!r}", param_hint="--agent")
    result = explain_call(
        p.policies,
        tool,
        args=args_d,
        agent=view,
        run=RunView(id="explain", calls=run_calls, spend=run_spend),
        context=ctx,
        facts=fact_view,
        now=NowView(ts),
        history=HistoryView([], run_id="explain", tool=tool, now=ts),
    )
    out = console()
    out.print(f"[bold]{escape(tool)}[/] {escape(json.dumps(args_d))}", markup=True)
    if not result.policies:
        out.print("[red]no policy covers this tool[/]", markup=True)
    for pt in result.policies:
        out.print(
            f"\n[bold]policy {escape(pt.id)}[/] [dim]({escape(pt.file)}, {pt.origin})[/]",
            markup=True,
        )
        for rt in pt.rules:
            status = rt.status
            colour = "green" if rt.decided else ("red" if status.startswith("error") else "dim")
            arrow = "→" if rt.decided else " "
            out.print(
                f" {arrow} [{colour}]{escape(rt.id)}[/] [dim]{escape(rt.location)}[/]  "
                f"{escape(rt.condition)}  ⇒ {escape(rt.outcome)}",
                markup=True,
            )
            out.print(f"     [{colour}]{escape(status)}[/]", markup=True)
            for clause in rt.clauses:
                out.print(f"       {escape(clause.source)}  = {escape(clause.value)}", markup=True)
            for name, value in rt.names:
                out.print(f"       [dim]{escape(name)} = {escape(value)}[/]", markup=True)
    r = result.result
    out.print(
        f"\nresult: {outcome_text(r.outcome.value)}" + (f" [{r.code}]" if r.code else ""),
        markup=True,
    )
    for reason in r.reasons:
        out.print(f"  {escape(reason)}", markup=True)
    if r.redact_fields:
        out.print(f"  redacts: {', '.join(sorted(r.redact_fields))}")
    out.print(f"[dim]policy revision {p.policies.revision}[/]", markup=True)
    if agent is None:
        out.print(
            "[dim]policies only; pass --agent to include that agent's manifest rules[/]",
            markup=True,
        )


def _real_now() -> float:
    from warden.clock import SystemClock

    return SystemClock().timestamp()
