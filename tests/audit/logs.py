"""Random audit logs for the property tests, and a way to see which row a failure hit."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from hypothesis import strategies as st

from warden.audit import Chain, Report, verify_rows
from warden.canonical import canonical_json
from warden.errors import AuditError

Row = tuple[int, str, int, bytes, bytes]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)
stream_names = st.sampled_from(["system", "agent:support_refund_agent", "agent:b", "agent:é✓"])
entries = st.lists(st.tuples(stream_names, json_values), min_size=1, max_size=24)


def build(log: Iterable[tuple[str, Any]]) -> list[Row]:
    """Write `log` (stream, data) through a fresh `Chain`; the rows as a database holds them."""
    chain = Chain()
    return [
        chain.append(stream, 1767258000.0 + i / 8, "test", canonical_json(data)).as_tuple()
        for i, (stream, data) in enumerate(log)
    ]


def renumber(rows: Iterable[Row], by: int) -> list[Row]:
    """The rows with their global numbers shifted, as a forger hiding a gap would."""
    return [
        (seq + by, stream, stream_seq, body, digest)
        for seq, stream, stream_seq, body, digest in rows
    ]


class Reader:
    """Feeds rows to `verify_rows` and remembers how many it handed out."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self._rows = rows
        self.taken = 0

    def __iter__(self) -> Iterator[Row]:
        for row in self._rows:
            self.taken += 1
            yield row


def failure(rows: Iterable[Row], **kwargs: Any) -> tuple[int, AuditError]:
    """Verify `rows`, which must fail; the index of the row it failed at, and the error."""
    reader = Reader(rows)
    try:
        report: Report = verify_rows(reader, **kwargs)
    except AuditError as error:
        return reader.taken - 1, error
    raise AssertionError(f"verified, but should not have: {report}")
