"""Ingest Toast export partitions (a location's business dates) into the staging tables.

Order of work, so that nothing is lost and nothing is half-written:
1. every file present is archived (immutable, checksummed) and recorded in `raw_files`;
2. each file is parsed; bad rows are quarantined with line, field, value and reason;
3. each staging table's Great Expectations suite runs; a blocking failure holds the
   partition back (its failed suite results are kept, its staged data is left alone);
4. one transaction replaces the partitions that passed in every staging table, with their
   rejected rows, load records and validation results. A failure anywhere leaves the
   previous state.

`ingest_partition` runs this for one (location, business date): the daily path.
`ingest_partitions` runs it for a range of one location's business dates as one batch
(backfills, re-ingest from the archive): the same steps and the same staged rows, but one
typing query and one suite run per staging table for the whole batch. Its one transaction
holds every delete and insert of every partition that passed, so each partition is still
replaced all or nothing. A partition with missing or unusable files or blocking validation
failures is held back with its previous state; the others are staged, then the batch
raises an error naming each held-back partition.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from toast_passkit.toast.archive import ArchivedFile, RawArchive
from toast_passkit.toast.exports import EXPORT_FILES, ExportFile, with_column_mapping
from toast_passkit.toast.parse import (
    ExportFileError,
    ParsedFile,
    RawExport,
    read_export,
    type_exports,
)
from toast_passkit.toast.sources import ExportSource
from toast_passkit.toast.validate import (
    PartitionValidationError,
    ValidationOutcome,
    validate_partitions,
)
from toast_passkit.warehouse import Warehouse

log = logging.getLogger(__name__)
PARSER_VERSION = "1"
PARTITION_TABLES = ("stg_rejected_rows", "stg_loads", "stg_validation_results")
# Days archived at once: archiving waits on fsync, not on the CPU.
ARCHIVE_THREADS = 4
# Business dates per batch, to bound memory: bench/bench_ingest.py's 30-day batches of one
# location (~110k lines) peak under 1 GB with GX loaded.
MAX_BATCH_DAYS = 31
ColumnMapping = Mapping[str, Mapping[str, list[str]]] | str | None


class PartitionError(RuntimeError):
    """The partition can't be staged (files missing or unusable); nothing was written."""


class PartitionBatchError(PartitionError):
    """Partitions of a batch were held back (each named); the batch's others were staged."""

    def __init__(self, message: str, *, staged: list[PartitionResult],
                 failed: dict[str, Exception]) -> None:
        super().__init__(message)
        self.staged = staged      # results of the partitions that were staged
        self.failed = failed      # "<location>/<YYYYMMDD>" -> why it was held back


class PartitionBatchValidationError(PartitionBatchError, PartitionValidationError):
    """Every held-back partition of the batch failed a blocking expectation."""


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


@dataclass
class _Partition:
    """One (location, business date) on its way through the ingest."""

    location_id: str
    business_date: date
    present: set[str]
    archived: dict[str, ArchivedFile]            # file name -> archived version
    data: dict[str, bytes]                       # file name -> content, until read
    load_id: str = ""
    parsed: list[ParsedFile] = field(default_factory=list)
    outcomes: list[ValidationOutcome] = field(default_factory=list)
    error: Exception | None = None

    @property
    def label(self) -> str:
        return f"{self.location_id}/{self.business_date:%Y%m%d}"

    def checksum(self, parsed: ParsedFile) -> str:
        return self.archived[parsed.spec.file_name].checksum_sha256

    def hold_back(self, error: Exception, cause: Exception | None = None) -> None:
        error.__cause__ = cause
        self.error = error
        self.parsed, self.outcomes = [], []


def ingest_partition(
    *,
    source: ExportSource,
    archive: RawArchive,
    warehouse: Warehouse,
    location_id: str,
    business_date: date,
    column_mapping: ColumnMapping = None,
    validate: bool = True,
) -> PartitionResult:
    """Archive, parse, validate and atomically stage one (location, business date)."""
    staged, held_back = _ingest(source, archive, warehouse, location_id, [business_date],
                                column_mapping, validate)
    if held_back:
        assert held_back[0].error is not None
        raise held_back[0].error
    return staged[0]


def ingest_partitions(
    *,
    source: ExportSource,
    archive: RawArchive,
    warehouse: Warehouse,
    location_id: str,
    business_dates: Iterable[date],
    column_mapping: ColumnMapping = None,
    validate: bool = True,
) -> list[PartitionResult]:
    """Archive, parse, validate and stage many business dates of one location as one batch.

    Stages exactly the rows `ingest_partition` would for each date. Each partition is
    replaced all-or-nothing: the partitions that pass are replaced in one transaction; one
    that fails (files missing or unusable, a blocking expectation on its rows) is held back
    with its previous staged state, and PartitionBatchError (PartitionBatchValidationError
    when every failure is a validation failure) is raised after the others are staged.
    A range longer than MAX_BATCH_DAYS runs as consecutive batches, so memory stays bounded.
    """
    dates = sorted(set(business_dates))
    staged: list[PartitionResult] = []
    held_back: list[_Partition] = []
    for first in range(0, len(dates), MAX_BATCH_DAYS):
        done, failed = _ingest(source, archive, warehouse, location_id,
                               dates[first:first + MAX_BATCH_DAYS], column_mapping, validate)
        staged += done
        held_back += failed
    if held_back:
        raise _batch_error(location_id, len(dates), staged, held_back)
    return staged


def _ingest(source: ExportSource, archive: RawArchive, warehouse: Warehouse, location_id: str,
            dates: list[date], column_mapping: ColumnMapping, validate: bool,
            ) -> tuple[list[PartitionResult], list[_Partition]]:
    """Both paths: archive all, read each, type and validate per table, stage what passed."""
    specs = with_column_mapping(column_mapping)
    # 1. Archive first: Toast deletes its files after 7 days.
    partitions = [_fetch(source, specs, location_id, day) for day in dates]
    _archive(archive, partitions, source.uri)
    _record_raw_files(warehouse, [e for p in partitions for e in p.archived.values()])
    # 2. Parse. Typing (DuckDB, which releases the GIL) runs in a second thread while the
    # next kind of file is read and, in 3., the previous one is validated (both need the GIL).
    for p in partitions:
        _check_complete(p, specs, source.uri)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="toast-typing") as typist:
        typed = [typist.submit(_type_kind, _read_kind(spec, partitions)) for spec in specs]
        for spec, kind in zip(specs, typed, strict=True):
            files = [(p, f) for p, f in kind.result() if p.error is None]
            for p, f in files:
                p.parsed.append(f)
            # 3. Validate.
            if validate and files:
                _validate_kind(spec, files)
    if validate:
        _hold_back_failed(warehouse, partitions)
    # 4. Replace the partitions that passed, atomically.
    passed = [p for p in partitions if p.error is None]
    staged = _stage(warehouse, passed) if passed else []
    return staged, [p for p in partitions if p.error is not None]


def _fetch(source: ExportSource, specs: tuple[ExportFile, ...], location_id: str,
           business_date: date) -> _Partition:
    """Read a day's export files from the source (one at a time: an SFTP session is serial)."""
    present = set(source.list_files(location_id, business_date))
    names = sorted(present & {s.file_name for s in specs})
    return _Partition(location_id, business_date, present, archived={},
                      data={name: source.read(location_id, business_date, name)
                            for name in names})


def _archive(archive: RawArchive, partitions: list[_Partition], source_uri: str) -> None:
    """Archive every fetched file; days in parallel (each fsyncs its own folder and manifest)."""
    def store_day(p: _Partition) -> dict[str, ArchivedFile]:
        return archive.store_day(p.location_id, p.business_date, p.data, source_uri)

    if len(partitions) == 1:
        partitions[0].archived = store_day(partitions[0])
        return
    with ThreadPoolExecutor(max_workers=ARCHIVE_THREADS) as pool:
        for p, archived in zip(partitions, pool.map(store_day, partitions), strict=True):
            p.archived = archived


def _check_complete(p: _Partition, specs: tuple[ExportFile, ...], source_uri: str) -> None:
    """Hold the partition back when a required file is missing; else give it its load id."""
    missing = [s.file_name for s in specs if s.required_file and s.file_name not in p.present]
    if missing:
        p.hold_back(PartitionError(
            f"{source_uri}/{p.label}: export file(s) missing: {', '.join(missing)}"
            + ("" if p.present else " (no export folder for this date)")))
        return
    checksums = sorted(entry.checksum_sha256 for entry in p.archived.values())
    p.load_id = hashlib.sha256(
        f"{PARSER_VERSION}|{p.location_id}|{p.business_date}|{'|'.join(checksums)}".encode()
    ).hexdigest()[:20]


def _read_kind(spec: ExportFile, partitions: list[_Partition],
               ) -> list[tuple[_Partition, RawExport]]:
    """Split one kind of file of every partition still in play into raw rows.

    Kinds are read in spec order, so a partition's first unusable file is the one that
    holds it back and its later files are not read, as when a partition is read alone.
    """
    out = []
    for p in partitions:
        if p.error is not None or spec.file_name not in p.data:
            continue
        try:
            out.append((p, read_export(spec, p.data.pop(spec.file_name),
                                       source_file=f"{p.label}/{spec.file_name}",
                                       business_date=p.business_date)))
        except ExportFileError as exc:
            p.hold_back(PartitionError(str(exc)), cause=exc)
    return out


def _type_kind(raws: list[tuple[_Partition, RawExport]]) -> list[tuple[_Partition, ParsedFile]]:
    """Type one kind of file of every partition in one query."""
    return list(zip([p for p, _ in raws], type_exports([raw for _, raw in raws]), strict=True))


def _validate_kind(spec: ExportFile, files: list[tuple[_Partition, ParsedFile]]) -> None:
    """One suite run over one kind of file of every partition; each keeps its own outcome."""
    outcomes = validate_partitions([f for _, f in files])
    for (p, _), outcome in zip(files, outcomes, strict=True):
        p.outcomes.append(outcome)


def _hold_back_failed(warehouse: Warehouse, partitions: list[_Partition]) -> None:
    """Hold back each partition whose own rows failed a blocking expectation."""
    for p in partitions:
        failures = [msg for o in p.outcomes for msg in o.failures]
        if p.error is None and failures:
            _record_failed_validation(warehouse, p.location_id, p.business_date, p.load_id,
                                      p.outcomes)
            p.hold_back(PartitionValidationError(
                f"partition {p.label} not staged; blocking validation failures:\n  "
                + "\n  ".join(failures)))


def _stage(warehouse: Warehouse, partitions: list[_Partition]) -> list[PartitionResult]:
    """Replace every given partition of one location in one transaction."""
    now = datetime.now(UTC)
    results = [_result(p) for p in partitions]
    with warehouse.begin() as conn:
        _delete_partitions(conn, partitions[0].location_id,
                           [p.business_date for p in partitions])
        for spec in EXPORT_FILES:
            warehouse.insert_arrow(conn, spec.table, _concat(
                _with_lineage(f.rows, p.location_id, p.business_date, f.source_file,
                              p.checksum(f), p.load_id)
                for p in partitions for f in p.parsed if f.spec.table == spec.table))
        warehouse.insert_arrow(conn, "stg_rejected_rows", _concat(
            _rejects_table(f, p.location_id, p.business_date, p.load_id)
            for p in partitions for f in p.parsed))
        warehouse.insert_arrow(conn, "stg_loads", _concat(_loads_table(p, now)
                                                          for p in partitions))
        warehouse.insert_arrow(conn, "stg_validation_results", _concat(
            _outcomes_table(p.outcomes, p.location_id, p.business_date, p.load_id, now)
            for p in partitions))
    for r in results:
        log.info("staged %s/%s load %s: loaded %s, rejected %s", r.location_id,
                 r.business_date.replace("-", ""), r.load_id, r.rows_loaded, r.rows_rejected)
    return results


def _delete_partitions(conn: Connection, location_id: str, dates: list[date]) -> None:
    for table in [s.table for s in EXPORT_FILES] + list(PARTITION_TABLES):
        conn.execute(sa.text(f"DELETE FROM {table} WHERE location_id = :location_id "
                             "AND business_date IN :business_dates")
                     .bindparams(sa.bindparam("business_dates", expanding=True)),
                     {"location_id": location_id, "business_dates": dates})


def _concat(tables: Iterable[pa.Table]) -> pa.Table:
    """One table from per-partition pieces (an empty table when there are none)."""
    pieces = list(tables)
    return pa.concat_tables(pieces) if pieces else pa.table({})


def _result(p: _Partition) -> PartitionResult:
    return PartitionResult(
        location_id=p.location_id, business_date=p.business_date.isoformat(),
        load_id=p.load_id, files_archived=len(p.archived),
        rows_loaded={f.spec.table: f.rows.num_rows for f in p.parsed},
        rows_rejected={f.spec.table: f.rows_rejected for f in p.parsed},
    )


def _batch_error(location_id: str, total: int, staged: list[PartitionResult],
                 held_back: list[_Partition]) -> PartitionBatchError:
    failed = {p.label: p.error for p in held_back if p.error is not None}
    kind = (PartitionBatchValidationError
            if all(isinstance(e, PartitionValidationError) for e in failed.values())
            else PartitionBatchError)
    return kind(
        f"{len(failed)} of {total} partition(s) of location {location_id} not staged "
        f"({len(staged)} staged):\n" + "\n".join(f"- {e}" for e in failed.values()),
        staged=staged, failed=failed)


def _with_lineage(rows: pa.Table, location_id: str, business_date: date, source_file: str,
                  checksum: str, load_id: str) -> pa.Table:
    n = rows.num_rows
    out = rows.drop_columns(["source_row"])
    out = out.add_column(0, "location_id", _repeat(location_id, n, pa.string()))
    out = out.add_column(1, "business_date", _repeat(business_date, n, pa.date32()))
    out = out.append_column("source_file", _repeat(source_file, n, pa.string()))
    out = out.append_column("source_checksum", _repeat(checksum, n, pa.string()))
    out = out.append_column("source_row", rows.column("source_row"))
    return out.append_column("load_id", _repeat(load_id, n, pa.string()))


def _repeat(value: object, n: int, type_: pa.DataType) -> pa.Array:
    """`value` n times, built in Arrow rather than from an n-long Python list."""
    return pa.array([value], type_).take(pa.array(np.zeros(n, np.int32)))


def _loads_table(p: _Partition, now: datetime) -> pa.Table:
    n = len(p.parsed)
    return pa.table({
        "load_id": [p.load_id] * n, "location_id": [p.location_id] * n,
        "business_date": pa.array([p.business_date] * n, pa.date32()),
        "table_name": [f.spec.table for f in p.parsed],
        "source_file": [f.source_file for f in p.parsed],
        "source_checksum": [p.checksum(f) for f in p.parsed],
        "rows_read": pa.array([f.rows_read for f in p.parsed], pa.int32()),
        "rows_loaded": pa.array([f.rows.num_rows for f in p.parsed], pa.int32()),
        "rows_rejected": pa.array([f.rows_rejected for f in p.parsed], pa.int32()),
        "unmapped_columns": [", ".join(h.strip() for h in f.unmapped_columns)
                             for f in p.parsed],
        "loaded_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
    })


def _rejects_table(p: ParsedFile, location_id: str, business_date: date,
                   load_id: str) -> pa.Table:
    n = len(p.rejects)
    return pa.table({
        "load_id": pa.array([load_id] * n, pa.string()),
        "location_id": pa.array([location_id] * n, pa.string()),
        "business_date": pa.array([business_date] * n, pa.date32()),
        "table_name": pa.array([p.spec.table] * n, pa.string()),
        "source_file": pa.array([p.source_file] * n, pa.string()),
        "source_row": pa.array([r.source_row for r in p.rejects], pa.int32()),
        "field": pa.array([r.field for r in p.rejects], pa.string()),
        "value": pa.array([r.value for r in p.rejects], pa.string()),
        "reason": pa.array([r.reason for r in p.rejects], pa.string()),
    })


def _outcomes_table(outcomes: list[ValidationOutcome], location_id: str, business_date: date,
                    load_id: str, now: datetime) -> pa.Table:
    n = len(outcomes)
    return pa.table({
        "load_id": pa.array([load_id] * n, pa.string()),
        "location_id": pa.array([location_id] * n, pa.string()),
        "business_date": pa.array([business_date] * n, pa.date32()),
        "table_name": pa.array([o.table for o in outcomes], pa.string()),
        "suite_name": pa.array([o.suite_name for o in outcomes], pa.string()),
        "success": pa.array([o.success for o in outcomes], pa.bool_()),
        "evaluated": pa.array([o.evaluated for o in outcomes], pa.int32()),
        "failed": pa.array([o.failed for o in outcomes], pa.int32()),
        "result_json": pa.array([o.result_json for o in outcomes], pa.string()),
        "validated_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
    })


def _record_raw_files(warehouse: Warehouse, entries: list[ArchivedFile]) -> None:
    """Note archived versions in `raw_files` (idempotent per file version)."""
    if not entries:
        return
    keys = {f"{name}{i}": value for i, e in enumerate(entries) for name, value in (
        ("l", e.location_id), ("d", date.fromisoformat(e.business_date)), ("f", e.file_name),
        ("c", e.checksum_sha256))}
    versions = ", ".join(f"(:l{i}, :d{i}, :f{i}, :c{i})" for i in range(len(entries)))
    with warehouse.begin() as conn:
        conn.execute(sa.text(
            "DELETE FROM raw_files WHERE (location_id, business_date, file_name, "
            f"checksum_sha256) IN (VALUES {versions})"), keys)
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
