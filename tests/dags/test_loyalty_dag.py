"""End-to-end: two weeks of generated exports → toast staging → the loyalty DAG (dag.test)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from toast_passkit.devtools import load_dag
from toast_passkit.toast.archive import RawArchive
from toast_passkit.toast.ingest import ingest_partition
from toast_passkit.toast.sample_data import generate_exports
from toast_passkit.toast.sources import LocalFolderSource
from toast_passkit.warehouse import Warehouse

START = date(2026, 11, 1)
DAYS = 14
pytestmark = pytest.mark.airflow


def stage(root, warehouse: Warehouse, archive_root, days: range) -> None:
    source = LocalFolderSource(root)
    for location in source.list_locations():
        for offset in days:
            ingest_partition(source=source, archive=RawArchive(archive_root),
                             warehouse=warehouse, location_id=location,
                             business_date=START + timedelta(days=offset), validate=False)


def loyalty_run(day: date) -> dict:
    run = load_dag("loyalty", retries=0).test(run_conf={"business_date": day.isoformat()})
    assert run.state == "success"
    return run


def states(warehouse: Warehouse) -> dict[str, list]:
    return {
        "pass_states": warehouse.query(
            "SELECT external_id, tier_id, points, status, revoked_on, enrolled_on "
            "FROM pass_states ORDER BY external_id"),
        "ledger": warehouse.query(
            "SELECT entry_key, kind, entry_date, points, external_id FROM loyalty_ledger "
            "ORDER BY entry_key"),
        "coupons": warehouse.query(
            "SELECT coupon_external_id, external_id, reward_id, issued_on FROM pass_coupons "
            "ORDER BY coupon_external_id"),
    }


def test_two_weeks_day_by_day_equals_one_backfill(airflow_db, monkeypatch, tmp_path,
                                                  capsys) -> None:
    exports = tmp_path / "exports"
    generate_exports(exports, locations=2, days=DAYS, start=START, seed=11)
    daily = Warehouse.from_url(f"duckdb:///{tmp_path / 'daily.duckdb'}")
    once = Warehouse.from_url(f"duckdb:///{tmp_path / 'once.duckdb'}")
    for wh in (daily, once):
        wh.migrate()

    # Day by day: stage a day, run the DAG for it (as the asset schedule does).
    monkeypatch.setenv("AIRFLOW_CONN_TOAST_WAREHOUSE", json.dumps(
        {"conn_type": "duckdb", "host": str(tmp_path / "daily.duckdb")}))
    for offset in range(DAYS):
        stage(exports, daily, tmp_path / "archive", range(offset, offset + 1))
        daily.dispose()
        if offset in (0, 6, DAYS - 1):   # a few runs on the way, as asset events coalesce
            loyalty_run(START + timedelta(days=offset))

    # All at once: the whole history staged, one run for the last day.
    stage(exports, once, tmp_path / "archive2", range(DAYS))
    once.dispose()
    monkeypatch.setenv("AIRFLOW_CONN_TOAST_WAREHOUSE", json.dumps(
        {"conn_type": "duckdb", "host": str(tmp_path / "once.duckdb")}))
    loyalty_run(START + timedelta(days=DAYS - 1))

    got_daily, got_once = states(daily), states(once)
    assert got_daily["pass_states"], "two weeks of sample data enrol members"
    assert got_daily == got_once

    # Rerunning the last day changes nothing.
    loyalty_run(START + timedelta(days=DAYS - 1))
    assert states(once) == got_once

    summary = once.query("SELECT tier_id, COUNT(*) AS members, SUM(points) AS points "
                         "FROM pass_states GROUP BY tier_id ORDER BY tier_id")
    guests = once.scalar("SELECT COUNT(*) FROM loyalty_guests")
    issued = once.scalar("SELECT SUM(points) FROM loyalty_ledger WHERE kind IN ('earn', 'bonus')")
    with capsys.disabled():
        print(f"\nloyalty over {DAYS} days x 2 locations: {guests} guests, "
              f"{len(got_once['pass_states'])} members to enrol, {issued} points issued, "
              f"tiers {[(r['tier_id'], r['members']) for r in summary]}")
