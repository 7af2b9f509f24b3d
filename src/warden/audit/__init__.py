"""The audit log: append-only, hash-chained, redacted before hashing, signed at checkpoints.

This docstring is the format, for an auditor checking a log without Warden's code.

**Records.** Each record is one canonical JSON object (sorted keys, no spaces, UTF-8,
`warden.canonical.canonical_json`)::

    {"at":<unix seconds>,"data":{...},"kind":"<what happened>","seq":<n>,
     "stream":"<stream>","stream_seq":<k>,"v":1}

`seq` numbers every record of the log 1, 2, 3 ... with no gaps. Records belong to one
*stream* each: ``agent:<name>`` for everything one agent did, ``system`` for configuration
loads and kill switch flips. `stream_seq` numbers the records of one stream 1, 2, 3 ...

**The chain.** A record's hash is ``sha256(prev + body)`` over the raw bytes, where `body`
is the record's exact canonical bytes and `prev` is the 32-byte hash of the previous record
*of the same stream*. A stream's first record has ``prev = sha256(b"warden-audit-v1\\x00" +
stream name in UTF-8)`` (its *genesis*), so a record cannot be moved into another stream
and still link. A database stores rows ``(seq, stream, stream_seq, body, hash)``;
`verify_rows` recomputes every hash, checks both numberings, and checks that each row's
columns are the ones its body carries (every body ends with
``,"seq":<n>,"stream":"<stream>","stream_seq":<k>,"v":1}``).

**Redaction.** Before a record is hashed, values that must not be kept are replaced by
``{"$redacted": "<kind>", "commitment": "sha256:<hex>"}``: the values of fields a policy
names (kind ``field``) and strings in which a detector finds a card number (Luhn), an IBAN
(mod 97), an email address, a phone number or a secret (kind ``card``, ``iban``,
``email``, ``phone``, ``secret``). The commitment is ``sha256(salt + canonical_json(value))``
with 16 random salt bytes kept apart from the log: whoever holds the salt and the value can
prove what was removed (`opens`); the marker alone does not reveal it. The log stays
verifiable, because the markers are what was hashed.

**Checkpoints.** A checkpoint is a JSON document signed with Ed25519::

    {"v":1,"at":<unix seconds>,"seq":<last seq>,"key_id":"<16 hex>",
     "streams":{"<stream>":{"seq":<n>,"stream_seq":<k>,"hash":"<hex>"}, ...},
     "public_key":"<base64 raw 32 bytes>","signature":"<base64 64 bytes>"}

The signature covers the canonical JSON of the document without `public_key` and
`signature`; `key_id` is the first 16 hex digits of sha256 of the raw public key. Verify
against the public key the operator published (pinned), not the embedded one. A log that
lacks a position a checkpoint signed was truncated (W-AUD-004); one whose record there has
another hash was rewritten (W-AUD-006).

**Exports.** One line per record,
``{"seq":<n>,"stream":"<stream>","stream_seq":<k>,"hash":"<hex>","record":<body>}``,
with the body's bytes embedded verbatim as the last member, so its hash can be checked on
the bytes in the file.
"""

from warden.audit.chain import AuditRow, Chain, ChainState, compose, genesis, link
from warden.audit.checkpoint import (
    Checkpoint,
    SigningKey,
    key_id,
    make_checkpoint,
    read_checkpoint,
    read_public_key,
)
from warden.audit.export import export_line, read_export
from warden.audit.redact import Redactor, Removed, commitment, detect, opens
from warden.audit.verify import Report, StreamHead, verify_rows

__all__ = [
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
]
