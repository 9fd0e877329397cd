"""
### Re-engagement: plan the actions, export the e-mail audience, report return rates

Runs after each loyalty run (the `loyalty_pass_states` asset), for its business date. The
loyalty engine has decided who is due a re-engagement (`reengagements`: one per member and
absence, a lapsed guest or an uninstalled pass); this DAG decides what to do, once each:

1. **plan_actions** writes `reengagement_actions`: a stable hash holds out `control_share`
   of the absences as a control group (nothing sent); treated members get a message on their
   pass and/or a win-back coupon, which the `passkit_sync` DAG sends (this DAG never calls
   PassKit); treated members whose pass cannot be notified (uninstalled, invalidated,
   revoked) go to `reengagement_audience` for the team's e-mail/CRM tool. Emits the
   `reengagement_actions` asset.
2. **export_audience** writes the audience planned that day to
   `<export_dir>/reengagement_audience_<date>.csv` (contact details: file mode 0600).
3. **report** writes `reengagement_report` and prints it: return rates (a qualifying visit
   within `return_window_days`) of treated against control members.

Point expiry and pass revocation after inactivity are computed by the loyalty engine and
applied by the PassKit sync; nothing here.

**Which day a run processes**: the business date in the triggering asset event; a manual run
processes `business_date` when given, otherwise yesterday in restaurant time. Rerunning a day
plans nothing twice and rewrites the same CSV and report.

**Settings**: Variable `reengagement_config` (JSON: channels, message, winback_campaign_id,
winback_offer_id, control_share, control_salt, return_window_days, report_window_days,
export_dir); connection `toast_warehouse`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from toast_passkit.dag_defaults import (
    DEFAULT_ARGS,
    PASS_STATES,
    REENGAGEMENT_ACTIONS,
    WAREHOUSE_POOL,
    business_date_param,
    resolve_business_date,
)
from toast_passkit.settings import timezone_at_parse_time

TIMEZONE = timezone_at_parse_time()


@dag(
    dag_id="reengagement",
    schedule=PASS_STATES,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "business_date": business_date_param("Business date to plan for (YYYY-MM-DD)"),
    },
    tags=["loyalty", "reengagement"],
    doc_md=__doc__,
)
def reengagement() -> None:
    @task
    def business_date(**context) -> str:
        return resolve_business_date(context, TIMEZONE).isoformat()

    @task(pool=WAREHOUSE_POOL, outlets=[REENGAGEMENT_ACTIONS])
    def plan_actions(day: str, **context) -> dict:
        from toast_passkit.reengagement.tasks import plan_task

        summary = plan_task(day)
        context["outlet_events"][REENGAGEMENT_ACTIONS].extra = {
            "business_date": day, "absences": summary["absences"],
            "actions": summary["actions"]}
        return summary

    @task(pool=WAREHOUSE_POOL)
    def export_audience(day: str) -> dict:
        from toast_passkit.reengagement.tasks import export_task

        return export_task(day)

    @task(pool=WAREHOUSE_POOL)
    def report(day: str) -> dict:
        from toast_passkit.reengagement.tasks import report_task

        return report_task(day)

    day = business_date()
    planned = plan_actions(day)
    planned >> [export_audience(day), report(day)]


reengagement()
