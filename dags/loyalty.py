"""
### Staged Toast data → guests, points ledger, tiers, rewards, pass states

Runs when `toast_ingest` has staged data (asset `toast_staged_exports`) and folds every
partition staged since its last run into the loyalty tables: guests (checks joined over
shared e-mail, phone and customer id), the append-only points ledger, tiers on the rolling
window, item rewards, inactivity (re-engagement, expiry, revocation) and the desired pass
state of every member as of the business date (`pass_states`, `pass_coupons`, `guest_spend`).

The rules live in the program file (Variable `loyalty_program_file`), validated before any
data moves; the computation lives in `include/sql/loyalty/` (same SQL on DuckDB and
PostgreSQL). Reruns change nothing; `full_recompute` rebuilds everything from staging.

**Which day**: the latest business date in the triggering asset events, or the
`business_date` param for a manual run (default: yesterday in restaurant time).
Emits `loyalty_pass_states`, which schedules the PassKit sync.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from toast_passkit.dag_defaults import (
    DEFAULT_ARGS,
    PASS_STATES,
    STAGED_TOAST,
    WAREHOUSE_POOL,
    business_date_param,
    resolve_business_date,
)
from toast_passkit.settings import timezone_at_parse_time

TIMEZONE = timezone_at_parse_time()


@dag(
    dag_id="loyalty",
    schedule=[STAGED_TOAST],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "business_date": business_date_param("Compute pass states as of this business date"),
        "full_recompute": Param(False, type="boolean",
                                description="Rebuild every loyalty table from staging"),
    },
    tags=["loyalty"],
    doc_md=__doc__,
)
def loyalty() -> None:
    @task
    def check_program() -> dict:
        from toast_passkit.loyalty.pipeline import check_program

        return check_program()

    @task
    def business_date(**context) -> str:
        return resolve_business_date(context, TIMEZONE).isoformat()

    @task(pool=WAREHOUSE_POOL, outlets=[PASS_STATES])
    def compute_pass_states(day: str, **context) -> dict:
        from toast_passkit.loyalty.pipeline import compute_pass_states

        summary = compute_pass_states(day, bool(context["params"]["full_recompute"]))
        context["outlet_events"][PASS_STATES].extra = {"business_date": summary["as_of"]}
        return summary

    checked = check_program()
    day = business_date()
    checked >> day
    compute_pass_states(day)


loyalty()
