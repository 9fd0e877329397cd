"""Return-rate report on a hand-made fixture, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from tests.reengagement.reengagement_builders import at, day, insert_rows
from toast_passkit.reengagement import build_report
from toast_passkit.reengagement.report import report_window
from toast_passkit.warehouse import Warehouse

# member: (arm, channels, due day, visit days, whether those visits qualify)
ABSENCES: dict[str, tuple[str, tuple[str, ...], int, tuple[int, ...], bool]] = {
    "A": ("treated", ("pass_message",), 20, (25,), True),          # back within 30 days
    "B": ("treated", ("pass_message",), 20, (60,), True),          # back, but after 40 days
    "C": ("treated", ("pass_message",), 40, (40,), True),          # a visit on the due day
    "D": ("treated", ("pass_message",), 40, (70,), True),          # on the 30th day: counts
    "E": ("treated", ("pass_message", "coupon"), 50, (51,), True),  # two channels, once
    "F": ("treated", ("audience",), 60, (), True),
    "G": ("control", ("control",), 20, (21,), True),
    "H": ("control", ("control",), 30, (35,), False),              # not a qualifying check
    "I": ("control", ("control",), 60, (), True),
    "J": ("treated", ("pass_message",), 80, (81,), True),          # window not closed yet
    "K": ("control", ("control",), 5, (6,), True),                 # due before the window
}


def build_fixture(warehouse: Warehouse) -> None:
    actions, spend, checks = [], [], []
    for member, (arm, channels, due, visits, qualifying) in ABSENCES.items():
        actions += [{"external_id": member, "absence_key": f"lapsed|{due}", "reason": "lapsed",
                     "arm": arm, "channel": channel, "due_on": day(due), "created_at": at(due)}
                    for channel in channels]
        spend.append({"guest_id": f"g-{member}", "external_id": member, "checks": 2,
                      "visits": 2, "first_visit_on": day(1), "last_visit_on": day(1),
                      "lifetime_spend": Decimal(10), "lifetime_refunded": Decimal(0),
                      "lifetime_net_spend": Decimal(10), "window_net_spend": Decimal(10),
                      "tier_id": "base", "points": Decimal(10), "as_of": day(100)})
        checks += [{"location_id": "L1", "check_id": f"{member}-{v}", "business_date": day(v),
                    "voided": False, "eligible_spend": Decimal(10) if qualifying else 0,
                    "qualifying": qualifying, "guest_id": f"g-{member}"} for v in visits]
    insert_rows(warehouse, "reengagement_actions", actions)
    insert_rows(warehouse, "guest_spend", spend)
    insert_rows(warehouse, "loyalty_checks", checks)


def stored(warehouse: Warehouse) -> list[dict[str, Any]]:
    return warehouse.query(
        "SELECT report_on, due_from, due_to, arm, channel, absences, returned, return_rate "
        "FROM reengagement_report ORDER BY arm DESC, channel")


def test_report_window_covers_due_dates_whose_return_window_has_closed() -> None:
    assert report_window(date(2025, 4, 10), 30, 60) == (date(2025, 1, 11), date(2025, 3, 11))


def test_return_rates_per_arm_and_channel(warehouse: Warehouse, capsys) -> None:
    build_fixture(warehouse)
    report = build_report(warehouse, day(100), return_window_days=30, report_window_days=60)

    assert (report.due_from, report.due_to) == (day(11), day(70))
    assert [(r.arm, r.channel, r.absences, r.returned, r.return_rate) for r in report.rows] == [
        ("treated", "all", 6, 3, Decimal("0.5000")),      # A, D, E of A-F
        ("control", "all", 3, 1, Decimal("0.3333")),      # G of G-I
        ("treated", "audience", 1, 0, Decimal("0.0000")),
        ("treated", "coupon", 1, 1, Decimal("1.0000")),
        ("treated", "pass_message", 5, 3, Decimal("0.6000"))]
    assert report.uplift == Decimal("0.1667")
    text = report.format()
    assert "uplift (treated - control): +16.67 points" in text
    assert "50.00%" in text

    first = stored(warehouse)
    assert {r["report_on"] for r in first} == {day(100)}
    assert {(r["due_from"], r["due_to"]) for r in first} == {(day(11), day(70))}
    assert [(r["arm"], r["channel"], r["absences"], r["returned"], r["return_rate"])
            for r in first] == [
        ("treated", "all", 6, 3, Decimal("0.5000")),
        ("treated", "audience", 1, 0, Decimal("0.0000")),
        ("treated", "coupon", 1, 1, Decimal("1.0000")),
        ("treated", "pass_message", 5, 3, Decimal("0.6000")),
        ("control", "all", 3, 1, Decimal("0.3333"))]
    build_report(warehouse, day(100), return_window_days=30, report_window_days=60)
    assert stored(warehouse) == first   # a rerun replaces the day's rows


def test_an_empty_report_has_both_arms_without_rates(warehouse: Warehouse) -> None:
    report = build_report(warehouse, day(100))
    assert [(r.arm, r.channel, r.absences, r.return_rate) for r in report.rows] == [
        ("treated", "all", 0, None), ("control", "all", 0, None)]
    assert report.uplift is None
    assert "uplift (treated - control): -" in report.format()
