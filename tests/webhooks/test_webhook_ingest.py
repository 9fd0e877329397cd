"""Webhook log ingest on DuckDB and PostgreSQL: dedupe, order, crash safety, what it records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.reengagement.reengagement_builders import (
    Deliveries,
    at,
    coupon_payload,
    insert_rows,
    member_pass,
    pass_payload,
)
from toast_passkit.warehouse import Warehouse
from toast_passkit.webhooks import eventlog, ingest
from toast_passkit.webhooks.eventlog import WatermarkConflictError, WatermarkStore
from toast_passkit.webhooks.ingest import (
    WarehouseWatermarkStore,
    ingest_webhook_log,
)

INSTALLED, UNINSTALLED = "PASS_EVENT_INSTALLED", "PASS_EVENT_UNINSTALLED"


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "webhooks"


@pytest.fixture
def deliveries(log_dir: Path) -> Iterator[Deliveries]:
    made = Deliveries(log_dir)
    yield made
    made.close()


def activity(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    rows = warehouse.query("SELECT * FROM pass_activity")
    assert len({r["member_external_id"] for r in rows}) == len(rows), "one row per member"
    return {r["member_external_id"]: r for r in rows}


def count(warehouse: Warehouse, table: str) -> int:
    return warehouse.scalar(f"SELECT COUNT(*) FROM {table}")


def utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


# --- dedupe and order ----------------------------------------------------------------------


def lifecycle_deliveries() -> list[dict[str, Any]]:
    """Install (day 1), uninstall (day 5), re-install (day 9), delivered late, twice and
    out of order; the re-install is redelivered with a slightly different body."""
    install = pass_payload(INSTALLED, "M1", first_installed=at(1), installed=at(1))
    uninstall = pass_payload(UNINSTALLED, "M1", first_installed=at(1), installed=at(1),
                             uninstalled=at(5))
    reinstall = pass_payload(INSTALLED, "M1", first_installed=at(1), installed=at(9),
                             uninstalled=at(5))
    reinstall_again = pass_payload(INSTALLED, "M1", first_installed=at(1), installed=at(9),
                                   uninstalled=at(5), note="redelivered")
    return [uninstall, reinstall, install, reinstall_again, uninstall, install]


@pytest.mark.parametrize("per_delivery", [False, True], ids=["one-batch", "one-run-each"])
def test_duplicate_and_out_of_order_deliveries_give_one_event_each_and_the_latest_state(
        warehouse: Warehouse, deliveries: Deliveries, log_dir: Path, per_delivery: bool) -> None:
    totals = {"events_new": 0, "duplicates": 0}
    for payload in lifecycle_deliveries():
        deliveries.deliver(payload)
        if per_delivery:
            summary = ingest_webhook_log(warehouse, log_dir)
            totals = {k: totals[k] + getattr(summary, k) for k in totals}
    if not per_delivery:
        summary = ingest_webhook_log(warehouse, log_dir)
        assert (summary.lines_read, summary.batches, summary.files) == (6, 1, 1)
        totals = {k: getattr(summary, k) for k in totals}

    assert totals == {"events_new": 3, "duplicates": 3}
    assert sorted((r["event_type"], utc(r["occurred_at"])) for r in warehouse.query(
        "SELECT event_type, occurred_at FROM pass_events")) == [
        (INSTALLED, at(1)), (INSTALLED, at(9)), (UNINSTALLED, at(5))]
    state = activity(warehouse)["M1"]
    assert state["state"] == "installed"
    assert state["pass_id"] == "pass-M1"
    assert [utc(state[k]) for k in ("first_installed_at", "last_installed_at",
                                    "last_uninstalled_at", "updated_at")] == [
        at(1), at(9), at(5), at(9)]

    # A rerun reads nothing new and changes nothing.
    before = warehouse.query("SELECT * FROM pass_activity")
    rerun = ingest_webhook_log(warehouse, log_dir)
    assert (rerun.lines_read, rerun.events_new, rerun.batches) == (0, 0, 0)
    assert count(warehouse, "pass_events") == 3
    assert warehouse.query("SELECT * FROM pass_activity") == before


def test_a_late_delivery_never_moves_the_state_backwards(
        warehouse: Warehouse, deliveries: Deliveries, log_dir: Path) -> None:
    deliveries.deliver(pass_payload(INSTALLED, "M1", installed=at(1)))
    deliveries.deliver(pass_payload(UNINSTALLED, "M1", installed=at(1), uninstalled=at(5)))
    ingest_webhook_log(warehouse, log_dir)
    assert activity(warehouse)["M1"]["state"] == "uninstalled"

    # PassKit retries the old install (new body: a new delivery, the same event).
    deliveries.deliver(pass_payload(INSTALLED, "M1", installed=at(1), note="retry"))
    summary = ingest_webhook_log(warehouse, log_dir)
    assert (summary.events_new, summary.duplicates, summary.members_updated) == (0, 1, 0)
    assert activity(warehouse)["M1"]["state"] == "uninstalled"
    assert utc(activity(warehouse)["M1"]["last_uninstalled_at"]) == at(5)


def test_state_also_follows_the_timestamps_of_other_events(
        warehouse: Warehouse, deliveries: Deliveries, log_dir: Path) -> None:
    # The uninstall delivery was lost; a later update carries its timestamp. A second pass
    # event names the pass but not the member, and an invalidation ends a third member's pass.
    deliveries.deliver(pass_payload(INSTALLED, "M1", installed=at(1)))
    deliveries.deliver(pass_payload("PASS_EVENT_RECORD_UPDATED", "M1", installed=at(1),
                                    uninstalled=at(4)))
    deliveries.deliver(pass_payload(INSTALLED, "M2", "pass-2", installed=at(1)))
    deliveries.deliver(pass_payload(UNINSTALLED, None, "pass-2", installed=at(1),
                                    uninstalled=at(3)))
    deliveries.deliver(pass_payload(INSTALLED, "M3", installed=at(1)))
    deliveries.deliver(pass_payload("PASS_EVENT_INVALIDATED", "M3", installed=at(1),
                                    invalidated=at(2)))
    ingest_webhook_log(warehouse, log_dir)
    states = {m: (r["state"], utc(r["last_uninstalled_at"]))
              for m, r in activity(warehouse).items()}
    assert states == {"M1": ("uninstalled", at(4)), "M2": ("uninstalled", at(3)),
                      "M3": ("invalidated", None)}


def test_batches_bound_each_transaction_and_max_events_bounds_the_call(
        warehouse: Warehouse, deliveries: Deliveries, log_dir: Path) -> None:
    for n in range(1, 6):
        deliveries.deliver(pass_payload(INSTALLED, f"M{n}", installed=at(n)))
    partial = ingest_webhook_log(warehouse, log_dir, max_events=3, batch_size=2)
    assert (partial.lines_read, partial.batches, partial.events_new) == (3, 2, 3)
    rest = ingest_webhook_log(warehouse, log_dir, batch_size=2)
    assert (rest.lines_read, rest.batches, rest.events_new) == (2, 1, 2)
    assert len(activity(warehouse)) == 5


# --- crash safety -------------------------------------------------------------------------


def test_a_crash_between_log_append_and_ingest_loses_nothing(
        warehouse: Warehouse, deliveries: Deliveries, log_dir: Path, monkeypatch) -> None:
    name = deliveries.deliver(pass_payload(INSTALLED, "M1", installed=at(1)))
    # The receiver dies in the middle of writing the next delivery: a fragment, no newline.
    with (log_dir / name).open("ab") as handle:
        handle.write(b'{"received_at":"2025-02-01T00:00:00Z","body":"{\\"ev')
    # And the ingest task dies after reading, before storing anything.
    monkeypatch.setattr(ingest, "_ingest_batch", _crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest_webhook_log(warehouse, log_dir)
    monkeypatch.undo()
    assert count(warehouse, "pass_events") == 0
    assert count(warehouse, "webhook_watermarks") == 0

    first = ingest_webhook_log(warehouse, log_dir)
    assert (first.events_new, first.incomplete_tails) == (1, 1)
    # A restarted receiver appends after the fragment; nothing acknowledged is lost.
    restarted = Deliveries(log_dir)
    restarted.deliver(pass_payload(UNINSTALLED, "M1", installed=at(1), uninstalled=at(2)))
    restarted.close()
    second = ingest_webhook_log(warehouse, log_dir)
    assert (second.events_new, second.rejected, second.incomplete_tails) == (1, 1, 0)
    assert activity(warehouse)["M1"]["state"] == "uninstalled"
    assert [(r["field"], r["delivery_id"]) for r in warehouse.query(
        "SELECT field, delivery_id FROM pass_event_rejects")] == [("line", None)]


def test_a_crash_after_the_upsert_before_the_commit_rolls_back_and_the_rerun_ingests_once(
        warehouse: Warehouse, deliveries: Deliveries, log_dir: Path, monkeypatch) -> None:
    for payload in lifecycle_deliveries():
        deliveries.deliver(payload)

    def commit_then_crash(batch, store) -> None:
        eventlog.commit(batch, store)  # the watermark is written in the transaction...
        raise RuntimeError("simulated crash")  # ...which never commits

    monkeypatch.setattr(ingest, "commit", commit_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest_webhook_log(warehouse, log_dir)
    monkeypatch.undo()
    for table in ("pass_events", "pass_activity", "webhook_watermarks"):
        assert count(warehouse, table) == 0, table

    rerun = ingest_webhook_log(warehouse, log_dir)
    assert (rerun.events_new, rerun.duplicates) == (3, 3)
    assert count(warehouse, "pass_events") == 3
    assert activity(warehouse)["M1"]["state"] == "installed"

    # Even with the watermarks lost, reading everything again stores nothing twice.
    with warehouse.begin() as conn:
        warehouse.execute(conn, "DELETE FROM webhook_watermarks")
    again = ingest_webhook_log(warehouse, log_dir)
    assert (again.lines_read, again.events_new, again.members_updated) == (6, 0, 0)
    assert count(warehouse, "pass_events") == 3


def _crash(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("simulated crash")


def test_the_warehouse_store_is_a_watermark_store_and_detects_a_second_consumer(
        warehouse: Warehouse, deliveries: Deliveries, log_dir: Path) -> None:
    name = deliveries.deliver(pass_payload(INSTALLED, "M1", installed=at(1)))
    with warehouse.begin() as conn:
        store = WarehouseWatermarkStore(conn)
        assert isinstance(store, WatermarkStore)
        batch = eventlog.read_new_events(log_dir, store)
        store.set_many({name: 5})  # another consumer moved it meanwhile
        with pytest.raises(WatermarkConflictError):
            eventlog.commit(batch, store)
        with pytest.raises(ValueError, match="non-negative"):
            store.set_many({name: -1})


# --- what else webhooks record -------------------------------------------------------------


def test_lines_that_are_not_deliveries_are_kept_by_position_and_skipped(
        warehouse: Warehouse, deliveries: Deliveries, log_dir: Path) -> None:
    name = deliveries.writer.append_event({"received_at": "2025-02-01T00:00:00Z"},
                                          datetime(2025, 2, 1, tzinfo=UTC))
    deliveries.deliver(pass_payload(INSTALLED, "M1", installed=at(1)))
    summary = ingest_webhook_log(warehouse, log_dir)
    assert (summary.rejected, summary.events_new) == (1, 1)
    assert warehouse.query("SELECT source_file, source_offset, field FROM pass_event_rejects"
                           ) == [{"source_file": name, "source_offset": 0, "field": "body"}]
    assert ingest_webhook_log(warehouse, log_dir).rejected == 0


def test_coupon_events_are_recorded_and_never_touch_the_member_pass(
        warehouse: Warehouse, deliveries: Deliveries, log_dir: Path) -> None:
    insert_rows(warehouse, "pass_coupons", [{
        "coupon_external_id": "cpn-1", "external_id": "M1", "reward_id": "dessert",
        "location_id": "L1", "check_id": "c1", "passkit_campaign_id": "camp-1",
        "passkit_offer_id": "offer-1", "issued_on": at(1).date(), "run_id": "r"}])
    deliveries.deliver(pass_payload(INSTALLED, "M1", installed=at(1)))
    deliveries.deliver(coupon_payload("PASS_EVENT_INSTALLED", "cpn-1"))
    deliveries.deliver(coupon_payload("PASS_EVENT_UNINSTALLED", "cpn-1"))
    deliveries.deliver(coupon_payload("COUPON_EVENT_REDEEMED", "cpn-1"))
    deliveries.deliver(coupon_payload("COUPON_EVENT_REDEEMED", "cpn-1"), at(40))  # twice
    ingest_webhook_log(warehouse, log_dir)

    assert {m: r["state"] for m, r in activity(warehouse).items()} == {"M1": "installed"}
    redemptions = warehouse.query("SELECT * FROM passkit_coupon_redemptions")
    assert [(r["coupon_external_id"], r["external_id"], r["coupon_kind"], r["reward_id"])
            for r in redemptions] == [("cpn-1", "M1", "reward", "dessert")]


def test_reported_points_are_kept_for_reconciliation_not_as_redemptions(
        warehouse: Warehouse, deliveries: Deliveries, log_dir: Path) -> None:
    insert_rows(warehouse, "pass_states", [member_pass("M1")])  # desired: 10 points
    deliveries.deliver(pass_payload("PASS_EVENT_RECORD_UPDATED", "M1", points="25.000000"),
                       at(3))
    deliveries.deliver(pass_payload("PASS_EVENT_RECORD_UPDATED", "M1", points="4.000000"),
                       at(4))
    ingest_webhook_log(warehouse, log_dir)
    assert [(r["external_id"], r["reported_points"], r["desired_points"],
             r["points_difference"]) for r in warehouse.query(
        "SELECT * FROM pass_points_reconciliation")] == [("M1", Decimal("4.00"), 10,
                                                          Decimal("-6.00"))]
    assert count(warehouse, "passkit_redemptions") == 0
