"""Signed checkpoints: an Ed25519 signature over every stream's head at one moment.

A checkpoint kept outside the database (or published) anchors the log: whoever rewrites
the chain after it, or cuts off its tail, cannot make the log match it again without the
private key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warden.audit.verify import StreamHead
from warden.canonical import canonical_json
from warden.errors import AuditError

__all__ = [
    "Checkpoint",
    "SigningKey",
    "key_id",
    "make_checkpoint",
    "read_checkpoint",
    "read_public_key",
]

_DOC_KEYS = frozenset({"v", "at", "seq", "key_id", "streams", "public_key", "signature"})
_HEAD_KEYS = frozenset({"seq", "stream_seq", "hash"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PUBLIC_PEM = b"-----BEGIN PUBLIC KEY-----"


def key_id(public_key: bytes) -> str:
    """The first 16 hex digits of sha256 of a raw 32-byte public key."""
    return hashlib.sha256(public_key).hexdigest()[:16]


class SigningKey:
    """The Ed25519 private key that signs checkpoints."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SigningKey:
        """Read a PEM PKCS8 private key; W-AUD-008 when it is missing or unreadable."""
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise AuditError(
                "W-AUD-008", f"cannot read the signing key {path}: {exc.strerror or exc}"
            ) from exc
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise AuditError(
                "W-AUD-008", f"{path} is not an unencrypted PEM PKCS8 private key"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditError("W-AUD-008", f"{path} holds a private key that is not Ed25519")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> tuple[SigningKey, bool]:
        """Load the key at `path`, or create it there; True when it was created."""
        if Path(path).exists():
            return cls.load(path), False
        key = cls.generate()
        try:
            key.save(path)
        except FileExistsError:  # another process created it meanwhile: use theirs
            return cls.load(path), False
        return key, True

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key as PEM PKCS8 with mode 0600; never overwrites a file.

        Raises FileExistsError when `path` exists.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            with os.fdopen(fd, "wb", closefd=False) as handle:
                handle.write(pem)
            os.fsync(fd)
        except BaseException:
            target.unlink(missing_ok=True)  # never leave half a key behind
            raise
        finally:
            os.close(fd)

    def save_public(self, path: str | os.PathLike[str]) -> None:
        """Write the public key as PEM (SubjectPublicKeyInfo), for verifiers to pin."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        target.write_bytes(pem)

    @property
    def public_key_b64(self) -> str:
        """The raw 32-byte public key, base64."""
        return base64.b64encode(self._public).decode("ascii")

    @property
    def key_id(self) -> str:
        """The first 16 hex digits of sha256 of the raw public key."""
        return key_id(self._public)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `data`."""
        return self._key.sign(data)


def read_public_key(path: str | os.PathLike[str]) -> str:
    """The raw public key (base64) from a file `save_public` wrote, or a bare base64 line."""
    try:
        text = Path(path).read_bytes().strip()
    except OSError as exc:
        raise AuditError(
            "W-AUD-007", f"cannot read the public key file {path}: {exc.strerror or exc}"
        ) from exc
    try:
        if text.startswith(_PUBLIC_PEM):
            key = serialization.load_pem_public_key(text)
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        else:
            raw = base64.b64decode(text, validate=True)
            Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise AuditError(
            "W-AUD-007",
            f"{path}:1: not an Ed25519 public key (PEM, or 32 bytes in base64)",
        ) from exc
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, kw_only=True, slots=True)
class Checkpoint:
    """A checkpoint whose signature verified."""

    at: float
    """When it was signed (seconds since the epoch)."""
    last_seq: int
    """The global sequence number of the last record it covers."""
    streams: dict[str, StreamHead]
    """Every stream's last record at that moment."""
    key_id: str
    """Which key signed it (see `key_id`)."""
    public_key: str
    """The raw public key that verified it, base64."""


def make_checkpoint(
    *, streams: Mapping[str, StreamHead], last_seq: int, at: float, key: SigningKey
) -> dict[str, Any]:
    """The JSON-ready checkpoint document: its signed payload, the public key, the signature.

    The signature is over ``canonical_json`` of the payload ``{"v", "at", "seq", "key_id",
    "streams"}``; write the document with `canonical_json` too.
    """
    for name, head in streams.items():
        if head.stream != name or head.seq > last_seq or not _HEX64.fullmatch(head.hash):
            raise ValueError(f"bad head for stream {name!r}: {head}")
    payload: dict[str, Any] = {
        "v": 1,
        "at": at,
        "seq": last_seq,
        "key_id": key.key_id,
        "streams": {
            name: {"seq": h.seq, "stream_seq": h.stream_seq, "hash": h.hash}
            for name, h in sorted(streams.items())
        },
    }
    signature = key.sign(canonical_json(payload))
    return {
        **payload,
        "public_key": key.public_key_b64,
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def read_checkpoint(
    doc_or_path: Mapping[str, Any] | str | os.PathLike[str], *, public_key: str | None = None
) -> Checkpoint:
    """Parse a checkpoint and verify its signature.

    With `public_key` (base64, pinned by the verifier) the document must carry that key;
    without it, the key embedded in the document is used, which proves only that the
    document is intact. Malformed: W-AUD-007. Signature or key wrong: W-AUD-005.
    """
    if isinstance(doc_or_path, Mapping):
        doc: Any = doc_or_path
        source = "checkpoint document"
    else:
        source = str(doc_or_path)
        doc = _load_json(source)
    checkpoint = _parse(doc, source)
    signature = _b64(doc["signature"], "signature", source, size=64)
    embedded = _b64(checkpoint.public_key, "public key", source, size=32)
    if public_key is not None:
        pinned = _b64(public_key, "pinned public key", source, size=32)
        if pinned != embedded:
            raise AuditError(
                "W-AUD-005",
                f"{source}: signed by key {key_id(embedded)}, not by the pinned key "
                f"{key_id(pinned)}",
            )
    if key_id(embedded) != checkpoint.key_id:
        raise AuditError(
            "W-AUD-005",
            f"{source}: names key {checkpoint.key_id} but carries key {key_id(embedded)}",
        )
    payload = {k: doc[k] for k in ("v", "at", "seq", "key_id", "streams")}
    try:
        Ed25519PublicKey.from_public_bytes(embedded).verify(signature, canonical_json(payload))
    except (InvalidSignature, ValueError) as exc:
        raise AuditError(
            "W-AUD-005", f"{source}: the signature does not verify with key {checkpoint.key_id}"
        ) from exc
    return checkpoint


def _load_json(path: str) -> Any:
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise AuditError(
            "W-AUD-007", f"cannot read the checkpoint {path}: {exc.strerror or exc}"
        ) from exc
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else 1
        raise AuditError("W-AUD-007", f"{path}:{line}: not JSON ({exc})") from exc


def _b64(text: Any, what: str, source: str, *, size: int) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError, binascii.Error):
        raw = b""
    if len(raw) != size:
        raise AuditError("W-AUD-005", f"{source}: the {what} is not {size} bytes of base64")
    return raw


def _parse(doc: Any, source: str) -> Checkpoint:
    def bad(why: str) -> AuditError:
        return AuditError("W-AUD-007", f"{source}: not a Warden checkpoint: {why}")

    if not isinstance(doc, Mapping):
        raise bad("not a JSON object")
    fields = cast("Mapping[str, Any]", doc)
    if frozenset(fields) != _DOC_KEYS:
        raise bad(f"expected exactly the keys {', '.join(sorted(_DOC_KEYS))}")
    if fields["v"] != 1 or type(fields["v"]) is not int:
        raise bad(f"unknown version {fields['v']!r}")
    at, last_seq, kid = fields["at"], fields["seq"], fields["key_id"]
    if type(at) not in (int, float) or type(last_seq) is not int or last_seq < 0:
        raise bad("`at` must be a number and `seq` a count")
    if type(kid) is not str or type(fields["public_key"]) is not str:
        raise bad("`key_id` and `public_key` must be strings")
    if type(fields["signature"]) is not str:
        raise bad("`signature` must be a string")
    if not isinstance(fields["streams"], Mapping):
        raise bad("`streams` must be a mapping")
    streams: dict[str, StreamHead] = {}
    seen: set[int] = set()
    for name, head in cast("Mapping[str, Any]", fields["streams"]).items():
        if (
            not isinstance(head, Mapping)
            or frozenset(cast("Mapping[str, Any]", head)) != _HEAD_KEYS
        ):
            raise bad(f"stream {name!r} must hold exactly seq, stream_seq and hash")
        entry = cast("Mapping[str, Any]", head)
        seq, stream_seq, digest = entry["seq"], entry["stream_seq"], entry["hash"]
        if type(seq) is not int or type(stream_seq) is not int or type(digest) is not str:
            raise bad(f"stream {name!r}: seq and stream_seq must be integers, hash a string")
        if not 1 <= stream_seq <= seq <= last_seq or seq in seen or not _HEX64.fullmatch(digest):
            raise bad(f"stream {name!r}: impossible head (seq {seq}, #{stream_seq})")
        seen.add(seq)
        streams[name] = StreamHead(stream=name, stream_seq=stream_seq, seq=seq, hash=digest)
    return Checkpoint(
        at=float(at),
        last_seq=last_seq,
        streams=streams,
        key_id=kid,
        public_key=fields["public_key"],
    )
