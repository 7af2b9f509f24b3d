"""Redaction before hashing: what must not be kept is replaced by a salted commitment.

A removed value becomes ``{"$redacted": kind, "commitment": "sha256:<hex>"}``, where the
commitment is ``sha256(salt + canonical_json(value))``. The log keeps the marker and never
the value; whoever holds the salt and the value can later prove what was there (`opens`),
and nobody can guess a short value back from the marker without the salt.

Two things are removed: the values of named fields, and any string in which a detector
finds a card number, an IBAN, an email address, a phone number or a secret. All the strings
of a record are screened at once first (a byte translation, two substring tests and one
literal-prefix regex over their concatenation, all in C): the detectors' regexes and
validators (Luhn, mod 97 ...) run only when the screen hits.

When the screen passes the record, the segments of the screened text it hits name the
few strings to run through `detect`: the walk that rebuilds looks each string up in what
they found instead of screening it again.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from warden.canonical import canonical_json

__all__ = ["DETECTORS", "Redactor", "Removed", "commitment", "detect", "opens"]

SALT_BYTES = 16


@dataclass(frozen=True, kw_only=True, slots=True)
class Removed:
    """A value taken out of a record, and what is needed to prove it later."""

    path: str
    """Where it was: dotted keys, list indexes as numbers (``args.items.0.card``)."""
    kind: str
    """``field`` for a named field, else the detector's name (``card``, ``email`` ...)."""
    commitment: str
    """``sha256:<hex>`` of salt + canonical_json(value), as the marker holds it."""
    salt: bytes
    """The 16 random bytes mixed into the commitment; keep them apart from the log."""
    value: Any
    """The original JSON value."""


def commitment(salt: bytes, value: Any) -> str:
    """``sha256:<hex>`` of `salt` followed by the canonical JSON of `value`."""
    return "sha256:" + hashlib.sha256(salt + canonical_json(value)).hexdigest()


def opens(marker: Any, salt: bytes, value: Any) -> bool:
    """Whether `marker` (a redaction marker from a record) commits to `value` under `salt`."""
    if not isinstance(marker, Mapping):
        return False
    fields = cast("Mapping[str, Any]", marker)
    held = fields.get("commitment")
    if type(held) is not str or "$redacted" not in fields:
        return False
    return hmac.compare_digest(held.encode(), commitment(salt, value).encode())


# --- detectors --------------------------------------------------------------------------


def _luhn(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# IBAN length by country (ISO 13616 registry).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def _iban(text: str) -> bool:
    size = _IBAN_LENGTHS.get(text[:2])
    if size is None:
        return False
    # The match may run on into a following word ("... 3000 EUR"): the IBAN is its first
    # `size` characters, and they must end where a group ends.
    compact: list[str] = []
    for i, c in enumerate(text):
        if c != " ":
            compact.append(c)
            if len(compact) == size:
                if i + 1 < len(text) and text[i + 1] != " ":
                    return False
                break
    if len(compact) != size or not compact[2].isdigit() or not compact[3].isdigit():
        return False
    iban = "".join(compact[4:] + compact[:4])
    return int("".join(str(int(c, 36)) for c in iban)) % 97 == 1


def _phone(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    if not 9 <= digits <= 15:
        return False
    groups = re.split(r"[^\d]+", text.strip("+()"))
    # an IPv4 address, or a decimal amount, is not a phone number
    return not (
        "." in text
        and not text.startswith("+")
        and (len(groups) < 3 or (len(groups) == 4 and all(len(g) <= 3 for g in groups)))
    )


def _secret(text: str) -> bool:
    if text.startswith("-----BEGIN"):
        return True
    tail = text.split("-", 1)[1] if text.startswith("sk-") else text
    return any(c.isdigit() for c in tail) and any(c.isalpha() for c in tail)


def _always(text: str) -> bool:
    return True


# Each branch starts with a literal or a class, its lookbehind after it: so the regex engine
# skips ahead to a possible first character instead of trying every branch at every place.
_KEY_PATTERNS = (
    r"sk(?<![\w-]sk)(?:-[A-Za-z0-9_-]{20,}|_(?:live|test)_[A-Za-z0-9]{10,})"
    r"|rk(?<![\w-]rk)_(?:live|test)_[A-Za-z0-9]{10,}"
    r"|A(?<![A-Za-z0-9]A)(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])"
    r"|gh(?<![\w-]gh)[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_(?<![\w-]github_pat_)[A-Za-z0-9_]{22,}"
    r"|xox(?<![\w-]xox)[abpr]-[A-Za-z0-9-]{10,}"
    r"|AIza(?<![\w-]AIza)[0-9A-Za-z_-]{35}"
    r"|glpat-(?<![\w-]glpat-)[A-Za-z0-9_-]{20,}"
    r"|-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
)
# 13-19 digits, spaces or dashes between, starting like a real card (2-6); the lookarounds
# keep it from matching inside a longer run of digits or a word.
_CARD = r"[2-6](?<![\w+.][2-6])(?<!\d[ -][2-6])\d{3}(?:[ -]?\d){9,15}(?!\w|[ -]\d|\.\d)"
_IBAN = r"[A-Z](?<![A-Za-z0-9_][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]){11,30}"
_EMAIL = r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_PHONE = (
    r"(?<![\w+])\+[1-9](?:[ .()-]{0,2}\d){7,16}(?![\w]|[ .()-]{0,2}\d)"
    r"|(?<![\w+./:-])\(?\d{2,5}\)?(?:[ .-]\d{2,8}){1,4}(?![\w/:]|[ .-]?\d)"
)

DETECTORS: tuple[tuple[str, re.Pattern[str], Callable[[str], bool]], ...] = (
    ("secret", re.compile(_KEY_PATTERNS), _secret),
    ("card", re.compile(_CARD), _luhn),
    ("iban", re.compile(_IBAN), _iban),
    ("email", re.compile(_EMAIL), _always),
    ("phone", re.compile(_PHONE), _phone),
)
"""(name, candidate pattern, validator), in the order they are tried."""

# A necessary condition for every detector above, cheap to test: after separators are
# dropped, 9 digits in a row (cards, phones) or two capitals and two digits (an IBAN's
# start); or an @, or a secret's prefix. A property test holds it to being implied by every
# detector's hit. A few C passes over the text instead of a regex trying each position.
_SHAPE = bytes.maketrans(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"0" * 10 + b"A" * 26)
_SEPARATORS = b" ().-"
_ANCHORS = re.compile(
    r"@|sk[-_]|rk_|gh[pousr]_|github_pat_|xox[abpr]-|glpat-|AKIA|ASIA|AIza|-----BEGIN "
)
_SHORTEST = 6  # "a@b.co": no detector finds anything in a shorter string


def _screen(text: str) -> bool:
    shape = text.encode("utf-8", "surrogatepass").translate(_SHAPE, _SEPARATORS)
    return b"000000000" in shape or b"AA00" in shape or _ANCHORS.search(text) is not None


def _scan(text: str) -> str | None:
    for name, pattern, valid in DETECTORS:
        for match in pattern.finditer(text):
            if valid(match.group()):
                return name
    return None


def detect(text: str) -> str | None:
    """The name of the first detector that finds something in `text`, or None."""
    if len(text) < _SHORTEST or not _screen(text):
        return None
    return _scan(text)


def _is_container(value: object) -> bool:
    kind = type(value)
    return (
        kind is dict
        or kind is list
        or (kind not in _SCALARS and isinstance(value, Mapping | list | tuple))
    )


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _survey(value: Any, texts: list[str], names: frozenset[str]) -> bool:
    """Collect the string values under `value` (not its keys) into `texts`, to be screened
    in one go; True when a mapping on the way has a key in `names`."""
    named = False
    if type(value) is dict or (type(value) is not list and isinstance(value, Mapping)):
        mapping = cast("Mapping[Any, Any]", value)
        named = bool(names) and not names.isdisjoint(mapping)
        items: Iterable[Any] = mapping.values()
    else:
        items = cast("Iterable[Any]", value)
    for item in items:
        if type(item) is str:
            texts.append(item)
        elif _is_container(item):
            named = _survey(item, texts, names) or named
    return named


def _may_hold(data: object, firsts: frozenset[str]) -> bool:
    """Whether a dotted path starting with one of `firsts` may lead into `data`."""
    if isinstance(data, Mapping):
        return not firsts.isdisjoint(cast("Mapping[Any, Any]", data))
    return isinstance(data, list | tuple)


@functools.lru_cache(maxsize=256)
def _split(fields: frozenset[str]) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Key names, dotted paths, and the first key of each dotted path."""
    names = frozenset(f for f in fields if "." not in f)
    paths = fields - names
    return names, paths, frozenset(p.split(".", 1)[0] for p in paths)


def _found(texts: list[str]) -> dict[str, str]:
    """What the detectors find in `texts`: string -> detector name.

    The screen of `_screen` runs once over all of them, joined by NULs (which no hit
    spans, and which the shape keeps, so the n-th segment of the shape is the shape of the
    n-th text, unless a text holds a NUL itself); only the texts it hits go on to
    `detect`."""
    joined = "\x00".join(texts)
    if joined.count("\x00") != len(texts) - 1:  # a text holds a NUL: screen one by one
        return {t: kind for t in texts if (kind := detect(t)) is not None}
    shape = joined.encode("utf-8", "surrogatepass").translate(_SHAPE, _SEPARATORS)
    hit: set[int] = set()
    for needle in (b"000000000", b"AA00"):
        at = shape.find(needle)
        while at >= 0:
            hit.add(shape.count(b"\x00", 0, at))
            end = shape.find(b"\x00", at)
            at = shape.find(needle, end) if end >= 0 else -1
    for match in _ANCHORS.finditer(joined):
        hit.add(joined.count("\x00", 0, match.start()))
    found: dict[str, str] = {}
    for i in hit:
        kind = detect(texts[i])
        if kind is not None:
            found[texts[i]] = kind
    return found


class _SaltPool:
    """Random bytes from `os.urandom`, drawn 4 KiB at a time (one system call, one release
    of the GIL per 256 salts instead of per salt); a forked child draws its own."""

    __slots__ = ("_at", "_buffer", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0

    def __call__(self, size: int) -> bytes:
        with self._lock:
            at = self._at
            if at + size > len(self._buffer):
                self._buffer, at = os.urandom(max(4096, size)), 0
            self._at = at + size
            return self._buffer[at : at + size]

    def forget(self) -> None:
        self._buffer, self._at = b"", 0


_salts = _SaltPool()
os.register_at_fork(after_in_child=_salts.forget)


# --- the walk ---------------------------------------------------------------------------

_Where = tuple[str | int, ...]


class Redactor:
    """Takes fields and detected values out of JSON data, leaving markers behind."""

    __slots__ = ("_detectors", "_salt")

    def __init__(self, *, detectors: bool = True, salt: Callable[[int], bytes] = _salts) -> None:
        self._detectors = detectors
        self._salt = salt
        """Where salts come from: 16 bytes from the operating system's random source."""

    def redact(self, data: Any, fields: frozenset[str] = frozenset()) -> tuple[Any, list[Removed]]:
        """A copy of `data` with the values removed, and what was removed.

        `fields` holds key names (removed at any depth) and dotted paths (``args.card``).
        Keys themselves are never removed. The input is never changed; when nothing is
        removed it comes back as it is, not copied.
        """
        names, paths, firsts = _split(fields)
        # One pass to look: the strings, screened at once, and the keys. Most records
        # stop here; the walk that rebuilds runs only when something may be removed, and
        # looks up each string in what the screen and the detectors found.
        texts: list[str] = []
        named = _survey((data,), texts, names)
        found = _found(texts) if self._detectors and texts else {}
        pathed = bool(paths) and _may_hold(data, firsts)
        if not (named or found or pathed):
            return data, []
        walk = _Walk(found=found, salt=self._salt, names=names, paths=paths)
        return walk.value(data, ()), walk.removed


class _Walk:
    """One redaction: rebuilds only the containers on the way to something removed.

    A string is removed when `found` (what `_found` found: string -> detector) names it."""

    __slots__ = ("_detectors", "_found", "_names", "_paths", "_salt", "removed")

    def __init__(
        self,
        *,
        found: Mapping[str, str],
        salt: Callable[[int], bytes],
        names: frozenset[str],
        paths: frozenset[str],
    ) -> None:
        self._found = found
        self._detectors = bool(found)
        self._salt = salt
        self._names = names
        self._paths = paths
        self.removed: list[Removed] = []

    def value(self, value: Any, where: _Where) -> Any:
        if type(value) is str:
            kind = self._found.get(value)
            return value if kind is None else self._remove(where, kind, value)
        if type(value) is dict or (type(value) is not list and isinstance(value, Mapping)):
            return self._mapping(cast("Mapping[Any, Any]", value), where)
        if isinstance(value, list | tuple):
            return self._sequence(cast("list[Any] | tuple[Any, ...]", value), where)
        return value

    def _mapping(self, obj: Mapping[Any, Any], where: _Where) -> Mapping[Any, Any]:
        copy: dict[Any, Any] | None = None
        names, paths = self._names, self._paths
        for key, value in obj.items():
            if key in names or (paths and _dotted((*where, key)) in paths):
                new = self._remove((*where, key), "field", value)
            elif _is_container(value) or (type(value) is str and self._detectors):
                new = self.value(value, (*where, key))
            else:
                continue
            if new is not value:
                if copy is None:
                    copy = dict(obj)
                copy[key] = new
        return obj if copy is None else copy

    def _sequence(
        self, seq: list[Any] | tuple[Any, ...], where: _Where
    ) -> list[Any] | tuple[Any, ...]:
        copy: list[Any] | None = None
        paths = self._paths
        for i, value in enumerate(seq):
            if paths and _dotted((*where, i)) in paths:
                new = self._remove((*where, i), "field", value)
            elif _is_container(value) or (type(value) is str and self._detectors):
                new = self.value(value, (*where, i))
            else:
                continue
            if new is not value:
                if copy is None:
                    copy = list(seq)
                copy[i] = new
        if copy is None:
            return seq
        return copy if isinstance(seq, list) else tuple(copy)

    def _remove(self, where: _Where, kind: str, value: Any) -> dict[str, str]:
        salt = self._salt(SALT_BYTES)
        held = commitment(salt, value)
        self.removed.append(
            Removed(path=_dotted(where), kind=kind, commitment=held, salt=salt, value=value)
        )
        return {"$redacted": kind, "commitment": held}


def _dotted(where: _Where) -> str:
    return ".".join(map(str, where))
