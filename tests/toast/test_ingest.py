"""Ingest of one export partition: staging, lineage, atomic replacement and every bad input."""

from __future__ import annotations

import os
import stat
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.toast.csv_files import read_rows, write_rows
from toast_passkit.toast.archive import RawArchive
from toast_passkit.toast.ingest import PartitionError, ingest_partition
from toast_passkit.toast.sources import LocalFolderSource
from toast_passkit.toast.validate import PartitionValidationError
from toast_passkit.warehouse import Warehouse

LOC = "100001"
DAY = date(2026, 11, 2)
STAGING = ["stg_orders", "stg_checks", "stg_payments", "stg_item_lines", "stg_modifier_lines"]


def ingest(root: Path, wh: Warehouse, archive_root: Path, day: date = DAY, loc: str = LOC,
           **kwargs):
    return ingest_partition(source=LocalFolderSource(root), archive=RawArchive(archive_root),
                            warehouse=wh, location_id=loc, business_date=day, **kwargs)


def snapshot(wh: Warehouse, tables=(*STAGING, "stg_rejected_rows")) -> dict[str, list]:
    return {t: wh.query(f"SELECT * FROM {t} ORDER BY location_id, business_date, source_file, "
                        "source_row") for t in tables}


def csv_path(root: Path, name: str, day: date = DAY) -> Path:
    return root / LOC / f"{day:%Y%m%d}" / name




def rejects(wh: Warehouse, table: str) -> list[dict]:
    return wh.query("SELECT source_row, field, value, reason FROM stg_rejected_rows "
                    "WHERE table_name = :t ORDER BY source_row", {"t": table})


# -- the happy path, on DuckDB and PostgreSQL -------------------------------------------------

def test_partition_is_staged_with_lineage_and_rerun_is_identical(sample_exports, warehouse,
                                                                 tmp_path) -> None:
    result = ingest(sample_exports, warehouse, tmp_path / "archive")
    expected_lines = len(read_rows(csv_path(sample_exports, "ItemSelectionDetails.csv"))) - 1
    assert result.rows_loaded["stg_item_lines"] == expected_lines
    assert sum(result.rows_rejected.values()) == 0
    line = warehouse.query("SELECT * FROM stg_item_lines ORDER BY source_row LIMIT 1")[0]
    assert line["source_file"] == f"{LOC}/{DAY:%Y%m%d}/ItemSelectionDetails.csv"
    assert line["source_row"] == 2 and len(line["source_checksum"]) == 64
    assert len(line["item_selection_id"]) == 19 and isinstance(line["item_selection_id"], str)

    before = snapshot(warehouse)
    ingest(sample_exports, warehouse, tmp_path / "archive")
    assert snapshot(warehouse) == before


def test_money_is_exact_and_zero_tax_in_scientific_notation_parses(sample_exports, tmp_path
                                                                   ) -> None:
    wh = Warehouse.from_url(f"duckdb:///{tmp_path / 'w.duckdb'}")
    wh.migrate()
    raw_total, zero_tax = Decimal(0), 0
    for offset in range(7):
        day = date(2026, 11, 1) + timedelta(days=offset)
        ingest(sample_exports, wh, tmp_path / "archive", day=day)
        rows = read_rows(csv_path(sample_exports, "ItemSelectionDetails.csv", day))
        raw_total += sum(Decimal(r[rows[0].index("Net Price")]) for r in rows[1:])
        zero_tax += sum(r[rows[0].index("Tax")] == "0E-8" for r in rows[1:])
    assert wh.scalar("SELECT SUM(net_price) FROM stg_item_lines") == raw_total
    assert zero_tax > 0
    assert wh.scalar("SELECT COUNT(*) FROM stg_item_lines WHERE tax = 0") >= zero_tax
    gift = wh.query("SELECT tax, deferred FROM stg_item_lines WHERE menu_item = 'Gift Card'")
    assert gift and all(g["tax"] == 0 and g["deferred"] for g in gift)


def test_a_failed_partition_leaves_the_previous_state(sample_exports, warehouse, tmp_path
                                                      ) -> None:
    ingest(sample_exports, warehouse, tmp_path / "archive")
    before = snapshot(warehouse)
    path = csv_path(sample_exports, "PaymentDetails.csv")
    rows = read_rows(path)
    rows.append(list(rows[1]))           # same Payment Id twice, different content
    rows[-1][rows[0].index("Amount")] = "999.00"
    write_rows(path, rows)
    with pytest.raises(PartitionValidationError, match=r"payment_id.*be_unique"):
        ingest(sample_exports, warehouse, tmp_path / "archive")
    assert snapshot(warehouse) == before
    failed = warehouse.query("SELECT table_name FROM stg_validation_results WHERE NOT success")
    assert [r["table_name"] for r in failed] == ["stg_payments"]


def test_late_refund_in_a_later_export_wins(sample_exports, warehouse, tmp_path) -> None:
    root = sample_exports
    later = date(2026, 11, 5)
    for day in (DAY, later):
        ingest(root, warehouse, tmp_path / "archive", day=day)
    # Re-export one of day 2's payments in day 5's file with a refund.
    original = read_rows(csv_path(root, "PaymentDetails.csv"))
    header, row = original[0], list(original[1])
    row[header.index("Refund Amount")] = "5.00"
    row[header.index("Refund Date")] = "11/5/26 1:00 PM"
    row[header.index("Refunded")] = "true"
    later_path = csv_path(root, "PaymentDetails.csv", later)
    write_rows(later_path, [*read_rows(later_path), row])
    ingest(root, warehouse, tmp_path / "archive", day=later)
    payment_id = row[header.index("Payment Id")]
    latest = warehouse.query("SELECT business_date, refund_amount FROM stg_payments_latest "
                             "WHERE payment_id = :p", {"p": payment_id})
    assert latest == [{"business_date": later, "refund_amount": Decimal(
        "5.00")}]
    # Re-ingesting the older day does not undo the later export.
    ingest(root, warehouse, tmp_path / "archive", day=DAY)
    assert warehouse.scalar("SELECT refund_amount FROM stg_payments_latest WHERE payment_id = :p",
                            {"p": payment_id}) == 5


# -- the raw archive --------------------------------------------------------------------------

def test_raw_files_are_archived_immutable_and_reingestable_without_the_source(
        sample_exports, tmp_path) -> None:
    wh = Warehouse.from_url(f"duckdb:///{tmp_path / 'w.duckdb'}")
    wh.migrate()
    archive = RawArchive(tmp_path / "archive")
    ingest(sample_exports, wh, archive.root)
    before = snapshot(wh)
    entries = archive.latest(LOC, DAY)
    assert len(entries) == 5
    for entry in entries.values():
        path = archive.root / entry.archive_path
        assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        assert entry.checksum_sha256 in entry.archive_path
    assert wh.scalar("SELECT COUNT(*) FROM raw_files") == 5

    import shutil
    shutil.rmtree(sample_exports)        # Toast deleted its files after 7 days
    ingest_partition(source=archive, archive=archive, warehouse=wh, location_id=LOC,
                     business_date=DAY)
    assert snapshot(wh) == before


# -- bad input: each gets a clear error or a quarantined row, nothing half-written ------------

@pytest.fixture
def duck(tmp_path) -> Warehouse:
    wh = Warehouse.from_url(f"duckdb:///{tmp_path / 'w.duckdb'}")
    wh.migrate()
    return wh


def test_missing_required_column_fails_naming_file_and_column(sample_exports, duck, tmp_path
                                                             ) -> None:
    path = csv_path(sample_exports, "CheckDetails.csv")
    rows = read_rows(path)
    drop = rows[0].index("Customer Email")
    write_rows(path, [[v for i, v in enumerate(r) if i != drop] for r in rows])
    with pytest.raises(PartitionError, match=r"CheckDetails\.csv: required column\(s\) missing: "
                                             r"Customer Email"):
        ingest(sample_exports, duck, tmp_path / "archive")
    assert duck.scalar("SELECT COUNT(*) FROM stg_checks") == 0
    assert duck.scalar("SELECT COUNT(*) FROM stg_orders") == 0
    assert duck.scalar("SELECT COUNT(*) FROM raw_files") == 5   # archived all the same


def test_renamed_reordered_and_extra_columns(sample_exports, duck, tmp_path) -> None:
    path = csv_path(sample_exports, "ItemSelectionDetails.csv")
    rows = read_rows(path)
    expected = sum(Decimal(r[rows[0].index("Net Price")]) for r in rows[1:])
    order = list(reversed(range(len(rows[0]))))
    rows = [[r[i] for i in order] + ["x"] for r in rows]
    rows[0][-1] = "Loyalty Notes"                            # unknown extra column
    rows[0][rows[0].index("Net Price")] = "Net Amount"       # renamed by the restaurant group
    write_rows(path, rows)
    with pytest.raises(PartitionError, match="Net Price"):
        ingest(sample_exports, duck, tmp_path / "archive")
    mapping = {"ItemSelectionDetails.csv": {"net_price": ["Net Amount"]}}
    ingest(sample_exports, duck, tmp_path / "archive", column_mapping=mapping)
    assert duck.scalar("SELECT SUM(net_price) FROM stg_item_lines") == expected
    unmapped = duck.scalar("SELECT unmapped_columns FROM stg_loads "
                           "WHERE table_name = 'stg_item_lines'")
    assert "Loyalty Notes" in unmapped


def test_empty_file_fails_and_header_only_file_stages_nothing(sample_exports, duck, tmp_path
                                                              ) -> None:
    path = csv_path(sample_exports, "ModifiersSelectionDetails.csv")
    header = path.read_text(encoding="utf-8").splitlines()[0]
    path.write_bytes(b"")
    with pytest.raises(PartitionError, match=r"ModifiersSelectionDetails\.csv: file is empty"):
        ingest(sample_exports, duck, tmp_path / "archive")
    path.write_text(header + "\n", encoding="utf-8")
    result = ingest(sample_exports, duck, tmp_path / "archive")
    assert result.rows_loaded["stg_modifier_lines"] == 0
    assert result.rows_loaded["stg_item_lines"] > 0


def test_truncated_last_line_is_quarantined(sample_exports, duck, tmp_path) -> None:
    path = csv_path(sample_exports, "ItemSelectionDetails.csv")
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2],
                    encoding="utf-8")
    result = ingest(sample_exports, duck, tmp_path / "archive")
    assert result.rows_loaded["stg_item_lines"] == len(lines) - 2
    [reject] = rejects(duck, "stg_item_lines")
    assert reject["source_row"] == len(lines) and reject["reason"].startswith(
        "truncated last line")


def test_utf8_bom_is_accepted(sample_exports, duck, tmp_path) -> None:
    path = csv_path(sample_exports, "CheckDetails.csv")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = ingest(sample_exports, duck, tmp_path / "archive")
    assert result.rows_loaded["stg_checks"] == len(read_rows(path)) - 1
    assert result.rows_rejected["stg_checks"] == 0


def test_non_utf8_bytes_quarantine_the_row(sample_exports, duck, tmp_path) -> None:
    path = csv_path(sample_exports, "ItemSelectionDetails.csv")
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b",", b",Caf\xe9 ", 1)   # Latin-1 byte in row on line 3
    path.write_bytes(b"\n".join(lines))
    result = ingest(sample_exports, duck, tmp_path / "archive")
    [reject] = rejects(duck, "stg_item_lines")
    assert reject["source_row"] == 3 and "invalid UTF-8" in reject["reason"]
    assert "Caf" in reject["value"]
    assert result.rows_loaded["stg_item_lines"] == len(lines) - 3  # header, bad row, final ""


def test_duplicate_rows_are_staged_once_and_the_copy_quarantined(sample_exports, duck, tmp_path
                                                                 ) -> None:
    path = csv_path(sample_exports, "OrderDetails.csv")
    rows = read_rows(path)
    write_rows(path, [*rows, rows[1]])
    result = ingest(sample_exports, duck, tmp_path / "archive")
    assert result.rows_loaded["stg_orders"] == len(rows) - 1
    [reject] = rejects(duck, "stg_orders")
    assert reject["reason"] == "duplicate of line 2" and reject["source_row"] == len(rows) + 1


def test_a_missing_file_fails_the_partition_naming_it(sample_exports, duck, tmp_path) -> None:
    csv_path(sample_exports, "PaymentDetails.csv").unlink()
    with pytest.raises(PartitionError, match=r"export file\(s\) missing: PaymentDetails\.csv"):
        ingest(sample_exports, duck, tmp_path / "archive")
    for table in STAGING:
        assert duck.scalar(f"SELECT COUNT(*) FROM {table}") == 0
    assert duck.scalar("SELECT COUNT(*) FROM raw_files") == 4


def test_rows_dated_outside_the_partition_are_quarantined(sample_exports, duck, tmp_path
                                                          ) -> None:
    path = csv_path(sample_exports, "ItemSelectionDetails.csv")
    rows = read_rows(path)
    rows[1][rows[0].index("Order Date")] = "10/20/26 12:00 PM"
    write_rows(path, rows)
    ingest(sample_exports, duck, tmp_path / "archive")
    [reject] = rejects(duck, "stg_item_lines")
    assert reject == {"source_row": 2, "field": "order_local", "value": "10/20/26 12:00 PM",
                      "reason": "date outside business date 2026-11-02"}


def test_negative_and_malformed_amounts_are_quarantined(sample_exports, duck, tmp_path) -> None:
    path = csv_path(sample_exports, "ItemSelectionDetails.csv")
    rows = read_rows(path)
    net = rows[0].index("Net Price")
    rows[1][net] = "-4.00"
    rows[2][net] = "12,50"
    write_rows(path, rows)
    result = ingest(sample_exports, duck, tmp_path / "archive")
    got = [(r["source_row"], r["field"], r["value"], r["reason"])
           for r in rejects(duck, "stg_item_lines")]
    assert got == [(2, "net_price", "-4.00", "negative amount"),
                   (3, "net_price", "12,50", "not a valid money")]
    assert result.rows_loaded["stg_item_lines"] == len(rows) - 3


def test_unparseable_key_id_fails_the_partition_with_examples(sample_exports, duck, tmp_path
                                                              ) -> None:
    path = csv_path(sample_exports, "CheckDetails.csv")
    rows = read_rows(path)
    rows[3][rows[0].index("Check Id")] = "1.2E+18"     # what a spreadsheet does to an id
    write_rows(path, rows)
    with pytest.raises(PartitionValidationError) as err:
        ingest(sample_exports, duck, tmp_path / "archive")
    message = str(err.value)
    assert "CheckDetails.csv" in message and "'check_id'" in message
    assert "1.2E+18" in message and "[4]" in message
    assert duck.scalar("SELECT COUNT(*) FROM stg_checks") == 0
