"""Benchmark the Toast ingest against a bare DuckDB read_csv + GROUP BY over the same files.

Generates (untimed) N locations × D days of exports, then in the same run:
- bare: DuckDB `read_csv` over every export file + `GROUP BY Check Id` (Order Id for orders);
- ingest: every partition through `ingest_partition` (archive, parse, quarantine, Great
  Expectations, atomic staging into a DuckDB warehouse), in a child process so its peak
  memory is its own; once with validation and once without, to show what GX costs.
Prints lines/s, peak memory and the ratio to the bare query.

    .venv/bin/python bench/bench_ingest.py --locations 10 --days 30 --checks-per-day 410
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


def bare_query(root: Path) -> tuple[float, int]:
    import duckdb

    con = duckdb.connect()
    start = time.perf_counter()
    rows = 0
    for name, key in FILES.items():
        rows += con.sql(
            f"SELECT SUM(n) FROM (SELECT \"{key}\", COUNT(*) AS n FROM read_csv("
            f"'{root}/*/*/{name}', header = true, all_varchar = true) GROUP BY 1)"
        ).fetchall()[0][0]
    return time.perf_counter() - start, int(rows)


def _ingest_child(root: str, work: str, start: str, days: int, validate: bool, out) -> None:
    from toast_passkit.toast.archive import RawArchive
    from toast_passkit.toast.ingest import ingest_partition
    from toast_passkit.toast.sources import LocalFolderSource
    from toast_passkit.warehouse import Warehouse

    warehouse = Warehouse.from_url(f"duckdb:///{work}/warehouse.duckdb")
    warehouse.migrate()
    source = LocalFolderSource(root)
    archive = RawArchive(Path(work) / "archive")
    if validate:  # warm GX up (import ~3 s) outside the timing, as a long-lived worker would
        from toast_passkit.toast.validate import _context

        _context()
    lines = 0
    began = time.perf_counter()
    for location in source.list_locations():
        for offset in range(days):
            day = date.fromisoformat(start) + timedelta(days=offset)
            result = ingest_partition(source=source, archive=archive, warehouse=warehouse,
                                      location_id=location, business_date=day,
                                      validate=validate)
            lines += sum(result.rows_loaded.values()) + sum(result.rows_rejected.values())
    elapsed = time.perf_counter() - began
    warehouse.dispose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.send({"seconds": elapsed, "lines": lines, "peak_mb": peak_mb})


def timed_ingest(root: Path, start: date, days: int, validate: bool) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    with tempfile.TemporaryDirectory() as work:
        proc = ctx.Process(target=_ingest_child,
                           args=(str(root), work, start.isoformat(), days, validate, child))
        proc.start()
        result = parent.recv()
        proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--locations", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--checks-per-day", type=int, default=410)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1))
    parser.add_argument("--root", type=Path, help="reuse (or create) exports here")
    parser.add_argument("--skip-gx", action="store_true", help="only the run without GX")
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
        bare_s, bare_rows = bare_query(root)
        print(f"bare DuckDB read_csv + GROUP BY over all files: {bare_s:.2f} s "
              f"({bare_rows} rows)")
        runs = [False] if args.skip_gx else [False, True]
        for validate in runs:
            r = timed_ingest(root, args.start, args.days, validate)
            label = "ingest with GX validation" if validate else "ingest without GX"
            print(f"{label}: {r['seconds']:.1f} s, {r['lines']} lines, "
                  f"{r['lines'] / r['seconds']:,.0f} lines/s, peak memory "
                  f"{r['peak_mb']:.0f} MB, ratio to bare query {r['seconds'] / bare_s:.1f}x "
                  f"(target <= 5x, < 1536 MB)")


if __name__ == "__main__":
    main()
