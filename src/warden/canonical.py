"""The one canonical JSON: sorted keys, no spaces, UTF-8. Every hash in Warden uses it.

A snapshot test pins the exact bytes, so the audit format cannot drift silently.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "canonical_text", "content_hash"]

_encoder = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)


def canonical_json(value: Any) -> bytes:
    """Encode `value` as canonical JSON bytes.

    NaN and infinities are refused (they have no JSON form); keys must be strings.
    """
    return _encoder.encode(value).encode("utf-8")


def canonical_text(value: Any) -> str:
    """`canonical_json` before its UTF-8 encoding: ``canonical_json(v) ==
    canonical_text(v).encode("utf-8")`` (which also refuses a lone surrogate)."""
    return _encoder.encode(value)


def content_hash(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of `value`."""
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()
