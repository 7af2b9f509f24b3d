"""Evals as a release gate: suites of cases run under Warden, judged and compared with a
baseline (`warden eval run`), and recorded runs turned into cases (`warden eval add-run`).

See docs/reference/eval-suite.md for the suite format.
"""

from warden.evals.report import Baseline, Figures, Verdict, judge_run, load_baseline
from warden.evals.run import CaseResult, run_suite
from warden.evals.suite import Case, Suite, Thresholds, load_suite

__all__ = [
    "Baseline",
    "Case",
    "CaseResult",
    "Figures",
    "Suite",
    "Thresholds",
    "Verdict",
    "judge_run",
    "load_baseline",
    "load_suite",
    "run_suite",
]
