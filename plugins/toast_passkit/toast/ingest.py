"""Ingest one export partition (a location's business date) into the staging tables.

Order of work, so that nothing is lost and nothing is half-written:
1. every file present is archived (immutable, checksummed) and recorded in `raw_files`;
2. each file is parsed; bad rows are quarantined with line, field, value and reason;
3. each staging table's Great Expectations suite runs; a blocking failure stops here;
4. one transaction replaces the partition in every staging table, with its rejected rows,
   load records and validation results. A failure anywhere leaves the previous state.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pyarrow as pa
import sqlalchemy as sa

from toast_passkit.toast.archive import RawArchive
from toast_passkit.toast.exports import EXPORT_FILES, ExportFile, with_column_mapping
from toast_passkit.toast.parse import ExportFileError, ParsedFile, parse_export
from toast_passkit.toast.sources import ExportSource
from toast_passkit.toast.validate import (
    PartitionValidationError,
    ValidationOutcome,
    validate_parsed,
)
from toast_passkit.warehouse import Warehouse

log = logging.getLogger(__name__)
PARSER_VERSION = "1"
PARTITION_TABLES = ("stg_rejected_rows", "stg_loads", "stg_validation_results")


class PartitionError(RuntimeError):
    """The partition can't be staged (files missing or unusable); nothing was written."""


@dataclass
class PartitionResult:
    """What one partition's ingest did: counts only, no guest data."""

    location_id: str
    business_date: str
    load_id: str
    rows_loaded: dict[str, int] = field(default_factory=dict)
    rows_rejected: dict[str, int] = field(default_factory=dict)
    files_archived: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "location_id": self.location_id, "business_date": self.business_date,
            "load_id": self.load_id, "rows_loaded": dict(self.rows_loaded),
            "rows_rejected": dict(self.rows_rejected), "files_archived": self.files_archived,
        }


def ingest_partition(
    *,
    source: ExportSource,
    archive: RawArchive,
    warehouse: Warehouse,
    location_id: str,
    business_date: date,
    column_mapping: Mapping[str, Mapping[str, list[str]]] | str | None = None,
    validate: bool = True,
) -> PartitionResult:
    """Archive, parse, validate and atomically stage one (location, business date)."""
    specs = with_column_mapping(column_mapping)
    present = set(source.list_files(location_id, business_date))
    folder = f"{source.uri}/{location_id}/{business_date:%Y%m%d}"

    # 1. Archive first: Toast deletes its files after 7 days.
    archived = {}
    for name in sorted(present & {s.file_name for s in specs}):
        data = source.read(location_id, business_date, name)
        archived[name] = (archive.store(location_id, business_date, name, data, source.uri), data)
    _record_raw_files(warehouse, [entry for entry, _ in archived.values()])

    missing = [s.file_name for s in specs if s.required_file and s.file_name not in present]
    if missing:
        raise PartitionError(f"{folder}: export file(s) missing: {', '.join(missing)}"
                             + ("" if present else " (no export folder for this date)"))

    checksums = sorted(entry.checksum_sha256 for entry, _ in archived.values())
    load_id = hashlib.sha256(
        f"{PARSER_VERSION}|{location_id}|{business_date}|{'|'.join(checksums)}".encode()
    ).hexdigest()[:20]
    result = PartitionResult(location_id=location_id, business_date=business_date.isoformat(),
                             load_id=load_id, files_archived=len(archived))

    # 2. Parse.
    parsed: list[tuple[ExportFile, ParsedFile, str]] = []
    for spec in specs:
        if spec.file_name not in archived:
            continue
        entry, data = archived[spec.file_name]
        source_file = f"{location_id}/{business_date:%Y%m%d}/{spec.file_name}"
        try:
            parsed.append((spec, parse_export(spec, data, source_file=source_file,
                                              business_date=business_date),
                           entry.checksum_sha256))
        except ExportFileError as exc:
            raise PartitionError(str(exc)) from exc

    # 3. Validate.
    outcomes: list[ValidationOutcome] = []
    if validate:
        outcomes = [validate_parsed(p) for _, p, _ in parsed]
        failures = [msg for o in outcomes for msg in o.failures]
        if failures:
            _record_failed_validation(warehouse, location_id, business_date, load_id, outcomes)
            raise PartitionValidationError(
                f"partition {location_id}/{business_date:%Y%m%d} not staged; blocking "
                "validation failures:\n  " + "\n  ".join(failures)
            )

    # 4. Replace the partition atomically.
    now = datetime.now(UTC)
    with warehouse.begin() as conn:
        keys = {"location_id": location_id, "business_date": business_date}
        for table in [s.table for s in EXPORT_FILES] + list(PARTITION_TABLES):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE location_id = :location_id "
                                 "AND business_date = :business_date"), keys)
        for spec, p, checksum in parsed:
            rows = _with_lineage(p.rows, location_id, business_date, p.source_file, checksum,
                                 load_id)
            result.rows_loaded[spec.table] = warehouse.insert_arrow(conn, spec.table, rows)
            result.rows_rejected[spec.table] = p.rows_rejected
            warehouse.insert_arrow(conn, "stg_rejected_rows",
                                   _rejects_table(p, spec, location_id, business_date, load_id))
        warehouse.insert_arrow(conn, "stg_loads", _loads_table(parsed, location_id,
                                                               business_date, load_id, now))
        if outcomes:
            warehouse.insert_arrow(conn, "stg_validation_results",
                                   _outcomes_table(outcomes, location_id, business_date,
                                                   load_id, now))
    log.info("staged %s/%s load %s: loaded %s, rejected %s", location_id,
             f"{business_date:%Y%m%d}", load_id, result.rows_loaded, result.rows_rejected)
    return result


def _with_lineage(rows: pa.Table, location_id: str, business_date: date, source_file: str,
                  checksum: str, load_id: str) -> pa.Table:
    n = rows.num_rows
    out = rows.drop_columns(["source_row"])
    out = out.add_column(0, "location_id", pa.array([location_id] * n, pa.string()))
    out = out.add_column(1, "business_date", pa.array([business_date] * n, pa.date32()))
    out = out.append_column("source_file", pa.array([source_file] * n, pa.string()))
    out = out.append_column("source_checksum", pa.array([checksum] * n, pa.string()))
    out = out.append_column("source_row", rows.column("source_row"))
    return out.append_column("load_id", pa.array([load_id] * n, pa.string()))


def _loads_table(parsed: list[tuple[ExportFile, ParsedFile, str]], location_id: str,
                 business_date: date, load_id: str, now: datetime) -> pa.Table:
    n = len(parsed)
    return pa.table({
        "load_id": [load_id] * n, "location_id": [location_id] * n,
        "business_date": pa.array([business_date] * n, pa.date32()),
        "table_name": [spec.table for spec, _, _ in parsed],
        "source_file": [p.source_file for _, p, _ in parsed],
        "source_checksum": [checksum for _, _, checksum in parsed],
        "rows_read": pa.array([p.rows_read for _, p, _ in parsed], pa.int32()),
        "rows_loaded": pa.array([p.rows.num_rows for _, p, _ in parsed], pa.int32()),
        "rows_rejected": pa.array([p.rows_rejected for _, p, _ in parsed], pa.int32()),
        "unmapped_columns": [", ".join(h.strip() for h in p.unmapped_columns)
                             for _, p, _ in parsed],
        "loaded_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
    })


def _rejects_table(p: ParsedFile, spec: ExportFile, location_id: str, business_date: date,
                   load_id: str) -> pa.Table:
    n = len(p.rejects)
    return pa.table({
        "load_id": [load_id] * n, "location_id": [location_id] * n,
        "business_date": pa.array([business_date] * n, pa.date32()),
        "table_name": [spec.table] * n, "source_file": [p.source_file] * n,
        "source_row": pa.array([r.source_row for r in p.rejects], pa.int32()),
        "field": [r.field for r in p.rejects],
        "value": pa.array([r.value for r in p.rejects], pa.string()),
        "reason": [r.reason for r in p.rejects],
    })


def _outcomes_table(outcomes: list[ValidationOutcome], location_id: str, business_date: date,
                    load_id: str, now: datetime) -> pa.Table:
    n = len(outcomes)
    return pa.table({
        "load_id": [load_id] * n, "location_id": [location_id] * n,
        "business_date": pa.array([business_date] * n, pa.date32()),
        "table_name": [o.table for o in outcomes], "suite_name": [o.suite_name for o in outcomes],
        "success": [o.success for o in outcomes],
        "evaluated": pa.array([o.evaluated for o in outcomes], pa.int32()),
        "failed": pa.array([o.failed for o in outcomes], pa.int32()),
        "result_json": [o.result_json for o in outcomes],
        "validated_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
    })


def _record_raw_files(warehouse: Warehouse, entries: list) -> None:
    """Note archived versions in `raw_files` (idempotent per file version)."""
    if not entries:
        return
    with warehouse.begin() as conn:
        for e in entries:
            conn.execute(sa.text(
                "DELETE FROM raw_files WHERE location_id = :l AND business_date = :d "
                "AND file_name = :f AND checksum_sha256 = :c"),
                {"l": e.location_id, "d": date.fromisoformat(e.business_date),
                 "f": e.file_name, "c": e.checksum_sha256})
        warehouse.insert_arrow(conn, "raw_files", pa.table({
            "location_id": [e.location_id for e in entries],
            "business_date": pa.array([date.fromisoformat(e.business_date) for e in entries],
                                      pa.date32()),
            "file_name": [e.file_name for e in entries],
            "checksum_sha256": [e.checksum_sha256 for e in entries],
            "size_bytes": pa.array([e.size_bytes for e in entries], pa.int64()),
            "archive_path": [e.archive_path for e in entries],
            "source_uri": [e.source_uri for e in entries],
            "archived_at": pa.array([datetime.fromisoformat(e.archived_at) for e in entries],
                                    pa.timestamp("us", tz="UTC")),
        }))


def _record_failed_validation(warehouse: Warehouse, location_id: str, business_date: date,
                              load_id: str, outcomes: list[ValidationOutcome]) -> None:
    """Keep the failed suite results so the data team can read why (staged data untouched)."""
    with warehouse.begin() as conn:
        conn.execute(sa.text("DELETE FROM stg_validation_results WHERE load_id = :load_id"),
                     {"load_id": load_id})
        warehouse.insert_arrow(conn, "stg_validation_results",
                               _outcomes_table(outcomes, location_id, business_date, load_id,
                                               datetime.now(UTC)))
