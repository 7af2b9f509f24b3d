"""Errors as HTTP answers: one JSON shape, a fitting status, never a traceback or HTML.

Every error the server answers is::

    {"error": {"code": "W-...", "message": "...", "hint": "..."}}

(plus ``file`` and ``line`` for a broken configuration file). The status comes from the
code: 401 for missing or bad credentials, 403 for a key without the right, 400/413/422
for a request the server cannot read, 404, 409 for a conflict with stored state, 503
(with ``Retry-After``) when the server is overloaded or its store cannot be written:
decisions fail closed, nothing executes.
"""

from __future__ import annotations

import json
from typing import Any

from warden.errors import CODES, ConfigError, WardenError

__all__ = [
    "AUDITED",
    "RETRY_AFTER_S",
    "encode",
    "error_body",
    "error_headers",
    "internal_error",
    "is_audited",
    "status_of",
]

RETRY_AFTER_S = 1
"""What ``Retry-After`` says on a 503: come back in a second."""

_EXACT: dict[str, int] = {
    "W-AUTH-005": 403,
    "W-AUTH-006": 400,
    "W-API-001": 400,
    "W-API-002": 413,
    "W-API-003": 400,
    "W-API-004": 422,
    "W-API-005": 503,
    "W-API-006": 404,
    "W-API-007": 500,
    "W-APR-003": 403,
    "W-APR-006": 403,
    "W-APR-008": 404,
    "W-RUN-001": 404,
    "W-GATE-001": 400,
}
_FAMILY: dict[str, int] = {
    "W-AUTH": 401,
    "W-STO": 503,
    "W-IDM": 409,
    "W-APR": 409,
    "W-EXE": 409,
}

AUDITED = frozenset({"W-API-001", "W-API-002", "W-API-003", "W-API-004", "W-API-006"})
"""Refusals recorded as ``api.rejected`` audit records, besides every W-AUTH code and the
approval verdicts refused for the caller's identity or role (W-APR-003, -005, -006)."""
_AUDITED_VERDICTS = frozenset({"W-APR-003", "W-APR-005", "W-APR-006"})


def status_of(code: str) -> int:
    """The HTTP status an error with `code` is answered with."""
    found = _EXACT.get(code)
    if found is not None:
        return found
    family = code.rsplit("-", 1)[0]
    if family in _FAMILY:
        return _FAMILY[family]
    if code in CODES and code.startswith(("W-POL", "W-CFG", "W-PRJ", "W-MAN", "W-TOOL")):
        return 422  # a configuration file on disk cannot be loaded (policy reload)
    return 400


def is_audited(code: str) -> bool:
    """Whether a refusal with `code` is written to the audit log (``api.rejected``)."""
    return code.startswith("W-AUTH") or code in AUDITED or code in _AUDITED_VERDICTS


def encode(value: Any) -> bytes:
    """A response body: compact JSON, UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


def error_body(exc: WardenError) -> bytes:
    """The JSON body for `exc`."""
    inner: dict[str, Any] = {"code": exc.code, "message": exc.message, "hint": exc.hint}
    if isinstance(exc, ConfigError) and exc.file is not None:
        inner["message"] = f"{exc.location}: {exc.message}"
        inner["file"] = exc.file
        inner["line"] = exc.line
    return encode({"error": inner})


def error_headers(code: str) -> list[tuple[bytes, bytes]]:
    """Extra headers for an error: ``Retry-After`` on a 503, ``WWW-Authenticate`` on a 401."""
    status = status_of(code)
    if status == 503:
        return [(b"retry-after", str(RETRY_AFTER_S).encode("ascii"))]
    if status == 401:
        return [(b"www-authenticate", b'Bearer realm="warden"')]
    return []


def internal_error() -> WardenError:
    """What an unexpected fault is answered with (details go to the server's log only)."""
    return WardenError("W-API-007", "the server hit an unexpected fault while answering")
