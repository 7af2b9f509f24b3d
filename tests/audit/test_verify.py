"""Verification names the first bad record, whatever was done to the log."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.audit.logs import Row, build, entries, failure, renumber
from warden.audit import StreamHead, compose, genesis, link, verify_rows
from warden.canonical import canonical_json
from warden.errors import AuditError

PROPS = settings(max_examples=100, deadline=None)


@PROPS
@given(log=entries)
def test_a_log_written_by_the_chain_verifies(log: list[tuple[str, Any]]) -> None:
    rows = build(log)
    report = verify_rows(rows)
    assert (report.records, report.last_seq, report.checkpoint_checked) == (
        len(rows),
        len(rows),
        False,
    )
    for stream in {s for s, _ in log}:
        last = max((r for r in rows if r[1] == stream), key=lambda r: r[0])
        assert report.streams[stream] == StreamHead(
            stream=stream, stream_seq=last[2], seq=last[0], hash=last[4].hex()
        )


@PROPS
@given(log=entries, data=st.data())
def test_any_changed_byte_of_a_body_or_hash_fails_at_that_record(
    log: list[tuple[str, Any]], data: st.DataObject
) -> None:
    rows = build(log)
    i = data.draw(st.integers(0, len(rows) - 1), label="record")
    column = data.draw(st.sampled_from([3, 4]), label="column (3 body, 4 hash)")
    seq, stream, stream_seq, body, digest = rows[i]
    old = body if column == 3 else digest
    at = data.draw(st.integers(0, len(old) - 1), label="byte")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != old[at]), label="new byte")
    changed = old[:at] + bytes([new]) + old[at + 1 :]
    if column == 3:
        rows[i] = (seq, stream, stream_seq, changed, digest)
    else:
        rows[i] = (seq, stream, stream_seq, body, changed)

    index, error = failure(rows)
    assert (index, error.seq, error.stream) == (i, rows[i][0], rows[i][1])
    assert error.code in {"W-AUD-001", "W-AUD-003"}
    assert f"record {rows[i][0]} ({rows[i][1]} #{rows[i][2]})" in error.message
    if column == 4:
        assert error.code == "W-AUD-001"


@PROPS
@given(log=entries, data=st.data())
def test_a_deleted_record_is_missing_at_the_next_one(
    log: list[tuple[str, Any]], data: st.DataObject
) -> None:
    rows = build(log)
    i = data.draw(st.integers(0, len(rows) - 1), label="deleted")
    del rows[i]
    if i == len(rows):
        # The tail: without a checkpoint nothing says it existed (see the checkpoint tests).
        assert verify_rows(rows).records == len(rows)
        return
    index, error = failure(rows)
    assert (index, error.code, error.seq) == (i, "W-AUD-002", i + 2)
    assert f"record {i + 1} is missing" in error.message


@PROPS
@given(log=entries.filter(lambda log: len(log) >= 2), data=st.data())
def test_two_swapped_records_fail_at_the_first_of_them(
    log: list[tuple[str, Any]], data: st.DataObject
) -> None:
    rows = build(log)
    i = data.draw(st.integers(0, len(rows) - 2), label="first")
    j = data.draw(st.integers(i + 1, len(rows) - 1), label="second")
    rows[i], rows[j] = rows[j], rows[i]
    index, error = failure(rows)
    assert (index, error.seq) == (i, rows[i][0])


@PROPS
@given(log=entries.filter(lambda log: len(log) >= 2), data=st.data())
def test_swapped_contents_under_the_same_numbers_fail_at_the_first_of_them(
    log: list[tuple[str, Any]], data: st.DataObject
) -> None:
    rows = build(log)
    i = data.draw(st.integers(0, len(rows) - 2), label="first")
    j = data.draw(st.integers(i + 1, len(rows) - 1), label="second")
    rows[i], rows[j] = (i + 1, *rows[j][1:]), (j + 1, *rows[i][1:])
    index, error = failure(rows)
    assert (index, error.seq) == (i, i + 1)
    assert error.code in {"W-AUD-002", "W-AUD-003"}


@PROPS
@given(log=entries, data=st.data())
def test_a_forged_record_fails_at_it(log: list[tuple[str, Any]], data: st.DataObject) -> None:
    rows = build(log)
    i = data.draw(st.integers(0, len(rows)), label="position")
    stream = data.draw(st.sampled_from(["system", "agent:b", "agent:new"]), label="stream")
    seen = [r for r in rows[:i] if r[1] == stream]
    stream_seq = seen[-1][2] + 1 if seen else 1
    body = compose(
        seq=i + 1, stream=stream, stream_seq=stream_seq, at=0.0, kind="x", data_json=b"{}"
    )
    # The forger cannot know the hash a real record there would have; any guess is wrong.
    guess = data.draw(st.sampled_from(["sha256(body)", "random"]), label="hash")
    forged_hash = (
        link(b"", body)
        if guess == "sha256(body)"
        else data.draw(st.binary(min_size=32, max_size=32))
    )
    rows = [*rows[:i], (i + 1, stream, stream_seq, body, forged_hash), *renumber(rows[i:], 1)]
    index, error = failure(rows)
    assert (index, error.seq, error.code) == (i, i + 1, "W-AUD-001")


@PROPS
@given(log=entries.filter(lambda log: len(log) >= 2), data=st.data())
def test_a_perfectly_linked_forgery_fails_at_the_record_after_it(
    log: list[tuple[str, Any]], data: st.DataObject
) -> None:
    # A forger who knows the format can link a record to its stream's head; then the rows
    # after it must be renumbered, and their hashed bodies still carry their old numbers.
    rows = build(log)
    i = data.draw(st.integers(0, len(rows) - 1), label="position")
    stream = data.draw(st.sampled_from(["system", "agent:b", "agent:new"]), label="stream")
    seen = [r for r in rows[:i] if r[1] == stream]
    stream_seq, prev = (seen[-1][2] + 1, seen[-1][4]) if seen else (1, genesis(stream))
    body = compose(
        seq=i + 1, stream=stream, stream_seq=stream_seq, at=0.0, kind="x", data_json=b"{}"
    )
    forged = (i + 1, stream, stream_seq, body, link(prev, body))
    rows = [*rows[:i], forged, *renumber(rows[i:], 1)]
    index, error = failure(rows)
    assert (index, error.seq) == (i + 1, i + 2)
    assert error.code in {"W-AUD-002", "W-AUD-003"}


@PROPS
@given(log=entries, data=st.data())
def test_deleting_the_last_record_of_a_stream_and_renumbering_is_caught(
    log: list[tuple[str, Any]], data: st.DataObject
) -> None:
    # Every chain still links after this: only the row's columns versus its body tell.
    rows = build(log)
    tails = [k for k, r in enumerate(rows) if not any(o[1] == r[1] for o in rows[k + 1 :])]
    i = data.draw(st.sampled_from(tails), label="deleted tail of a stream")
    if i == len(rows) - 1:
        return
    rows = [*rows[:i], *renumber(rows[i + 1 :], -1)]
    index, error = failure(rows)
    assert (index, error.seq, error.code) == (i, i + 1, "W-AUD-002")
    assert f"holds the body of record {i + 2}" in error.message


def _row(seq: int, stream: str, stream_seq: int, prev: bytes) -> Row:
    body = compose(seq=seq, stream=stream, stream_seq=stream_seq, at=0.0, kind="k", data_json=b"1")
    return (seq, stream, stream_seq, body, link(prev, body))


def test_a_record_copied_into_another_stream_is_out_of_place() -> None:
    rows = build([("system", 1), ("agent:a", 2)])
    seq, _, stream_seq, body, digest = rows[1]
    rows[1] = (seq, "agent:b", stream_seq, body, digest)
    index, error = failure(rows)
    assert (index, error.code, error.stream) == (1, "W-AUD-003", "agent:b")
    assert "holds the body of record 2 (agent:a #1)" in error.message


@pytest.mark.parametrize(
    ("stream_seqs", "code", "words"),
    [
        ([1, 3], "W-AUD-002", "record 2 (system #3): system #2 is missing before it"),
        ([1, 1], "W-AUD-003", "system is already at #1: repeated, inserted or moved"),
        ([3], "W-AUD-002", "record 1 (system #3): system #1-#2 are missing before it"),
    ],
    ids=["skips", "repeats", "does not start at 1"],
)
def test_stream_numbering_is_checked(stream_seqs: list[int], code: str, words: str) -> None:
    rows: list[Row] = []
    for seq, stream_seq in enumerate(stream_seqs, start=1):
        prev = rows[-1][4] if rows else genesis("system")
        rows.append(_row(seq, "system", stream_seq, prev))
    index, error = failure(rows)
    assert (index, error.code) == (len(rows) - 1, code)
    assert words in error.message


def test_a_repeated_global_number_is_out_of_place() -> None:
    rows = build([("system", 1), ("agent:a", 2)])
    rows.insert(1, rows[0])
    index, error = failure(rows)
    assert (index, error.code, error.seq) == (1, "W-AUD-003", 1)


def test_a_body_that_is_not_json_is_altered() -> None:
    rows = build([("system", 1)])
    rows[0] = (*rows[0][:3], b"\xff" + rows[0][3][1:], rows[0][4])
    _, error = failure(rows)
    assert error.code == "W-AUD-001"


def test_verifying_from_the_middle_starts_from_the_heads_before_it() -> None:
    rows = build([("system", 1), ("agent:a", 2), ("system", 3), ("agent:b", 4), ("agent:a", 5)])
    first = verify_rows(rows[:2])
    report = verify_rows(rows[2:], first_seq=3, start=first.streams)
    assert report.records == 3
    assert report.streams == verify_rows(rows).streams
    _, error = failure(rows[2:], first_seq=3)
    assert (error.code, error.seq) == ("W-AUD-002", 3)


def test_an_empty_log_verifies() -> None:
    report = verify_rows([])
    assert (report.records, report.last_seq, report.streams) == (0, 0, {})


def test_rows_may_come_from_a_generator_as_from_a_cursor() -> None:
    rows = build([("system", {"a": [1, 2.5, None]}), ("agent:a", "x")])
    assert verify_rows(r for r in rows).records == 2


def test_error_names_the_record_and_the_fix() -> None:
    rows = build([("system", 1), ("system", 2)])
    rows[1] = (*rows[1][:4], bytes(32))
    with pytest.raises(AuditError) as caught:
        verify_rows(rows)
    text = str(caught.value)
    assert text.startswith("W-AUD-001: record 2 (system #2): its hash does not match")
    assert "fix:" in text
    assert json.loads(rows[1][3])["seq"] == 2
    assert canonical_json(json.loads(rows[1][3])) == rows[1][3]


@pytest.mark.parametrize("column", [0, 2, 3, 4], ids=["seq", "stream_seq", "body", "hash"])
def test_a_column_of_the_wrong_type_is_named_not_a_crash(column: int) -> None:
    rows = build([("agent:a", {"n": i}) for i in range(4)])
    bad = list(rows[2])
    bad[column] = bad[column].hex() if isinstance(bad[column], bytes) else str(bad[column])
    rows[2] = tuple(bad)  # type: ignore[assignment]  # as a store returns a text column
    with pytest.raises(AuditError) as err:
        verify_rows(rows)
    assert err.value.code == "W-AUD-001"
    assert err.value.message.startswith("record 3 (agent:a #3)")
