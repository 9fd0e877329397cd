"""End-to-end runs of the toast_ingest DAG with `dag.test()`: folder, SFTP and archive sources."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support.sftp_server import sftp_server
from toast_passkit.warehouse import Warehouse, url_for_connection

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAY = date(2026, 11, 3)
STAGING = ["stg_orders", "stg_checks", "stg_payments", "stg_item_lines", "stg_modifier_lines"]
pytestmark = pytest.mark.airflow


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(DAGS_DIR), bundle_path=DAGS_DIR)
    assert not bag.import_errors
    dag = bag.dags[dag_id]
    for task in dag.tasks:   # a failing task fails the test now, not after retry delays
        task.retries = 0
    return dag


def configure(monkeypatch, tmp_path: Path, warehouse: dict, exports: dict) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TOAST_WAREHOUSE", json.dumps(warehouse))
    monkeypatch.setenv("AIRFLOW_CONN_TOAST_EXPORTS", json.dumps(exports))
    monkeypatch.setenv("AIRFLOW_VAR_TOAST_ARCHIVE_ROOT", str(tmp_path / "archive"))


def open_warehouse(conn: dict) -> Warehouse:
    return Warehouse.from_url(url_for_connection(
        conn["conn_type"], conn["host"], conn.get("port"), conn.get("login"), None,
        conn.get("schema"), search_path=(conn.get("extra") or {}).get("search_path")))


def staged(conn: dict) -> dict[str, list]:
    wh = open_warehouse(conn)
    try:
        return {t: wh.query(f"SELECT * FROM {t} ORDER BY location_id, source_row")
                for t in STAGING}
    finally:
        wh.dispose()


def run(dag, **kwargs):
    run = dag.test(**kwargs)
    assert run.state == "success", run.state
    return run


def test_scheduled_run_stages_every_location_and_rerun_is_identical(
        airflow_db, monkeypatch, tmp_path, sample_exports, warehouse_conn) -> None:
    configure(monkeypatch, tmp_path, warehouse_conn,
              {"conn_type": "fs", "extra": {"path": str(sample_exports)}})
    dag = load_dag("toast_ingest")
    # A run at 07:00 on DAY + 1 covers the interval [DAY 07:00, DAY+1 07:00): it processes DAY.
    logical = datetime(2026, 11, 4, 7, 0, tzinfo=ZoneInfo("America/New_York"))
    run(dag, logical_date=logical)

    first = staged(warehouse_conn)
    for table, rows in first.items():
        assert {r["location_id"] for r in rows} == {"100001", "100002", "100003"}, table
        assert {r["business_date"] for r in rows} == {DAY}, table
    run(dag, logical_date=logical)
    assert staged(warehouse_conn) == first


def test_sftp_source_against_a_real_sftp_server(airflow_db, monkeypatch, tmp_path,
                                                 sample_exports) -> None:
    warehouse = {"conn_type": "duckdb", "host": str(tmp_path / "w.duckdb")}
    with sftp_server(sample_exports, password="test-only-password") as port:
        configure(monkeypatch, tmp_path, warehouse, {
            "conn_type": "sftp", "host": "127.0.0.1", "port": port, "login": "toast",
            "password": "test-only-password",
            "extra": {"no_host_key_check": True, "remote_root": "/"},
        })
        run(load_dag("toast_ingest"), run_conf={"business_date": DAY.isoformat()})
    via_sftp = staged(warehouse)
    assert len(via_sftp["stg_checks"]) > 0

    # The same day from the local folder gives the same rows (checksums and all).
    folder_wh = {"conn_type": "duckdb", "host": str(tmp_path / "folder.duckdb")}
    configure(monkeypatch, tmp_path / "other", folder_wh,
              {"conn_type": "fs", "extra": {"path": str(sample_exports)}})
    run(load_dag("toast_ingest"), run_conf={"business_date": DAY.isoformat()})
    assert staged(folder_wh) == via_sftp
    archived = sorted(p.name for p in (tmp_path / "archive" / "100001" / "20261103").rglob(
        "*.csv"))
    assert len(archived) == 5


def test_manual_rerun_from_the_archive_after_toast_deleted_the_files(
        airflow_db, monkeypatch, tmp_path, sample_exports) -> None:
    warehouse = {"conn_type": "duckdb", "host": str(tmp_path / "w.duckdb")}
    configure(monkeypatch, tmp_path, warehouse,
              {"conn_type": "fs", "extra": {"path": str(sample_exports)}})
    dag = load_dag("toast_ingest")
    run(dag, run_conf={"business_date": DAY.isoformat()})
    before = staged(warehouse)
    shutil.rmtree(sample_exports)
    run(dag, run_conf={"business_date": DAY.isoformat(), "source": "archive"})
    assert staged(warehouse) == before


def test_through_date_stages_the_whole_range_per_location(
        airflow_db, monkeypatch, tmp_path, sample_exports, warehouse_conn) -> None:
    from toast_passkit.devtools import load_dag as load_project_dag

    configure(monkeypatch, tmp_path, warehouse_conn,
              {"conn_type": "fs", "extra": {"path": str(sample_exports)}})
    first, last = date(2026, 11, 1), date(2026, 11, 7)
    run(load_project_dag("toast_ingest", retries=0),
        run_conf={"business_date": first.isoformat(), "through_date": last.isoformat()})

    week = {date.fromordinal(d) for d in range(first.toordinal(), last.toordinal() + 1)}
    for table, rows in staged(warehouse_conn).items():
        assert {(r["location_id"], r["business_date"]) for r in rows} == {
            (loc, day) for loc in ("100001", "100002", "100003") for day in week}, table
    wh = open_warehouse(warehouse_conn)
    try:
        assert wh.scalar("SELECT COUNT(DISTINCT load_id) FROM stg_loads") == 3 * 7
        assert wh.scalar("SELECT COUNT(*) FROM stg_validation_results WHERE success") == 3 * 7 * 5
    finally:
        wh.dispose()
