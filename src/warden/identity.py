"""Who is calling: agent API keys and operator tokens.

A key is ``wdn_<kind>_<id>_<secret>``: ``kind`` is ``ag`` (an agent's key) or ``op`` (an
operator's token), ``id`` names the stored record and ``secret`` is 32 random bytes in
URL-safe base64. Only ``sha256(secret)`` is stored: the secret has 256 bits of entropy, so
a slow password hash would add latency to every request and no strength.

An agent key is scoped to one agent and, optionally, a subset of its tools; it can call
the decision API only, as that agent. An operator token carries roles: ``viewer`` reads
runs, actions, approvals and the audit log; ``approver:<role>`` also gives verdicts for
that approval role; ``admin`` may do everything, including the kill switch, policy
reload and keys. No agent key can approve anything or call the admin API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from warden.errors import AuthError

__all__ = [
    "ApiKey",
    "KeyKind",
    "Principal",
    "authenticate",
    "hash_secret",
    "new_key",
    "parse_token",
    "role_ok",
]

_TOKEN = re.compile(r"^wdn_(ag|op)_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_ROLE = re.compile(r"^(viewer|admin|approver:[A-Za-z0-9_.-]{1,64})$")


class KeyKind(StrEnum):
    AGENT = "agent"
    OPERATOR = "operator"


_PREFIX = {KeyKind.AGENT: "ag", KeyKind.OPERATOR: "op"}


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiKey:
    """A stored key: never the secret, only its hash."""

    id: str
    kind: KeyKind
    name: str
    """The agent's name (agent keys) or the operator's (operator tokens)."""
    secret_hash: str
    """``sha256(secret)``, hex."""
    created_at: float
    created_by: str
    tools: frozenset[str] | None = None
    """Agent keys: the tools it may propose (None: all the agent's tools)."""
    roles: frozenset[str] = frozenset()
    """Operator tokens: ``viewer``, ``approver:<role>``, ``admin``."""
    expires_at: float | None = None
    revoked_at: float | None = None
    revoked_by: str | None = None
    replaces: str | None = None
    """The key this one rotated, if any."""

    def status(self, now: float) -> str:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, kw_only=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    kind: KeyKind
    name: str
    key_id: str
    tools: frozenset[str] | None = None
    roles: frozenset[str] = field(default_factory=frozenset[str])

    @property
    def label(self) -> str:
        """How audit records name the caller: ``agent:<name>`` or ``operator:<name>``."""
        return f"{self.kind.value}:{self.name}"

    @property
    def approver_roles(self) -> frozenset[str]:
        """The approval roles this operator holds (``approver:<role>``)."""
        return frozenset(r.split(":", 1)[1] for r in self.roles if r.startswith("approver:"))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def new_key(
    kind: KeyKind,
    name: str,
    *,
    created_at: float,
    created_by: str,
    tools: Iterable[str] | None = None,
    roles: Iterable[str] = (),
    expires_at: float | None = None,
    replaces: str | None = None,
) -> tuple[ApiKey, str]:
    """A new key record and the token to hand over (shown once, never stored)."""
    role_set = frozenset(roles)
    for role in role_set:
        if not _ROLE.match(role):
            raise AuthError(
                "W-AUTH-006",
                f"unknown role {role!r}: use viewer, admin or approver:<approval role>",
            )
    if kind is KeyKind.OPERATOR and not role_set:
        raise AuthError("W-AUTH-006", "an operator token needs at least one role (--role)")
    if kind is KeyKind.AGENT and role_set:
        raise AuthError("W-AUTH-006", "agent keys carry no roles; scope them with --tool")
    if expires_at is not None and expires_at <= created_at:
        raise AuthError("W-AUTH-006", "the expiry is not in the future")
    # 10 bytes are 16 base32 characters, no padding; 12 of them (60 bits) name the key
    key_id = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()[:12]
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    record = ApiKey(
        id=key_id,
        kind=kind,
        name=name,
        secret_hash=hash_secret(secret),
        created_at=created_at,
        created_by=created_by,
        tools=frozenset(tools) if tools is not None else None,
        roles=role_set,
        expires_at=expires_at,
        replaces=replaces,
    )
    return record, f"wdn_{_PREFIX[kind]}_{key_id}_{secret}"


def parse_token(token: str) -> tuple[KeyKind, str, str]:
    """``(kind, key id, secret)`` of a token; W-AUTH-001 if it is not one."""
    m = _TOKEN.match(token)
    if m is None:
        raise AuthError("W-AUTH-001", "the credentials are not a Warden key (wdn_...)")
    kind = KeyKind.AGENT if m.group(1) == "ag" else KeyKind.OPERATOR
    return kind, m.group(2), m.group(3)


def authenticate(token: str, stored: ApiKey | None, now: float) -> Principal:
    """The principal a token proves, given the stored record for its id."""
    kind, key_id, secret = parse_token(token)
    if (
        stored is None
        or stored.kind is not kind
        or not hmac.compare_digest(stored.secret_hash, hash_secret(secret))
    ):
        raise AuthError("W-AUTH-002", f"key {key_id} is not known, or its secret is wrong")
    status = stored.status(now)
    if status == "revoked":
        raise AuthError("W-AUTH-004", f"key {key_id} was revoked")
    if status == "expired":
        raise AuthError("W-AUTH-003", f"key {key_id} expired")
    return Principal(
        kind=stored.kind,
        name=stored.name,
        key_id=stored.id,
        tools=stored.tools,
        roles=stored.roles,
    )


def role_ok(principal: Principal, need: str) -> bool:
    """Whether an operator holds `need`: ``viewer`` (any operator role reads),
    ``approver`` (any approver role) or ``admin``."""
    if principal.kind is not KeyKind.OPERATOR:
        return False
    roles = principal.roles
    if "admin" in roles:
        return True
    if need == "viewer":
        return bool(roles)
    if need == "approver":
        return any(r.startswith("approver:") for r in roles)
    return need in roles
