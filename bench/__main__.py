"""``python -m bench [--quick]``: run the benchmarks, print the table, write results.json.

Exit status: 0 when the run completed (a missed target is printed as MISS, not an
error); 2 when the engines disagree or the workload leaves a rule unexercised; 1 on any
other exception.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from bench.policy_engines import CoverageError, DisagreementError
from bench.report import render, write_json
from bench.runner import Config, run

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, report."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a reduced run (a smoke test)")
    parser.add_argument("--requests", type=int, default=512, help="requests (>= 256)")
    parser.add_argument("--seed", type=int, default=20_260_101, help="workload seed")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results file")
    parser.add_argument(
        "--only",
        choices=("policy", "durable", "runner", "pg", "server", "evals", "replay", "mcp"),
        help="run one section (default: all)",
    )
    parser.add_argument(
        "--tmp-dir",
        type=Path,
        default=None,
        help="where the durable section's SQLite files go (default: the system temp dir)",
    )
    options = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped or in CI: wide enough for the table
        console = Console(width=120)
    config = Config.for_mode(
        quick=options.quick,
        requests=options.requests,
        seed=options.seed,
        only=options.only,
        tmp_dir=options.tmp_dir,
    )
    try:
        results = run(config)
    except (DisagreementError, CoverageError) as exc:
        console.print(f"[bold red]BENCHMARK FAILED[/bold red] {type(exc).__name__}: {exc}")
        return 2
    render(results, console)
    write_json(results, options.output)
    console.print(f"results written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
