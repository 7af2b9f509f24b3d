"""The export file: one JSON line per record, the body's bytes embedded verbatim.

A line reads ``{"seq":1,"stream":"agent:x","stream_seq":1,"hash":"<hex>","record":<body>}``.
`record` comes last so a reader slices the body out of the line as it was hashed, with no
re-encoding that could change a byte; `read_export` does that, and `verify_rows` checks it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from warden.errors import AuditError

__all__ = ["export_line", "read_export"]

_RECORD = b',"record":'
_END = b"}\n"


def _head(seq: int, stream: str, stream_seq: int, hash_hex: str) -> bytes:
    return (
        f'{{"seq":{seq:d},"stream":{encode_basestring(stream)},"stream_seq":{stream_seq:d}'
        f',"hash":"{hash_hex}"'
    ).encode()


def export_line(seq: int, stream: str, stream_seq: int, body: bytes, hash: bytes) -> bytes:
    """One export line for a record, newline included."""
    return _head(seq, stream, stream_seq, hash.hex()) + _RECORD + body + _END


def read_export(path: Path) -> Iterator[tuple[int, str, int, bytes, bytes]]:
    """Rows ``(seq, stream, stream_seq, body, hash)`` of an export, for `verify_rows`.

    A line not in the exact form `export_line` writes is W-AUD-007, naming ``file:line``.
    The body is not parsed here: its hash says whether it is intact.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise AuditError(
            "W-AUD-007", f"cannot read the export {path}: {exc.strerror or exc}"
        ) from exc
    with handle:
        # Binary lines split on b"\n" only: a body may hold U+2028 and other line breaks.
        for number, line in enumerate(handle, start=1):
            yield _row(line, path, number)


def _row(line: bytes, path: Path, number: int) -> tuple[int, str, int, bytes, bytes]:
    def bad(why: str) -> AuditError:
        return AuditError("W-AUD-007", f"{path}:{number}: {why}")

    cut = line.find(_RECORD)
    if cut < 0 or not (line.endswith(_END) or line.endswith(b"}")):
        raise bad('not an export line: expected {"seq":...,"record":{...}}')
    try:
        head: Any = json.loads(line[:cut] + b"}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"not JSON before the record ({exc})") from exc
    if not isinstance(head, dict):
        raise bad("not an export line")
    fields: dict[str, Any] = head  # pyright: ignore[reportUnknownVariableType]
    seq, stream = fields.get("seq"), fields.get("stream")
    stream_seq, hash_hex = fields.get("stream_seq"), fields.get("hash")
    if not (
        type(seq) is int
        and type(stream) is str
        and type(stream_seq) is int
        and type(hash_hex) is str
        and len(hash_hex) == 64
    ):
        raise bad("seq, stream, stream_seq and a 64-digit hash must come before the record")
    if _head(seq, stream, stream_seq, hash_hex) != line[:cut]:
        raise bad("not in the exact form `warden audit export` writes (keys, order, spacing)")
    try:
        digest = bytes.fromhex(hash_hex)
    except ValueError as exc:
        raise bad("the hash is not hex") from exc
    if hash_hex != digest.hex():
        raise bad("the hash is not lowercase hex")
    end = -2 if line.endswith(_END) else -1
    return seq, stream, stream_seq, line[cut + len(_RECORD) : end], digest
