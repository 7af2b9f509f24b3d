"""The server's settings: one value, built once at the edge (`warden serve`'s options)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServerSettings"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerSettings:
    """How one server process behaves. Every limit has a safe default."""

    host: str = "127.0.0.1"
    """The address to listen on (loopback by default: nothing outside the machine)."""
    port: int = 8787
    """The port to listen on."""
    max_inflight: int = 256
    """Requests handled at once; one more is answered 503 W-API-005 with Retry-After at
    once, never queued without bound and never let through unchecked."""
    max_body: int = 1 << 20
    """Largest request body, in bytes (413 W-API-002 beyond)."""
    max_depth: int = 32
    """Deepest nesting of objects and arrays in a body (400 W-API-003 beyond)."""
    body_timeout_s: float = 10.0
    """How long a request's body may take to arrive (400 W-API-001 after): a client that
    sends its headers and then stalls would otherwise hold an in-flight slot forever."""
    key_cache_s: float = 1.0
    """How long a key's stored record is reused before it is read again: a revocation
    takes effect on every replica within this time."""
    threads: int = 64
    """Threads that make the blocking store calls (and run tools for /v1/execute), so
    the event loop never waits for a commit."""
    log_level: str = "info"
    """uvicorn's log level."""
    access_log: bool = False
    """Log every request (off by default: it costs more than a decision)."""

    def __post_init__(self) -> None:
        for name in ("max_inflight", "max_body", "max_depth", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.body_timeout_s <= 0:
            raise ValueError("body_timeout_s must be positive")
        if self.key_cache_s < 0 or self.key_cache_s > 1.0:
            raise ValueError("key_cache_s must be between 0 and 1 second")
