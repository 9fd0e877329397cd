"""Benchmark of the PassKit webhook receiver: accepted deliveries/s with an fsync per delivery.

Starts the standalone receiver (uvicorn, subprocess) on a free loopback port with a temporary
log directory, sends a bounded load from concurrent clients (threads, one requests session
each), prints throughput and latency, stops the server, then reads the log back with the
reader and checks that every accepted delivery is there exactly once.

    .venv/bin/python bench/bench_webhooks.py [--deliveries 5000] [--concurrency 16]
        [--time-cap 60] [--workers 1] [--signed]

Exit status 1 when the verification fails. The token and signing secret are generated per
run; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from toast_passkit.webhooks.eventlog import (  # noqa: E402
    JsonFileWatermarkStore,
    commit,
    events_files,
    read_new_events,
)
from toast_passkit.webhooks.events import parse_logged_event  # noqa: E402
from toast_passkit.webhooks.receiver import sign  # noqa: E402

TARGET_PER_SECOND = 300
# (event, HTTP method) as PassKit sends them: created = POST, installed/uninstalled = PUT.
EVENT_METHODS = [
    ("PASS_EVENT_RECORD_CREATED", "POST"),
    ("PASS_EVENT_INSTALLED", "PUT"),
    ("PASS_EVENT_RECORD_UPDATED", "PUT"),
    ("PASS_EVENT_UNINSTALLED", "PUT"),
    ("PASS_EVENT_RECORD_DELETED", "DELETE"),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def delivery(seq: int) -> tuple[str, bytes]:
    """A realistic (~800 byte) delivery with a unique body, and its HTTP method."""
    event, method = EVENT_METHODS[seq % len(EVENT_METHODS)]
    payload = {
        "event": event,
        "pass": {
            "id": f"bench{seq:017d}",
            "classId": "24hmYozRggBJTtPt0Y2e3X",
            "protocol": 100,
            "externalId": f"M-{seq:08d}",
            "personDetails": {
                "forename": "Bench",
                "surname": f"Guest{seq}",
                "displayName": f"Bench Guest{seq}",
                "emailAddress": f"guest{seq}@example.invalid",
            },
            "metaData": {
                "status": 1,
                "lifecycleEvents": [1, 2],
                "altId": f"bench{seq:017d}",
                "firstInstalledAt": "2025-03-01T10:00:00Z",
                "lastInstalledAt": f"2025-03-01T10:{seq // 60 % 60:02d}:{seq % 60:02d}Z",
                "lastUpdatedAt": "2025-03-01T10:00:00Z",
            },
            "recordData": {
                "members.member.externalId": f"M-{seq:08d}",
                "members.member.id": f"bench{seq:017d}",
                "members.member.points": f"{seq % 1000}.000000",
                "members.tier.id": "gold" if seq % 7 == 0 else "base",
            },
        },
    }
    return method, json.dumps(payload).encode("utf-8")


def start_server(port: int, log_dir: Path, workers: int, env: dict[str, str], out: Path) -> Any:
    command = [
        sys.executable,
        "-m",
        "toast_passkit.webhooks.receiver",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-dir",
        str(log_dir),
        "--workers",
        str(workers),
        "--log-level",
        "warning",  # a log line per request would measure the console, not the receiver
    ]
    with out.open("wb") as handle:
        return subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_healthy(url: str, process: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"receiver exited with status {process.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"receiver not healthy after {timeout:.0f} s")


def stop_server(process: Any) -> str:
    """SIGTERM (uvicorn shuts down gracefully, workers included); SIGKILL after 15 s."""
    if process.poll() is not None:
        return f"had already exited with status {process.returncode}"
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # our own session: the receiver's workers
        process.wait()
        return "did not stop within 15 s of SIGTERM: killed"
    # uvicorn re-raises the signal it caught once its graceful shutdown is complete.
    graceful = process.returncode in (0, -signal.SIGTERM)
    return f"{'graceful' if graceful else 'unexpected'} (exit status {process.returncode})"


def run_load(
    url: str, deliveries: int, concurrency: int, time_cap: float, secret: str | None
) -> dict[str, Any]:
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    accepted_ids: list[str] = []
    errors: Counter[str] = Counter()
    deadline = time.monotonic() + time_cap

    def client() -> None:
        session = requests.Session()
        mine_latency: list[float] = []
        mine_ids: list[str] = []
        mine_status: Counter[int] = Counter()
        while time.monotonic() < deadline:
            with lock:
                seq = next(counter)
            if seq >= deliveries:
                break
            method, body = delivery(seq)
            headers = {"content-type": "application/json", "user-agent": "bench"}
            if secret:
                headers["x-passkit-signature"] = sign(secret, body)
            started = time.perf_counter()
            try:
                response = session.request(method, url, data=body, headers=headers, timeout=30)
            except requests.RequestException as exc:
                with lock:
                    errors[type(exc).__name__] += 1
                continue
            mine_latency.append(time.perf_counter() - started)
            mine_status[response.status_code] += 1
            if response.status_code == 202:
                mine_ids.append(hashlib.sha256(body).hexdigest())
        session.close()
        with lock:
            latencies.extend(mine_latency)
            accepted_ids.extend(mine_ids)
            statuses.update(mine_status)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "elapsed": elapsed,
        "latencies": sorted(latencies),
        "statuses": statuses,
        "accepted_ids": accepted_ids,
        "errors": errors,
        "capped": time.monotonic() >= deadline,
    }


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def verify(log_dir: Path, state: Path, accepted_ids: list[str]) -> bool:
    """Every accepted delivery on disk exactly once; nothing else; all records parse."""
    store = JsonFileWatermarkStore(state / "watermarks.json")
    started = time.perf_counter()
    batch = read_new_events(log_dir, store)
    logged_ids = [event.record["delivery_id"] for event in batch]
    parsed = [parse_logged_event(event.record) for event in batch]
    read_seconds = time.perf_counter() - started
    commit(batch, store)
    again = read_new_events(log_dir, store)

    counts = Counter(logged_ids)
    duplicates = sum(1 for n in counts.values() if n > 1)
    expected = set(accepted_ids)
    missing = expected - counts.keys()
    unexpected = counts.keys() - expected
    recomputed_ok = all(
        hashlib.sha256(event.record["body"].encode("utf-8")).hexdigest()
        == event.record["delivery_id"]
        for event in batch
    )
    deadletters = sorted(p.name for p in log_dir.glob("deadletter-*.jsonl"))
    ok = (
        len(logged_ids) == len(accepted_ids) == len(expected)
        and not duplicates
        and not missing
        and not unexpected
        and recomputed_ok
        and not batch.corrupt_lines
        and not batch.incomplete_tails
        and len(again) == 0
        and not deadletters
        and len(parsed) == len(logged_ids)
    )
    print("verification (reader on the event log):")
    print(f"  files                    {', '.join(events_files(log_dir))}")
    print(f"  accepted by the server   {len(accepted_ids)}")
    print(f"  lines read               {len(logged_ids)} ({read_seconds:.2f} s incl. parsing)")
    print(f"  distinct delivery ids    {len(counts)}; duplicated {duplicates}")
    print(f"  missing / unexpected     {len(missing)} / {len(unexpected)}")
    print(f"  delivery_id == sha256    {recomputed_ok}")
    print(f"  corrupt / partial lines  {len(batch.corrupt_lines)} / {len(batch.incomplete_tails)}")
    print(f"  dead-letter files        {deadletters or 'none'}")
    print(f"  re-read after commit     {len(again)} new events")
    print(f"  RESULT                   {'OK' if ok else 'FAILED'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--time-cap", type=float, default=60.0, help="seconds of load at most")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--signed", action="store_true", help="configure and send signatures")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        tmp_path = Path(tmp)
        log_dir, state = tmp_path / "log", tmp_path / "state"
        token = secrets.token_urlsafe(24)
        secret = secrets.token_urlsafe(24) if args.signed else None
        env = {
            **os.environ,
            "PASSKIT_WEBHOOK_TOKEN": token,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT / "plugins"), os.environ.get("PYTHONPATH")) if p
            ),
        }
        env.pop("PASSKIT_WEBHOOK_SIGNING_SECRET", None)
        if secret:
            env["PASSKIT_WEBHOOK_SIGNING_SECRET"] = secret
        port = free_port()
        base = f"http://127.0.0.1:{port}/{token}"
        server_out = tmp_path / "server.log"
        process = start_server(port, log_dir, args.workers, env, server_out)
        try:
            wait_healthy(f"{base}/health", process)
            print(
                f"receiver: pid {process.pid}, 127.0.0.1:{port}, {args.workers} worker(s), "
                f"signatures {'on' if secret else 'off'}, fsync per delivery, "
                f"{os.cpu_count()} CPUs"
            )
            print(
                f"load: {args.deliveries} deliveries, {args.concurrency} client threads, "
                f"cap {args.time_cap:.0f} s"
            )
            result = run_load(
                f"{base}/events", args.deliveries, args.concurrency, args.time_cap, secret
            )
        finally:
            stopped = stop_server(process)
        server_tail = server_out.read_text(errors="replace").strip().splitlines()[-5:]

        latencies = result["latencies"]
        accepted = len(result["accepted_ids"])
        rate = accepted / result["elapsed"] if result["elapsed"] else 0.0
        print("results:")
        print(f"  statuses                 {dict(result['statuses'])}")
        print(f"  client errors            {dict(result['errors']) or 'none'}")
        print(f"  time-capped              {result['capped']}")
        print(f"  elapsed                  {result['elapsed']:.2f} s")
        print(
            f"  accepted/s               {rate:.0f} "
            f"(target >= {TARGET_PER_SECOND}: {'met' if rate >= TARGET_PER_SECOND else 'NOT met'})"
        )
        print(
            f"  latency p50 / p99 / max  {percentile(latencies, 0.50) * 1000:.1f} / "
            f"{percentile(latencies, 0.99) * 1000:.1f} / "
            f"{(latencies[-1] if latencies else float('nan')) * 1000:.1f} ms"
        )
        print(f"  server stop              {stopped}")
        if server_tail:
            print("  server output (last lines):")
            for line in server_tail:
                print(f"    {line}")
        ok = verify(log_dir, state, result["accepted_ids"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
