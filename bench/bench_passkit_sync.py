"""Benchmark the PassKit sync against the PassKit sandbox (run in its own process).

1. rate: --rate-members guests onboarded with 50 ms added to every sandbox request and the
   client limited to --rate requests/s (default 20), 4 threads sharing the limiter:
   sustained requests/s over the whole run (target >= 18/s at 20/s).
2. changes: --changed of those members get a new balance (a third also a new tier):
   calls per changed member (target 1.0); then a rerun with nothing new (target 0 calls).
3. onboarding: --guests guests (default 10,000) with a history (balance and tier), enrolled
   with no added latency and no client rate limit (so that it takes minutes, not the 8 min
   that 10,000 calls at 20/s take): calls by operation (target: 10,000 enrols and
   nothing else), then a rerun (target 0 calls).

    .venv/bin/python bench/bench_passkit_sync.py [--engine duckdb|postgresql] [--guests 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

API_KEY = "bench-key"
API_SECRET = "bench-secret-for-the-local-sandbox-only-0001"
PROGRAM = "prog-bench"
AS_OF = date(2026, 11, 3)


class Sandbox:
    """The sandbox server in a child process; admin calls over HTTP."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "toast_passkit.passkit.sandbox", "--port", "0",
             "--api-key", API_KEY, "--api-secret", API_SECRET, "--tiers", "base,silver,gold",
             "--log-level", "WARNING"],
            stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(ROOT / "plugins")})
        line = self.process.stdout.readline() if self.process.stdout else ""
        if "listening on" not in line:
            raise RuntimeError(f"sandbox did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[-1].strip()

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@contextmanager
def open_warehouse(engine: str, work: Path, pg_url: str) -> Iterator[Any]:
    """A migrated, empty warehouse: a DuckDB file in `work`, or a PostgreSQL schema that is
    dropped afterwards."""
    import sqlalchemy as sa

    from toast_passkit.warehouse import Warehouse

    if engine == "duckdb":
        warehouse = Warehouse.from_url(f"duckdb:///{work / 'warehouse.duckdb'}")
        warehouse.migrate()
        try:
            yield warehouse
        finally:
            warehouse.dispose()
        return
    schema = f"bench_sync_{int(time.time())}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = sa.make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
    warehouse = Warehouse.from_url(url.render_as_string(hide_password=False))
    try:
        warehouse.migrate()
        yield warehouse
    finally:
        warehouse.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def insert_guests(warehouse, prefix: str, count: int, seed: int) -> None:
    """`count` pass states with a year of history: a balance and the tier it earns."""
    import pyarrow as pa

    rng = random.Random(seed)
    rows = []
    for i in range(count):
        points = rng.randint(0, 3000)
        tier = "gold" if points >= 2000 else "silver" if points >= 500 else "base"
        rows.append({
            "external_id": f"{prefix}{i:06d}", "guest_id": f"g-{prefix}{i:06d}",
            "forename": "Bench", "surname": f"Guest{i}", "email": f"{prefix}{i}@example.com",
            "phone": f"+1555{i % 10_000_000:07d}", "tier_id": tier, "points": points,
            "status": "active", "revoked_reason": None, "revoked_on": None,
            "enrolled_on": date(2025, 11, 3), "as_of": AS_OF})
    schema = pa.schema([
        ("external_id", pa.string()), ("guest_id", pa.string()), ("forename", pa.string()),
        ("surname", pa.string()), ("email", pa.string()), ("phone", pa.string()),
        ("tier_id", pa.string()), ("points", pa.int64()), ("status", pa.string()),
        ("revoked_reason", pa.string()), ("revoked_on", pa.date32()),
        ("enrolled_on", pa.date32()), ("as_of", pa.date32())])
    with warehouse.begin() as conn:
        warehouse.insert_arrow(conn, "pass_states", pa.Table.from_pylist(rows, schema=schema))


def client_for(url: str, rate: float | None):
    from toast_passkit.passkit.client import PassKitClient

    return PassKitClient(url, API_KEY, API_SECRET, program_id=PROGRAM,
                         requests_per_second=rate, read_timeout=30, pool_size=16)


def timed_sync(warehouse, client, config) -> tuple[float, Any]:
    from toast_passkit.passkit.sync import run_sync

    client.reset_counters()
    start = time.perf_counter()
    report = run_sync(warehouse, client, program_id=PROGRAM, as_of=AS_OF, config=config)
    return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["duckdb", "postgresql"], default="duckdb")
    parser.add_argument("--pg-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rate", type=float, default=20.0, help="client limit, requests/s")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rate-members", type=int, default=400)
    parser.add_argument("--changed", type=int, default=150)
    parser.add_argument("--guests", type=int, default=10_000)
    parser.add_argument("--onboard-threads", type=int, default=8)
    parser.add_argument("--onboard-rate", type=float, default=0.0,
                        help="client limit for the onboarding (0 = none)")
    args = parser.parse_args()

    from toast_passkit.passkit.sync import SyncConfig

    results: dict[str, Any] = {"engine": args.engine}
    sandbox = Sandbox()
    try:
        with tempfile.TemporaryDirectory() as tmp, \
                open_warehouse(args.engine, Path(tmp), args.pg_url) as warehouse:

            # 1. Sustained rate against the limit, 50 ms per request.
            sandbox.admin("POST", "faults", {"latency_ms": args.latency_ms})
            insert_guests(warehouse, "r", args.rate_members, seed=1)
            config = SyncConfig(threads=args.threads)
            with client_for(sandbox.url, args.rate) as client:
                client.request_counts  # noqa: B018 - warm the client (JWT, pool) untimed
                elapsed, _ = timed_sync(warehouse, client, config)
                sent = sum(client.request_counts.values())
                results["rate"] = {
                    "members": args.rate_members, "requests": sent,
                    "seconds": round(elapsed, 2), "limit_per_s": args.rate,
                    "latency_ms": args.latency_ms, "threads": args.threads,
                    "requests_per_s": round(sent / elapsed, 2)}
                print(f"rate: {sent} requests in {elapsed:.1f}s = {sent / elapsed:.2f}/s "
                      f"(limit {args.rate}/s, {args.latency_ms:.0f} ms latency, "
                      f"{args.threads} threads)", flush=True)

                # 2. Calls per changed member, then a rerun.
                rng = random.Random(2)
                changed = rng.sample(range(args.rate_members), args.changed)
                with warehouse.begin() as conn:
                    for n, i in enumerate(changed):
                        warehouse.execute(conn, (
                            "UPDATE pass_states SET points = points + :d"
                            + (", tier_id = 'gold'" if n % 3 == 0 else "")
                            + " WHERE external_id = :e"), {"d": 25, "e": f"r{i:06d}"})
                elapsed, _ = timed_sync(warehouse, client, config)
                calls = client.call_counts
                per_member = sum(calls.values()) / args.changed
                _, _ = timed_sync(warehouse, client, config)
                rerun = sum(client.call_counts.values())
                results["changes"] = {"changed_members": args.changed, "calls": calls,
                                      "calls_per_changed_member": round(per_member, 3),
                                      "seconds": round(elapsed, 2), "rerun_calls": rerun}
                print(f"changes: {args.changed} members changed -> {calls} = "
                      f"{per_member:.3f} calls/member; rerun: {rerun} calls", flush=True)

            # 3. Onboarding 10,000 guests with a history.
            sandbox.admin("DELETE", "faults")
            insert_guests(warehouse, "g", args.guests, seed=3)
            onboard = SyncConfig(threads=args.onboard_threads)
            with client_for(sandbox.url, args.onboard_rate or None) as client:
                elapsed, _ = timed_sync(warehouse, client, onboard)
                calls = client.call_counts
                _, _ = timed_sync(warehouse, client, onboard)
                rerun = sum(client.call_counts.values())
            members = sandbox.admin("GET", "stats")["requests"]
            results["onboarding"] = {
                "guests": args.guests, "calls": calls, "seconds": round(elapsed, 1),
                "calls_per_s": round(sum(calls.values()) / elapsed, 1),
                "threads": args.onboard_threads, "rate_limit": args.onboard_rate or None,
                "latency_ms": 0, "rerun_calls": rerun, "sandbox_requests_all_phases": members}
            print(f"onboarding: {args.guests} guests -> {calls} in {elapsed:.1f}s "
                  f"({sum(calls.values()) / elapsed:.0f} calls/s, no added latency, "
                  f"{'no rate limit' if not args.onboard_rate else args.onboard_rate}); "
                  f"rerun: {rerun} calls", flush=True)
    finally:
        sandbox.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
