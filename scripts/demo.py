"""The main job on the embedded default: sample Toast exports → warehouse → loyalty → PassKit.

Generates a seeded week of exports, starts the local PassKit sandbox (state in
var/passkit-sandbox.json), runs the real DAGs in-process with `dag.test()` — toast_ingest for
each business date, then loyalty, reengagement and passkit_sync — and prints what the
warehouse and the PassKit sandbox hold. Run through `make demo`; a second run sends nothing
new to PassKit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

# The demo prints its own summary; Airflow's per-task INFO lines go to the task logs only.
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

from toast_passkit.devtools import init_airflow_db, run_dag
from toast_passkit.passkit.sandbox import run_sandbox_in_thread
from toast_passkit.toast.sample_data import generate_exports
from toast_passkit.warehouse import Warehouse

STAGING = ["stg_orders", "stg_checks", "stg_payments", "stg_item_lines", "stg_modifier_lines",
           "stg_rejected_rows", "raw_files"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--locations", type=int, default=3)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 11, 1))
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    var = Path(os.environ["TOAST_PASSKIT_VAR_DIR"])
    summary = generate_exports(var / "exports", locations=args.locations, days=args.days,
                               start=args.start, seed=args.seed)
    print(f"sample exports: {summary}")
    init_airflow_db()
    # The example program with sandbox ids in place of REPLACE_ME.
    program = var / "program.demo.yaml"
    example = (Path(__file__).resolve().parents[1] / "include" / "program.example.yaml")
    program.write_text(example.read_text().replace('"REPLACE_ME"', '"demo-program"'))
    os.environ["AIRFLOW_VAR_LOYALTY_PROGRAM_FILE"] = str(program)

    for offset in range(args.days):
        day = args.start + timedelta(days=offset)
        run_dag("toast_ingest", run_conf={"business_date": day.isoformat()})
        print(f"toast_ingest {day}: success")
    last_day = (args.start + timedelta(days=args.days - 1)).isoformat()

    # A throwaway key pair for the local sandbox (never a real PassKit credential).
    key, secret = "demo-" + secrets.token_hex(4), secrets.token_urlsafe(32)
    with run_sandbox_in_thread(api_key=key, api_secret=secret,
                               state_file=var / "passkit-sandbox.json") as sandbox:
        os.environ["AIRFLOW_CONN_PASSKIT_DEFAULT"] = json.dumps({
            "conn_type": "http", "host": sandbox.url, "login": key, "password": secret,
            "extra": {"program_id": "demo-program", "requests_per_second": 50}})
        for dag_id in ("loyalty", "reengagement", "passkit_sync"):
            run_dag(dag_id, run_conf={"business_date": last_day})
            print(f"{dag_id} {last_day}: success")
        state = sandbox.state()
        calls = sandbox.stats()
    print_sandbox(state, calls)

    warehouse = Warehouse.from_connection()
    try:
        print("\nwarehouse staging tables (rows per table):")
        for table in STAGING:
            print(f"  {table:<22} {warehouse.scalar(f'SELECT COUNT(*) FROM {table}'):>8}")
        per_location = warehouse.query(
            "SELECT location_id, COUNT(*) AS checks, COUNT(DISTINCT business_date) AS days "
            "FROM stg_checks GROUP BY location_id ORDER BY location_id")
        print("\nchecks per location:")
        for row in per_location:
            print(f"  {row['location_id']}: {row['checks']} checks over {row['days']} days")
    finally:
        warehouse.dispose()


def print_sandbox(state: dict, stats: dict) -> None:
    """What PassKit (the sandbox) holds: members by tier and status, points, coupons."""
    members = [m for m in state.get("members", {}).values()] if isinstance(
        state.get("members"), dict) else list(state.get("members", []))
    coupons = state.get("coupons", {})
    coupons = list(coupons.values()) if isinstance(coupons, dict) else list(coupons)
    by_tier = Counter((m.get("tierId"), m.get("status")) for m in members)
    points = sum(float(m.get("points") or 0) for m in members)
    print(f"\nPassKit sandbox: {len(members)} members, {points:,.0f} points, "
          f"{len(coupons)} coupons")
    for (tier, status), n in sorted(by_tier.items(), key=lambda kv: str(kv[0])):
        print(f"  tier {tier:<8} {status:<10} {n:>5}")
    requests = stats.get("requests") or stats.get("requests_per_operation") or {}
    if requests:
        print(f"  calls this run: {sum(requests.values())} "
              f"({', '.join(f'{k}: {v}' for k, v in sorted(requests.items()))})")


if __name__ == "__main__":
    main()
