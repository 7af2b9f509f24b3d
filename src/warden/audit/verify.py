"""Verify a stored log: numbering, the hash chains, and a signed checkpoint if given.

The first bad record is named with the reason, as an `AuditError`. The loop over rows is
the hot path: it parses no JSON and allocates nothing per row beyond the row tuple. Only
when a row fails does `_diagnose` read the body to tell altered from moved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, cast

from warden.audit.chain import genesis, link
from warden.errors import AuditError

if TYPE_CHECKING:
    from warden.audit.checkpoint import Checkpoint

__all__ = ["Report", "StreamHead", "verify_rows"]

Row = tuple[int, str, int, bytes, bytes]

# What every body written by `compose` ends with, once `data` and `kind` are behind it.
# Checking it ties a row's columns to its hashed body without parsing the body: without
# it, deleting the last record of one stream and renumbering the rows after it would go
# unseen, because every chain would still link.
_SUFFIX = b',"seq":%d,"stream":%s,"stream_seq":%d,"v":1}'
_NOWHERE = 1 << 63  # past any seq: "no checkpoint mark ahead"


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamHead:
    """The last record of one stream."""

    stream: str
    """The stream's name."""
    stream_seq: int
    """Its number within the stream."""
    seq: int
    """Its global sequence number."""
    hash: str
    """Its hash, lowercase hex."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Report:
    """What a verification that passed saw."""

    records: int
    """How many records were verified."""
    last_seq: int
    """The global sequence number of the last one (``first_seq - 1`` when none)."""
    streams: dict[str, StreamHead]
    """Every stream's last record."""
    checkpoint_checked: bool
    """True when a checkpoint was given and every position it signed was found and matched."""

    def chain_heads(self) -> dict[str, tuple[int, bytes]]:
        """Stream -> (stream_seq, hash): what `Chain` needs to go on writing this log."""
        return {name: (h.stream_seq, bytes.fromhex(h.hash)) for name, h in self.streams.items()}


def verify_rows(
    rows: Iterable[Row],
    *,
    checkpoint: Checkpoint | None = None,
    first_seq: int = 1,
    start: Mapping[str, StreamHead] | None = None,
    contiguous: bool = True,
) -> Report:
    """Verify `rows` ``(seq, stream, stream_seq, body, hash)``, in global order as stored.

    Raises `AuditError` naming the first bad record. `first_seq` is the number the rows
    start at; when it is past 1, `start` holds each stream's last record before it (a
    `Report.streams` or `Checkpoint.streams`), else every stream must start at #1.
    Against a `checkpoint`, a position it signed that the log lacks is W-AUD-004 and a
    record there with another hash is W-AUD-006.

    With ``contiguous=False`` (a log written by several PostgreSQL replicas, whose global
    numbers come from a sequence that a rolled-back append skips), the global numbers need
    only increase; every stream must still run #1, #2, #3 ... with its hash links intact.
    A record deleted from the end of a stream then goes unseen without a checkpoint.
    """
    # stream -> [stream_seq, hash, seq, encoded name] of its last record, mutated in place
    state: dict[str, list[Any]] = {}
    for name, head in (start or {}).items():
        state[name] = [head.stream_seq, bytes.fromhex(head.hash), head.seq, _jstr(name)]
    marks, all_checked = _marks(checkpoint, first_seq, state)
    mark_seqs = sorted(marks, reverse=True)
    next_mark = mark_seqs.pop() if mark_seqs else _NOWHERE

    sha256 = hashlib.sha256
    suffix = _SUFFIX
    get = state.get
    expected = first_seq
    records = 0
    seq: Any = None
    stream: Any = None
    stream_seq: Any = None
    try:  # costs nothing on the good path; a row of the wrong types lands below
        for seq, stream, stream_seq, body, digest in rows:
            st = get(stream)
            if st is None:
                st = state[stream] = [0, genesis(stream), 0, _jstr(stream)]
            if (
                (seq != expected and (contiguous or seq < expected))
                or stream_seq != st[0] + 1
                or sha256(st[1] + body).digest() != digest
                or not body.endswith(suffix % (seq, st[3], stream_seq))
            ):
                row = (seq, stream, stream_seq, body, digest)
                raise _diagnose(row, max(expected, seq) if not contiguous else expected, *st[:2])
            st[0] = stream_seq
            st[1] = digest
            st[2] = seq
            expected = seq + 1
            records += 1
            if seq >= next_mark:
                if seq > next_mark:  # with gaps allowed: the signed position was skipped
                    assert checkpoint is not None
                    raise _missing(checkpoint, marks[next_mark], seq)
                _check_mark(marks[seq], (seq, stream, stream_seq, body, digest), checkpoint)
                next_mark = mark_seqs.pop() if mark_seqs else _NOWHERE
    except (TypeError, AttributeError, ValueError):
        # a store keeps whatever type is written into a column: a body edited into text
        raise AuditError(
            "W-AUD-001",
            f"record {seq} ({stream} #{stream_seq}): its columns do not hold the types "
            "Warden writes (integer numbers, a text stream, a byte body and hash)",
            seq=seq if type(seq) is int else None,
            stream=stream if type(stream) is str else None,
        ) from None

    last_seq = expected - 1
    if checkpoint is not None and (next_mark != _NOWHERE or checkpoint.last_seq > last_seq):
        raise _truncated(checkpoint, marks, next_mark, state, last_seq)
    return Report(
        records=records,
        last_seq=last_seq,
        streams={
            name: StreamHead(stream=name, stream_seq=st[0], seq=st[2], hash=st[1].hex())
            for name, st in state.items()
        },
        checkpoint_checked=checkpoint is not None and all_checked,
    )


def _jstr(text: str) -> bytes:
    return encode_basestring(text).encode("utf-8")


def _where(seq: int, stream: str, stream_seq: int) -> str:
    return f"record {seq} ({stream} #{stream_seq})"


def _marks(
    checkpoint: Checkpoint | None, first_seq: int, state: dict[str, list[Any]]
) -> tuple[dict[int, StreamHead], bool]:
    """The checkpoint's positions inside the rows; those before them are checked here.

    Returns the positions to check while reading, and whether every one before
    `first_seq` could be checked against `start`.
    """
    if checkpoint is None:
        return {}, False
    marks: dict[int, StreamHead] = {}
    all_checked = True
    for name, head in checkpoint.streams.items():
        if head.seq >= first_seq:
            marks[head.seq] = head
            continue
        known = state.get(name)
        if known is None or known[0] < head.stream_seq:
            raise AuditError(
                "W-AUD-004",
                f"{_saw(checkpoint, head)}, but before record {first_seq} the log holds "
                f"{_held(name, known)}",
                seq=head.seq,
                stream=name,
            )
        if known[0] == head.stream_seq:
            if known[2] != head.seq or known[1].hex() != head.hash:
                raise _differs(head, (known[2], name, known[0], b"", known[1]), checkpoint)
        else:
            all_checked = False  # the rows that would show it lie before first_seq
    return marks, all_checked


def _check_mark(head: StreamHead, row: Row, checkpoint: Checkpoint | None) -> None:
    _, stream, stream_seq, _, digest = row
    if stream != head.stream or stream_seq != head.stream_seq or digest.hex() != head.hash:
        assert checkpoint is not None
        raise _differs(head, row, checkpoint)


def _differs(head: StreamHead, row: Row, checkpoint: Checkpoint) -> AuditError:
    seq, stream, stream_seq, _, digest = row
    signed = f"the checkpoint signed at {_when(checkpoint.at)} holds"
    if (stream, stream_seq) != (head.stream, head.stream_seq):
        what = f"{signed} {head.stream} #{head.stream_seq} at that position"
    else:
        what = f"its hash is {digest.hex()}, {signed} {head.hash}"
    return AuditError(
        "W-AUD-006",
        f"{_where(seq, stream, stream_seq)}: {what}; the chain was rewritten at or before it",
        seq=seq,
        stream=stream,
    )


def _truncated(
    checkpoint: Checkpoint,
    marks: dict[int, StreamHead],
    next_mark: int,
    state: dict[str, list[Any]],
    last_seq: int,
) -> AuditError:
    if next_mark == _NOWHERE:  # a checkpoint whose last_seq is past every stream head
        return AuditError(
            "W-AUD-004",
            f"the checkpoint signed at {_when(checkpoint.at)} saw records up to "
            f"{checkpoint.last_seq}, but the log ends at record {last_seq}",
            seq=checkpoint.last_seq,
        )
    head = marks[next_mark]
    return AuditError(
        "W-AUD-004",
        f"{_saw(checkpoint, head)}, but the log holds {_held(head.stream, state.get(head.stream))}"
        f" and ends at record {last_seq}",
        seq=head.seq,
        stream=head.stream,
    )


def _missing(checkpoint: Checkpoint, head: StreamHead, seq: int) -> AuditError:
    return AuditError(
        "W-AUD-004",
        f"{_saw(checkpoint, head)}, but the log has no record {head.seq}: it goes on at "
        f"record {seq}",
        seq=head.seq,
        stream=head.stream,
    )


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).isoformat().replace("+00:00", "Z")


def _saw(checkpoint: Checkpoint, head: StreamHead) -> str:
    return (
        f"the checkpoint signed at {_when(checkpoint.at)} saw {head.stream} up to "
        f"#{head.stream_seq} (record {head.seq})"
    )


def _held(stream: str, known: list[Any] | None) -> str:
    if not known or not known[0]:
        return f"no record of {stream}"
    return f"{stream} only up to #{known[0]} (record {known[2]})"


def _diagnose(row: Row, expected: int, head_stream_seq: int, prev: bytes) -> AuditError:
    """Name what is wrong with a row that failed a check (the slow path)."""
    seq, stream, stream_seq, body, digest = row
    where = _where(seq, stream, stream_seq)

    def error(code: str, why: str) -> AuditError:
        return AuditError(code, f"{where}: {why}", seq=seq, stream=stream)

    if seq > expected:
        gap = (
            f"record {expected} is" if seq == expected + 1 else f"records {expected}-{seq - 1} are"
        )
        return error("W-AUD-002", f"follows record {expected - 1}, so {gap} missing")
    if seq < expected:
        return error(
            "W-AUD-003", f"comes after record {expected - 1}: duplicated, inserted or moved"
        )
    if stream_seq > head_stream_seq + 1:
        lost = head_stream_seq + 1
        gap = f"#{lost} is" if stream_seq == lost + 1 else f"#{lost}-#{stream_seq - 1} are"
        return error("W-AUD-002", f"{stream} {gap} missing before it")
    if stream_seq <= head_stream_seq:
        return error(
            "W-AUD-003",
            f"{stream} is already at #{head_stream_seq}: repeated, inserted or moved",
        )

    own = _embedded(body)
    if link(prev, body) != digest:
        if own is not None and own != (seq, stream, stream_seq):
            return error(
                "W-AUD-003", f"holds the body of {_where(*own)}: it was moved or copied here"
            )
        return error(
            "W-AUD-001",
            f"its hash does not match its body and the record before it in {stream}",
        )
    # The chain links, so the body is the one written; the columns around it are not.
    if own is not None and own[0] > seq:
        return error(
            "W-AUD-002",
            f"holds the body of {_where(*own)}: records before it were deleted "
            "and the rest renumbered",
        )
    if own is not None and own[0] < seq:
        return error(
            "W-AUD-003",
            f"holds the body of {_where(*own)}: records were inserted before it "
            "and the rest renumbered",
        )
    return error("W-AUD-001", "its columns do not match its hashed body")


def _embedded(body: bytes) -> tuple[int, str, int] | None:
    """The seq, stream and stream_seq a body says it has, if it is a record at all."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    fields = cast("dict[str, Any]", doc)
    seq, stream, stream_seq = fields.get("seq"), fields.get("stream"), fields.get("stream_seq")
    if type(seq) is int and type(stream) is str and type(stream_seq) is int:
        return seq, stream, stream_seq
    return None
