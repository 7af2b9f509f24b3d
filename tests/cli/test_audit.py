"""`warden audit`: verify, checkpoint, export and purge."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

import warden
from tests.cli.conftest import Seeded, invoke, rows
from warden.audit.checkpoint import SigningKey
from warden.store.sqlite import SQLiteStore


def _tamper(db: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def _last_seq(db: Path) -> int:
    return int(rows(db, "SELECT max(seq) FROM audit")[0][0])


def _checkpoint(seeded: Seeded) -> Path:
    code, out = invoke("audit", "checkpoint", "-p", str(seeded.root))
    assert code == 0, out
    return seeded.root / ".warden" / "checkpoints" / f"{_last_seq(seeded.db)}.json"


def test_verify_passes_on_an_untouched_log_and_says_what_it_saw(seeded: Seeded) -> None:
    code, out = invoke("audit", "verify", "-p", str(seeded.root))
    assert code == 0, out
    count = _last_seq(seeded.db)
    assert re.search(rf"ok .*warden\.db: {count} records verified in 2 streams", out)
    assert "records/s" in out and "agent:payer" in out and "system" in out
    assert "pass --checkpoint" in out


def test_verify_names_the_first_altered_record_and_exits_1(seeded: Seeded) -> None:
    (seq, body) = rows(
        seeded.db, "SELECT seq, body FROM audit WHERE kind = 'decision' ORDER BY seq LIMIT 1"
    )[0]
    _tamper(seeded.db, "UPDATE audit SET body = ? WHERE seq = ?", body.replace(b"50", b"5"), seq)
    code, out = invoke("audit", "verify", "-p", str(seeded.root))
    assert code == 1
    assert f"FAILED {seeded.db}: record {seq} (stream agent:payer) W-AUD-001" in out
    assert "fix:" in out and "docs/errors/W-AUD-001.md" in out


def test_verify_names_a_record_whose_body_was_rewritten_as_text(seeded: Seeded) -> None:
    seq = _last_seq(seeded.db) - 1
    _tamper(seeded.db, "UPDATE audit SET body = CAST(body AS TEXT) WHERE seq = ?", seq)
    code, out = invoke("audit", "verify", "-p", str(seeded.root))
    assert code == 1
    assert f"record {seq}" in out and "W-AUD-001" in out and "internal error" not in out


def test_verify_names_a_deleted_record(seeded: Seeded) -> None:
    _tamper(seeded.db, "DELETE FROM audit WHERE seq = 3")
    code, out = invoke("audit", "verify", "-p", str(seeded.root))
    assert code == 1 and "record 4" in out and "W-AUD-002" in out


def test_checkpoint_signs_the_heads_and_creates_the_key_once(seeded: Seeded) -> None:
    code, out = invoke("audit", "checkpoint", "-p", str(seeded.root))
    assert code == 0, out
    folder = seeded.root / ".warden"
    last = _last_seq(seeded.db)
    key_id = SigningKey.load(folder / "audit-signing.key").key_id
    assert f"signed records 1-{last} (2 streams) with key {key_id}" in out
    assert f"checkpoint written to {folder / 'checkpoints' / f'{last}.json'}" in out
    assert "created the signing key" in out and "audit-signing.pub" in out
    doc = json.loads((folder / "checkpoints" / f"{last}.json").read_text())
    assert doc["seq"] == last and doc["key_id"] == key_id
    assert set(doc["streams"]) == {"agent:payer", "system"}
    assert (folder / "audit-signing.key").stat().st_mode & 0o077 == 0

    elsewhere = seeded.root / "published" / "checkpoint.json"
    code, out = invoke("audit", "checkpoint", "-p", str(seeded.root), "--out", str(elsewhere))
    assert code == 0 and f"with key {key_id}" in out and "created" not in out
    assert json.loads(elsewhere.read_text())["key_id"] == key_id


def test_checkpoint_refuses_to_sign_a_log_that_does_not_verify(seeded: Seeded) -> None:
    _tamper(seeded.db, "UPDATE audit SET hash = zeroblob(32) WHERE seq = 2")
    code, out = invoke("audit", "checkpoint", "-p", str(seeded.root))
    assert code == 1 and "(not signed)" in out and "W-AUD-001" in out
    assert not (seeded.root / ".warden" / "checkpoints").exists()


def test_checkpoint_with_a_named_key_that_is_missing_is_w_aud_008(
    seeded: Seeded, tmp_path: Path
) -> None:
    code, out = invoke(
        "audit", "checkpoint", "-p", str(seeded.root), "--key", str(tmp_path / "nope.key")
    )
    assert code == 2 and "W-AUD-008" in out


def test_a_checkpoint_then_a_cut_off_tail_is_w_aud_004(seeded: Seeded) -> None:
    checkpoint = _checkpoint(seeded)
    last = _last_seq(seeded.db)
    _tamper(seeded.db, "DELETE FROM audit WHERE seq >= ?", last - 1)
    code, out = invoke("audit", "verify", "-p", str(seeded.root))
    assert code == 0, "without a checkpoint a cut-off tail goes unseen"
    code, out = invoke(
        "audit",
        "verify",
        "-p",
        str(seeded.root),
        "--checkpoint",
        str(checkpoint),
        "--public-key",
        str(checkpoint.parent.parent / "audit-signing.pub"),
    )
    assert code == 1
    assert "W-AUD-004" in out and re.search(rf"record {last - 1}|record {last}", out)


def test_export_verifies_on_its_own_against_a_pinned_checkpoint(
    seeded: Seeded, tmp_path: Path
) -> None:
    checkpoint = _checkpoint(seeded)
    public = seeded.root / ".warden" / "audit-signing.pub"
    export = tmp_path / "audit.jsonl"
    code, out = invoke("audit", "export", "-p", str(seeded.root), "--out", str(export))
    assert code == 0, out
    last = _last_seq(seeded.db)
    assert f"exported {last} records (up to record {last}) to {export}" in out
    assert len(export.read_bytes().splitlines()) == last

    seeded.db.unlink()  # the auditor has only the export, the checkpoint and the key
    code, out = invoke(
        "audit",
        "verify",
        "--file",
        str(export),
        "--checkpoint",
        str(checkpoint),
        "--public-key",
        str(public),
        "-p",
        str(tmp_path),
    )
    assert code == 0, out
    assert f"ok {export}: {last} records verified" in out and "the log matches" in out
    assert "checked against the key it carries" not in out


def test_export_to_stdout_is_one_json_line_per_record(seeded: Seeded) -> None:
    code, out = invoke("audit", "export", "-p", str(seeded.root))
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert len(lines) == _last_seq(seeded.db)
    first = json.loads(lines[0])
    assert first["seq"] == 1 and first["record"]["kind"] == "config.load"


def test_an_altered_export_fails_to_verify(seeded: Seeded, tmp_path: Path) -> None:
    export = tmp_path / "audit.jsonl"
    invoke("audit", "export", "-p", str(seeded.root), "--out", str(export))
    lines = export.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"payer"', b'"other"', 1)
    export.write_bytes(b"".join(lines))
    code, out = invoke("audit", "verify", "--file", str(export))
    assert code == 1 and "record 2" in out and "W-AUD-001" in out


def test_a_checkpoint_signed_by_another_key_is_w_aud_005(seeded: Seeded, tmp_path: Path) -> None:
    checkpoint = _checkpoint(seeded)
    stranger = SigningKey.generate()
    code, out = invoke(
        "audit",
        "verify",
        "-p",
        str(seeded.root),
        "--checkpoint",
        str(checkpoint),
        "--public-key",
        stranger.public_key_b64,
    )
    assert code == 1 and "W-AUD-005" in out and "not by the pinned key" in out


def test_a_checkpoint_without_a_pinned_key_only_proves_it_is_intact(seeded: Seeded) -> None:
    checkpoint = _checkpoint(seeded)
    code, out = invoke("audit", "verify", "-p", str(seeded.root), "--checkpoint", str(checkpoint))
    assert code == 0, out
    assert "the log matches" in out and "checked against the key it carries" in out


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (("--public-key", "AAAA"), "--checkpoint too", 2),
        (("--file", "missing.jsonl"), "W-AUD-007", 2),
    ],
    ids=["key-without-checkpoint", "missing-export"],
)
def test_verify_refuses_unusable_input(
    seeded: Seeded, args: tuple[str, ...], message: str, status: int
) -> None:
    code, out = invoke("audit", "verify", "-p", str(seeded.root), *args)
    assert code == status and message in out


def test_purge_says_what_retention_dropped(seeded: Seeded) -> None:
    code, out = invoke("audit", "purge", "-p", str(seeded.root))
    assert code == 0, out
    assert "idempotency keys: released those of finished actions decided before" in out
    assert "(idempotency.retention 1d)" in out
    assert "redacted values: kept (no policy sets log.retain_days)" in out
    code, out = invoke("audit", "verify", "-p", str(seeded.root))
    assert code == 0, out


def test_purge_drops_redacted_values_past_retain_days_and_the_log_still_verifies(
    project: Path,
) -> None:
    policy = project / "policies" / "payments.yaml"
    policy.write_text(policy.read_text() + "  log:\n    retain_days: 30\n")
    db = project / ".warden" / "warden.db"
    proj = warden.load_project(project)
    long_ago = warden.SystemClock().timestamp() - 60 * 86_400.0
    with SQLiteStore(db) as store:
        gate = proj.gate(
            store=store, clock=warden.FixedClock(datetime.fromtimestamp(long_ago, UTC))
        )
        card = {"payee": "acme", "amount_usd": 20.0, "card_number": "4242424242424242"}
        gate.execute(warden.ToolCall(agent="payer", tool="pay", run_id="run_old", args=card))
        gate.executor.close()
    assert rows(db, "SELECT count(*) FROM audit_vault")[0][0] >= 1

    code, out = invoke("audit", "purge", "-p", str(project))
    assert code == 0, out
    assert "redacted values: dropped those recorded before" in out and "(log.retain_days 30)" in out
    assert rows(db, "SELECT count(*) FROM audit_vault") == [(0,)]
    code, out = invoke("audit", "verify", "-p", str(project))
    assert code == 0, out
