"""Who is calling: bearer tokens checked against the stored keys, with a short cache.

A key's record is read from the store at most once per `ttl_s` (one second by default)
per process, so a revocation, an expiry moved by a rotation or a new key takes effect on
every replica sharing the database within that time, and the decision path pays for a
store read only once a second per key. The cache holds stored records (hashes, never a
secret); the token's secret is hashed and compared on every request.
"""

from __future__ import annotations

import threading
import time

from warden.clock import Clock
from warden.errors import AuthError
from warden.identity import ApiKey, KeyKind, Principal, authenticate, parse_token
from warden.store.protocol import DurableStore

__all__ = ["KeyRing", "bearer_token", "key_id_of", "require_agent"]

_MAX_ENTRIES = 10_000


def bearer_token(header: bytes | str | None) -> str:
    """The token of an ``Authorization: Bearer ...`` header; W-AUTH-001 without one."""
    if header is None:
        raise AuthError("W-AUTH-001", "the request has no Authorization header")
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    scheme, _, token = text.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("W-AUTH-001", "the Authorization header is not `Bearer <key>`")
    return token.strip()


def key_id_of(header: bytes | str | None) -> str | None:
    """The key id a (possibly bad) Authorization header names, for audit records."""
    try:
        return parse_token(bearer_token(header))[1]
    except AuthError:
        return None


def require_agent(principal: Principal, agent: str, tool: str | None) -> None:
    """Refuse (W-AUTH-005) unless `principal` is an agent key for `agent` whose scope
    holds `tool`."""
    if principal.kind is not KeyKind.AGENT:
        raise AuthError(
            "W-AUTH-005", "operator tokens cannot propose tool calls; use the agent's key"
        )
    if principal.name != agent:
        raise AuthError(
            "W-AUTH-005",
            f"key {principal.key_id} belongs to agent {principal.name!r}; it cannot act as "
            f"{agent!r}",
        )
    if tool is not None and principal.tools is not None and tool not in principal.tools:
        raise AuthError(
            "W-AUTH-005",
            f"key {principal.key_id} is not scoped to tool {tool!r} "
            f"(it may use {', '.join(sorted(principal.tools)) or 'no tool'})",
        )


class KeyRing:
    """Authenticates tokens against `store`, caching key records for `ttl_s` seconds."""

    def __init__(self, store: DurableStore, clock: Clock, *, ttl_s: float = 1.0) -> None:
        self.store = store
        self.clock = clock
        self.ttl_s = ttl_s
        self._records: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> Principal | None:
        """The principal `token` proves, from the cache alone; None when the key's record
        is not cached (or is stale): then call `authenticate`, off the event loop.

        Raises AuthError when the token is malformed or the cached record refuses it."""
        key_id = parse_token(token)[1]
        entry = self._records.get(key_id)
        if entry is None or time.monotonic() - entry[0] >= self.ttl_s:
            return None
        return authenticate(token, entry[1], self.clock.timestamp())

    def authenticate(self, token: str) -> Principal:
        """The principal `token` proves; reads the key's record from the store when the
        cache has no fresh one. Raises AuthError (W-AUTH-001..004)."""
        key_id = parse_token(token)[1]
        now = time.monotonic()
        entry = self._records.get(key_id)
        if entry is None or now - entry[0] >= self.ttl_s:
            entry = (now, self.store.key(key_id))
            with self._lock:
                if len(self._records) >= _MAX_ENTRIES:
                    self._records = {
                        k: v for k, v in self._records.items() if now - v[0] < self.ttl_s
                    }
                self._records[key_id] = entry
        return authenticate(token, entry[1], self.clock.timestamp())

    def forget(self) -> None:
        """Drop every cached record (after this process changed keys)."""
        with self._lock:
            self._records = {}
