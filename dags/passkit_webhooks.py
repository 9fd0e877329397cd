"""
### PassKit webhooks → pass events and pass activity

Every 15 minutes, ingests what the webhook receiver (the `passkit_webhooks` plugin of the
api-server, or `python -m toast_passkit.webhooks.receiver`) appended to its event log since
the last successful run:

- `pass_events`: one row per webhook event (PassKit delivers some twice, and out of order);
- `pass_activity`: one row per member with its pass's current install state (installed,
  uninstalled, invalidated) and install times; a late delivery never moves it backwards.
  The loyalty DAG reads it: an uninstalled pass is due a re-engagement;
- `passkit_coupon_redemptions` and `pass_points_reconciliation` (views) show coupon
  redemptions and the balances PassKit reported, for the team to read. Redemptions of points
  reach the ledger through the PassKit sync (member events), never from webhooks.

**Crash safety**: the log's read position (`webhook_watermarks`) is committed in the same
transaction as the events, so a failed or retried run re-reads exactly what it did not store,
and a rerun stores nothing twice.

**Settings**: Variable `passkit_webhook_log_dir` (default `var/webhooks`, the receiver's
`PASSKIT_WEBHOOK_LOG_DIR`); connection `toast_warehouse`. One run at a time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, task

from toast_passkit.dag_defaults import DEFAULT_ARGS, WAREHOUSE_POOL


@dag(
    dag_id="passkit_webhooks",
    schedule=CronTriggerTimetable("*/15 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args={**DEFAULT_ARGS, "retry_delay": timedelta(minutes=1),
                  "max_retry_delay": timedelta(minutes=10)},
    tags=["passkit", "webhooks"],
    doc_md=__doc__,
)
def passkit_webhooks() -> None:
    @task(pool=WAREHOUSE_POOL)
    def ingest_events() -> dict:
        from toast_passkit.webhooks.ingest import ingest_task

        return ingest_task()

    ingest_events()


passkit_webhooks()
