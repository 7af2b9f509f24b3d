"""The agent runner: a governed plan → act → observe loop (see `warden.runner.loop`)."""

from warden.runner.escalation import render as render_escalation
from warden.runner.loop import DEFAULT_SYSTEM, RunLimits, Runner, RunResult, Task

__all__ = ["DEFAULT_SYSTEM", "RunLimits", "RunResult", "Runner", "Task", "render_escalation"]
