"""Recorded runs become eval cases (`warden eval add-run`).

A run the runner saved holds everything a case needs: the task, its labelled content and
context, the model's turns (replayed as the case's `recorded` model), the approvals
people gave, and what the run came to. The case expects what happened — the outcome,
the executed calls in order, nothing more — so a later change that makes the agent act
differently on the same turns fails it. Values the audit log would redact (the
policies' ``redact_fields`` and anything the detectors find: emails, cards, keys) are
redacted in the case too; an argument whose value was redacted is left out of the
expected calls rather than expected as a placeholder.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import yaml

from warden.audit.redact import DETECTORS
from warden.errors import EvalError, RunError
from warden.evals.run import EXECUTED, outcome_of
from warden.evals.suite import load_suite
from warden.runner import RunResult
from warden.runs import ActionState, RunStatus, RunView
from warden.store.protocol import DurableStore

__all__ = ["add_case", "case_from_run"]


def case_from_run(
    store: DurableStore,
    run_id: str,
    *,
    case_id: str | None = None,
    redact_fields: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The case a recorded run makes, as the mapping a suite file holds."""
    run = store.run(run_id)
    saved = store.run_state(run_id)
    if run is None:
        raise RunError("W-RUN-001", f"no run {run_id!r}")
    if saved is None:
        raise EvalError(
            "W-EVL-008",
            f"run {run_id} has no saved runner state (it was not run by Warden's runner), "
            "so there are no model turns to replay",
        )
    state = saved[0]
    task = cast(Mapping[str, Any], state.get("task") or {})

    def clean(value: Any) -> Any:
        return _clean(value, redact_fields)

    turns = _turns(state, clean)
    outcome, code = outcome_of(_as_result(run), run.actions)
    calls: list[Any] = []
    for a in run.actions:
        if a.state not in EXECUTED:
            continue
        shown = cast(dict[str, Any], clean(dict(a.args)))
        kept = {k: v for k, v in shown.items() if v == a.args.get(k)}
        calls.append({a.tool: kept} if kept else a.tool)
    expect: dict[str, Any] = {"outcome": outcome}
    if code is not None and outcome != "success":
        expect["code"] = code
    expect["calls"] = {"match": "exact", "calls": calls}
    case: dict[str, Any] = {
        "id": case_id or f"run-{run_id}",
        "key": str(task.get("key") or "") or None,
        "agent": run.agent,
        "task": clean(str(task.get("goal", ""))),
    }
    content = [
        {"label": c["label"], "source": c.get("source", ""), "text": clean(c["text"])}
        for c in cast(Sequence[Mapping[str, Any]], task.get("content", ()))
    ]
    if content:
        case["content"] = content
    if task.get("context"):
        case["context"] = clean(dict(cast(Mapping[str, Any], task["context"])))
    if task.get("on_behalf_of"):
        case["on_behalf_of"] = task["on_behalf_of"]
    recorded: dict[str, Any] = {"run": run_id}
    priced = _prices_as(state)
    if priced is not None:
        recorded["prices_as"] = {"provider": priced[0], "model": priced[1]}
    recorded["turns"] = turns
    case["model"] = {"recorded": recorded}
    verdicts = _verdicts(store, run)
    if verdicts:
        case["verdicts"] = verdicts
    case["tags"] = ["recorded"]
    case["expect"] = expect
    return {k: v for k, v in case.items() if v is not None}


def _clean(value: Any, fields: frozenset[str]) -> Any:
    """`value` with the fields named in `fields` replaced, and what the audit log's
    detectors find in strings (emails, cards, IBANs, phones, keys) cut out of the text,
    so a task stays readable: ``"From [redacted email]: please pay"``."""
    if isinstance(value, str):
        text = value
        for name, pattern, valid in DETECTORS:
            text = pattern.sub(
                lambda m, n=name, ok=valid: f"[redacted {n}]" if ok(m.group()) else m.group(),
                text,
            )
        return text
    if isinstance(value, Mapping):
        items = cast(Mapping[str, Any], value).items()
        return {k: "[redacted]" if k in fields else _clean(v, fields) for k, v in items}
    if isinstance(value, list | tuple):
        return [_clean(v, fields) for v in cast(Sequence[Any], value)]
    return value


def _as_result(run: RunView) -> RunResult:
    """The run as the runner would have returned it, as far as judging needs: its status,
    and the code it stopped or waits with (the runner's own choice of code)."""
    code: str | None = None
    if run.status is RunStatus.WAITING:
        waiting = [a for a in run.actions if a.state is ActionState.AWAITING_APPROVAL]
        code = (waiting[-1].code if waiting else None) or "W-APR-009"
    elif run.status is not RunStatus.SUCCEEDED and run.actions:
        code = run.actions[-1].code
    return RunResult(
        run_id=run.id, agent=run.agent, task=run.task or "", status=run.status, code=code
    )


def _turns(state: Mapping[str, Any], clean: Any) -> list[dict[str, Any]]:
    """The assistant turns of a saved conversation, as scripted turns (with their usage
    when the timeline pairs up with them)."""
    messages = cast(Sequence[Mapping[str, Any]], state.get("messages", ()))
    said = [m for m in messages if m.get("role") == "assistant"]
    usages = [e["usage"] for e in _kept_turns(state)]
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(said):
        turn: dict[str, Any] = {}
        if m.get("content"):
            turn["text"] = clean(str(m["content"]))
        calls: list[dict[str, Any]] = []
        for use in cast(Sequence[Mapping[str, Any]], m.get("tool_calls", ())):
            args = use.get("arguments")
            if isinstance(args, dict):
                calls.append({str(use["name"]): clean(args)})
            else:
                calls.append({"tool": str(use["name"]), "raw": str(use.get("raw", ""))})
        if calls:
            turn["calls"] = calls
        if len(usages) == len(said):
            u = cast(Mapping[str, Any], usages[i])
            turn["usage"] = {
                k: int(u.get(k, 0) or 0)
                for k in ("input_tokens", "output_tokens", "cached_input_tokens")
            }
        turns.append(turn)
    return turns


def _kept_turns(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The timeline's model events whose turn the run kept: answered, neither failed nor
    escalated to another model of the route."""
    return [
        e
        for e in cast(Sequence[Mapping[str, Any]], state.get("timeline", ()))
        if e.get("kind") == "model"
        and e.get("usage")
        and not e.get("error")
        and not e.get("escalated")
    ]


def _prices_as(state: Mapping[str, Any]) -> tuple[str, str] | None:
    """(provider, model) the run's kept model turns were priced as, when one model
    answered them all (a route's mixed turns are priced as nobody's: the case costs 0)."""
    seen = {
        (str(e.get("provider")), str(e.get("prices_as")))
        for e in _kept_turns(state)
        if e.get("prices_as")
    }
    return next(iter(seen)) if len(seen) == 1 else None


def _verdicts(store: DurableStore, run: RunView) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for a in run.actions:
        if not a.approval_id:
            continue
        request = store.approval(a.approval_id)
        if request is None:
            continue
        for v in request.verdicts:
            entry: dict[str, Any] = {"approve": v.approve, "by": v.approver}
            if v.role:
                entry["role"] = v.role
            if v.reason:
                entry["reason"] = v.reason
            out.append(entry)
    return out


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order given, and long text as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)  # pyright: ignore[reportUnknownMemberType]


_Dumper.add_representer(str, _str)


def _dump(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=88, indent=2)


def add_case(suite_file: Path, case: Mapping[str, Any], *, suite_name: str | None = None) -> None:
    """Append `case` to a suite file, keeping the file's comments and layout; a missing
    file becomes a new suite. The result is checked by loading it before it replaces the
    file, so a case that would break the suite is refused (W-EVL-008)."""
    if suite_file.exists():
        text = suite_file.read_text(encoding="utf-8")
        suite = load_suite(suite_file)
        if any(c.id == case["id"] for c in suite.cases):
            raise EvalError(
                "W-EVL-008",
                f"suite {suite_file} already has a case {case['id']!r}",
                hint="give the new case another id with --id",
            )
        new = _append(text, case, suite_file)
    else:
        doc = {"suite": suite_name or suite_file.stem, "cases": [dict(case)]}
        new = (
            "# An eval suite (see docs/reference/eval-suite.md); run it with\n"
            f"#   warden eval run {suite_file.name}\n" + _dump(doc)
        )
    folder = suite_file.resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=".suite-", suffix=".yaml", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        try:
            load_suite(tmp, display=str(suite_file))
        except EvalError:
            raise
        except Exception as exc:
            raise EvalError(
                "W-EVL-008", f"the suite would not load with the new case: {exc}"
            ) from None
        os.replace(tmp, suite_file)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_CASES = re.compile(r"^cases:\s*(#.*)?$", re.MULTILINE)
_ITEM = re.compile(r"^( *)- ", re.MULTILINE)


def _append(text: str, case: Mapping[str, Any], file: Path) -> str:
    """`text` with `case` added as the last item of its top-level ``cases:`` list."""
    found = list(_CASES.finditer(text))
    tail = text[found[-1].end() :] if found else ""
    if not found or re.search(r"^[^\s#-]", tail, re.MULTILINE):
        raise EvalError(
            "W-EVL-008",
            f"cannot append to {file}: `cases:` must be the file's last top-level key",
            hint="move the `cases:` list to the end of the suite file",
        )
    item = _ITEM.search(tail)
    indent = item.group(1) if item else "  "
    block = _dump([dict(case)])
    lines = [(indent + line) if line else line for line in block.splitlines()]
    sep = "" if text.endswith("\n") else "\n"
    return text + sep + "\n" + "\n".join(lines) + "\n"
