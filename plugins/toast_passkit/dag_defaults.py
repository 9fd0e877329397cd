"""Shared DAG defaults, assets and run-date resolution, so every DAG file stays declarative."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from airflow.sdk import Asset, Param

log = logging.getLogger(__name__)

# Staged Toast data for one or more (location, business date) partitions. Producer:
# toast_ingest. Consumer: loyalty. Event extra: {"business_date": "YYYY-MM-DD", ...}.
STAGED_TOAST = Asset(name="toast_staged_exports", uri="x-toast-passkit://warehouse/staging")
# Desired pass states computed for a business date. Producer: loyalty. Consumer: passkit_sync.
PASS_STATES = Asset(name="loyalty_pass_states", uri="x-toast-passkit://warehouse/pass_states")
# Re-engagement actions planned for a business date. Producer: reengagement. Consumer:
# passkit_sync (sends them). Event extra: {"business_date": "YYYY-MM-DD", counts...}.
REENGAGEMENT_ACTIONS = Asset(name="reengagement_actions",
                             uri="x-toast-passkit://warehouse/reengagement_actions")

WAREHOUSE_POOL = "warehouse"


def on_task_failure(context: dict[str, Any]) -> None:
    """One place for failure notification; logs ids only (never guest data)."""
    ti = context.get("task_instance")
    log.error("task failed: dag=%s task=%s run=%s try=%s", getattr(ti, "dag_id", "?"),
              getattr(ti, "task_id", "?"), getattr(ti, "run_id", "?"),
              getattr(ti, "try_number", "?"))


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-team",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "on_failure_callback": on_task_failure,
}


def business_date_param(description: str) -> Param:
    """The optional `business_date` param every DAG takes (YYYY-MM-DD; empty = the default)."""
    return Param(None, type=["null", "string"], format="date", description=description)


def resolve_business_date(context: dict[str, Any], timezone: str) -> date:
    """The business date a run processes.

    - `params.business_date` when given (manual runs, re-runs of a given day);
    - a scheduled or backfill run: the day its data interval starts, in restaurant time;
    - an asset-triggered run: the latest business date in the triggering events' extras;
    - otherwise (a manual run without the param): yesterday in restaurant time.
    """
    params = context.get("params") or {}
    if params.get("business_date"):
        return date.fromisoformat(str(params["business_date"]))
    start = context.get("data_interval_start")
    if start is not None:
        return start.astimezone(ZoneInfo(timezone)).date()
    events = context.get("triggering_asset_events") or {}
    dates = [
        date.fromisoformat(str(ev.extra["business_date"]))
        for evs in events.values() for ev in evs
        if getattr(ev, "extra", None) and ev.extra.get("business_date")
    ]
    if dates:
        return max(dates)
    return (datetime.now(ZoneInfo(timezone)) - timedelta(days=1)).date()
