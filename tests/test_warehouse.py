"""The warehouse: the DuckDB file as a task leaves it (dispose() folds the log into the file);
per-statement PostgreSQL settings in SQL files."""

from pathlib import Path

import pytest

import toast_passkit.warehouse as warehouse_module
from toast_passkit.warehouse import Warehouse


def test_dispose_leaves_one_file_with_every_committed_row(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse.from_url(f"duckdb:///{path}")
    with warehouse.begin() as conn:
        warehouse.execute(conn, "CREATE TABLE visits (guest VARCHAR, day DATE)")
        warehouse.execute(conn, "INSERT INTO visits VALUES ('g1', DATE '2026-01-05')")
    assert path.with_name(path.name + ".wal").exists()  # committed to the log only

    warehouse.dispose()

    assert not path.with_name(path.name + ".wal").exists()
    reopened = Warehouse.from_url(f"duckdb:///{path}")
    try:
        assert reopened.query("SELECT guest, CAST(day AS VARCHAR) AS day FROM visits") == [
            {"guest": "g1", "day": "2026-01-05"}]
    finally:
        reopened.dispose()


def test_dispose_of_a_warehouse_never_used_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "never.duckdb"
    Warehouse.from_url(f"duckdb:///{path}").dispose()
    assert not path.exists()


@pytest.mark.parametrize("warehouse_conn", ["postgresql"], indirect=True)
def test_a_statement_runs_with_its_own_postgresql_setting_and_the_next_one_without(
        tmp_path: Path, monkeypatch, warehouse: Warehouse) -> None:
    """`-- postgresql: SET ...` in a model: that statement alone runs with the setting (a daily
    loyalty run turns nested loops off in the statements where PostgreSQL's misestimates make
    them quadratic, and keeps them for the others' index lookups)."""
    monkeypatch.setattr(warehouse_module, "SQL_DIR", tmp_path)
    (tmp_path / "probe.sql").write_text(
        "CREATE TABLE probe (statement INTEGER, nestloop VARCHAR);\n"
        "-- A join on a misestimated work table\n"
        "-- postgresql: SET enable_nestloop = off\n"
        "INSERT INTO probe SELECT 1, current_setting('enable_nestloop');\n"
        "INSERT INTO probe SELECT 2, current_setting('enable_nestloop');\n")
    with warehouse.begin() as conn:
        warehouse.run_file(conn, "probe.sql")
    assert warehouse.query("SELECT * FROM probe ORDER BY statement") == [
        {"statement": 1, "nestloop": "off"}, {"statement": 2, "nestloop": "on"}]


@pytest.mark.parametrize("warehouse_conn", ["duckdb"], indirect=True)
def test_duckdb_runs_a_statement_with_a_postgresql_setting_as_it_is(
        tmp_path: Path, monkeypatch, warehouse: Warehouse) -> None:
    monkeypatch.setattr(warehouse_module, "SQL_DIR", tmp_path)
    (tmp_path / "probe.sql").write_text(
        "CREATE TABLE probe (statement INTEGER);\n"
        "-- postgresql: SET enable_nestloop = off\n"
        "INSERT INTO probe VALUES (1);\n")
    with warehouse.begin() as conn:
        warehouse.run_file(conn, "probe.sql")
    assert warehouse.query("SELECT * FROM probe") == [{"statement": 1}]
