"""Signed checkpoints, the signing key on disk, and a log checked against a checkpoint."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.audit.logs import Row, build, entries, failure
from warden.audit import (
    Checkpoint,
    SigningKey,
    make_checkpoint,
    read_checkpoint,
    read_public_key,
    verify_rows,
)
from warden.canonical import canonical_json
from warden.errors import AuditError

KEY = SigningKey.generate()
OTHER = SigningKey.generate()
LOG: list[tuple[str, Any]] = [
    ("system", {"loaded": "warden.yaml"}),
    ("agent:a", {"tool": "create_refund"}),
    ("agent:b", 1),
    ("agent:a", [1, 2]),
    ("system", None),
    ("agent:a", "done"),
]


def checkpoint_of(rows: list[Row], key: SigningKey = KEY) -> dict[str, Any]:
    report = verify_rows(rows)
    return make_checkpoint(
        streams=report.streams, last_seq=report.last_seq, at=1767258000.5, key=key
    )


def test_a_signed_checkpoint_reads_back() -> None:
    rows = build(LOG)
    doc = checkpoint_of(rows)
    assert list(doc) == ["v", "at", "seq", "key_id", "streams", "public_key", "signature"]
    checkpoint = read_checkpoint(doc, public_key=KEY.public_key_b64)
    assert checkpoint == Checkpoint(
        at=1767258000.5,
        last_seq=6,
        streams=verify_rows(rows).streams,
        key_id=KEY.key_id,
        public_key=KEY.public_key_b64,
    )
    assert len(KEY.key_id) == 16
    assert len(base64.b64decode(KEY.public_key_b64)) == 32


def test_a_checkpoint_file_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    path.write_bytes(canonical_json(checkpoint_of(build(LOG))) + b"\n")
    assert read_checkpoint(path).last_seq == 6
    assert read_checkpoint(str(path), public_key=KEY.public_key_b64).key_id == KEY.key_id


def _tamper(doc: dict[str, Any], how: str) -> None:
    if how == "seq":
        doc["seq"] += 1
    elif how == "at":
        doc["at"] = 1.0
    elif how == "stream hash":
        head = doc["streams"]["agent:a"]
        head["hash"] = ("0" if head["hash"][0] != "0" else "1") + head["hash"][1:]
    elif how == "stream dropped":
        del doc["streams"]["agent:b"]
    elif how == "signature byte":
        raw = bytearray(base64.b64decode(doc["signature"]))
        raw[7] ^= 1
        doc["signature"] = base64.b64encode(raw).decode()
    elif how == "signature not base64":
        doc["signature"] = "!" + doc["signature"][1:]
    elif how == "key_id":
        doc["key_id"] = OTHER.key_id
    elif how == "embedded key":
        doc["public_key"] = OTHER.public_key_b64


TAMPERINGS = [
    "seq",
    "at",
    "stream hash",
    "stream dropped",
    "signature byte",
    "signature not base64",
    "key_id",
    "embedded key",
]


@pytest.mark.parametrize("how", TAMPERINGS)
def test_a_tampered_checkpoint_does_not_verify(how: str) -> None:
    doc = checkpoint_of(build(LOG))
    _tamper(doc, how)
    with pytest.raises(AuditError) as caught:
        read_checkpoint(doc)
    assert caught.value.code == "W-AUD-005"


def test_a_checkpoint_signed_by_another_key_fails_against_the_pinned_key() -> None:
    doc = checkpoint_of(build(LOG), key=OTHER)
    assert read_checkpoint(doc).key_id == OTHER.key_id  # intact, but signed by someone else
    with pytest.raises(AuditError) as caught:
        read_checkpoint(doc, public_key=KEY.public_key_b64)
    assert caught.value.code == "W-AUD-005"
    assert OTHER.key_id in caught.value.message and KEY.key_id in caught.value.message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b"{not json", ":1: not JSON"),
        (b'{\n"v": 1,\n"at": }', ":3: not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"v":1}', "expected exactly the keys"),
    ],
    ids=["not json", "line of the error", "a list", "missing keys"],
)
def test_a_malformed_checkpoint_file_is_unreadable(tmp_path: Path, text: bytes, words: str) -> None:
    path = tmp_path / "cp.json"
    path.write_bytes(text)
    with pytest.raises(AuditError) as caught:
        read_checkpoint(path)
    assert caught.value.code == "W-AUD-007"
    assert str(path) in caught.value.message and words in caught.value.message


@pytest.mark.parametrize(
    ("field", "value"),
    [("v", 2), ("seq", "6"), ("seq", True), ("streams", []), ("at", "now")],
)
def test_a_checkpoint_with_wrong_types_is_unreadable(field: str, value: Any) -> None:
    doc = checkpoint_of(build(LOG))
    doc[field] = value
    with pytest.raises(AuditError, match="W-AUD-007"):
        read_checkpoint(doc)


def test_a_missing_checkpoint_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="W-AUD-007"):
        read_checkpoint(tmp_path / "none.json")


# --- the log against a checkpoint ------------------------------------------------------


def test_a_log_that_matches_its_checkpoint_verifies_and_says_so() -> None:
    rows = build(LOG)
    checkpoint = read_checkpoint(checkpoint_of(rows))
    assert verify_rows(rows, checkpoint=checkpoint).checkpoint_checked
    more = build([*LOG, ("agent:b", "later")])
    assert verify_rows(more, checkpoint=checkpoint).checkpoint_checked


@settings(max_examples=100, deadline=None)
@given(log=entries, data=st.data())
def test_a_truncated_log_is_caught_against_the_checkpoint(
    log: list[tuple[str, Any]], data: st.DataObject
) -> None:
    rows = build(log)
    checkpoint = read_checkpoint(checkpoint_of(rows))
    keep = data.draw(st.integers(0, len(rows) - 1), label="rows kept")
    _, error = failure(rows[:keep], checkpoint=checkpoint)
    assert error.code == "W-AUD-004"
    first_lost = min(h.seq for h in checkpoint.streams.values() if h.seq > keep)
    assert error.seq == first_lost
    assert f"ends at record {keep}" in error.message


@settings(max_examples=100, deadline=None)
@given(log=entries, data=st.data())
def test_a_rewritten_chain_verifies_alone_but_differs_from_the_checkpoint(
    log: list[tuple[str, Any]], data: st.DataObject
) -> None:
    rows = build(log)
    checkpoint = read_checkpoint(checkpoint_of(rows))
    i = data.draw(st.integers(0, len(log) - 1), label="edited")
    edited = list(log)
    edited[i] = (log[i][0], {"edited": log[i][1]})
    forged = build(edited)  # every hash recomputed after the edit
    assert verify_rows(forged).records == len(rows)

    index, error = failure(forged, checkpoint=checkpoint)
    head = checkpoint.streams[log[i][0]]
    assert (error.code, error.seq, error.stream, index) == (
        "W-AUD-006",
        head.seq,
        head.stream,
        head.seq - 1,
    )
    assert head.hash in error.message


def test_a_stream_the_log_lacks_entirely_is_truncation() -> None:
    rows = build(LOG)
    checkpoint = read_checkpoint(checkpoint_of(rows))
    _, error = failure(rows[:2], checkpoint=checkpoint)
    assert (error.code, error.seq, error.stream) == ("W-AUD-004", 3, "agent:b")
    assert error.message == (
        "the checkpoint signed at 2026-01-01T09:00:00.500000Z saw agent:b up to #1 (record 3), "
        "but the log holds no record of agent:b and ends at record 2"
    )


def test_verifying_after_a_checkpoint_starts_from_its_heads() -> None:
    rows = build([*LOG, ("agent:b", 2), ("agent:c", 3)])
    checkpoint = read_checkpoint(checkpoint_of(rows[:6]))
    report = verify_rows(rows[6:], first_seq=7, start=checkpoint.streams, checkpoint=checkpoint)
    assert (report.records, report.last_seq, report.checkpoint_checked) == (2, 8, True)
    wrong = dict(checkpoint.streams)
    wrong["agent:a"] = verify_rows(rows[:2]).streams["agent:a"]
    _, error = failure(rows[6:], first_seq=7, start=wrong, checkpoint=checkpoint)
    assert error.code == "W-AUD-004"


# --- the signing key on disk -------------------------------------------------------------


def test_a_saved_key_is_private_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "audit-signing.key"
    KEY.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = SigningKey.load(path)
    assert loaded.key_id == KEY.key_id
    assert loaded.sign(b"x") == KEY.sign(b"x")  # Ed25519 signatures are deterministic


def test_saving_never_overwrites_a_key(tmp_path: Path) -> None:
    path = tmp_path / "audit-signing.key"
    KEY.save(path)
    with pytest.raises(FileExistsError):
        OTHER.save(path)
    assert SigningKey.load(path).key_id == KEY.key_id


def test_load_or_create_creates_once(tmp_path: Path) -> None:
    path = tmp_path / ".warden" / "audit-signing.key"
    created, was_created = SigningKey.load_or_create(path)
    loaded, again = SigningKey.load_or_create(path)
    assert (was_created, again) == (True, False)
    assert created.key_id == loaded.key_id


@pytest.mark.parametrize(
    "content",
    [None, b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
    ids=["missing", "garbage", "bad pem"],
)
def test_a_missing_or_unreadable_key_is_unavailable(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "audit-signing.key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AuditError) as caught:
        SigningKey.load(path)
    assert caught.value.code == "W-AUD-008"
    assert str(path) in caught.value.message


def test_a_key_of_another_algorithm_is_unavailable(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "ec.key"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(AuditError, match="not Ed25519"):
        SigningKey.load(path)


def test_the_public_key_file_reads_back_as_the_raw_key(tmp_path: Path) -> None:
    path = tmp_path / "audit-signing.pub"
    KEY.save_public(path)
    assert path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert read_public_key(path) == KEY.public_key_b64
    bare = tmp_path / "bare.pub"
    bare.write_text(KEY.public_key_b64 + "\n")
    assert read_public_key(bare) == KEY.public_key_b64
    bare.write_text("not a key")
    with pytest.raises(AuditError, match="W-AUD-007"):
        read_public_key(bare)


def test_a_checkpoint_document_is_json_ready() -> None:
    doc = checkpoint_of(build(LOG))
    assert json.loads(canonical_json(doc)) == doc
