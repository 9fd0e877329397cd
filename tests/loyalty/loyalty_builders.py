"""Loyalty test builders: staged Toast rows, programs, and readers of the results.

Tests run on both engines through the shared `warehouse` fixture (tests/conftest.py: DuckDB in
a temp file, PostgreSQL in a schema of its own). Days are small integers: day 1 is
2025-01-01.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from toast_passkit.loyalty.engine import LoyaltySummary, run_loyalty
from toast_passkit.loyalty.program import Program
from toast_passkit.warehouse import Warehouse

START = date(2025, 1, 1)
_LOAD_CLOCK = itertools.count(1)


def day(n: int) -> date:
    """Business date of day n (day 1 = 2025-01-01)."""
    return START + timedelta(days=n - 1)


def make_program(**sections: Any) -> Program:
    """A program: defaults, base tier only, no re-engagement, unless a section says else."""
    data: dict[str, Any] = {
        "program": {"passkit_program_id": "prog-test"},
        "inactivity": {"reengage_after_days": None},
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name] = {**data[name], **value}
        else:
            data[name] = value
    return Program.model_validate(data)


@dataclass(frozen=True)
class Line:
    """One ItemSelectionDetails row."""

    menu_item: str
    net_price: str
    sales_category: str | None = "Food"
    voided: bool = False
    deferred: bool = False


class Toast:
    """Builder of staged Toast export rows; `load()` stages what was built since last time."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.partitions: set[tuple[str, date]] = set()
        self.row = itertools.count(1)

    def _lineage(self, table: str, location: str, business_date: date) -> dict[str, Any]:
        self.partitions.add((location, business_date))
        return {"location_id": location, "business_date": business_date,
                "source_file": f"{location}/{business_date:%Y%m%d}/{table}.csv",
                "source_checksum": "0" * 64, "source_row": next(self.row),
                "load_id": "test-load"}

    def check(self, check_id: str, on: int, *, email: str | None = None,
              phone: str | None = None, customer_id: str | None = None,
              name: str | None = None, lines: tuple[Line | tuple[str, str], ...] = (),
              spend: str | None = None, location: str = "L1", voided: bool = False,
              payment_email: str | None = None, payment_phone: str | None = None,
              tip: str = "0.00", tax: str = "0.00") -> str:
        """A check on day `on` with its order, lines and one payment (`spend` = one line)."""
        business_date = day(on)
        order_id, payment_id = f"o-{check_id}", f"p-{check_id}"
        items = [line if isinstance(line, Line) else Line(*line) for line in lines]
        if spend is not None:
            items.append(Line("Burger", spend))
        total = sum((Decimal(line.net_price) for line in items), Decimal(0))
        self.pending["stg_orders"].append({
            **self._lineage("OrderDetails", location, business_date), "order_id": order_id,
            "voided": voided, "amount": total, "tax": Decimal(tax), "tip": Decimal(tip),
            "total": total + Decimal(tax) + Decimal(tip)})
        self.pending["stg_checks"].append({
            **self._lineage("CheckDetails", location, business_date), "check_id": check_id,
            "customer_id": customer_id, "customer_name": name, "customer_phone": phone,
            "customer_email": email, "tax": Decimal(tax), "total": total + Decimal(tax)})
        for number, line in enumerate(items):
            self.pending["stg_item_lines"].append({
                **self._lineage("ItemSelectionDetails", location, business_date),
                "item_selection_id": f"{check_id}-{number}", "order_id": order_id,
                "check_id": check_id, "menu_item": line.menu_item,
                "sales_category": line.sales_category, "net_price": Decimal(line.net_price),
                "voided": line.voided, "deferred": line.deferred})
        self._payment(payment_id, order_id, check_id, business_date, location, total,
                      payment_email, payment_phone, tip=Decimal(tip))
        return check_id

    def _payment(self, payment_id: str, order_id: str, check_id: str, business_date: date,
                 location: str, amount: Decimal, email: str | None, phone: str | None, *,
                 tip: Decimal = Decimal(0), refund_amount: Decimal | None = None,
                 refund_local: datetime | None = None) -> None:
        self.pending["stg_payments"].append({
            **self._lineage("PaymentDetails", location, business_date),
            "payment_id": payment_id, "order_id": order_id, "check_id": check_id,
            "amount": amount, "tip": tip, "total": amount + tip, "email": email,
            "phone": phone, "refund_amount": refund_amount, "refund_local": refund_local,
            "refunded": "true" if refund_amount else None})

    def refund(self, check_id: str, amount: str, exported_on: int, *,
               refunded_on: int | None = None, payment_id: str | None = None,
               location: str = "L1") -> None:
        """The check's payment exported again on day `exported_on` with a Refund Amount
        (Refund Date `refunded_on`, empty when None)."""
        refund_local = None
        if refunded_on is not None:
            refund_local = datetime.combine(day(refunded_on), datetime.min.time()).replace(
                hour=15)
        self._payment(payment_id or f"p-{check_id}", f"o-{check_id}", check_id,
                      day(exported_on), location, Decimal(amount), None, None,
                      refund_amount=Decimal(amount), refund_local=refund_local)

    def load(self) -> None:
        """Stage the pending rows and one stg_loads row per touched partition."""
        loaded_at = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=next(_LOAD_CLOCK))
        with self.warehouse.begin() as conn:
            for table, rows in self.pending.items():
                columns = sorted({key for row in rows for key in row})
                conn.execute(sa.text(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join(':' + c for c in columns)})"),
                    [{c: row.get(c) for c in columns} for row in rows])
            loads = [{"load_id": f"load-{loaded_at:%H%M%S}", "location_id": location,
                      "business_date": business_date, "table_name": "all",
                      "source_file": "-", "source_checksum": "-", "rows_read": 0,
                      "rows_loaded": 0, "rows_rejected": 0, "unmapped_columns": "",
                      "loaded_at": loaded_at}
                     for location, business_date in sorted(self.partitions)]
            if loads:
                conn.execute(sa.text(
                    "INSERT INTO stg_loads (load_id, location_id, business_date, table_name, "
                    "source_file, source_checksum, rows_read, rows_loaded, rows_rejected, "
                    "unmapped_columns, loaded_at) VALUES (:load_id, :location_id, "
                    ":business_date, :table_name, :source_file, :source_checksum, :rows_read, "
                    ":rows_loaded, :rows_rejected, :unmapped_columns, :loaded_at)"), loads)
        self.pending.clear()
        self.partitions.clear()


def redeem(warehouse: Warehouse, event_id: str, external_id: str, points: str,
           on: int, hour: int = 18) -> None:
    """A PassKit POINTS_BURNED event as the sync records it (restaurant-local `hour`)."""
    recorded_at = datetime.combine(day(on), datetime.min.time()).replace(
        hour=hour, tzinfo=UTC) + timedelta(hours=5)  # America/New_York in winter
    with warehouse.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO passkit_redemptions (passkit_event_id, member_external_id, points, "
            "recorded_at) VALUES (:e, :m, :p, :r)"),
            {"e": event_id, "m": external_id, "p": Decimal(points), "r": recorded_at})


def run(warehouse: Warehouse, program: Program, on: int, **kwargs: Any) -> LoyaltySummary:
    return run_loyalty(warehouse, program, day(on), **kwargs)


def load_daily_and_at_once(daily: Warehouse, at_once: Warehouse, program: Program,
                           stage: Callable[[Toast, set[int]], None], last_day: int) -> None:
    """Days 1..last_day loaded into `daily` a day and a run at a time, and into `at_once`
    together with one run as of last_day (a backfill). stage(toast, days) stages those days."""
    toast = Toast(daily)
    for n in range(1, last_day + 1):
        stage(toast, {n})
        toast.load()
        run(daily, program, n)
    toast = Toast(at_once)
    stage(toast, set(range(1, last_day + 1)))
    toast.load()
    run(at_once, program, last_day)


def passes(warehouse: Warehouse) -> list[dict[str, Any]]:
    """pass_states rows, oldest enrolment first."""
    return warehouse.query("SELECT * FROM pass_states ORDER BY enrolled_on, external_id")


def pass_of(warehouse: Warehouse, check_id: str) -> dict[str, Any]:
    """The pass of the member holding the guest of `check_id` (not a merged-away one)."""
    rows = warehouse.query("""
        SELECT ps.* FROM pass_states ps
        JOIN loyalty_checks c ON c.guest_id = ps.guest_id
        WHERE c.check_id = :check_id
          AND (ps.revoked_reason IS NULL OR ps.revoked_reason <> 'merged')
    """, {"check_id": check_id})
    assert len(rows) == 1, f"expected one pass for check {check_id}, got {rows}"
    return rows[0]


def ledger(warehouse: Warehouse, kinds: tuple[str, ...] | None = None) -> list[tuple]:
    """(kind, entry_date, points) of the ledger in date order."""
    rows = warehouse.query("SELECT kind, entry_date, points, entry_key FROM loyalty_ledger")
    out = sorted(((r["kind"], r["entry_date"], Decimal(r["points"]), r["entry_key"])
                  for r in rows), key=lambda r: (r[1], r[3]))
    return [r[:3] for r in out if kinds is None or r[0] in kinds]


def spend_of(warehouse: Warehouse, check_id: str) -> dict[str, Any]:
    rows = warehouse.query("SELECT * FROM loyalty_checks WHERE check_id = :c", {"c": check_id})
    assert len(rows) == 1
    return rows[0]


def empty_warehouse(warehouse: Warehouse) -> None:
    """Delete every row of every table of the warehouse (its schema stays migrated)."""
    tables = [row["table_name"] for row in warehouse.query("""
        SELECT table_name FROM information_schema.tables
        WHERE table_schema = current_schema() AND table_catalog = current_database()
          AND table_type = 'BASE TABLE'
        ORDER BY table_name
    """)]
    assert "loyalty_ledger" in tables, tables
    with warehouse.begin() as conn:
        for table in tables:
            conn.execute(sa.text(f"DELETE FROM {table}"))


def snapshot(warehouse: Warehouse) -> dict[str, list[tuple]]:
    """What day-by-day and at-once loads must agree on: ledger, passes, coupons, spend,
    members and checks (no run ids or timestamps), each sorted."""
    queries = {
        "ledger": "SELECT entry_key, kind, entry_date, points, location_id, check_id, "
                  "payment_id, external_id, passkit_event_id FROM loyalty_ledger",
        "pass_states": "SELECT external_id, guest_id, forename, surname, email, phone, "
                       "tier_id, points, status, revoked_reason, revoked_on, enrolled_on "
                       "FROM pass_states",
        "pass_coupons": "SELECT coupon_external_id, external_id, reward_id, location_id, "
                        "check_id, issued_on FROM pass_coupons",
        "guest_spend": "SELECT guest_id, external_id, checks, visits, first_visit_on, "
                       "last_visit_on, lifetime_spend, lifetime_refunded, lifetime_net_spend, "
                       "window_net_spend, tier_id, points FROM guest_spend",
        "members": "SELECT * FROM loyalty_members",
        "checks": "SELECT * FROM loyalty_checks",
    }
    return {name: sorted(tuple(row.values()) for row in warehouse.query(sql))
            for name, sql in queries.items()}
