"""What must hold after any crash and recovery, checked from the records alone.

`gather` reads a run's folder: the backend's effects, the witness lines, the recovering
process's report, the audit log (verified with `verify_rows`) and the action and run
rows. `violations` returns every broken invariant as a sentence; an empty list is a pass.
It knows nothing about where the crash was, so it judges every run by the same rules.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.crash.children import BACKEND, DB, RECOVERY, WITNESS
from warden.audit.verify import verify_rows
from warden.errors import AuditError
from warden.store.sqlite import SQLiteStore

__all__ = ["Evidence", "Record", "gather", "violations"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Record:
    """One audit record, parsed."""

    seq: int
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class Action:
    """One row of the actions table."""

    id: str
    tool: str
    run_id: str
    state: str
    code: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Evidence:
    """Everything a run left behind."""

    effects: list[dict[str, Any]]
    """The backend's lines, one per effect: what really happened."""
    witnessed: list[dict[str, Any]]
    """One line per effect attempt: was its decision committed when it ran?"""
    records: list[Record]
    chain_error: str | None
    """Why the audit chain failed to verify, or None."""
    actions: dict[str, Action]
    runs: dict[str, str]
    """Run id -> status."""
    recovery: dict[str, Any]
    """The recovering process's report (see `children.recover`)."""


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def gather(run_dir: Path) -> Evidence:
    with SQLiteStore(run_dir / DB) as store:
        rows = list(store.audit_rows())
    try:
        verify_rows(rows)
        chain_error = None
    except AuditError as exc:
        chain_error = f"{exc.code}: {exc}"
    records = []
    for seq, _stream, _stream_seq, body, _hash in rows:
        parsed = json.loads(bytes(body))
        records.append(Record(seq=seq, kind=parsed["kind"], data=parsed["data"]))
    conn = sqlite3.connect(run_dir / DB)
    try:
        actions = {
            id_: Action(
                id=id_,
                tool=tool,
                run_id=run_id,
                state=state,
                code=json.loads(error)["code"] if error else None,
            )
            for id_, tool, run_id, state, error in conn.execute(
                "SELECT id, tool, run_id, state, error FROM actions"
            )
        }
        runs = dict(conn.execute("SELECT id, status FROM runs").fetchall())
    finally:
        conn.close()
    recovery_path = run_dir / RECOVERY
    return Evidence(
        effects=_jsonl(run_dir / BACKEND),
        witnessed=_jsonl(run_dir / WITNESS),
        records=records,
        chain_error=chain_error,
        actions=actions,
        runs=runs,
        recovery=json.loads(recovery_path.read_text()) if recovery_path.exists() else {},
    )


def violations(ev: Evidence, *, reconciled_tools: frozenset[str]) -> list[str]:
    """Every broken invariant, as a sentence."""
    found: list[str] = []
    effects = Counter(e["key"] for e in ev.effects)

    # 1. nothing executed twice
    found += [f"key {k}: the backend saw {n} effects" for k, n in effects.items() if n > 1]

    # 2. every effect has exactly one decision record, and it comes before the outcome
    decisions: dict[str, list[Record]] = defaultdict(list)
    outcomes: dict[str, list[Record]] = defaultdict(list)
    for r in ev.records:
        if r.kind == "decision" and r.data["state"] == "executing":
            decisions[r.data["idempotency_key"]].append(r)
        elif r.kind == "outcome":
            outcomes[r.data["action_id"]].append(r)
    never_ran = {
        a.id for a in ev.actions.values() if a.state == "failed" and a.code == "W-EXE-004"
    }  # reconciled: the effect had not happened, and the key was released for a retry
    for key in effects:
        live = [d for d in decisions.get(key, []) if d.data["action_id"] not in never_ran]
        if len(live) != 1:
            found.append(f"key {key}: the effect has {len(live)} decision records, not 1")
        for d in live:
            first = min((o.seq for o in outcomes.get(d.data["action_id"], [])), default=None)
            if first is None:
                found.append(f"key {key}: action {d.data['action_id']} has no outcome record")
            elif first < d.seq:
                found.append(f"key {key}: outcome record #{first} precedes decision #{d.seq}")
    witnessed: dict[str, list[bool]] = defaultdict(list)
    for w in ev.witnessed:
        witnessed[w["key"]].append(w["recorded"])
    for key in effects:
        if not witnessed.get(key) or not all(witnessed[key]):
            found.append(f"key {key}: the tool ran before its decision record was committed")

    # 3. nothing left executing; interrupted actions reconciled, or outcome_unknown
    found += [
        f"action {a.id} ({a.tool}) is still executing"
        for a in ev.actions.values()
        if a.state == "executing"
    ]
    found += _recovery_violations(ev, effects, reconciled_tools)

    # 4. the audit chain verifies
    if ev.chain_error is not None:
        found.append(f"the audit chain does not verify: {ev.chain_error}")

    # 5. every succeeded action's effect is in the backend exactly once
    key_of = {d.data["action_id"]: key for key, records in decisions.items() for d in records}
    for a in ev.actions.values():
        if a.state == "succeeded":
            key = key_of.get(a.id)
            if key is None or effects[key] != 1:
                n = effects[key] if key else 0
                found.append(f"succeeded action {a.id} (key {key}) has {n} effects, not 1")
    return found


def _recovery_violations(
    ev: Evidence, effects: Counter[str], reconciled_tools: frozenset[str]
) -> list[str]:
    found: list[str] = []
    rec = ev.recovery
    if not rec:
        return ["the recovering process left no report"]
    at_recovery = Counter(rec["effects_at_recovery"])
    settled = {s["action_id"]: s for s in rec["settled"]}
    interrupted = {i["action_id"]: i for i in rec["interrupted"]}
    if set(settled) != set(interrupted):
        found.append(
            f"recover() settled {sorted(settled)}, but {sorted(interrupted)} were executing"
        )
    if rec["recovered_again"]:
        found.append(f"a second recover() settled {rec['recovered_again']} more actions")
    retries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rec["retries"]:
        retries[r["key"]].append(r)
        if "raised" in r:
            found.append(f"retrying key {r['key']} raised {r['raised']}")
    unknown_keys: set[str] = set()
    for action_id, i in interrupted.items():
        key, tool = i["key"], i["tool"]
        got = settled.get(action_id, {})
        state, code = got.get("state"), got.get("code")
        if tool in reconciled_tools:
            want = ("succeeded", None) if at_recovery[key] else ("failed", "W-EXE-004")
            if (state, code) != want:
                found.append(
                    f"interrupted {tool} {key} (effects at recovery: {at_recovery[key]}) "
                    f"was reconciled as {state} {code}, not {want[0]} {want[1]}"
                )
            continue
        unknown_keys.add(key)
        action = ev.actions[action_id]
        if not (state == action.state == "outcome_unknown" and action.code == "W-EXE-003"):
            found.append(
                f"interrupted {tool} {key} without a reconcile hook is {action.state} "
                f"{action.code}, not outcome_unknown W-EXE-003"
            )
        if ev.runs.get(action.run_id) != "escalated":
            found.append(f"run {action.run_id} of outcome_unknown {key} is not escalated")
        if effects[key] != at_recovery[key]:
            found.append(f"outcome_unknown {key} was run again after recovery")
        for r in retries.get(key, []):
            if r.get("state") != "outcome_unknown" or not r.get("replayed"):
                found.append(
                    f"retrying outcome_unknown {key} gave {r.get('state')} "
                    f"(replayed={r.get('replayed')}), not the stored outcome_unknown"
                )
    for key, results in retries.items():  # every retried call ends done, exactly once
        for r in results:
            state = r.get("state")
            if state == "succeeded" or (state == "outcome_unknown" and key in unknown_keys):
                continue
            if "raised" not in r:
                found.append(f"retrying key {key} ended {state} {r.get('code')}")
    return found
