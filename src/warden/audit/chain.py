"""Records and the hash chain that links them, one chain per stream.

A record's body is canonical JSON; its hash is ``sha256(prev + body)``, where ``prev`` is
the hash of the stream's previous record, or the stream's genesis value for its first.
`Chain` is the writer's side: it numbers records and keeps each stream's head in memory.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring
from types import MappingProxyType

from warden.canonical import canonical_json

__all__ = [
    "SYSTEM_STREAM",
    "AuditRow",
    "Chain",
    "ChainState",
    "agent_stream",
    "compose",
    "genesis",
    "link",
]

_GENESIS_TAG = b"warden-audit-v1\x00"

SYSTEM_STREAM = "system"
"""The stream of records that belong to no agent: config loads, kill switches, keys,
refused requests."""


def agent_stream(agent: str) -> str:
    """The stream an agent's records are chained in."""
    return f"agent:{agent}"


_NO_HEADS: Mapping[str, tuple[int, bytes]] = MappingProxyType({})


def genesis(stream: str) -> bytes:
    """The ``prev`` of a stream's first record: streams cannot be spliced into each other."""
    return hashlib.sha256(_GENESIS_TAG + stream.encode("utf-8")).digest()


def link(prev: bytes, body: bytes) -> bytes:
    """The hash of a record: ``sha256(prev + body)``, 32 raw bytes."""
    return hashlib.sha256(prev + body).digest()


def _number(at: float) -> str:
    # json.JSONEncoder writes a float with float.__repr__ and refuses NaN and infinities
    # (allow_nan=False); anything else (an int) takes the general path.
    if type(at) is float:
        if math.isfinite(at):
            return repr(at)
        raise ValueError(f"Out of range float values are not JSON compliant: {at!r}")
    return canonical_json(at).decode("utf-8")


def compose(
    *, seq: int, stream: str, stream_seq: int, at: float, kind: str, data_json: bytes
) -> bytes:
    """The body of a record: the canonical JSON of its envelope around `data_json`.

    Equal to ``canonical_json({"at": at, "data": data, "kind": kind, "seq": seq,
    "stream": stream, "stream_seq": stream_seq, "v": 1})`` (a property test pins that),
    but built by concatenation, so `data` is encoded once, by the caller.
    `data_json` must be ``canonical_json(data)``.
    """
    head = f'{{"at":{_number(at)},"data":'
    tail = (
        f',"kind":{encode_basestring(kind)},"seq":{seq:d},"stream":{encode_basestring(stream)}'
        f',"stream_seq":{stream_seq:d},"v":1}}'
    )
    return head.encode("utf-8") + data_json + tail.encode("utf-8")


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditRow:
    """One stored record, as the database keeps it."""

    seq: int
    """Global sequence number: 1, 2, 3 ... across all streams."""
    stream: str
    """The stream it belongs to (``agent:<name>`` or ``system``)."""
    stream_seq: int
    """Its number within its stream: 1, 2, 3 ..."""
    body: bytes
    """The canonical JSON body (see `compose`)."""
    hash: bytes
    """``link(prev, body)``, 32 raw bytes."""

    def as_tuple(self) -> tuple[int, str, int, bytes, bytes]:
        """``(seq, stream, stream_seq, body, hash)``: the shape `verify_rows` reads."""
        return (self.seq, self.stream, self.stream_seq, self.body, self.hash)


@dataclass(frozen=True, kw_only=True, slots=True)
class ChainState:
    """A copy of a `Chain`'s heads, to put back with `Chain.restore`."""

    heads: Mapping[str, tuple[int, bytes]]
    """Stream -> (stream_seq, hash) of its last record."""
    last_seq: int
    """The last global sequence number handed out."""


class Chain:
    """Numbers and links new records. Not thread-safe: one writer owns it.

    Start it from the heads of a verified log (`Report.chain_heads()` and
    `Report.last_seq`), or empty for a new log.
    """

    __slots__ = ("_heads", "_last_seq")

    def __init__(
        self, heads: Mapping[str, tuple[int, bytes]] = _NO_HEADS, last_seq: int = 0
    ) -> None:
        for stream, (stream_seq, digest) in heads.items():
            if stream_seq < 1 or len(digest) != 32:
                raise ValueError(f"bad head for stream {stream!r}: ({stream_seq}, {digest!r})")
        if last_seq < 0 or (heads and last_seq < len(heads)):
            raise ValueError(f"last_seq {last_seq} cannot hold {len(heads)} stream heads")
        self._heads: dict[str, tuple[int, bytes]] = dict(heads)
        self._last_seq = last_seq

    @property
    def heads(self) -> Mapping[str, tuple[int, bytes]]:
        """Stream -> (stream_seq, hash) of its last record; a read-only view."""
        return MappingProxyType(self._heads)

    @property
    def last_seq(self) -> int:
        """The last global sequence number handed out (0 for an empty log)."""
        return self._last_seq

    def append(self, stream: str, at: float, kind: str, data_json: bytes) -> AuditRow:
        """Number, compose and link the next record of `stream`; `data_json` is canonical."""
        head = self._heads.get(stream)
        if head is None:
            stream_seq, prev = 1, genesis(stream)
        else:
            stream_seq, prev = head[0] + 1, head[1]
        seq = self._last_seq + 1
        body = compose(
            seq=seq, stream=stream, stream_seq=stream_seq, at=at, kind=kind, data_json=data_json
        )
        digest = hashlib.sha256(prev + body).digest()
        self._heads[stream] = (stream_seq, digest)
        self._last_seq = seq
        return AuditRow(seq=seq, stream=stream, stream_seq=stream_seq, body=body, hash=digest)

    def snapshot(self) -> ChainState:
        """The current heads, e.g. before a database transaction."""
        return ChainState(heads=MappingProxyType(dict(self._heads)), last_seq=self._last_seq)

    def restore(self, state: ChainState) -> None:
        """Put back the heads of `snapshot`, e.g. after the transaction rolled back."""
        self._heads = dict(state.heads)
        self._last_seq = state.last_seq
