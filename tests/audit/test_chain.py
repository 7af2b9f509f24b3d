"""Composing, linking and numbering records."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.audit.logs import build, json_values
from warden.audit import Chain, compose, genesis, link, verify_rows
from warden.canonical import canonical_json


@settings(max_examples=200, deadline=None)
@given(
    data=json_values,
    seq=st.integers(min_value=0, max_value=2**63),
    stream=st.text(),
    stream_seq=st.integers(min_value=0, max_value=2**63),
    at=st.floats(allow_nan=False, allow_infinity=False) | st.integers(min_value=0, max_value=2**40),
    kind=st.text(),
)
def test_compose_is_the_canonical_json_of_the_envelope(
    data: Any, seq: int, stream: str, stream_seq: int, at: float, kind: str
) -> None:
    envelope = {
        "at": at,
        "data": data,
        "kind": kind,
        "seq": seq,
        "stream": stream,
        "stream_seq": stream_seq,
        "v": 1,
    }
    body = compose(
        seq=seq,
        stream=stream,
        stream_seq=stream_seq,
        at=at,
        kind=kind,
        data_json=canonical_json(data),
    )
    assert body == canonical_json(envelope)


@pytest.mark.parametrize("at", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_compose_refuses_a_time_without_a_json_form(at: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        compose(seq=1, stream="system", stream_seq=1, at=at, kind="x", data_json=b"{}")


def test_genesis_and_link_are_pinned() -> None:
    assert genesis("system") == hashlib.sha256(b"warden-audit-v1\x00system").digest()
    assert genesis("agent:a") != genesis("agent:b")
    assert link(b"p" * 32, b"{}") == hashlib.sha256(b"p" * 32 + b"{}").digest()
    assert len(link(genesis("system"), b"{}")) == 32


def test_chain_numbers_records_globally_and_per_stream() -> None:
    chain = Chain()
    rows = [chain.append(s, 1.5, "k", b"{}") for s in ["system", "agent:a", "agent:a", "system"]]
    assert [(r.seq, r.stream, r.stream_seq) for r in rows] == [
        (1, "system", 1),
        (2, "agent:a", 1),
        (3, "agent:a", 2),
        (4, "system", 2),
    ]
    assert rows[0].hash == link(genesis("system"), rows[0].body)
    assert rows[2].hash == link(rows[1].hash, rows[2].body)
    assert rows[3].hash == link(rows[0].hash, rows[3].body)
    assert chain.last_seq == 4
    assert dict(chain.heads) == {"system": (2, rows[3].hash), "agent:a": (2, rows[2].hash)}
    assert rows[1].body == (
        b'{"at":1.5,"data":{},"kind":"k","seq":2,"stream":"agent:a","stream_seq":1,"v":1}'
    )


def test_restore_puts_back_the_heads_of_a_snapshot() -> None:
    chain = Chain()
    first = chain.append("system", 1.0, "k", b"{}")
    state = chain.snapshot()
    chain.append("system", 2.0, "k", b"{}")
    chain.append("agent:a", 2.0, "k", b"{}")
    chain.restore(state)
    assert chain.last_seq == 1
    assert dict(chain.heads) == {"system": (1, first.hash)}
    again = chain.append("system", 3.0, "k", b"[]")
    assert (again.seq, again.stream_seq) == (2, 2)
    verify_rows([first.as_tuple(), again.as_tuple()])


def test_a_chain_resumed_from_a_report_writes_a_log_that_still_verifies() -> None:
    rows = build([("system", 1), ("agent:a", 2), ("agent:a", 3)])
    report = verify_rows(rows)
    chain = Chain(report.chain_heads(), report.last_seq)
    rows += [chain.append(s, 9.0, "k", b"null").as_tuple() for s in ["agent:a", "agent:b"]]
    assert verify_rows(rows).records == 5


@pytest.mark.parametrize(
    ("heads", "last_seq"),
    [
        ({"system": (0, b"x" * 32)}, 1),
        ({"system": (1, b"short")}, 1),
        ({"system": (1, b"x" * 32)}, 0),
    ],
    ids=["stream_seq 0", "short hash", "last_seq below heads"],
)
def test_chain_refuses_impossible_heads(heads: dict[str, tuple[int, bytes]], last_seq: int) -> None:
    with pytest.raises(ValueError, match=r"head|last_seq"):
        Chain(heads, last_seq)
