"""
### Toast exports → warehouse staging

Pulls one business date of Toast nightly exports for every location, archives the raw files
(immutable, checksummed: Toast deletes them after 7 days), parses them, validates each
staging table with Great Expectations and replaces each (location, business date) partition
atomically. Bad rows land in `stg_rejected_rows`; suite results in `stg_validation_results`.

**Which day a run processes**: a scheduled or backfill run processes the business date its
data interval starts on (restaurant time); a manual run processes `business_date` when given,
otherwise yesterday in restaurant time.

**A range of days**: with `through_date` (YYYY-MM-DD) each location's task ingests every
business date from that day through `through_date` as one batch (one typing query and one
Great Expectations run per staging table, one transaction; ranges over 31 days run as
consecutive batches), staging exactly the rows day-by-day runs would. A day that fails (a
file missing, a blocking expectation on its rows) keeps its previous staged state; the other
days are staged, then the task fails naming each failed day. For backfills and re-ingests
from the archive.

**Source**: connection `toast_exports` (`sftp` = Toast's SFTP server, `fs` = a local folder).
With `source = archive` the day is re-ingested from the raw archive, without Toast.

Emits the `toast_staged_exports` asset, which schedules the loyalty DAG.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from toast_passkit.dag_defaults import (
    DEFAULT_ARGS,
    STAGED_TOAST,
    WAREHOUSE_POOL,
    resolve_business_date,
)
from toast_passkit.settings import timezone_at_parse_time

TIMEZONE = timezone_at_parse_time()


@dag(
    dag_id="toast_ingest",
    # 07:00 restaurant time: after the 04:00 closeout and Toast's ~1 h export delay.
    schedule=CronDataIntervalTimetable("0 7 * * *", timezone=TIMEZONE),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=3,
    default_args=DEFAULT_ARGS,
    params={
        "business_date": Param(None, type=["null", "string"], format="date",
                               description="Business date to ingest (YYYY-MM-DD)"),
        "through_date": Param(None, type=["null", "string"], format="date",
                              description="Last business date of a range (YYYY-MM-DD): each "
                              "location ingests business_date..through_date in one batch"),
        "source": Param("toast", enum=["toast", "archive"],
                        description="toast = the toast_exports connection; archive = re-ingest"),
    },
    tags=["toast", "ingest"],
    doc_md=__doc__,
)
def toast_ingest() -> None:
    @task
    def business_date(**context) -> str:
        from toast_passkit.toast.pipeline import business_dates

        day = resolve_business_date(context, TIMEZONE).isoformat()
        business_dates(day, context["params"].get("through_date"))  # an empty range fails here
        return day

    @task
    def locations(day: str, **context) -> list[str]:
        from toast_passkit.toast.pipeline import locations_to_ingest

        return locations_to_ingest(source=context["params"]["source"])

    @task(pool=WAREHOUSE_POOL, map_index_template="{{ location_label }}")
    def ingest_location(location_id: str, day: str, **context) -> dict:
        from toast_passkit.toast.pipeline import ingest_one

        get_current_context()["location_label"] = location_id  # names the mapped task in the UI

        params = context["params"]
        return ingest_one(location_id=location_id, day=day, source=params["source"],
                          through_date=params.get("through_date"))

    @task(outlets=[STAGED_TOAST])
    def publish(results: list[dict], day: str, **context) -> dict:
        from toast_passkit.toast.pipeline import summarise

        summary = summarise(results)
        # Consumers read the latest business date staged: the range's last day.
        last = context["params"].get("through_date") or day
        context["outlet_events"][STAGED_TOAST].extra = {
            "business_date": last, "first_business_date": day, **summary}
        return summary

    day = business_date()
    results = ingest_location.partial(day=day).expand(location_id=locations(day))
    publish(results, day)


toast_ingest()
