"""Airflow-facing glue for the ingest DAG: resolves connections and settings, calls the core."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from toast_passkit.settings import load_settings
from toast_passkit.toast.archive import RawArchive
from toast_passkit.toast.ingest import PartitionResult, ingest_partition, ingest_partitions
from toast_passkit.toast.sources import ExportSource, SourceError, source_from_connection
from toast_passkit.warehouse import Warehouse

log = logging.getLogger(__name__)


def _source(kind: str, archive: RawArchive) -> ExportSource:
    return archive if kind == "archive" else source_from_connection()


def locations_to_ingest(source: str = "toast") -> list[str]:
    """Configured location ids, or every location folder the source holds."""
    settings = load_settings()
    if settings.location_ids:
        return settings.location_ids
    src = _source(source, RawArchive(settings.archive_root))
    try:
        found = src.list_locations()
    finally:
        src.close()
    if not found:
        raise SourceError("no location folders found in the export source")
    log.info("locations found in the export source: %s", found)
    return found


def business_dates(first: str, through: str | None = None) -> list[date]:
    """Business dates from `first` through `through` (ISO dates, inclusive); `first` alone."""
    start = date.fromisoformat(first)
    end = date.fromisoformat(through) if through else start
    if end < start:
        raise ValueError(f"through_date {end} is before business_date {start}")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def ingest_one(location_id: str, day: str, source: str = "toast",
               through_date: str | None = None) -> dict[str, object]:
    """Ingest one location's business date, or `day` through `through_date` as one batch.

    Returns the counts of what was staged (summed over the range for a batch).
    """
    dates = business_dates(day, through_date)
    settings = load_settings()
    archive = RawArchive(settings.archive_root)
    warehouse = Warehouse.from_connection()
    src = _source(source, archive)
    try:
        warehouse.migrate()
        if through_date is None:
            return ingest_partition(
                source=src, archive=archive, warehouse=warehouse, location_id=location_id,
                business_date=dates[0], column_mapping=settings.column_mapping,
            ).as_dict()
        return range_summary(location_id, dates, ingest_partitions(
            source=src, archive=archive, warehouse=warehouse, location_id=location_id,
            business_dates=dates, column_mapping=settings.column_mapping,
        ))
    finally:
        src.close()
        warehouse.dispose()


def range_summary(location_id: str, dates: list[date],
                  results: list[PartitionResult]) -> dict[str, object]:
    """One location's counts over a range of business dates (the shape `summarise` reads)."""
    return {"location_id": location_id, "business_date": dates[0].isoformat(),
            "through_date": dates[-1].isoformat(), "partitions": len(results),
            "load_ids": [r.load_id for r in results],
            "rows_loaded": _totals(r.rows_loaded for r in results),
            "rows_rejected": _totals(r.rows_rejected for r in results),
            "files_archived": sum(r.files_archived for r in results)}


def _totals(counts: Iterable[Mapping[str, object]]) -> dict[str, int]:
    """Per-table sums of per-table counts."""
    out: dict[str, int] = {}
    for per_table in counts:
        for table, n in per_table.items():
            out[table] = out.get(table, 0) + int(n)  # type: ignore[call-overload]
    return out


def summarise(results: list[dict[str, object]]) -> dict[str, object]:
    """Per-table totals over a run's partitions, printed for the task log."""
    loaded = _totals(r["rows_loaded"] for r in results)  # type: ignore[misc]
    rejected = _totals(r["rows_rejected"] for r in results)  # type: ignore[misc]
    partitions = sum(int(r.get("partitions", 1)) for r in results)  # type: ignore[call-overload]
    summary = {"partitions": partitions, "rows_loaded": loaded, "rows_rejected": rejected,
               "locations": sorted(str(r["location_id"]) for r in results)}
    width = max((len(t) for t in loaded), default=10)
    lines = [f"{'table':<{width}}  {'loaded':>8}  {'rejected':>8}"]
    lines += [f"{t:<{width}}  {loaded[t]:>8}  {rejected.get(t, 0):>8}" for t in sorted(loaded)]
    log.info("staged %d partition(s):\n%s", partitions, "\n".join(lines))
    return summary
