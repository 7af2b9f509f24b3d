"""Redaction: what the detectors find and what they must leave alone, and the markers."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from itertools import count
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.audit.logs import build, json_values
from warden.audit import Redactor, Removed, commitment, detect, opens, verify_rows
from warden.audit.redact import _found, _scan, _screen, _Walk  # pyright: ignore[reportPrivateUsage]
from warden.canonical import canonical_json

FOUND = [
    ("card", "4111 1111 1111 1111"),
    ("card", "4111-1111-1111-1111"),
    ("card", "4111111111111111"),
    ("card", "my card is 5500 0000 0000 0004."),
    ("card", "378282246310005"),
    ("card", "3782 822463 10005"),
    ("card", "6011111111111117"),
    ("card", "2221000000000009"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("iban", "GB82WEST12345698765432"),
    ("iban", "pay to FR14 2004 1010 0505 0001 3M02 606 today"),
    ("iban", "NO9386011117947"),
    ("iban", "DE89370400440532013000 EUR"),
    ("email", "jane.doe@example.com"),
    ("email", "write to a.b+tag@mail.example.co.uk please"),
    ("phone", "+1 415 555 2671"),
    ("phone", "+14155552671"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "+1 (415) 555-2671"),
    ("phone", "(415) 555-2671"),
    ("phone", "415-555-2671"),
    ("phone", "415.555.2671"),
    ("phone", "020 7946 0958"),
    ("phone", "06 12 34 56 78"),
    ("phone", "+33 6 12 34 56 78"),
    ("phone", "call 030 123456 after nine"),
    ("secret", "sk-proj-abcdefghijklmnop1234567890"),
    ("secret", "sk-ant-api03-abcdefghij0123456789"),
    ("secret", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("secret", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
    ("secret", "rk_live_51H8abcdefghij"),
    ("secret", "AKIAIOSFODNN7EXAMPLE"),
    ("secret", "ASIAIOSFODNN7EXAMPLE"),
    ("secret", "token ghp_" + "a1B2" * 9),
    ("secret", "gho_" + "a1B2" * 9),
    ("secret", "ghs_" + "a1B2" * 9),
    ("secret", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop"),
    ("secret", "xoxb-1234567890-abcdefghij"),
    ("secret", "xoxp-1234567890-abcdefghij"),
    ("secret", "AIzaSyD-abcdefghijklmnopqrstuvwxyz12345"),
    ("secret", "glpat-abcdefghij0123456789"),
    ("secret", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"),
    ("secret", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----"),
    ("secret", "-----BEGIN OPENSSH PRIVATE KEY-----"),
]

LEFT_ALONE = [
    ("sha256 fingerprint", "3f2a9c0d" * 8),
    ("sha256 of digits", "1234567890" * 6 + "abcd"),
    ("revision", "sha256:" + "0123456789abcdef" * 4),
    ("revision of digits", "sha256:" + "1234567890" * 6 + "abcd"),
    ("run id uuid4 hex", "run_3f2a9c0d8e7b4a1f9c2d3e4f5a6b7c8d"),
    ("run id of digits", "run_4111111111111111"),
    ("counted run id", "run_000123"),
    ("iso timestamp", "2026-01-01T09:00:00+00:00"),
    ("iso timestamp with micros", "2026-01-01T09:00:00.123456+00:00"),
    ("timestamp with a space", "2026-01-01 09:00:00"),
    ("amount", "49.99"),
    ("big amount", "1234567.89"),
    ("integer", "12345"),
    ("epoch seconds", "1767258000"),
    ("epoch millis", "1767258000123"),
    ("uuid", "123e4567-e89b-12d3-a456-426614174000"),
    ("uuid of digits", "12345678-1234-5678-1234-567812345678"),
    ("file:line", "policies/refunds.yaml:12"),
    ("error code", "W-AUD-001"),
    ("version", "v1.2.3"),
    ("ipv4", "192.168.100.200"),
    ("ipv4 with port", "10.0.0.1:8080"),
    ("dashed words", "task-force-abcdefghijklmnopqrstu"),
    ("sk- without digits", "sk-learn-is-a-library-name"),
    ("no domain", "user@localhost"),
    ("card failing luhn", "4111 1111 1111 1112"),
    ("card digits failing luhn", "5500000000000005"),
    ("iban failing mod 97", "DE89 3704 0044 0532 0130 01"),
    ("iban with wrong length", "DE89370400440532013"),
    ("iban of unknown country", "ZZ89370400440532013000"),
    ("short digits", "call 555 2671"),
    ("marker", "sha256:4111111111111111" + "a" * 48),
]


@pytest.mark.parametrize(("kind", "text"), FOUND, ids=[f"{k}: {t[:30]}" for k, t in FOUND])
def test_detectors_find(kind: str, text: str) -> None:
    assert detect(text) == kind
    redacted, removed = Redactor().redact({"note": text})
    assert redacted == {"note": {"$redacted": kind, "commitment": removed[0].commitment}}
    assert (removed[0].path, removed[0].kind, removed[0].value) == ("note", kind, text)


@pytest.mark.parametrize(("what", "text"), LEFT_ALONE, ids=[w for w, _ in LEFT_ALONE])
def test_detectors_leave_alone(what: str, text: str) -> None:
    assert _scan(text) is None
    data = {"value": text}
    assert Redactor().redact(data) == (data, [])


def test_nothing_to_remove_returns_the_input_itself() -> None:
    data = {"a": ["x", {"b": 1.5}], "c": (None, True), "d": "damaged on arrival"}
    redacted, removed = Redactor().redact(data, frozenset({"absent", "a.9"}))
    assert redacted is data and removed == []
    assert Redactor().redact(data)[0] is data


def test_only_the_containers_on_the_way_are_copied_and_the_input_is_untouched() -> None:
    data = {"args": {"card": "4111111111111111", "n": 1}, "other": {"x": [1, 2]}, "t": ("a", "b")}
    before = copy.deepcopy(data)
    redacted, _ = Redactor().redact(data)
    assert data == before
    assert redacted["other"] is data["other"] and redacted["t"] is data["t"]
    assert redacted["args"] is not data["args"] and redacted["args"]["n"] == 1


def test_named_fields_go_at_any_depth_whatever_their_value() -> None:
    salts = count()
    redactor = Redactor(salt=lambda n: next(salts).to_bytes(n, "big"))
    data = {
        "card_number": "not even a number",
        "args": {"card_number": {"nested": [1]}, "items": [{"card_number": None}, "ok"]},
    }
    redacted, removed = redactor.redact(data, frozenset({"card_number"}))
    assert [(r.path, r.kind, r.value) for r in removed] == [
        ("card_number", "field", "not even a number"),
        ("args.card_number", "field", {"nested": [1]}),
        ("args.items.0.card_number", "field", None),
    ]
    assert redacted["args"]["items"][1] == "ok"
    for r in removed:
        assert r.commitment == commitment(r.salt, r.value)
        assert len(r.salt) == 16
    assert redacted["card_number"] == {"$redacted": "field", "commitment": removed[0].commitment}


def test_dotted_paths_name_one_place_and_list_indexes_are_numbers() -> None:
    data = {"args": {"note": "a", "items": ["keep", "drop"]}, "note": "b"}
    redacted, removed = Redactor().redact(data, frozenset({"args.note", "args.items.1"}))
    assert [r.path for r in removed] == ["args.note", "args.items.1"]
    assert redacted["note"] == "b" and redacted["args"]["items"][0] == "keep"


def test_keys_are_never_redacted() -> None:
    data = {"jane.doe@example.com": "x", "4111111111111111": {"AKIAIOSFODNN7EXAMPLE": 1}}
    assert Redactor().redact(data) == (data, [])


def test_detected_strings_are_found_in_lists_tuples_and_at_the_top() -> None:
    redacted, removed = Redactor().redact(["ok", ("a", "jane@example.com")])
    assert [r.path for r in removed] == ["1.1"]
    assert isinstance(redacted[1], tuple) and redacted[1][0] == "a"
    top, removed = Redactor().redact("+44 20 7946 0958")
    assert top["$redacted"] == "phone" and removed[0].path == ""


def test_detectors_can_be_switched_off() -> None:
    data = {"email": "jane@example.com"}
    assert Redactor(detectors=False).redact(data) == (data, [])
    redacted, _ = Redactor(detectors=False).redact(data, frozenset({"email"}))
    assert redacted["email"]["$redacted"] == "field"


def test_a_commitment_opens_with_its_salt_and_value_only() -> None:
    salt = bytes(range(16))
    marker = {"$redacted": "card", "commitment": commitment(salt, "4111111111111111")}
    assert marker["commitment"] == (
        "sha256:" + hashlib.sha256(salt + b'"4111111111111111"').hexdigest()
    )
    assert opens(marker, salt, "4111111111111111")
    assert not opens(marker, salt, "4111111111111112")
    assert not opens(marker, bytes(16), "4111111111111111")
    assert not opens({"commitment": marker["commitment"]}, salt, "4111111111111111")
    assert not opens("not a marker", salt, "4111111111111111")


def test_the_same_value_gets_another_commitment_under_another_salt() -> None:
    _, first = Redactor().redact({"e": "jane@example.com"})
    _, second = Redactor().redact({"e": "jane@example.com"})
    assert first[0].commitment != second[0].commitment


def test_a_log_of_redacted_records_verifies_and_its_markers_open() -> None:
    redactor = Redactor()
    records: list[dict[str, Any]] = [
        {"tool": "create_refund", "args": {"card": "4111 1111 1111 1111", "amount": "49.99"}},
        {"tool": "email", "args": {"to": "jane@example.com", "body": "hello"}},
        {"tool": "noop", "args": {}},
    ]
    log: list[tuple[str, Any]] = []
    removed_all: list[list[Removed]] = []
    for record in records:
        redacted, removed = redactor.redact(record, frozenset({"body"}))
        log.append(("agent:a", redacted))
        removed_all.append(removed)
    rows = build(log)
    assert verify_rows(rows).records == 3
    assert b"4111" not in rows[0][3] and b"jane" not in rows[1][3] and b"hello" not in rows[1][3]
    marker = log[0][1]["args"]["card"]
    (card,) = removed_all[0]
    assert opens(marker, card.salt, "4111 1111 1111 1111")
    assert not opens(marker, card.salt, "4111 1111 1111 1112")


# --- properties ----------------------------------------------------------------------

SECRETS = st.sampled_from([text for _, text in FOUND])
NEAR_MISSES = st.text(alphabet="0123456789 -.()+@_:ABDEGKSIzaskrghpxobl", max_size=40)


@settings(max_examples=200, deadline=None)
@given(text=NEAR_MISSES | st.tuples(NEAR_MISSES, SECRETS, NEAR_MISSES).map("".join))
def test_the_screen_passes_everything_a_detector_would_find(text: str) -> None:
    if _scan(text) is not None:
        assert _screen(text)
        assert detect(text) == _scan(text)


@settings(max_examples=150, deadline=None)
@given(data=json_values, secret=SECRETS, where=st.randoms(use_true_random=False))
def test_redaction_never_changes_its_input_and_leaves_nothing_to_find(
    data: Any, secret: str, where: Any
) -> None:
    holder: dict[str, Any] = {"data": data, "list": [data]}
    spot = holder
    for _ in range(where.randint(0, 3)):
        spot = spot.setdefault(f"k{where.randint(0, 2)}", {})
    spot["planted"] = secret
    before = canonical_json(holder)

    redacted, removed = Redactor().redact(holder)
    assert canonical_json(holder) == before
    assert any(r.value == secret for r in removed)
    again, more = Redactor().redact(redacted)
    assert (again, more) == (redacted, [])
    for r in removed:
        assert opens({"$redacted": r.kind, "commitment": r.commitment}, r.salt, r.value)


@settings(max_examples=300, deadline=None)
@given(text=NEAR_MISSES | st.tuples(NEAR_MISSES, SECRETS, NEAR_MISSES).map("".join) | st.text())
def test_the_screen_of_many_texts_at_once_points_at_each_text_the_screen_passes(
    text: str,
) -> None:
    texts = [text, "x", text[::-1], "sha256:" + text, "", text.upper(), "a\x00" + text]
    assert _found(texts) == {t: k for t in texts if (k := detect(t)) is not None}


def _counting_salts() -> Any:
    salts = count()
    return lambda n: next(salts).to_bytes(n, "big")


FIELD_SETS = st.frozensets(
    st.sampled_from(["card", "k0", "k1", "planted", "data", "list.0", "data.k0", "", "0"]),
    max_size=3,
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in cast("dict[Any, Any]", value).values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in cast("list[Any]", value):
            yield from _strings(v)


def _redact_each_string(
    data: Any, fields: frozenset[str], *, detectors: bool
) -> tuple[Any, list[Any]]:
    """The reference: every string run through `detect` on its own, then the walk."""
    found = {t: k for t in _strings(data) if (k := detect(t)) is not None} if detectors else {}
    names = frozenset(f for f in fields if "." not in f)
    paths = frozenset(f for f in fields if "." in f)
    walk = _Walk(found=found, salt=_counting_salts(), names=names, paths=paths)
    return walk.value(data, ()), walk.removed


@settings(max_examples=300, deadline=None)
@given(
    data=json_values,
    secret=SECRETS,
    where=st.randoms(use_true_random=False),
    fields=FIELD_SETS,
    detectors=st.booleans(),
)
def test_redaction_gives_exactly_what_the_walk_that_screens_each_string_gives(
    data: Any, secret: str, where: Any, fields: frozenset[str], detectors: bool
) -> None:
    holder: dict[str, Any] = {"data": data, "list": [data, ("t", secret)], "card": "x"}
    spot = holder
    for _ in range(where.randint(0, 3)):
        spot = spot.setdefault(f"k{where.randint(0, 2)}", {})
    spot["planted"] = secret if where.random() < 0.7 else data
    fast = Redactor(detectors=detectors, salt=_counting_salts()).redact(holder, fields)
    slow = _redact_each_string(holder, fields, detectors=detectors)
    assert fast == slow
    assert canonical_json(fast[0]) == canonical_json(slow[0])
    assert (fast[0] is holder) == (slow[0] is holder)


def test_salts_are_16_fresh_random_bytes_each_time() -> None:
    _, removed = Redactor().redact({"e": ["jane@example.com"] * 600})
    salts = {r.salt for r in removed}
    assert len(salts) == 600 and all(len(s) == 16 for s in salts)
