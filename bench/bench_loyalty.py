"""Benchmark the loyalty engine over a year of checks (synthetic staged rows, DuckDB or
PostgreSQL).

Stages N locations x D days of synthetic Toast rows straight into the staging tables with
DuckDB SQL (no CSV: this measures the loyalty engine, not the ingest): checks with e-mail,
phone and customer-id identities drawn from a skewed guest population, 1-4 lines each
(voided lines, gift cards, a reward item), voided orders, and late refunds re-exported three
days later under the same Payment Id. Then, each timed in a child process of its own (peak
memory is the child's, DuckDB included):

- full:  the full recomputation as of day D-K-1 (everything from staging);
- first: the incremental run of the day after it (it also pays DuckDB's merging of the
         part-filled row groups the full run's bulk inserts left: once per full run);
- daily: the incremental runs of the K days up to D, one after the other as a deployment runs
         them (median: the checkpoint a run ends with rewrites the tables' last row groups,
         which costs more or less by how full they are), at D = the full length and at
         D = 30 (the target: the day-D runs <= 1.5 x the day-30 runs), the two histories'
         days in turns (day 26, day 361, day 362, day 27, day 28, ...: a drift of the
         machine's speed over the bench's minutes slows both sides alike, and each side
         follows a run of either history as often). Each day's run is
         timed --repeats times on copies of the database as the previous day left it (each
         written to disk before it is timed, as a deployment's file is) and the fastest
         counts: on a shared machine other tenants' load only adds time (seen: single runs of
         one day from 0.84 to 1.53 s).

    .venv/bin/python bench/bench_loyalty.py --locations 10 --days 365 --checks-per-day 410

With --postgres URL (a server where the URL's user may create databases) the same staged rows
are copied into a fresh database of that server (COPY, untimed) and the runs are timed there,
the production warehouse. Each daily run is timed once, in place, after `VACUUM ANALYZE` of
the database (what autovacuum has done in the day between two runs of a deployment); the
database is dropped at the end.

    .venv/bin/python bench/bench_loyalty.py --postgres postgresql+psycopg2://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

START = date(2025, 1, 1)
PROGRAM = ROOT / "include" / "program.example.yaml"


def stage(db: Path, locations: int, days: int, checks_per_day: int, guests: int) -> int:
    """Synthetic staged rows for days 1..days; returns the number of checks."""
    from toast_passkit.warehouse import Warehouse

    warehouse = Warehouse.from_url(f"duckdb:///{db}")
    warehouse.migrate()
    warehouse.dispose()
    import duckdb

    con = duckdb.connect(str(db))
    params = {"locations": locations, "days": days, "per_day": checks_per_day,
              "guests": guests, "start": START}
    # u(x, salt): a deterministic uniform number in [0, 1) per row and purpose.
    con.execute("""
        CREATE OR REPLACE MACRO u(x, salt) AS (hash(x || '#' || salt) % 1000003) / 1000003.0
    """)
    con.execute("""
        CREATE TEMP TABLE bench_checks AS
        SELECT 'L' || loc AS location_id,
               CAST($start AS DATE) + CAST(d - 1 AS INTEGER) AS business_date,
               loc || '-' || d || '-' || n AS check_id,
               CAST(FLOOR($guests * POW(u(loc || '-' || d || '-' || n, 'g'), 2.5)) AS BIGINT)
                   AS guest,
               u(loc || '-' || d || '-' || n, 'i') AS who,
               u(loc || '-' || d || '-' || n, 'v') AS void_roll,
               1 + CAST(FLOOR(4 * u(loc || '-' || d || '-' || n, 'l')) AS INTEGER) AS lines,
               u(loc || '-' || d || '-' || n, 'r') AS refund_roll
        FROM range(1, $days + 1) t2(d), range(1, $locations + 1) t1(loc),
             range(1, $per_day + 1) t3(n)
        ORDER BY d, loc, n
    """, params)
    lineage = "'bench.csv', 'x', 0, 'bench-load'"
    con.execute(f"""
        INSERT INTO stg_checks (location_id, business_date, check_id, customer_id,
                                customer_name, customer_phone, customer_email, source_file,
                                source_checksum, source_row, load_id)
        SELECT location_id, business_date, check_id,
               CASE WHEN who < 0.35 THEN 'cust-' || guest END,
               CASE WHEN who < 0.75 THEN 'Guest ' || guest || ' Number' END,
               CASE WHEN who BETWEEN 0.20 AND 0.45
                    THEN '(212) ' || (200 + (guest // 10000) % 800) || '-'
                         || LPAD(CAST(guest % 10000 AS VARCHAR), 4, '0') END,
               CASE WHEN who < 0.30 OR who BETWEEN 0.45 AND 0.70
                    THEN 'Guest' || guest || '@Example.com ' END,
               {lineage}
        FROM bench_checks ORDER BY business_date
    """)
    con.execute(f"""
        INSERT INTO stg_orders (location_id, business_date, order_id, voided, amount,
                                source_file, source_checksum, source_row, load_id)
        SELECT location_id, business_date, 'o-' || check_id, void_roll < 0.01, 0, {lineage}
        FROM bench_checks ORDER BY business_date
    """)
    con.execute(f"""
        INSERT INTO stg_item_lines (location_id, business_date, item_selection_id, order_id,
                                    check_id, menu_item, sales_category, net_price, voided,
                                    deferred, source_file, source_checksum, source_row,
                                    load_id)
        SELECT c.location_id, c.business_date, c.check_id || '-' || l.k, 'o-' || c.check_id,
               c.check_id,
               CASE WHEN u(c.check_id || l.k, 'm') < 0.01 THEN 'Gift Card'
                    WHEN u(c.check_id || l.k, 'm') < 0.04 THEN 'Family Feast'
                    WHEN u(c.check_id || l.k, 'm') < 0.15 THEN 'IPA'
                    ELSE 'Dish ' || CAST(FLOOR(40 * u(c.check_id || l.k, 'd')) AS INTEGER) END,
               CASE WHEN u(c.check_id || l.k, 'm') BETWEEN 0.04 AND 0.15 THEN 'Alcohol'
                    ELSE 'Food' END,
               CAST(ROUND(4 + 36 * u(c.check_id || l.k, 'p'), 2) AS DECIMAL(12,2)),
               u(c.check_id || l.k, 'x') < 0.03,
               u(c.check_id || l.k, 'm') < 0.01,
               {lineage}
        FROM bench_checks c, range(1, 5) l(k)
        WHERE l.k <= c.lines
        ORDER BY c.business_date
    """)
    con.execute(f"""
        INSERT INTO stg_payments (location_id, business_date, payment_id, order_id, check_id,
                                  amount, email, phone, refund_amount, refund_local,
                                  source_file, source_checksum, source_row, load_id)
        SELECT location_id, business_date, 'p-' || check_id, 'o-' || check_id, check_id,
               20, NULL, NULL, NULL, NULL, {lineage}
        FROM bench_checks
        UNION ALL
        SELECT location_id, business_date + 3, 'p-' || check_id, 'o-' || check_id, check_id,
               20, NULL, NULL, CAST(ROUND(30 * refund_roll / 0.02, 2) AS DECIMAL(12,2)),
               CAST(business_date + 3 AS TIMESTAMP) + INTERVAL 14 HOUR, {lineage}
        FROM bench_checks
        WHERE refund_roll < 0.02 AND business_date + 3 <= CAST($start AS DATE) + $days - 1
        ORDER BY 2
    """, {"start": START, "days": days})
    con.execute("""
        INSERT INTO stg_loads (load_id, location_id, business_date, table_name, source_file,
                               source_checksum, rows_read, rows_loaded, rows_rejected,
                               unmapped_columns, loaded_at)
        SELECT 'bench-' || location_id || '-' || business_date, location_id, business_date,
               'all', 'bench.csv', 'x', 0, 0, 0, '',
               CAST(business_date AS TIMESTAMP) + INTERVAL 30 HOUR
        FROM (SELECT DISTINCT location_id, business_date FROM bench_checks)
    """)
    checks = con.execute("SELECT COUNT(*) FROM bench_checks").fetchone()[0]
    con.close()
    return checks


STAGING_TABLES = ("stg_loads", "stg_checks", "stg_orders", "stg_item_lines", "stg_payments")


def copy_to_postgres(db: Path, server_url: str, name: str) -> str:
    """A fresh PostgreSQL database `name` on the server of `server_url`, migrated, holding the
    staged rows of DuckDB file `db` (COPY of CSV files written by DuckDB). Returns its URL."""
    import duckdb
    import sqlalchemy as sa

    from toast_passkit.warehouse import Warehouse

    autocommit(server_url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    url = sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    warehouse = Warehouse.from_url(url)
    warehouse.migrate()
    con = duckdb.connect(str(db), read_only=True)
    raw = warehouse.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table in STAGING_TABLES:
            columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
            csv_file = db.with_name(f"{table}.csv")
            con.execute(f"COPY {table} TO '{csv_file}' (HEADER false, NULL '\\N')")
            with csv_file.open() as rows:
                cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN "
                                   "WITH (FORMAT csv, NULL '\\N')", rows)
            csv_file.unlink()
        raw.commit()
    finally:
        raw.close()
        con.close()
    vacuum_analyze(url)
    warehouse.dispose()
    return url


def autocommit(url: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE/DROP DATABASE, VACUUM)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def vacuum_analyze(url: str) -> None:
    autocommit(url, "VACUUM ANALYZE")


def drop_database(server_url: str, name: str) -> None:
    autocommit(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _child(url: str, as_of: str, full: bool, out) -> None:
    import pandas  # noqa: F401 - imported lazily by the Arrow paths: keep it out of the timing

    if os.environ.get("BENCH_MODEL_TIMES"):
        import logging

        logging.basicConfig(level=logging.INFO, format="    %(message)s")
        logging.getLogger("toast_passkit.loyalty.engine").setLevel(logging.INFO)
    from toast_passkit.loyalty.engine import run_loyalty
    from toast_passkit.loyalty.program import load_program
    from toast_passkit.warehouse import Warehouse

    warehouse = Warehouse.from_url(url)
    warehouse.scalar("SELECT COUNT(*) FROM loyalty_runs")  # open the file outside the timing
    program = load_program(PROGRAM)
    began = time.perf_counter()
    summary = run_loyalty(warehouse, program, date.fromisoformat(as_of), full_recompute=full)
    warehouse.dispose()  # a task ends so: DuckDB checkpoints its log here, inside the timing
    elapsed = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.send((elapsed, peak_mb, summary.as_dict()))


def _apart_child(out, function, *args) -> None:
    out.send(function(*args))


def apart(function, *args):
    """function(*args) in a child process of its own (staging, the copy to PostgreSQL): a
    child's peak memory counts its parent's size at the time it was started (Linux keeps the
    high-water mark across fork and exec), and the bench's own process must stay small for the
    runs' peaks to be theirs."""
    context = mp.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_apart_child, args=(send, function, *args))
    child.start()
    result = receive.recv()
    child.join()
    return result


def timed_run(db: Path | str, as_of: date, full: bool = False) -> tuple[float, float, dict]:
    """One run_loyalty in a fresh process on a DuckDB file or a warehouse URL:
    (seconds, peak MB, summary)."""
    url = db if isinstance(db, str) else f"duckdb:///{db}"
    context = mp.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(url, as_of.isoformat(), full, send))
    child.start()
    result = receive.recv()
    child.join()
    return result


def flush_to_disk(path: Path) -> None:
    """Write a fresh copy's pages to disk before it is timed. Otherwise the first fsync of the
    run (its closing checkpoint) also writes back the whole copy: at 365 days a 540 MB file,
    about 130 ms of a run that a deployment, whose file was written back long before the next
    day's run, never pays."""
    with path.open("rb") as copy:
        os.fsync(copy.fileno())


def daily_run(db: Path, day: int, repeats: int = 1) -> tuple[float, float, dict]:
    """Time the incremental run of `day` on DuckDB file `db` as a deployment runs it, after the
    previous day's: (seconds, peak MB, summary). With repeats > 1 the run is timed that many
    times, each on a copy of the database as the previous day left it, and the fastest counts
    (a shared machine's noise only ever adds time); the last copy carries on to the next day."""
    times, peaks = [], []
    for attempt in range(repeats):
        trial = db.with_name(db.stem + ".trial.duckdb")
        # dispose() checkpointed the previous run: the database is this one file
        assert not db.with_name(db.name + ".wal").exists(), "a write-ahead log was left"
        shutil.copyfile(db, trial)
        flush_to_disk(trial)
        os.sync()  # nor what earlier runs and copies left to write back
        seconds, peak, summary = timed_run(trial, START + timedelta(days=day - 1))
        assert summary["mode"] == "incremental", summary
        times.append(seconds)
        peaks.append(peak)
        if attempt == repeats - 1:
            trial.replace(db)
        else:
            trial.unlink()
    return min(times), max(peaks), summary


def daily_run_postgres(url: str, day: int) -> tuple[float, float, dict]:
    """The incremental run of `day` on PostgreSQL, in place, after the VACUUM ANALYZE that
    autovacuum would have done since the previous day's run."""
    vacuum_analyze(url)
    seconds, peak, summary = timed_run(url, START + timedelta(days=day - 1))
    assert summary["mode"] == "incremental", summary
    return seconds, peak, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locations", type=int, default=10)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--checks-per-day", type=int, default=410, help="per location")
    parser.add_argument("--guests", type=int, default=200_000)
    parser.add_argument("--short-days", type=int, default=30)
    parser.add_argument("--daily-runs", type=int, default=5,
                        help="daily runs timed after the first one following the full run")
    parser.add_argument("--repeats", type=int, default=3,
                        help="times each daily run is timed (on copies); the fastest counts")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help="time the runs on a fresh database of this PostgreSQL server")
    parser.add_argument("--model-times", action="store_true",
                        help="print the time of each loyalty model of each run")
    args = parser.parse_args()
    if args.model_times:
        os.environ["BENCH_MODEL_TIMES"] = "1"
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-loyalty-"))
    work.mkdir(parents=True, exist_ok=True)

    # Both histories are staged and brought to the day before their daily runs first; their
    # daily runs are then timed in turns (day 26, day 361, day 362, day 27, day 28, day 363,
    # ...), so that a machine whose speed drifts over the minutes of a bench (other tenants,
    # clock) slows both sides alike rather than one of them, and each side follows a run of
    # either history as often (a run after a heavier one could pay for what that one left).
    sizes = (args.short_days, args.days)
    targets: dict[int, Path | str] = {}

    def run_day(target: Path | str, day: int) -> tuple[float, float, dict]:
        return (daily_run_postgres(str(target), day) if args.postgres
                else daily_run(Path(target), day, args.repeats))

    databases: list[str] = []
    try:
        for days in sizes:
            db = work / f"staged-{days}.duckdb"
            began = time.perf_counter()
            checks = apart(stage, db, args.locations, days, args.checks_per_day, args.guests)
            print(f"staged {checks:,} checks over {days} days x {args.locations} locations "
                  f"in {time.perf_counter() - began:.1f}s")
            target: Path | str = db
            if args.postgres:
                database = f"bench_loyalty_{os.getpid()}_{days}"
                began = time.perf_counter()
                target = apart(copy_to_postgres, db, args.postgres, database)
                databases.append(database)
                print(f"  copied to PostgreSQL in {time.perf_counter() - began:.1f}s (peaks "
                      "below: the process running the engine, not the server)")
            full_day = days - args.daily_runs - 1
            seconds, peak, summary = timed_run(target, START + timedelta(days=full_day - 1),
                                               full=True)
            print(f"  full recomputation as of day {full_day}: {seconds:.1f}s, "
                  f"peak {peak:.0f} MB, {summary['guests']:,} guests, "
                  f"{summary['members']:,} members")
            seconds, peak, _ = run_day(target, full_day + 1)
            print(f"  first incremental run after it (day {full_day + 1}): {seconds:.2f}s, "
                  f"peak {peak:.0f} MB")
            targets[days] = target

        runs: dict[int, list[tuple[float, float, dict]]] = {days: [] for days in sizes}
        for offset in range(args.daily_runs, 0, -1):
            turn = args.daily_runs - offset
            for days in (sizes if turn % 2 == 0 else sizes[::-1]):
                day = days - offset + 1
                runs[days].append(run_day(targets[days], day))
    finally:
        for database in databases:
            drop_database(args.postgres, database)

    results, per_guest = {}, {}
    timing = "once each" if args.postgres else f"fastest of {args.repeats} each"
    for days in sizes:
        daily = runs[days]
        median = statistics.median(s for s, _, _ in daily)
        peak_incr = max(p for _, p, _ in daily)
        last = daily[-1][2]
        results[days] = median
        # what the rules give a day to do grows with history too (checks leaving the tier
        # window, absences reaching a threshold, more of the day's guests being members):
        # the cost per recomputed guest tells that apart from reads that grow with history
        per_guest[days] = statistics.median(s / max(1, run["guests_recomputed"])
                                            for s, _, run in daily)
        print(f"{days} days, daily runs of days {days - args.daily_runs + 1}-{days} "
              f"({timing}, in turns with the other history's): median {median:.2f}s "
              f"({', '.join(f'{s:.2f}' for s, _, _ in daily)}), peak {peak_incr:.0f} MB; "
              f"day {days}: {last['guests_recomputed']:,} guests recomputed, "
              f"{last['guests_from_checkpoint']:,} from their checkpoint")
    ratio = results[args.days] / results[args.short_days]
    verdict = "ok" if ratio <= 1.5 else "OVER TARGET"
    print(f"day-{args.days} runs / day-{args.short_days} runs (medians) = {ratio:.2f} "
          f"(target <= 1.5: {verdict})")
    print(f"  per recomputed guest: {per_guest[args.days] * 1000:.3f} ms against "
          f"{per_guest[args.short_days] * 1000:.3f} ms "
          f"({per_guest[args.days] / per_guest[args.short_days]:.2f}x)")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        for days in sizes:
            (work / f"staged-{days}.duckdb").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
