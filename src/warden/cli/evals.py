"""`warden eval run` and `warden eval add-run`: evals as a release gate."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from warden.cli.database import open_workspace, store_options
from warden.cli.main import cli, console
from warden.evals.record import add_case, case_from_run
from warden.evals.report import (
    Baseline,
    judge_run,
    load_baseline,
    report_json,
    report_junit,
    report_markdown,
    summary_lines,
)
from warden.evals.run import CaseResult, run_suite
from warden.evals.suite import load_suite, parse_model_option

_OUT = click.Path(path_type=Path, dir_okay=False)


@cli.group("eval")
def eval_group() -> None:
    """Run eval suites and gate releases on them; turn recorded runs into cases."""


@eval_group.command("run")
@click.argument("suite_file", metavar="SUITE", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--baseline",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A baseline (from --save-baseline) to compare with: the run fails when a figure "
    "is worse by more than its threshold.",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="SPEC",
    help="Play every case with this model instead of the suite's: a script file (.yaml), "
    "`default` (warden.yaml's runner route), or PROVIDER:NAME (openai:gpt-4o-mini); "
    "repeat for a route, cheapest first.",
)
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Cases run in this many processes at once.",
)
@click.option(
    "--only",
    multiple=True,
    metavar="ID_OR_TAG",
    help="Run only the cases with this id or tag (repeatable).",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one of the suite's thresholds, e.g. max_cost_regression=5%% "
    "(`none` turns one off).",
)
@click.option("--save-baseline", type=_OUT, help="Write this run's figures as a baseline.")
@click.option("--json", "json_file", type=_OUT, help="Write the full report as JSON.")
@click.option("--junit", type=_OUT, help="Write a JUnit XML report (one testcase per case).")
@click.option("--markdown", type=_OUT, help="Write a Markdown report (for a job summary).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; only failures and the summary.")
@click.option("--verbose", "-v", is_flag=True, help="List every case, not only the failing ones.")
def run_command(
    suite_file: Path,
    baseline: Path | None,
    models: tuple[str, ...],
    workers: int,
    only: tuple[str, ...],
    thresholds: tuple[str, ...],
    save_baseline: Path | None,
    json_file: Path | None,
    junit: Path | None,
    markdown: Path | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Run an eval suite and gate on it.

    Every case runs on a fresh workspace (its own Warden store and, when the suite names
    one, a fresh tool backend) through Warden's runner, so it is governed exactly as in
    production. Prints each failing case, then the summary beside the baseline:

    \b
      Cases: 52
      Success rate: 100.0% (52/52) (prev 100.0%)
      Policy violations: 0 (prev 0)
      Avg cost/success: $0.0013 (prev $0.0012)
      P95 latency: 0.09s (prev 0.08s)
      RESULT: FAIL (cost regression 9.7% > budget 7.0% ($0.0012 -> $0.0013 per success))

    Exit status: 0 when the run passes, 1 when it fails, 2 when the suite, a baseline
    or an option cannot be used. See docs/reference/eval-suite.md for the suite format
    and the thresholds.
    """
    started = time.perf_counter()
    out = console()
    suite = load_suite(suite_file).only(only)
    limits = suite.thresholds.override(thresholds)
    model = parse_model_option(models) if models else None
    base = load_baseline(baseline) if baseline is not None else None
    if base is not None and base.suite != suite.name:
        out.print(
            f"[yellow]note[/]: the baseline is of suite {escape(base.suite)!r}, this is "
            f"{escape(suite.name)!r}",
            markup=True,
        )
    head = f"[bold]{escape(suite.name)}[/]: {len(suite.cases)} cases, {workers} worker" + (
        "s" if workers > 1 else ""
    )
    if model is not None:
        head += f", model {escape(model.describe())}"
    out.print(head, markup=True)
    if quiet:
        results = run_suite(suite, workers=workers, model=model)
    elif not sys.stdout.isatty():  # CI logs: a line at every tenth of the cases, not a bar
        total, done, failed = len(suite.cases), 0, 0
        step = max(10, total // 10)

        def line(r: CaseResult) -> None:
            nonlocal done, failed
            done, failed = done + 1, failed + (0 if r.passed else 1)
            if done % step == 0 or done == total:
                out.print(f"  {done}/{total} cases" + (f", {failed} failing" if failed else ""))

        results = run_suite(suite, workers=workers, model=model, on_result=line)
    else:
        with Progress(
            TextColumn("[bold]cases"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        ) as bar:
            job = bar.add_task("cases", total=len(suite.cases), failed="")
            failed = 0

            def tick(r: CaseResult) -> None:
                nonlocal failed
                failed += 0 if r.passed else 1
                bar.update(job, advance=1, failed=f"[red]{failed} failing[/]" if failed else "")

            results = run_suite(suite, workers=workers, model=model, on_result=tick)
    verdict = judge_run(results, limits, base)
    _print_cases(out, results, verdict.new_failures, verbose)
    for figure in summary_lines(verdict):
        out.print(figure)
    style = "bold green" if verdict.passed else "bold red"
    out.print(f"[{style}]{escape(verdict.line)}[/]", markup=True)
    out.print(f"[dim]{time.perf_counter() - started:.1f} s[/]", markup=True)
    if save_baseline is not None:
        Baseline.of(suite, results).save(save_baseline)
        out.print(f"baseline written to {escape(str(save_baseline))}")
    if json_file is not None:
        _write(json_file, json.dumps(report_json(suite, results, verdict), indent=2) + "\n")
    if junit is not None:
        _write(junit, report_junit(suite, results, verdict))
    if markdown is not None:
        _write(markdown, report_markdown(suite, results, verdict))
    if not verdict.passed:
        sys.exit(1)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _print_cases(
    out: Console, results: list[CaseResult], new: tuple[str, ...], verbose: bool
) -> None:
    shown = [r for r in results if verbose or not r.passed]
    if not shown:
        return
    table = Table(pad_edge=False, box=None, show_edge=False)
    for col in ("case", "result", "outcome", "cost", "why"):
        table.add_column(col, overflow="fold", justify="right" if col == "cost" else "left")
    for r in shown:
        mark = "[green]pass[/]" if r.passed else "[red]FAIL[/]" + (" (new)" if r.id in new else "")
        outcome = r.outcome if r.outcome == r.expected else f"{r.outcome} ≠ {r.expected}"
        table.add_row(
            escape(r.id),
            mark,
            escape(outcome),
            f"${r.usd:.4f}",
            escape("; ".join(r.problems)),
        )
    out.print(table)
    out.print()


@eval_group.command("add-run")
@store_options
@click.argument("run_id")
@click.option(
    "--suite",
    "suite_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The suite file to add the case to (made when it does not exist).",
)
@click.option("--id", "case_id", default=None, help="The new case's id (default: run-RUN_ID).")
def add_run(
    project: Path, db: str | None, run_id: str, suite_file: Path, case_id: str | None
) -> None:
    """Turn a recorded run into an eval case.

    The case replays the run's model turns (`recorded`), gives the verdicts people gave
    its approvals, and expects what happened: the outcome, its code, and the executed
    calls, in order. Values the audit log would redact are redacted in the case too.
    The case is appended to the suite's `cases:` list, keeping the file's comments.
    """
    ws = open_workspace(project, db, need_project=True)
    proj = ws.need_project()
    fields = frozenset(f for p in proj.policies.policies for f in p.log.redact_fields)
    with ws.open() as store:
        case = case_from_run(store, run_id, case_id=case_id, redact_fields=fields)
    add_case(suite_file, case)
    console().print(
        f"added case [bold]{escape(str(case['id']))}[/] ({case['expect']['outcome']}, "
        f"{len(case['model']['recorded']['turns'])} recorded turns) to "
        f"{escape(str(suite_file))}",
        markup=True,
    )
