"""Export lines: the body travels byte for byte, and a changed byte is caught where it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.audit.logs import Reader, Row, build, entries
from warden.audit import export_line, read_export, verify_rows
from warden.errors import AuditError

PROPS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def write(path: Path, rows: list[Row]) -> Path:
    path.write_bytes(b"".join(export_line(*row) for row in rows))
    return path


def test_an_export_line_has_a_fixed_shape_with_the_body_last_and_verbatim() -> None:
    (row,) = build([("agent:x", {"é": "\u2028"})])
    line = export_line(*row)
    assert line == (
        b'{"seq":1,"stream":"agent:x","stream_seq":1,"hash":"'
        + row[4].hex().encode()
        + b'","record":'
        + row[3]
        + b"}\n"
    )
    assert json.loads(line)["record"]["data"] == {"é": "\u2028"}


@PROPS
@given(log=entries)
def test_an_export_read_back_verifies_as_the_log_does(
    tmp_path: Path, log: list[tuple[str, Any]]
) -> None:
    rows = build(log)
    path = write(tmp_path / "audit.jsonl", rows)
    assert list(read_export(path)) == rows
    assert verify_rows(read_export(path)) == verify_rows(rows)


@PROPS
@given(log=entries, data=st.data())
def test_a_changed_byte_in_an_export_is_caught_at_its_line(
    tmp_path: Path, log: list[tuple[str, Any]], data: st.DataObject
) -> None:
    rows = build(log)
    lines = [export_line(*row) for row in rows]
    raw = bytearray(b"".join(lines))
    at = data.draw(st.integers(0, len(raw) - 1), label="byte")
    raw[at] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[at]), label="new byte")
    path = tmp_path / "audit.jsonl"
    path.write_bytes(raw)
    line = next(n for n, end in enumerate(_ends(lines)) if at < end)  # 0-based

    reader = Reader(read_export(path))
    with pytest.raises(AuditError) as caught:
        verify_rows(reader)
    error = caught.value
    if error.code == "W-AUD-007":
        assert f"{path}:{line + 1}:" in error.message
    else:
        # verify_rows raised on the row read from the changed line
        assert reader.taken - 1 == line


def _ends(lines: list[bytes]) -> list[int]:
    ends: list[int] = []
    for line in lines:
        ends.append((ends[-1] if ends else 0) + len(line))
    return ends


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (b"not json\n", "not an export line"),
        (b'{"seq":1,"stream":"s","stream_seq":1,"hash":"00","record":{}}\n', "64-digit hash"),
        (
            b'{"seq":1, "stream":"s","stream_seq":1,"hash":"' + b"0" * 64 + b'","record":{}}\n',
            "exact form",
        ),
        (
            b'{"stream":"s","seq":1,"stream_seq":1,"hash":"' + b"0" * 64 + b'","record":{}}\n',
            "exact form",
        ),
        (
            b'{"seq":1,"stream":"s","stream_seq":1,"hash":"' + b"A" * 64 + b'","record":{}}\n',
            "lowercase",
        ),
        (b"\n", "not an export line"),
    ],
    ids=["not json", "short hash", "space", "key order", "uppercase hash", "blank line"],
)
def test_a_line_not_in_the_export_form_is_unreadable_and_named(
    tmp_path: Path, text: bytes, why: str
) -> None:
    (row,) = build([("system", 1)])
    path = tmp_path / "audit.jsonl"
    path.write_bytes(export_line(*row) + text)
    with pytest.raises(AuditError) as caught:
        list(read_export(path))
    assert caught.value.code == "W-AUD-007"
    assert f"{path}:2: " in caught.value.message
    assert why in caught.value.message


def test_a_missing_export_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="W-AUD-007") as caught:
        list(read_export(tmp_path / "nope.jsonl"))
    assert "nope.jsonl" in caught.value.message


def test_the_last_line_may_lack_its_newline(tmp_path: Path) -> None:
    rows = build([("system", 1), ("system", 2)])
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(export_line(*r) for r in rows)[:-1])
    assert verify_rows(read_export(path)).records == 2
