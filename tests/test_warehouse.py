"""The warehouse's DuckDB file as a task leaves it: dispose() folds the log into the file."""

from pathlib import Path

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
