"""Airflow glue for the re-engagement DAG: resolves warehouse and settings, calls the core."""

from __future__ import annotations

from datetime import date
from typing import Any

from toast_passkit.reengagement.plan import export_audience, plan_reengagement
from toast_passkit.reengagement.report import build_report
from toast_passkit.reengagement.settings import load_reengagement_settings
from toast_passkit.warehouse import Warehouse


def plan_task(day: str) -> dict[str, Any]:
    """Plan the actions of the re-engagements due by ``day``; returns the counts."""
    settings = load_reengagement_settings()
    warehouse = Warehouse.from_connection()
    try:
        warehouse.migrate()
        return plan_reengagement(warehouse, settings, date.fromisoformat(day)).as_dict()
    finally:
        warehouse.dispose()


def export_task(day: str) -> dict[str, Any]:
    """Write the audience CSV of ``day``; returns the file name and row count (no PII)."""
    settings = load_reengagement_settings()
    warehouse = Warehouse.from_connection()
    try:
        export = export_audience(warehouse, date.fromisoformat(day), settings.export_dir)
    finally:
        warehouse.dispose()
    return {"file": str(export.path), "rows": export.rows}


def report_task(day: str) -> dict[str, Any]:
    """Compute, store and print the return-rate report of ``day``."""
    settings = load_reengagement_settings()
    warehouse = Warehouse.from_connection()
    try:
        report = build_report(warehouse, date.fromisoformat(day),
                              return_window_days=settings.return_window_days,
                              report_window_days=settings.report_window_days)
    finally:
        warehouse.dispose()
    print(report.format())
    return report.as_dict()
