"""The format is pinned, and the package docstring is enough to verify a log."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import warden.audit
from tests.audit.logs import Row
from warden.audit import Chain, SigningKey, export_line, make_checkpoint, verify_rows
from warden.canonical import canonical_json

PINNED = [
    (
        b'{"at":1767258000.0,"data":{"revision":"sha256:ab"},"kind":"config_loaded","seq":1,'
        b'"stream":"system","stream_seq":1,"v":1}',
        "780f59ea4b64a18a25840a1a5a8191f3af72043e42264df5105b03db450f0455",
    ),
    (
        b'{"at":1767258001.5,"data":{"args":{"card":{"$redacted":"card","commitment":"sha256:00"}},'
        b'"outcome":"allow","tool":"create_refund"},"kind":"decision","seq":2,'
        b'"stream":"agent:support_refund_agent","stream_seq":1,"v":1}',
        "3d297d6c967030cbbcbc1a1de77f9eda85d41d9803e08b601aeac4279cf6b1f7",
    ),
    (
        b'{"at":1767258002.25,"data":{"ok":true},"kind":"executed","seq":3,'
        b'"stream":"agent:support_refund_agent","stream_seq":2,"v":1}',
        "07ca933d1eda90c82b9e3a3376f5a8317ec8b32f52007c904c60bd366492bac4",
    ),
]


def pinned_log() -> list[Row]:
    chain = Chain()
    card = {"$redacted": "card", "commitment": "sha256:00"}
    return [
        chain.append(
            "system", 1767258000.0, "config_loaded", canonical_json({"revision": "sha256:ab"})
        ).as_tuple(),
        chain.append(
            "agent:support_refund_agent",
            1767258001.5,
            "decision",
            canonical_json({"tool": "create_refund", "outcome": "allow", "args": {"card": card}}),
        ).as_tuple(),
        chain.append(
            "agent:support_refund_agent", 1767258002.25, "executed", canonical_json({"ok": True})
        ).as_tuple(),
    ]


def test_record_bytes_and_hashes_are_pinned() -> None:
    assert [(body, digest.hex()) for _, _, _, body, digest in pinned_log()] == PINNED


def test_an_auditor_can_verify_an_export_from_the_docstring_alone() -> None:
    # Only hashlib and json here, as the package docstring describes the format.
    export = b"".join(export_line(*row) for row in pinned_log())
    heads: dict[str, bytes] = {}
    for number, line in enumerate(export.splitlines(), start=1):
        body = line[line.index(b',"record":') + len(b',"record":') : -1]
        meta = json.loads(line)
        record = meta["record"]
        assert (record["seq"], record["stream"], record["stream_seq"]) == (
            number,
            meta["stream"],
            meta["stream_seq"],
        )
        prev = (
            heads.get(meta["stream"])
            or hashlib.sha256(b"warden-audit-v1\x00" + meta["stream"].encode()).digest()
        )
        digest = hashlib.sha256(prev + body).digest()
        assert digest.hex() == meta["hash"]
        heads[meta["stream"]] = digest
    assert warden.audit.__doc__ is not None
    assert 'sha256(b"warden-audit-v1\\x00" +' in warden.audit.__doc__
    assert ',"seq":<n>,"stream":"<stream>","stream_seq":<k>,"v":1}' in warden.audit.__doc__


def test_an_auditor_can_check_a_checkpoint_signature_from_the_docstring_alone() -> None:
    key = SigningKey.generate()
    report = verify_rows(pinned_log())
    doc = make_checkpoint(streams=report.streams, last_seq=report.last_seq, at=1.0, key=key)
    raw_key = base64.b64decode(doc["public_key"])
    assert doc["key_id"] == hashlib.sha256(raw_key).hexdigest()[:16]
    payload = {k: v for k, v in doc.items() if k not in {"public_key", "signature"}}
    signed = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    Ed25519PublicKey.from_public_bytes(raw_key).verify(
        base64.b64decode(doc["signature"]), signed.encode()
    )
    assert doc["streams"]["system"] == {"seq": 1, "stream_seq": 1, "hash": PINNED[0][1]}


def test_the_public_api_is_pinned() -> None:
    assert set(warden.audit.__all__) == {
        "AuditRow",
        "Chain",
        "ChainState",
        "Checkpoint",
        "Redactor",
        "Removed",
        "Report",
        "SigningKey",
        "StreamHead",
        "commitment",
        "compose",
        "detect",
        "export_line",
        "genesis",
        "key_id",
        "link",
        "make_checkpoint",
        "opens",
        "read_checkpoint",
        "read_export",
        "read_public_key",
        "verify_rows",
    }
    for name in warden.audit.__all__:
        assert hasattr(warden.audit, name), name
