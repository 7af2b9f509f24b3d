"""The billing backend of the support-desk example: its own SQLite file, stdlib only.

Kestrel Keys is a small online shop for mechanical keyboards and desk gear. Its billing
database holds customers (with a tier and maybe a chargeback), orders, invoices, refunds
and the replies sent to tickets. The desk's tools and fact providers talk to it through
`Billing`, which opens one connection per call, so it is safe to use from any thread.

Refunds behave like a payment processor's: an idempotency key makes a retry return the
first refund (the UNIQUE column guarantees it, even against a racing writer), and a
refund may never take an order past what was paid for it. One customer, `cus_slowpay`,
sits behind a slow processor: the refund hangs for a few seconds before it is written.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from warden import Clock, SystemClock

__all__ = [
    "DB_ENV",
    "SLOW_CUSTOMERS",
    "SLOW_ENV",
    "Billing",
    "Customer",
    "Invoice",
    "Order",
    "Refund",
    "RefundRejected",
    "Reply",
    "UnknownRecord",
    "default_path",
    "open_billing",
    "seed",
]

DB_ENV = "SUPPORT_DESK_BILLING_DB"
"""Environment variable naming the billing database file."""
SLOW_ENV = "SUPPORT_DESK_SLOW_SECONDS"
"""Environment variable: how long the slow processor hangs (default 3 seconds)."""
SLOW_CUSTOMERS = frozenset({"cus_slowpay"})
"""Customers whose refunds go through the processor that hangs."""


class UnknownRecord(LookupError):
    """No customer, order or refund with that id."""


class RefundRejected(Exception):
    """The backend refused a refund: over the order's balance, wrong customer, reused key."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Customer:
    id: str
    name: str
    email: str
    tier: str
    """standard, pro or enterprise."""
    chargeback_at: str | None
    """ISO date of the customer's latest chargeback, if they ever filed one."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Order:
    id: str
    customer_id: str
    item: str
    amount_usd: float
    placed_at: str
    status: str
    """processing, shipped, delivered or cancelled."""
    refunded_usd: float
    """What was refunded so far (reversed refunds not counted)."""

    @property
    def refundable_usd(self) -> float:
        """What may still be refunded."""
        return _dollars(_cents(self.amount_usd) - _cents(self.refunded_usd))


@dataclass(frozen=True, kw_only=True, slots=True)
class Invoice:
    id: str
    customer_id: str
    order_id: str
    amount_usd: float
    status: str
    """paid or open."""
    issued_at: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Refund:
    id: str
    order_id: str
    customer_id: str
    amount_usd: float
    reason: str
    method: str
    """original_payment or store_credit."""
    idempotency_key: str
    created_at: str
    reversed_at: str | None = None
    """When the refund was reversed (compensated), if it was."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Reply:
    id: str
    ticket_id: str
    body: str
    status: str
    """draft or sent."""
    idempotency_key: str
    created_at: str


SCHEMA = """
CREATE TABLE customers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    tier          TEXT NOT NULL CHECK (tier IN ('standard', 'pro', 'enterprise')),
    chargeback_at TEXT
);
CREATE TABLE orders (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    item        TEXT NOT NULL,
    amount_usd  REAL NOT NULL CHECK (amount_usd > 0),
    placed_at   TEXT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('processing', 'shipped', 'delivered', 'cancelled'))
);
CREATE TABLE invoices (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    order_id    TEXT NOT NULL REFERENCES orders (id),
    amount_usd  REAL NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('paid', 'open')),
    issued_at   TEXT NOT NULL
);
CREATE TABLE refunds (
    id              TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL REFERENCES orders (id),
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    amount_usd      REAL NOT NULL CHECK (amount_usd > 0),
    reason          TEXT NOT NULL,
    method          TEXT NOT NULL CHECK (method IN ('original_payment', 'store_credit')),
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    reversed_at     TEXT
);
CREATE TABLE replies (
    id              TEXT PRIMARY KEY,
    ticket_id       TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('draft', 'sent')),
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX orders_by_customer ON orders (customer_id);
CREATE INDEX invoices_by_customer ON invoices (customer_id);
CREATE INDEX refunds_by_order ON refunds (order_id);
"""


def _cents(usd: float) -> int:
    return round(usd * 100)


def _dollars(cents: int) -> float:
    return cents / 100


class Billing:
    """The billing database at `path` (seeded on first use if the file is missing)."""

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Clock | None = None,
        slow_seconds: float = 3.0,
    ) -> None:
        self.path = Path(path)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.slow_seconds = slow_seconds
        """How long a refund for a customer in `SLOW_CUSTOMERS` hangs before it is written."""
        if not self.path.exists():
            _seed_if_missing(self.path, self.clock.now().date())

    @contextlib.contextmanager
    def _connect(self) -> Generator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=15.0, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self) -> Generator[sqlite3.Connection]:
        """A write transaction that takes the database's write lock at once."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _now(self) -> str:
        return self.clock.now().isoformat(timespec="seconds")

    # --- reads ------------------------------------------------------------------------------

    def customer(self, customer_id: str) -> Customer:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM customers WHERE id = ?", (customer_id,)).fetchone()
        if row is None:
            raise UnknownRecord(f"no customer {customer_id!r}")
        return Customer(**dict(row))

    def chargeback_within(self, customer_id: str, days: int = 180) -> bool:
        """True when the customer's latest chargeback is at most `days` days old."""
        at = self.customer(customer_id).chargeback_at
        if at is None:
            return False
        return date.fromisoformat(at) >= self.clock.now().date() - timedelta(days=days)

    def order(self, order_id: str) -> Order:
        with self._connect() as conn:
            return self._order(conn, order_id)

    def _order(self, conn: sqlite3.Connection, order_id: str) -> Order:
        row = conn.execute(
            "SELECT o.*, (SELECT COALESCE(SUM(r.amount_usd), 0) FROM refunds r "
            "WHERE r.order_id = o.id AND r.reversed_at IS NULL) AS refunded_usd "
            "FROM orders o WHERE o.id = ?",
            (order_id,),
        ).fetchone()
        if row is None:
            raise UnknownRecord(f"no order {order_id!r}")
        data = dict(row)
        data["refunded_usd"] = _dollars(_cents(data["refunded_usd"]))
        return Order(**data)

    def orders(self, customer_id: str) -> list[Order]:
        with self._connect() as conn:
            ids = conn.execute(
                "SELECT id FROM orders WHERE customer_id = ? ORDER BY placed_at DESC, id",
                (customer_id,),
            ).fetchall()
            return [self._order(conn, r["id"]) for r in ids]

    def invoices(self, customer_id: str) -> list[Invoice]:
        """The customer's invoices, newest first."""
        self.customer(customer_id)  # an unknown customer is an error, not an empty list
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM invoices WHERE customer_id = ? ORDER BY issued_at DESC, id",
                (customer_id,),
            ).fetchall()
        return [Invoice(**dict(r)) for r in rows]

    def refunds_for(self, order_id: str) -> list[Refund]:
        with self._connect() as conn:
            return _refunds(conn, order_id)

    def refund_by_key(self, idempotency_key: str) -> Refund | None:
        with self._connect() as conn:
            return _refund_by_key(conn, idempotency_key)

    def replies(self, ticket_id: str) -> list[Reply]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM replies WHERE ticket_id = ? ORDER BY rowid", (ticket_id,)
            ).fetchall()
        return [Reply(**dict(r)) for r in rows]

    # --- writes -----------------------------------------------------------------------------

    def create_refund(
        self,
        *,
        order_id: str,
        customer_id: str,
        amount_usd: float,
        reason: str,
        method: str,
        idempotency_key: str,
    ) -> Refund:
        """Refund part or all of an order, once per idempotency key.

        The same key returns the refund it first made (with other arguments it is
        refused). A refund that would take the order's refunds past its amount is
        refused, whatever the key: that is what stops a second ticket about the same
        order from refunding it again.
        """
        if customer_id in SLOW_CUSTOMERS:
            time.sleep(self.slow_seconds)  # the processor hangs, then goes through anyway
        request = (order_id, customer_id, _cents(amount_usd), reason, method)
        with self._write() as conn:
            first = _refund_by_key(conn, idempotency_key)
            if first is not None:
                return _same_request(first, request)
            order = self._order(conn, order_id)
            if order.customer_id != customer_id:
                raise RefundRejected(f"order {order_id} does not belong to {customer_id}")
            if _cents(amount_usd) > _cents(order.refundable_usd):
                earlier = ", ".join(r.id for r in _refunds(conn, order_id)) or "none"
                raise RefundRejected(
                    f"refund of ${amount_usd:.2f} exceeds what is left on order {order_id}: "
                    f"${order.refundable_usd:.2f} of ${order.amount_usd:.2f} "
                    f"(${order.refunded_usd:.2f} refunded already; earlier refunds: {earlier})"
                )
            refund_id = _next_id(conn, "refunds", "re")
            try:
                conn.execute(
                    "INSERT INTO refunds (id, order_id, customer_id, amount_usd, reason, method,"
                    " idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        refund_id,
                        order_id,
                        customer_id,
                        _dollars(_cents(amount_usd)),
                        reason,
                        method,
                        idempotency_key,
                        self._now(),
                    ),
                )
            except sqlite3.IntegrityError:
                # the key's UNIQUE constraint: another writer got there first
                first = _refund_by_key(conn, idempotency_key)
                if first is None:
                    raise
                return _same_request(first, request)
            created = _refund_by_key(conn, idempotency_key)
        assert created is not None
        return created

    def reverse_refund(self, refund_id: str) -> Refund:
        """Reverse a refund (the money comes back); reversing it again changes nothing."""
        with self._write() as conn:
            row = conn.execute("SELECT * FROM refunds WHERE id = ?", (refund_id,)).fetchone()
            if row is None:
                raise UnknownRecord(f"no refund {refund_id!r}")
            if row["reversed_at"] is None:
                conn.execute(
                    "UPDATE refunds SET reversed_at = ? WHERE id = ?", (self._now(), refund_id)
                )
            found = conn.execute("SELECT * FROM refunds WHERE id = ?", (refund_id,)).fetchone()
        return Refund(**dict(found))

    def save_reply(self, *, ticket_id: str, body: str, status: str, idempotency_key: str) -> Reply:
        """Save a reply to a ticket as a draft or as sent, once per idempotency key."""
        if status not in ("draft", "sent"):
            raise ValueError(f"a reply is a draft or sent, not {status!r}")
        with self._write() as conn:
            first = _reply_by_key(conn, idempotency_key)
            if first is None:
                conn.execute(
                    "INSERT INTO replies (id, ticket_id, body, status, idempotency_key,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        _next_id(conn, "replies", "rp"),
                        ticket_id,
                        body,
                        status,
                        idempotency_key,
                        self._now(),
                    ),
                )
                first = _reply_by_key(conn, idempotency_key)
        assert first is not None
        return first


def _refunds(conn: sqlite3.Connection, order_id: str) -> list[Refund]:
    rows = conn.execute(
        "SELECT * FROM refunds WHERE order_id = ? ORDER BY rowid", (order_id,)
    ).fetchall()
    return [Refund(**dict(r)) for r in rows]


def _refund_by_key(conn: sqlite3.Connection, key: str) -> Refund | None:
    row = conn.execute("SELECT * FROM refunds WHERE idempotency_key = ?", (key,)).fetchone()
    return Refund(**dict(row)) if row is not None else None


def _reply_by_key(conn: sqlite3.Connection, key: str) -> Reply | None:
    row = conn.execute("SELECT * FROM replies WHERE idempotency_key = ?", (key,)).fetchone()
    return Reply(**dict(row)) if row is not None else None


def _same_request(first: Refund, request: tuple[str, str, int, str, str]) -> Refund:
    mine = (first.order_id, first.customer_id, _cents(first.amount_usd), first.reason, first.method)
    if mine != request:
        raise RefundRejected(
            f"idempotency key {first.idempotency_key!r} was used for another refund ({first.id})"
        )
    return first


def _next_id(conn: sqlite3.Connection, table: str, prefix: str) -> str:
    (n,) = conn.execute(f"SELECT COALESCE(MAX(rowid), 0) + 1 FROM {table}").fetchone()  # noqa: S608
    return f"{prefix}_{n:06d}"


# --- the seeded world ----------------------------------------------------------------------

# id, name, email, tier, days since the latest chargeback (None: never)
CUSTOMERS: tuple[tuple[str, str, str, str, int | None], ...] = (
    ("cus_1001", "Maya Okafor", "maya.okafor@fastmail.com", "pro", None),
    ("cus_1002", "Daniel Reyes", "dreyes84@gmail.com", "standard", None),
    ("cus_1003", "Priya Natarajan", "priya.n@outlook.com", "pro", None),
    ("cus_1004", "Tomasz Wiśniewski", "t.wisniewski@wp.pl", "standard", None),
    ("cus_1005", "Hollis & Grant LLP", "office-ops@hollisgrant.law", "enterprise", None),
    ("cus_1006", "Jun Park", "junpark.dev@gmail.com", "standard", None),
    ("cus_1007", "Aisha Bello", "aisha.bello@yahoo.com", "standard", None),
    ("cus_1008", "Brightline Analytics", "it-purchasing@brightline.io", "enterprise", None),
    ("cus_1009", "Lukas Becker", "lukas.becker@posteo.de", "pro", 41),
    ("cus_1010", "Sofia Marchetti", "sofia.marchetti@libero.it", "standard", None),
    ("cus_1011", "Ethan Clarke", "ethanclarke@icloud.com", "standard", 300),
    ("cus_1012", "Noor Haddad", "noor.haddad@proton.me", "standard", None),
    ("cus_1013", "Camille Dubois", "camille.dubois@orange.fr", "pro", None),
    ("cus_1014", "Greg Lindqvist", "greg@lindqvist.se", "standard", 12),
    ("cus_1015", "Oakridge Dental Group", "accounts@oakridgedental.com", "enterprise", None),
    ("cus_1016", "Ravi Shah", "ravi.shah@hey.com", "pro", None),
    ("cus_1017", "Hannah Schultz", "hannah.schultz@gmx.net", "standard", None),
    ("cus_1018", "Mateo Alvarez", "mateo.alvarez@gmail.com", "standard", None),
    ("cus_1019", "Chloe Nguyen", "chloe@nguyen.studio", "pro", None),
    ("cus_1020", "Fathom Robotics", "procurement@fathomrobotics.com", "enterprise", None),
    ("cus_1021", "Ines Costa", "ines.costa@sapo.pt", "standard", None),
    ("cus_1022", "Oliver Grant", "ollie.grant@me.com", "pro", None),
    ("cus_1023", "Zainab Mensah", "zainab.mensah@gmail.com", "standard", None),
    ("cus_1024", "Kenji Watanabe", "kenji.w@icloud.com", "pro", None),
    ("cus_slowpay", "Pat Delgado", "pat.delgado@zoho.com", "pro", None),
)

# id, customer, item, amount, days since it was placed, status, invoice status
ORDERS: tuple[tuple[str, str, str, float, int, str, str], ...] = (
    ("ord_2001", "cus_1001", "PBT keycap set, Oat", 49.00, 9, "delivered", "paid"),
    ("ord_2002", "cus_1001", "Coiled USB-C cable, Teal", 24.99, 64, "delivered", "paid"),
    ("ord_2003", "cus_1002", "Desk mat XL, Slate (with shipping)", 37.45, 12, "delivered", "paid"),
    ("ord_2004", "cus_1003", "Wrist rest, Walnut", 42.50, 80, "delivered", "paid"),
    ("ord_2005", "cus_1003", "Coiled USB-C cable, Black", 24.99, 6, "delivered", "paid"),
    ("ord_2006", "cus_1004", "Switch tester, 12 switches", 14.00, 20, "delivered", "paid"),
    ("ord_2007", "cus_1005", "Office keyboard bundle x6, ISO-DE", 894.00, 15, "delivered", "paid"),
    ("ord_2008", "cus_1005", "Desk mat XL x6, Slate", 177.00, 15, "delivered", "paid"),
    ("ord_2009", "cus_1006", "Linden 75 keyboard kit, Graphite", 149.00, 8, "delivered", "paid"),
    ("ord_2010", "cus_1007", "Aluminium phone stand", 27.99, 18, "shipped", "paid"),
    ("ord_2011", "cus_1007", "Key puller and brush", 6.99, 120, "delivered", "paid"),
    ("ord_2012", "cus_1008", "Linden 75 kit x10, Graphite", 1290.00, 25, "delivered", "paid"),
    ("ord_2013", "cus_1008", "Brass keyboard weight x10", 342.00, 25, "delivered", "paid"),
    ("ord_2014", "cus_1009", "Switch tester, 12 switches", 14.00, 50, "delivered", "paid"),
    ("ord_2015", "cus_1009", "Silent linear switches, pack of 90", 35.00, 7, "delivered", "paid"),
    ("ord_2016", "cus_1010", "Desk setup bundle, Walnut and Slate", 62.00, 10, "delivered", "paid"),
    ("ord_2017", "cus_1011", "Artisan keycap, Koi", 19.00, 5, "delivered", "paid"),
    ("ord_2018", "cus_1011", "Coiled USB-C cable, Teal", 24.99, 320, "delivered", "paid"),
    ("ord_2019", "cus_1012", "Desk mat XL, Sand", 29.50, 3, "processing", "paid"),
    ("ord_2020", "cus_1013", "Novelty keycaps, Lavender", 18.00, 11, "delivered", "paid"),
    ("ord_2021", "cus_1014", "Linden 75 keyboard kit, Graphite", 149.00, 30, "delivered", "paid"),
    ("ord_2022", "cus_1015", "Office keyboard bundle x12, ANSI", 1788.00, 40, "delivered", "open"),
    ("ord_2023", "cus_1015", "Wrist rest x12, Walnut", 510.00, 40, "delivered", "paid"),
    ("ord_2024", "cus_1016", "Brass keyboard weight", 38.00, 90, "delivered", "paid"),
    ("ord_2025", "cus_1017", "Switch tester, 12 switches", 14.00, 200, "delivered", "paid"),
    ("ord_2026", "cus_1018", "Coiled USB-C cable, Red", 24.99, 4, "shipped", "paid"),
    ("ord_2027", "cus_1019", "Linden 75 Founders Edition, Brass", 649.00, 14, "delivered", "paid"),
    ("ord_2028", "cus_1020", "Office keyboard bundle x4, ANSI", 596.00, 21, "delivered", "paid"),
    ("ord_2029", "cus_1021", "Keycap set, Mint (alphas only)", 32.00, 16, "delivered", "paid"),
    ("ord_2030", "cus_1022", "Linden 75 keyboard kit, Silver", 149.00, 5, "shipped", "paid"),
    ("ord_2031", "cus_1023", "Brass keyboard weight", 38.00, 9, "delivered", "paid"),
    ("ord_2032", "cus_1024", "Wrist rest, Walnut", 42.50, 13, "delivered", "paid"),
    ("ord_2033", "cus_slowpay", "Desk mat XL, Forest", 34.90, 7, "delivered", "paid"),
    ("ord_2034", "cus_1002", "Key puller and brush", 6.99, 150, "delivered", "paid"),
    ("ord_2035", "cus_1004", "Linden 75 keyboard kit, Silver", 149.00, 95, "delivered", "paid"),
    ("ord_2036", "cus_1006", "PBT keycap set, Ink", 49.00, 2, "processing", "paid"),
    ("ord_2037", "cus_1010", "Coiled USB-C cable, Black", 24.99, 75, "cancelled", "paid"),
    ("ord_2038", "cus_1016", "Linden 75 keyboard kit, Graphite", 149.00, 33, "delivered", "paid"),
    ("ord_2039", "cus_1019", "Desk mat XL, Slate", 29.50, 60, "delivered", "paid"),
    ("ord_2040", "cus_1020", "Brass keyboard weight x4", 136.80, 21, "delivered", "open"),
    ("ord_2041", "cus_1022", "Silent linear switches, pack of 90", 35.00, 110, "delivered", "paid"),
    ("ord_2042", "cus_1024", "PBT keycap set, Oat", 49.00, 13, "delivered", "paid"),
    ("ord_2043", "cus_1015", "Desk mat XL x12, Sand", 354.00, 10, "shipped", "open"),
    ("ord_2044", "cus_1021", "Artisan keycap, Koi", 19.00, 200, "delivered", "paid"),
    ("ord_2045", "cus_1003", "Switch tester, 12 switches", 14.00, 140, "delivered", "paid"),
)

# invoices beyond one per order: the duplicate charge Priya writes in about
EXTRA_INVOICES: tuple[tuple[str, str, str, float, str, int], ...] = (
    ("inv_3046", "cus_1003", "ord_2005", 24.99, "paid", 6),
)


def _invoice_id(order_id: str) -> str:
    return "inv_3" + order_id.removeprefix("ord_2")


def _fill(conn: sqlite3.Connection, today: date) -> None:
    def day(days_ago: int) -> str:
        return (today - timedelta(days=days_ago)).isoformat()

    conn.executescript(SCHEMA)
    conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
        [(i, n, e, t, day(cb) if cb is not None else None) for i, n, e, t, cb in CUSTOMERS],
    )
    conn.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)",
        [(o, c, item, amt, day(ago), st) for o, c, item, amt, ago, st, _ in ORDERS],
    )
    invoices: list[tuple[Any, ...]] = [
        (_invoice_id(o), c, o, amt, inv, day(ago)) for o, c, _, amt, ago, _, inv in ORDERS
    ]
    invoices += [(i, c, o, amt, st, day(ago)) for i, c, o, amt, st, ago in EXTRA_INVOICES]
    conn.executemany("INSERT INTO invoices VALUES (?, ?, ?, ?, ?, ?)", invoices)
    conn.execute("INSERT INTO meta VALUES ('seeded_for', ?)", (today.isoformat(),))
    conn.commit()


def _build(path: Path, today: date) -> Path:
    """Fill a new file beside `path` and return it (not yet in place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        _fill(conn, today)
    finally:
        conn.close()
    return tmp


def seed(path: Path | str, *, today: date | None = None) -> Path:
    """Create (or replace) the billing database at `path` with the example's world.

    Dates are relative to `today` (default: the real date), so the orders are always
    recent and the chargebacks keep their age; the same `today` gives the same file.
    """
    target = Path(path)
    built = _build(target, today if today is not None else SystemClock().now().date())
    os.replace(built, target)
    return target


def _seed_if_missing(path: Path, today: date) -> None:
    """Seed `path` unless it exists; of racing threads or processes, one file wins."""
    built = _build(path, today)
    try:
        os.link(built, path)  # fails if another caller put its file in place first
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links: the last one to finish wins
        if not path.exists():
            os.replace(built, path)
    finally:
        built.unlink(missing_ok=True)


def default_path() -> Path:
    """``$SUPPORT_DESK_BILLING_DB``, else ``.warden/billing.db`` beside this module."""
    given = os.environ.get(DB_ENV)
    return Path(given) if given else Path(__file__).resolve().parent / ".warden" / "billing.db"


def open_billing() -> Billing:
    """The desk's billing backend, as the tools and fact providers use it."""
    return Billing(default_path(), slow_seconds=float(os.environ.get(SLOW_ENV, "3.0")))
