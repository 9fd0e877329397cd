"""The main job on the embedded default: sample Toast exports → warehouse (→ loyalty → PassKit).

Generates a seeded week of exports, runs the real DAGs in-process with `dag.test()` for each
business date, and prints what the warehouse holds. Run through `make demo`.
"""

from __future__ import annotations

import argparse
import logging
import os
from datetime import date, timedelta
from pathlib import Path

# The demo prints its own summary; Airflow's per-task INFO lines go to the task logs only.
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

from toast_passkit.devtools import init_airflow_db, run_dag
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

    for offset in range(args.days):
        day = args.start + timedelta(days=offset)
        run_dag("toast_ingest", run_conf={"business_date": day.isoformat()})
        print(f"toast_ingest {day}: success")

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


if __name__ == "__main__":
    main()
