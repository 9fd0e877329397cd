"""Benchmark the Toast ingest against a bare DuckDB read_csv + GROUP BY over the same files.

Generates (untimed) N locations × D days of exports, then in the same run:
- bare: DuckDB `read_csv` over every export file + `GROUP BY Check Id` (Order Id for orders),
  timed again right before each ingest below, which is compared with it;
- batched ingest (the backfill path): one `ingest_partitions` batch of D days per location
  (archive, parse, quarantine, Great Expectations, atomic staging into a DuckDB warehouse);
- per-partition ingest (the daily path): every (location, day) through `ingest_partition`.
Each ingest runs in a child process so its peak memory is its own, with GX validation and
without, to show what GX costs. Prints lines/s, peak memory and the ratio to the bare query.
Target (batched, with GX): <= 5x the bare query, peak memory < 1.5 GB.

    .venv/bin/python bench/bench_ingest.py --locations 10 --days 30 --checks-per-day 410
    .venv/bin/python bench/bench_ingest.py --root /tmp/bench_exports --batched-only
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

FILES = {
    "OrderDetails.csv": "Order Id",
    "CheckDetails.csv": "Check Id",
    "PaymentDetails.csv": "Check Id",
    "ItemSelectionDetails.csv": "Check Id",
    "ModifiersSelectionDetails.csv": "Check Id",
}
TARGET_RATIO = 5.0
TARGET_PEAK_MB = 1536


def bare_query(root: Path) -> tuple[float, int]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    start = time.perf_counter()
    rows = 0
    for name, key in FILES.items():
        rows += con.sql(
            f"SELECT SUM(n) FROM (SELECT \"{key}\", COUNT(*) AS n FROM read_csv("
            f"'{root}/*/*/{name}', header = true, all_varchar = true) GROUP BY 1)"
        ).fetchall()[0][0]
    return time.perf_counter() - start, int(rows)


def _ingest_child(root: str, work: str, start: str, days: int, validate: bool, batched: bool,
                  out) -> None:
    from toast_passkit.toast.archive import RawArchive
    from toast_passkit.toast.ingest import ingest_partition, ingest_partitions
    from toast_passkit.toast.sources import LocalFolderSource
    from toast_passkit.warehouse import Warehouse

    warehouse = Warehouse.from_url(f"duckdb:///{work}/warehouse.duckdb")
    warehouse.migrate()
    source = LocalFolderSource(root)
    archive = RawArchive(Path(work) / "archive")
    if validate:  # warm GX up (import ~3 s) outside the timing, as a long-lived worker would
        from toast_passkit.toast.validate import _context

        _context()
    dates = [date.fromisoformat(start) + timedelta(days=offset) for offset in range(days)]
    results = []
    began = time.perf_counter()
    for location in source.list_locations():
        if batched:
            results += ingest_partitions(source=source, archive=archive, warehouse=warehouse,
                                         location_id=location, business_dates=dates,
                                         validate=validate)
        else:
            results += [ingest_partition(source=source, archive=archive, warehouse=warehouse,
                                         location_id=location, business_date=day,
                                         validate=validate) for day in dates]
    warehouse.dispose()  # a task ends so: DuckDB checkpoints its log here, inside the timing
    elapsed = time.perf_counter() - began
    staged = warehouse.scalar("SELECT COUNT(*) FROM stg_item_lines")
    warehouse.dispose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = sum(sum(r.rows_loaded.values()) + sum(r.rows_rejected.values()) for r in results)
    out.send({"seconds": elapsed, "lines": lines, "peak_mb": peak_mb,
              "partitions": len(results), "item_lines_staged": staged})


def timed_ingest(root: Path, start: date, days: int, validate: bool, batched: bool) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    with tempfile.TemporaryDirectory() as work:
        proc = ctx.Process(target=_ingest_child, args=(str(root), work, start.isoformat(), days,
                                                       validate, batched, child))
        proc.start()
        result = parent.recv()
        proc.join()
    return result


def report(label: str, r: dict, bare_s: float) -> str:
    ratio = r["seconds"] / bare_s
    return (f"{label}: {r['seconds']:.1f} s, {r['partitions']} partitions, {r['lines']} lines, "
            f"{r['lines'] / r['seconds']:,.0f} lines/s, peak memory {r['peak_mb']:.0f} MB, "
            f"ratio to bare query {ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--locations", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--checks-per-day", type=int, default=410)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1))
    parser.add_argument("--root", type=Path, help="reuse (or create) exports here")
    parser.add_argument("--skip-gx", action="store_true", help="only the runs without GX")
    parser.add_argument("--batched-only", action="store_true",
                        help="skip the (slow) per-partition runs")
    args = parser.parse_args()

    from toast_passkit.toast.sample_data import generate_exports

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp) / "exports"
        if not (root.exists() and any(root.iterdir())):
            began = time.perf_counter()
            summary = generate_exports(root, locations=args.locations, days=args.days,
                                       start=args.start, seed=1,
                                       checks_per_day=args.checks_per_day, workers=2)
            print(f"generated in {time.perf_counter() - began:.1f} s: {summary}")
        runs = [(True, True), (True, False), (False, False), (False, True)]
        for batched, validate in runs:
            if (validate and args.skip_gx) or (not batched and args.batched_only):
                continue
            # The bare query right before each ingest, so both see the same machine load.
            bare_s, bare_rows = bare_query(root)
            print(f"bare DuckDB read_csv + GROUP BY over all files: {bare_s:.2f} s "
                  f"({bare_rows} rows)")
            r = timed_ingest(root, args.start, args.days, validate, batched)
            path = (f"batched ingest ({args.days}-day batch per location)" if batched
                    else "per-partition ingest (one call per location-day)")
            label = f"{path}, {'with GX validation' if validate else 'without GX'}"
            print(report(label, r, bare_s), flush=True)
            if batched and validate:
                ok = r["seconds"] / bare_s <= TARGET_RATIO and r["peak_mb"] < TARGET_PEAK_MB
                print(f"  target (batched, with GX): <= {TARGET_RATIO:.0f}x the bare query and "
                      f"< {TARGET_PEAK_MB} MB: {'met' if ok else 'MISSED'}", flush=True)


if __name__ == "__main__":
    main()
