"""Batched ingest of a range of business dates: same rows as day by day, bad days held back."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.toast.csv_files import read_rows, write_rows
from toast_passkit.toast import parse
from toast_passkit.toast.archive import RawArchive
from toast_passkit.toast.exports import EXPORT_FILES
from toast_passkit.toast.ingest import (
    PARTITION_TABLES,
    PartitionBatchError,
    PartitionBatchValidationError,
    ingest_partition,
    ingest_partitions,
)
from toast_passkit.toast.parse import read_export
from toast_passkit.toast.sources import ExportSource, LocalFolderSource
from toast_passkit.toast.validate import PartitionValidationError
from toast_passkit.warehouse import Warehouse

LOCATIONS = ["100001", "100002", "100003"]
WEEK = [date(2026, 11, 1) + timedelta(days=n) for n in range(7)]
STAGING = [spec.table for spec in EXPORT_FILES]
# Columns that differ between any two runs: when a row was written.
RUN_TIME = {"loaded_at", "validated_at"}


def path_of(root: Path, location_id: str, day: date, name: str) -> Path:
    return root / location_id / f"{day:%Y%m%d}" / name




def set_value(path: Path, row: int, header: str, value: str) -> None:
    rows = read_rows(path)
    rows[row][rows[0].index(header)] = value
    write_rows(path, rows)


def staged(wh: Warehouse, *, validation_json: bool = True) -> dict[str, list[dict]]:
    """Every staging and partition table, minus write times (and suite JSON if asked)."""
    drop = RUN_TIME | (set() if validation_json else {"result_json"})
    out = {}
    for table in [*STAGING, *PARTITION_TABLES]:
        rows = wh.query(f"SELECT * FROM {table}")
        out[table] = sorted(({k: v for k, v in r.items() if k not in drop} for r in rows),
                            key=lambda r: tuple(str(v) for v in r.values()))
    return out


def clear_staging(wh: Warehouse) -> None:
    with wh.begin() as conn:
        for table in [*STAGING, *PARTITION_TABLES]:
            wh.execute(conn, f"DELETE FROM {table}")


def ingest_days(source: ExportSource, archive: RawArchive, wh: Warehouse, location_id: str,
                days: list[date]) -> list[dict]:
    return [ingest_partition(source=source, archive=archive, warehouse=wh,
                             location_id=location_id, business_date=day).as_dict()
            for day in days]


def ingest_batch(source: ExportSource, archive: RawArchive, wh: Warehouse, location_id: str,
                 days: list[date] = WEEK) -> list[dict]:
    return [r.as_dict() for r in ingest_partitions(source=source, archive=archive, warehouse=wh,
                                                   location_id=location_id,
                                                   business_dates=days)]


def add_bad_input(root: Path) -> None:
    """Row-level problems, odd layouts and quoting spread over locations and days."""
    items = path_of(root, "100001", WEEK[1], "ItemSelectionDetails.csv")
    set_value(items, 1, "Net Price", "-4.00")
    set_value(items, 2, "Order Date", "10/20/26 12:00 PM")          # outside its own day
    orders = path_of(root, "100002", WEEK[3], "OrderDetails.csv")
    write_rows(orders, [*read_rows(orders), read_rows(orders)[1]])   # a duplicate row
    checks = path_of(root, "100002", WEEK[3], "CheckDetails.csv")
    checks.write_bytes(b"\xef\xbb\xbf" + checks.read_bytes())
    payments = path_of(root, "100003", WEEK[5], "PaymentDetails.csv")
    rows = read_rows(payments)
    rows[3].append("extra")                                          # a malformed line
    write_rows(payments, rows)
    modifiers = path_of(root, "100003", WEEK[5], "ModifiersSelectionDetails.csv")
    text = modifiers.read_text(encoding="utf-8")
    modifiers.write_text(text[: len(text) - 20], encoding="utf-8")   # truncated last line
    set_value(path_of(root, "100003", WEEK[0], "CheckDetails.csv"), 2, "Customer",
              "Ann\nMarie")                                          # a record over two lines
    items = path_of(root, "100002", WEEK[0], "ItemSelectionDetails.csv")
    rows = read_rows(items)
    keep = [i for i, name in enumerate(rows[0]) if name != "Menu Group"][::-1]
    write_rows(items, [[r[i] for i in keep] for r in rows])          # reordered, one fewer


# -- (a) the same rows as day-by-day ingest ------------------------------------------------------

def test_a_batch_stages_exactly_what_day_by_day_ingest_stages(sample_exports, warehouse,
                                                              tmp_path) -> None:
    add_bad_input(sample_exports)
    archive = RawArchive(tmp_path / "archive")
    source = LocalFolderSource(sample_exports)
    by_day = {loc: ingest_days(source, archive, warehouse, loc, WEEK) for loc in LOCATIONS}
    day_by_day = staged(warehouse, validation_json=False)
    assert day_by_day["stg_rejected_rows"], "the bad input must produce rejects"
    assert {r["business_date"] for r in day_by_day["stg_checks"]} == set(WEEK)

    clear_staging(warehouse)
    shutil.rmtree(sample_exports)            # re-ingest from the archive, as a backfill would
    batched = {loc: ingest_batch(archive, archive, warehouse, loc) for loc in LOCATIONS}
    assert staged(warehouse, validation_json=False) == day_by_day
    assert batched == by_day


def test_a_batch_of_one_day_is_the_daily_ingest(sample_exports, tmp_path) -> None:
    source, archive = LocalFolderSource(sample_exports), RawArchive(tmp_path / "archive")
    daily, batch = (Warehouse.from_url(f"duckdb:///{tmp_path / name}.duckdb")
                    for name in ("daily", "batch"))
    for wh in (daily, batch):
        wh.migrate()
    ingest_days(source, archive, daily, "100001", WEEK[:1])
    ingest_batch(source, archive, batch, "100001", WEEK[:1])
    assert staged(daily) == staged(batch)     # suite results included


def test_the_fast_readers_read_what_the_line_by_line_reader_reads(sample_exports_ro,
                                                                   monkeypatch) -> None:
    specs = {spec.file_name: spec for spec in EXPORT_FILES}
    files = sorted(sample_exports_ro.rglob("*.csv"))
    assert any(b'"' in f.read_bytes() for f in files)        # the csv fast path is used
    assert any(b'"' not in f.read_bytes() for f in files)    # and the Arrow one
    for path in files:
        def read(p: Path = path):
            return read_export(specs[p.name], p.read_bytes(), source_file=p.name,
                               business_date=WEEK[0])
        fast = read()
        with monkeypatch.context() as m:
            m.setattr(parse, "_plain_lines", lambda data: None)
            m.setattr(parse, "_clean_records", lambda records, width: False)
            slow = read()
        assert fast.raw.equals(slow.raw), path
        assert (fast.rejects, fast.rows_read, fast.unmapped_columns) == (
            slow.rejects, slow.rows_read, slow.unmapped_columns), path


# -- (b) a bad day is held back, named, and the others are staged ------------------------------

def test_one_bad_day_fails_alone_and_is_named(sample_exports, warehouse, tmp_path) -> None:
    archive = RawArchive(tmp_path / "archive")
    source = LocalFolderSource(sample_exports)
    bad_day = WEEK[2]
    ingest_days(source, archive, warehouse, "100001", [bad_day])     # its previous state
    before = {t: [r for r in rows if r["business_date"] == bad_day]
              for t, rows in staged(warehouse).items()}

    path = path_of(sample_exports, "100001", bad_day, "CheckDetails.csv")
    rows = read_rows(path)
    check_id = rows[1][rows[0].index("Check Id")]
    rows.append(list(rows[1]))                # the same Check Id, different content
    rows[-1][rows[0].index("Total")] = "999.00"
    write_rows(path, rows)

    with pytest.raises(PartitionBatchValidationError) as caught:
        ingest_batch(source, archive, warehouse, "100001")
    error = caught.value
    assert isinstance(error, PartitionValidationError) and isinstance(error, PartitionBatchError)
    assert list(error.failed) == [f"100001/{bad_day:%Y%m%d}"]
    message = str(error)
    assert f"partition 100001/{bad_day:%Y%m%d} not staged" in message
    assert f"100001/{bad_day:%Y%m%d}/CheckDetails.csv: column 'check_id'" in message
    assert repr(check_id) in message and f"[2, {len(rows)}]" in message
    assert "1 of 7 partition(s) of location 100001 not staged (6 staged)" in message

    after = staged(warehouse)
    assert {r["business_date"] for r in after["stg_loads"]} == set(WEEK)
    assert {t: [r for r in rows if r["business_date"] == bad_day]
            for t, rows in after.items() if t != "stg_validation_results"} == {
        t: rows for t, rows in before.items() if t != "stg_validation_results"}
    assert [e.business_date for e in error.staged] == [
        d.isoformat() for d in WEEK if d != bad_day]
    failed_suites = warehouse.query(
        "SELECT table_name, business_date FROM stg_validation_results WHERE NOT success")
    assert failed_suites == [{"table_name": "stg_checks", "business_date": bad_day}]


def test_a_payment_reexported_on_a_later_day_is_not_a_duplicate(sample_exports, tmp_path
                                                                 ) -> None:
    wh = Warehouse.from_url(f"duckdb:///{tmp_path / 'w.duckdb'}")
    wh.migrate()
    first, later = WEEK[1], WEEK[4]
    header, payment = read_rows(path_of(sample_exports, "100001", first, "PaymentDetails.csv"))[:2]
    payment = list(payment)
    payment[header.index("Refund Amount")] = "5.00"            # a late refund, re-exported
    later_path = path_of(sample_exports, "100001", later, "PaymentDetails.csv")
    write_rows(later_path, [*read_rows(later_path), payment])

    ingest_batch(LocalFolderSource(sample_exports), RawArchive(tmp_path / "archive"), wh,
                 "100001")
    payment_id = payment[header.index("Payment Id")]
    assert wh.query("SELECT business_date FROM stg_payments WHERE payment_id = :p "
                    "ORDER BY business_date", {"p": payment_id}) == [
        {"business_date": first}, {"business_date": later}]
    assert wh.scalar("SELECT refund_amount FROM stg_payments_latest WHERE payment_id = :p",
                     {"p": payment_id}) == 5


def test_a_day_with_a_missing_file_fails_alone(sample_exports, tmp_path) -> None:
    wh = Warehouse.from_url(f"duckdb:///{tmp_path / 'w.duckdb'}")
    wh.migrate()
    path_of(sample_exports, "100002", WEEK[5], "PaymentDetails.csv").unlink()
    with pytest.raises(PartitionBatchError, match=r"100002/20261106: export file\(s\) missing: "
                                                  r"PaymentDetails\.csv") as caught:
        ingest_batch(LocalFolderSource(sample_exports), RawArchive(tmp_path / "archive"), wh,
                     "100002")
    assert not isinstance(caught.value, PartitionValidationError)
    assert wh.query("SELECT DISTINCT business_date FROM stg_checks ORDER BY 1") == [
        {"business_date": d} for d in WEEK if d != WEEK[5]]
    assert wh.scalar("SELECT COUNT(*) FROM raw_files") == 7 * 5 - 1   # archived all the same


# -- all or nothing per partition, with one transaction per batch --------------------------------

def test_a_batch_that_fails_while_staging_leaves_every_day_as_it_was(
        sample_exports, warehouse, tmp_path, monkeypatch) -> None:
    archive = RawArchive(tmp_path / "archive")
    source = LocalFolderSource(sample_exports)
    ingest_batch(source, archive, warehouse, "100001")
    before = staged(warehouse)
    for day in (WEEK[1], WEEK[5]):            # new exports that would change two days
        set_value(path_of(sample_exports, "100001", day, "CheckDetails.csv"), 1, "Total",
                  "123.45")

    insert_arrow = Warehouse.insert_arrow

    def fail_on_the_last_insert(self, conn, table, data):
        if table == "stg_validation_results":
            raise RuntimeError("connection lost")
        return insert_arrow(self, conn, table, data)

    monkeypatch.setattr(Warehouse, "insert_arrow", fail_on_the_last_insert)
    with pytest.raises(RuntimeError, match="connection lost"):
        ingest_batch(source, archive, warehouse, "100001")
    assert staged(warehouse) == before

    monkeypatch.setattr(Warehouse, "insert_arrow", insert_arrow)
    ingest_batch(source, archive, warehouse, "100001")
    totals = warehouse.query("SELECT business_date FROM stg_checks WHERE source_row = 2 "
                             "AND total = 123.45 ORDER BY business_date")
    assert totals == [{"business_date": WEEK[1]}, {"business_date": WEEK[5]}]


# -- the DAG's glue ---------------------------------------------------------------------------

def test_business_dates_of_a_range() -> None:
    from toast_passkit.toast.pipeline import business_dates

    assert business_dates("2026-11-01") == [WEEK[0]]
    assert business_dates("2026-11-01", "2026-11-07") == WEEK
    with pytest.raises(ValueError, match="through_date 2026-10-31 is before business_date"):
        business_dates("2026-11-01", "2026-10-31")


def test_a_range_summary_counts_every_partition(sample_exports, tmp_path) -> None:
    from toast_passkit.toast.pipeline import range_summary, summarise

    wh = Warehouse.from_url(f"duckdb:///{tmp_path / 'w.duckdb'}")
    wh.migrate()
    source, archive = LocalFolderSource(sample_exports), RawArchive(tmp_path / "archive")
    results = ingest_partitions(source=source, archive=archive, warehouse=wh,
                                location_id="100001", business_dates=WEEK)
    week = range_summary("100001", WEEK, results)
    day = ingest_partition(source=source, archive=archive, warehouse=wh, location_id="100002",
                           business_date=WEEK[0]).as_dict()
    summary = summarise([week, day])
    assert summary["partitions"] == 8 and summary["locations"] == ["100001", "100002"]
    assert summary["rows_loaded"]["stg_checks"] == wh.scalar("SELECT COUNT(*) FROM stg_checks")
    assert week["load_ids"] == [r.load_id for r in results] and week["files_archived"] == 35
