"""
### Pass states → PassKit (the PassKit sync)

Loads the desired pass of every member (`pass_states`, the loyalty DAG's output), their item
rewards (`pass_coupons`) and the treated re-engagement actions (`reengagement_actions`) into
PassKit, exactly once, and reads staff redemptions back.

1. **plan** computes the diff between `pass_states` and what PassKit holds
   (`passkit_sync_members`, `passkit_sync_coupons`) and logs it: counts of enrol, points,
   tier, update, coupon, revoke and reinstate operations and a sample of ids. No call is
   made. The run stops here with `dry_run`, or with an error when it would revoke more than
   `max_revocation_share` of the members in PassKit (revocation guard).
2. **apply** first finds out what happened to calls whose answer was lost (timeouts,
   dropped connections, 5xx, a crashed run), by reading PassKit, then sends only what
   differs: one enrol per new member (balance and tier in the body), earn/burn deltas
   against the last applied balance with an externalEventId per change (never set points),
   tier and person/message updates, expiry (revoke.mode `expire`) or delete, coupons by
   externalId. Failures are retried on later runs with exponential back-off and parked
   after `max_attempts` with a reason (`sync_state = 'given_up'`, `last_error`).
3. **read_back** turns points burned by staff in PassKit into `passkit_redemptions`, which
   the next loyalty run subtracts; the sync never overwrites them.
4. **report** logs calls, outcomes and the state of every record. Every call is in
   `passkit_sync_log` (no personal data); runs in `passkit_sync_runs`.

**Which day**: the latest business date in the triggering asset events (`loyalty_pass_states`
or `reengagement_actions`), or `business_date` for a manual run (default: yesterday in
restaurant time). Re-engagement actions due by that day are sent.

**Settings**: connections `passkit_default` (API key and secret, extras `requests_per_second`
and `rate_limit_file` for the shared rate limit) and `toast_warehouse`; Variable
`loyalty_program_file` (PassKit program id, `revoke.mode`). One run at a time; every task
that writes the warehouse or calls PassKit holds the `warehouse` pool (1 slot), which also
caps the PassKit-calling tasks across DAGs at one.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

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
    dag_id="passkit_sync",
    schedule=(PASS_STATES | REENGAGEMENT_ACTIONS),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "business_date": business_date_param("Send the states as of this business date"),
        "dry_run": Param(False, type="boolean",
                         description="Plan and report only: no PassKit call"),
        "max_revocation_share": Param(0.10, type="number", minimum=0, maximum=1,
                                      description="Stop before sending anything when more "
                                                  "than this share of members would be "
                                                  "revoked"),
        "sample_size": Param(20, type="integer", minimum=0, maximum=1000,
                             description="Planned operations listed in the plan (ids only)"),
        "threads": Param(4, type="integer", minimum=1, maximum=32,
                         description="Members synced in parallel (one shared rate limit)"),
        "max_attempts": Param(5, type="integer", minimum=1,
                              description="Failed attempts before a record is parked"),
    },
    tags=["passkit", "sync"],
    doc_md=__doc__,
)
def passkit_sync() -> None:
    @task
    def business_date(**context) -> str:
        return resolve_business_date(context, TIMEZONE).isoformat()

    @task(pool=WAREHOUSE_POOL)
    def plan(day: str, **context) -> dict:
        from toast_passkit.passkit.sync import plan_task

        return plan_task(day, context["params"])

    @task.short_circuit
    def apply_requested(planned: dict, **context) -> bool:
        from toast_passkit.passkit.sync import wants_apply

        return wants_apply(planned, context["params"])

    @task(pool=WAREHOUSE_POOL)
    def apply(day: str, **context) -> dict:
        from toast_passkit.passkit.sync import apply_task

        return apply_task(day, context["params"])

    @task(pool=WAREHOUSE_POOL)
    def read_back(**context) -> dict:
        from toast_passkit.passkit.sync import readback_task

        return readback_task(context["params"])

    @task(pool=WAREHOUSE_POOL)
    def report(applied: dict, redemptions: dict) -> dict:
        from toast_passkit.passkit.sync import report_task

        return report_task(applied, redemptions)

    day = business_date()
    planned = plan(day)
    applied = apply(day)
    apply_requested(planned) >> applied
    redemptions = read_back()
    applied >> redemptions
    report(applied, redemptions)


passkit_sync()
