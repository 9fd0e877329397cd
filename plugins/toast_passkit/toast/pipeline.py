"""Airflow-facing glue for the ingest DAG: resolves connections and settings, calls the core."""

from __future__ import annotations

import logging
from datetime import date

from toast_passkit.settings import load_settings
from toast_passkit.toast.archive import RawArchive
from toast_passkit.toast.ingest import ingest_partition
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


def ingest_one(location_id: str, day: str, source: str = "toast") -> dict[str, object]:
    """Ingest one (location, business date) partition; returns its counts."""
    settings = load_settings()
    archive = RawArchive(settings.archive_root)
    warehouse = Warehouse.from_connection()
    src = _source(source, archive)
    try:
        warehouse.migrate()
        result = ingest_partition(
            source=src, archive=archive, warehouse=warehouse,
            location_id=location_id, business_date=date.fromisoformat(day),
            column_mapping=settings.column_mapping,
        )
    finally:
        src.close()
        warehouse.dispose()
    return result.as_dict()


def summarise(results: list[dict[str, object]]) -> dict[str, object]:
    """Per-table totals over a run's partitions, printed for the task log."""
    loaded: dict[str, int] = {}
    rejected: dict[str, int] = {}
    for r in results:
        for table, n in dict(r["rows_loaded"]).items():  # type: ignore[call-overload]
            loaded[table] = loaded.get(table, 0) + int(n)
        for table, n in dict(r["rows_rejected"]).items():  # type: ignore[call-overload]
            rejected[table] = rejected.get(table, 0) + int(n)
    summary = {"partitions": len(results), "rows_loaded": loaded, "rows_rejected": rejected,
               "locations": sorted(str(r["location_id"]) for r in results)}
    width = max((len(t) for t in loaded), default=10)
    lines = [f"{'table':<{width}}  {'loaded':>8}  {'rejected':>8}"]
    lines += [f"{t:<{width}}  {loaded[t]:>8}  {rejected.get(t, 0):>8}" for t in sorted(loaded)]
    log.info("staged %d partition(s):\n%s", len(results), "\n".join(lines))
    return summary
