"""``verify_rows(contiguous=False)``: a log whose global numbers skip (PostgreSQL's sequence
after a rolled-back append) verifies, and every stream is still checked link by link."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.audit.logs import Row, entries, failure
from warden.audit import Chain, SigningKey, make_checkpoint, read_checkpoint, verify_rows
from warden.audit.chain import ChainState
from warden.canonical import canonical_json
from warden.errors import AuditError

PROPS = settings(max_examples=100, deadline=None)
KEY = SigningKey.generate()
gaps = st.lists(st.integers(0, 3), min_size=24, max_size=24)


def build_with_gaps(log: list[tuple[str, Any]], skips: list[int]) -> list[Row]:
    """Write `log` through a `Chain` that skips ``skips[i]`` numbers before record i."""
    chain = Chain()
    rows: list[Row] = []
    for i, (stream, data) in enumerate(log):
        chain.restore(ChainState(heads=chain.heads, last_seq=chain.last_seq + skips[i]))
        row = chain.append(stream, 1767258000.0 + i / 8, "test", canonical_json(data))
        rows.append(row.as_tuple())
    return rows


@PROPS
@given(log=entries, skips=gaps)
def test_a_log_with_gaps_verifies_only_when_gaps_are_allowed(
    log: list[tuple[str, Any]], skips: list[int]
) -> None:
    rows = build_with_gaps(log, skips)
    report = verify_rows(rows, contiguous=False)
    assert (report.records, report.last_seq) == (len(rows), rows[-1][0])
    first_gap = next((i for i, n in enumerate(skips[: len(rows)]) if n), None)
    if first_gap is None:
        assert verify_rows(rows).records == len(rows)
        return
    index, error = failure(rows)
    assert (index, error.code) == (first_gap, "W-AUD-002")


@PROPS
@given(log=entries, skips=gaps, data=st.data())
def test_a_changed_byte_still_fails_with_gaps_allowed(
    log: list[tuple[str, Any]], skips: list[int], data: st.DataObject
) -> None:
    rows = build_with_gaps(log, skips)
    i = data.draw(st.integers(0, len(rows) - 1), label="record")
    seq, stream, stream_seq, body, digest = rows[i]
    at = data.draw(st.integers(0, len(body) - 1), label="byte")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != body[at]), label="new byte")
    rows[i] = (seq, stream, stream_seq, body[:at] + bytes([new]) + body[at + 1 :], digest)
    index, error = failure(rows, contiguous=False)
    assert (index, error.seq) == (i, seq)
    assert error.code in {"W-AUD-001", "W-AUD-003"}


@PROPS
@given(log=entries, skips=gaps, data=st.data())
def test_a_record_deleted_inside_its_stream_is_missing_even_with_gaps_allowed(
    log: list[tuple[str, Any]], skips: list[int], data: st.DataObject
) -> None:
    rows = build_with_gaps(log, skips)
    i = data.draw(st.integers(0, len(rows) - 1), label="deleted")
    _, stream, stream_seq, _, _ = rows.pop(i)
    later = next((j for j in range(i, len(rows)) if rows[j][1] == stream), None)
    if later is None:  # its stream's last record: only a checkpoint would show it
        assert verify_rows(rows, contiguous=False).records == len(rows)
        return
    index, error = failure(rows, contiguous=False)
    assert (index, error.code, error.stream) == (later, "W-AUD-002", stream)
    assert f"{stream} #{stream_seq} is missing" in error.message


def test_numbers_that_go_back_fail_with_gaps_allowed() -> None:
    rows = build_with_gaps([("a", 1), ("b", 2), ("a", 3)], [0, 5, 0])
    swapped = [rows[0], rows[2], rows[1]]
    index, error = failure(swapped, contiguous=False)
    assert (index, error.code) == (2, "W-AUD-003")


def test_a_signed_position_the_log_skips_is_missing_with_gaps_allowed() -> None:
    rows = build_with_gaps([("a", 1), ("b", 2), ("a", 3), ("c", 4)], [0, 2, 0, 3])
    report = verify_rows(rows, contiguous=False)
    doc = make_checkpoint(streams=report.streams, last_seq=report.last_seq, at=1.0, key=KEY)
    checkpoint = read_checkpoint(doc)
    assert verify_rows(rows, checkpoint=checkpoint, contiguous=False).checkpoint_checked
    without_b = [r for r in rows if r[1] != "b"]
    with pytest.raises(AuditError) as caught:
        verify_rows(without_b, checkpoint=checkpoint, contiguous=False)
    assert caught.value.code == "W-AUD-004"
    assert f"the log has no record {rows[1][0]}" in caught.value.message
