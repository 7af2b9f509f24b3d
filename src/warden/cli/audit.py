"""`warden audit`: verify the log, sign checkpoints, export it, purge what retention drops.

Verification failures are results, not crashes: the first bad record is printed with its
code and the command exits 1. A file that is not in Warden's format (W-AUD-007) or a
missing signing key (W-AUD-008) is an error like any other (exit 2).
"""

from __future__ import annotations

import base64
import binascii
import os
import sys
import tempfile
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NoReturn

import click
from rich.markup import escape
from rich.table import Table

from warden.audit.checkpoint import (
    Checkpoint,
    SigningKey,
    make_checkpoint,
    read_checkpoint,
    read_public_key,
)
from warden.audit.export import export_line, read_export
from warden.audit.verify import Report, verify_rows
from warden.canonical import canonical_json
from warden.cli.database import open_workspace, store_options
from warden.cli.main import cli, console
from warden.cli.render import moment, span
from warden.clock import SystemClock
from warden.errors import AuditError

KEY_FILE = "audit-signing.key"
"""The default signing key, in the database's folder."""
CHECKPOINTS = "checkpoints"
"""The default folder for checkpoints, in the database's folder."""

_NOT_FAILURES = frozenset({"W-AUD-007", "W-AUD-008"})

Row = tuple[int, str, int, bytes, bytes]


@contextmanager
def _closing(rows: Iterator[Row]) -> Generator[Iterator[Row]]:
    """`rows`, closed when done even if not read to the end (it holds a connection or
    a file)."""
    try:
        yield rows
    finally:
        if isinstance(rows, Generator):
            rows.close()


@cli.group()
def audit() -> None:
    """Verify, checkpoint, export and purge the audit log."""


# --- verify --------------------------------------------------------------------------------


def _pinned_key(value: str) -> str:
    """``--public-key``: a file (PEM or base64) or the base64 key itself."""
    if Path(value).is_file():
        return read_public_key(value)
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        raise AuditError(
            "W-AUD-007",
            f"--public-key {value!r} is neither a readable file nor a 32-byte base64 key",
            hint="Pass the audit-signing.pub file the operator published, or its base64 text.",
        )
    return value


def _fail(exc: AuditError, source: str) -> NoReturn:
    """Print a failed check and exit 1."""
    out = console()
    where = f"record {exc.seq}" if exc.seq is not None else "the checkpoint"
    stream = f" (stream {escape(exc.stream)})" if exc.stream else ""
    out.print(
        f"[bold red]FAILED[/] {escape(source)}: {where}{stream} [bold]{exc.code}[/]", markup=True
    )
    out.print(f"  {escape(exc.message)}", markup=True)
    out.print(f"  [dim]fix:[/] {escape(exc.hint)}", markup=True)
    out.print(f"  [dim]docs:[/] docs/errors/{exc.code}.md", markup=True)
    sys.exit(1)


def _print_report(report: Report, seconds: float, source: str) -> None:
    out = console()
    rate = report.records / seconds if seconds > 0 else float(report.records)
    first = report.last_seq - report.records + 1
    covered = f"records {first}-{report.last_seq}" if report.records else "no records"
    out.print(
        f"[bold green]ok[/] {escape(source)}: {report.records} records verified in "
        f"{len(report.streams)} streams ({covered}), {seconds:.3f} s, {rate:,.0f} records/s",
        markup=True,
    )
    if not report.streams:
        return
    table = Table(box=None, pad_edge=False)
    for col in ("stream", "records", "last record", "head hash"):
        table.add_column(col, justify="right" if col in ("records", "last record") else "left")
    for name, head in sorted(report.streams.items()):
        table.add_row(escape(name), str(head.stream_seq), str(head.seq), head.hash[:16] + "…")
    out.print(table)


@contextmanager
def _rows(
    file: Path | None, project: Path, db: str | None, *, allow_gaps: bool
) -> Generator[tuple[Iterator[Row], str, bool]]:
    """The rows to verify, what they come from (an export file, else the database), and
    whether their global numbers must be contiguous (not so on PostgreSQL)."""
    if file is not None:
        with _closing(read_export(file)) as rows:
            yield rows, str(file), not allow_gaps
        return
    ws = open_workspace(project, db)
    contiguous = not (allow_gaps or ws.database.is_postgres)
    with ws.open() as store, _closing(store.audit_rows()) as rows:
        yield rows, ws.database.display, contiguous


@audit.command("verify")
@store_options
@click.option(
    "--file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Verify this export (from `warden audit export`) instead of the database.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A signed checkpoint the log must still match (detects a cut-off tail).",
)
@click.option(
    "--public-key",
    default=None,
    metavar="FILE_OR_B64",
    help="The operator's public key the checkpoint must be signed with.",
)
@click.option(
    "--allow-gaps",
    is_flag=True,
    help="Let the global record numbers skip (an export of a PostgreSQL log, where a "
    "rolled-back write skips one); every stream must still be unbroken. Always on for a "
    "PostgreSQL database.",
)
def verify(
    project: Path,
    db: str | None,
    file: Path | None,
    checkpoint: Path | None,
    public_key: str | None,
    allow_gaps: bool,
) -> None:
    """Verify the audit log: numbering, every stream's hash chain, and a checkpoint.

    Exits 0 when every record verifies, 1 naming the first bad record (its seq, stream
    and code) when one does not, 2 when a file is unreadable.
    """
    if public_key is not None and checkpoint is None:
        raise click.UsageError("--public-key pins a checkpoint's key: pass --checkpoint too")
    pinned = _pinned_key(public_key) if public_key is not None else None
    signed: Checkpoint | None = None
    with _rows(file, project, db, allow_gaps=allow_gaps) as (rows, source, contiguous):
        try:
            if checkpoint is not None:
                signed = read_checkpoint(checkpoint, public_key=pinned)
            started = time.perf_counter()
            report = verify_rows(rows, checkpoint=signed, contiguous=contiguous)
            seconds = time.perf_counter() - started
        except AuditError as exc:
            if exc.code in _NOT_FAILURES:
                raise
            _fail(exc, source)
    _print_report(report, seconds, source)
    out = console()
    if signed is None:
        out.print(
            "  [dim]no checkpoint given: a log cut off at its end verifies too; "
            "pass --checkpoint to rule that out[/]",
            markup=True,
        )
        return
    state = "matches" if report.checkpoint_checked else "was only partly checked"
    out.print(
        f"  checkpoint {escape(str(checkpoint))} (records up to {signed.last_seq}, signed "
        f"{moment(signed.at)} by key {signed.key_id}): the log {state}",
        markup=True,
    )
    if pinned is None:
        out.print(
            "  [yellow]the checkpoint was checked against the key it carries; pass "
            "--public-key with the operator's published key to know who signed it[/]",
            markup=True,
        )


# --- checkpoint ----------------------------------------------------------------------------


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _signing_key(path: Path, *, given: bool) -> tuple[SigningKey, list[str]]:
    """The key, and notes on what was created. A key named with --key must exist."""
    notes: list[str] = []
    if given:
        key = SigningKey.load(path)
    else:
        key, created = SigningKey.load_or_create(path)
        if created:
            notes.append(f"created the signing key {path} (keep it secret, back it up)")
    public = path.with_suffix(".pub")
    if not public.exists():
        key.save_public(public)
        notes.append(f"wrote its public key to {public}: give it to your auditors")
    elif read_public_key(public) != key.public_key_b64:
        notes.append(f"warning: {public} holds another key than {path}")
    return key, notes


@audit.command("checkpoint")
@store_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write it (default: checkpoints/<seq>.json beside the database; in the "
    "current folder for PostgreSQL).",
)
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"The Ed25519 signing key; it must exist (default: {KEY_FILE} beside the "
    "database, or in the current folder for PostgreSQL, created on first use with its "
    "public key as audit-signing.pub).",
)
def checkpoint_command(project: Path, db: str | None, out: Path | None, key: Path | None) -> None:
    """Verify the log, then sign every stream's head with the project's key.

    Keep the checkpoint where the database's operators cannot rewrite it: a later
    `warden audit verify --checkpoint` then detects a rewritten or cut-off log. A log
    that does not verify is not signed (exit 1).
    """
    ws = open_workspace(project, db)
    folder = ws.database.folder
    with ws.open() as store, _closing(store.audit_rows()) as rows:
        try:
            report = verify_rows(rows, contiguous=not ws.database.is_postgres)
        except AuditError as exc:
            _fail(exc, f"{ws.database.display} (not signed)")
    if report.last_seq == 0:
        raise click.ClickException("the audit log is empty: there is nothing to sign")
    signing, notes = _signing_key(key or folder / KEY_FILE, given=key is not None)
    doc = make_checkpoint(
        streams=report.streams,
        last_seq=report.last_seq,
        at=SystemClock().timestamp(),
        key=signing,
    )
    target = out or folder / CHECKPOINTS / f"{report.last_seq}.json"
    _write_atomically(target, canonical_json(doc) + b"\n", mode=0o644)  # it is public
    printer = console()
    printer.print(
        f"[bold green]signed[/] records 1-{report.last_seq} ({len(report.streams)} streams) "
        f"with key {signing.key_id}",
        markup=True,
    )
    printer.print(f"  checkpoint written to {escape(str(target))}", markup=True)
    for note in notes:
        printer.print(f"  {escape(note)}", markup=True)


# --- export --------------------------------------------------------------------------------


def _write_export(rows: Iterator[Row], sink: IO[bytes]) -> tuple[int, int]:
    """Write every row as an export line; returns (records written, last seq)."""
    count = last = 0
    for row in rows:
        sink.write(export_line(*row))
        count, last = count + 1, row[0]
    return count, last


@audit.command("export")
@store_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
def export(project: Path, db: str | None, out: Path | None) -> None:
    """Export the log as JSON lines, one record per line, each with its hash.

    The export verifies on its own: `warden audit verify --file EXPORT.jsonl`.
    """
    ws = open_workspace(project, db)
    with ws.open() as store, _closing(store.audit_rows()) as rows:
        if out is None:
            count, last = _write_export(rows, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
            try:
                with os.fdopen(fd, "wb") as sink:
                    count, last = _write_export(rows, sink)
                    sink.flush()
                    os.fsync(sink.fileno())
                os.replace(tmp, out)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    where = str(out) if out is not None else "standard output"
    click.echo(f"exported {count} records (up to record {last}) to {where}", err=True)
    if out is not None:
        click.echo(f"verify it with: warden audit verify --file {out}", err=True)


# --- purge ---------------------------------------------------------------------------------


@audit.command("purge")
@store_options
def purge(project: Path, db: str | None) -> None:
    """Drop what retention no longer keeps: idempotency keys past `idempotency.retention`
    and redacted values past the policies' `log.retain_days`.

    The log itself is untouched: its records hold only salted commitments to redacted
    values, so it still verifies.
    """
    ws = open_workspace(project, db, need_project=True)
    proj = ws.need_project()
    now = SystemClock().timestamp()
    with ws.open() as store:
        store.purge(now)
    out = console()
    out.print(f"purged {escape(ws.database.display)}", markup=True)
    keep = proj.idempotency_retention_s
    out.print(
        f"  idempotency keys: released those of finished actions decided before "
        f"{moment(now - keep)} (idempotency.retention {span(keep)}); the same "
        "call with such a key runs as a new call",
        markup=True,
    )
    days = proj.retain_days
    if days is None:
        out.print("  redacted values: kept (no policy sets log.retain_days)")
    else:
        out.print(
            f"  redacted values: dropped those recorded before {moment(now - days * 86_400.0)} "
            f"(log.retain_days {days}); the log keeps their commitments and still verifies",
            markup=True,
        )
