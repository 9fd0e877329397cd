"""The PassKit sync under faults, on DuckDB and PostgreSQL: over a third of calls failing
(503, 429 with Retry-After, slow answers past the client's timeout, dropped connections,
'applied then 500') and a sync killed mid-run (SIGKILL) both end, after reruns, with the
sandbox holding exactly the desired states: no duplicate member, no double credit, nothing
missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from tests.passkit.conftest import (
    FAST,
    PROGRAM,
    SYNC_API_KEY,
    SYNC_API_SECRET,
    add_coupon,
    add_reengagement,
    assert_passkit_holds,
    change,
    ledger_counts_redemptions,
    make_client,
    member_state,
    put_pass_states,
    staff_burn,
    sync,
)
from toast_passkit.passkit.client import PassKitClient
from toast_passkit.passkit.state import SyncStore
from toast_passkit.passkit.sync import read_back_redemptions

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
FAULTS = {"rate": 0.35, "kinds": ["503", "429", "slow", "drop", "applied_then_500"],
          "retry_after": 0.05, "slow_seconds": 0.35, "seed": 11}
# Lots of attempts: under 30 % faults a member may fail several runs in a row, and parking
# it would leave PassKit short (parking has its own test).
PATIENT = replace(FAST, max_attempts=50, max_revocation_share=1.0, threads=4)


def faulty_runs(warehouse, client, sandbox, runs: int = 3, **kwargs) -> None:
    """Sync a few times under faults (each run finishes what settles within it)."""
    for _ in range(runs):
        sync(warehouse, client, config=PATIENT, **kwargs)
    sandbox.clear_faults()
    # One clean run: PassKit answers again, whatever was left pending or failed is sent.
    sync(warehouse, client, config=PATIENT, **kwargs)


def test_over_a_third_of_calls_failing_still_converges_exactly(warehouse, sync_sandbox) -> None:
    client = make_client(sync_sandbox.url, max_attempts=3)
    guests = [member_state(f"m{i:03d}", points=7 * i, tier=("base", "silver", "gold")[i % 3])
              for i in range(30)]
    put_pass_states(warehouse, *guests)
    for i in range(0, 30, 4):
        add_coupon(warehouse, f"cpn-{i:03d}", f"m{i:03d}")
    for i in range(0, 30, 6):
        add_reengagement(warehouse, f"m{i:03d}", "abs-1", "pass_message", message=f"Hi {i}")
    add_reengagement(warehouse, "m005", "abs-1", "coupon", coupon_external_id="wb-m005")

    sync_sandbox.set_faults(**FAULTS)
    faulty_runs(warehouse, client, sync_sandbox, runs=2)
    assert_passkit_holds(sync_sandbox, warehouse)

    # A day later: visits, tier moves, a revocation, a staff redemption, under faults again.
    for i in range(0, 30, 3):
        change(warehouse, f"m{i:03d}", points=7 * i + 11)
    for i in range(1, 30, 5):
        change(warehouse, f"m{i:03d}", points=max(7 * i - 5, 0), tier_id="gold")
    change(warehouse, "m008", status="revoked")
    staff_burn(client, "m010", 20, "till-9")
    sync_sandbox.set_faults(**{**FAULTS, "seed": 12})
    read_back_redemptions(warehouse, client, program_id=PROGRAM, config=PATIENT)
    faulty_runs(warehouse, client, sync_sandbox, runs=1)
    read_back_redemptions(warehouse, client, program_id=PROGRAM, config=PATIENT)
    sync(warehouse, client, config=PATIENT)
    assert_passkit_holds(sync_sandbox, warehouse)
    stats = sync_sandbox.stats()  # every kind of fault hit, on a fifth of requests at least
    assert set(stats["faults"]) == set(FAULTS["kinds"])
    assert sum(stats["faults"].values()) >= 0.2 * sum(stats["requests"].values())
    ledger_counts_redemptions(warehouse)
    assert warehouse.scalar("SELECT COUNT(*) FROM passkit_redemptions") == 1

    client.reset_counters()
    sync(warehouse, client, config=PATIENT)
    assert client.call_counts == {}
    assert_passkit_holds(sync_sandbox, warehouse)
    client.close()


class Crash(BaseException):
    """The process dies: no call goes out, nothing is written, from this moment on."""


@pytest.fixture
def crash_after(monkeypatch):
    """Arm a crash after `calls` more PassKit requests: from then on every request (in any
    pool thread) and every warehouse transaction raises Crash, as if the process was killed."""
    state = {"left": None}
    lock = threading.Lock()
    real_call = PassKitClient._call
    real_tx = SyncStore._tx

    def call(self, *args, **kwargs):
        with lock:
            if state["left"] is not None:
                if state["left"] <= 0:
                    raise Crash
                state["left"] -= 1
        return real_call(self, *args, **kwargs)

    @contextmanager
    def tx(self):
        if state["left"] is not None and state["left"] <= 0:
            raise Crash
        with real_tx(self) as conn:
            yield conn

    monkeypatch.setattr(PassKitClient, "_call", call)
    monkeypatch.setattr(SyncStore, "_tx", tx)

    def arm(calls: int | None) -> None:
        state["left"] = calls

    return arm


def test_a_sync_crashing_mid_run_converges_on_rerun(warehouse, sync_sandbox,
                                                     crash_after) -> None:
    client = make_client(sync_sandbox.url)
    dying = replace(FAST, lease_seconds=0.3, batch_size=4)
    put_pass_states(warehouse, *[member_state(f"c{i:03d}", points=3 * i) for i in range(40)])
    for i in range(0, 40, 4):
        add_coupon(warehouse, f"cpn-c{i:03d}", f"c{i:03d}")

    crash_after(18)  # onboarding: enrols and coupons out, some results never written
    with pytest.raises(Crash):
        sync(warehouse, client, config=dying)
    crash_after(None)
    assert 0 < len(sync_sandbox.state()["members"]) < 40
    time.sleep(0.35)  # the dead run's lease expires
    sync(warehouse, client)
    assert_passkit_holds(sync_sandbox, warehouse)

    for i in range(40):
        change(warehouse, f"c{i:03d}", points=3 * i + 17, tier_id="silver" if i % 2 else "base")
    crash_after(14)  # moving points: earns out, their results lost
    with pytest.raises(Crash):
        sync(warehouse, client, config=dying)
    crash_after(None)
    assert warehouse.scalar("SELECT COUNT(*) FROM passkit_sync_members "
                            "WHERE sync_state = 'sent'") > 0
    time.sleep(0.35)
    client.reset_counters()
    sync(warehouse, client)
    assert_passkit_holds(sync_sandbox, warehouse)
    client.reset_counters()
    sync(warehouse, client)
    assert client.call_counts == {}
    client.close()


SUBPROCESS_SYNC = textwrap.dedent("""
    import json, sys
    from datetime import date
    from toast_passkit.passkit.client import PassKitClient
    from toast_passkit.passkit.sync import SyncConfig, run_sync
    from toast_passkit.warehouse import Warehouse
    args = json.loads(sys.argv[1])
    warehouse = Warehouse.from_url(args["url"])
    client = PassKitClient(args["passkit"], args["key"], args["secret"],
                           program_id=args["program"], requests_per_second=40)
    config = SyncConfig(retry_base_seconds=0, settle_seconds=0.4, flush_seconds=0.1,
                        lease_seconds=1.0, batch_size=4)
    run_sync(warehouse, client, program_id=args["program"],
             as_of=date.fromisoformat(args["as_of"]), config=config)
    print("finished")
""")


def _warehouse_url(warehouse) -> str:
    return warehouse.engine.url.render_as_string(hide_password=False)


def kill_sync_after(warehouse, sandbox, requests: int) -> None:
    """Run a sync in another process and SIGKILL it once PassKit has seen `requests` more
    requests (the warehouse connection of this process is released first: DuckDB)."""
    warehouse.dispose()
    start = sum(sandbox.stats()["requests"].values())
    args = {"url": _warehouse_url(warehouse), "passkit": sandbox.url, "key": SYNC_API_KEY,
            "secret": SYNC_API_SECRET, "program": PROGRAM, "as_of": "2026-11-03"}
    path = os.pathsep.join(p for p in (str(PLUGINS), os.environ.get("PYTHONPATH")) if p)
    process = subprocess.Popen([sys.executable, "-c", SUBPROCESS_SYNC, json.dumps(args)],
                               env={**os.environ, "PYTHONPATH": path},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while sum(sandbox.stats()["requests"].values()) - start < requests:
            if process.poll() is not None:
                raise AssertionError("the sync finished before it could be killed: "
                                     + process.stderr.read().decode()[-2000:])
            if time.monotonic() > deadline:
                raise AssertionError("the sync made no progress")
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    time.sleep(1.05)  # the dead run's lease expires


@pytest.mark.slow
def test_a_sync_killed_by_sigkill_while_moving_points_converges_on_rerun(
        warehouse, sync_sandbox) -> None:
    sync_sandbox.set_faults(latency_ms=15)
    client = make_client(sync_sandbox.url)
    put_pass_states(warehouse, *[member_state(f"k{i:03d}", points=5 * i) for i in range(40)])
    sync(warehouse, client)
    for i in range(40):
        change(warehouse, f"k{i:03d}", points=5 * i + 13)

    kill_sync_after(warehouse, sync_sandbox, requests=12)

    earned = sum(1 for e in sync_sandbox.state()["events"] if e["eventType"] == "POINTS_EARNED")
    assert 0 < earned < 40
    sent = warehouse.scalar("SELECT COUNT(*) FROM passkit_sync_members "
                            "WHERE sync_state = 'sent'")
    assert sent > 0  # written before the calls went out: the rerun looks them up first
    client.reset_counters()
    sync(warehouse, client)
    assert_passkit_holds(sync_sandbox, warehouse)
    assert client.call_counts["earn_points"] == 40 - earned  # none sent twice
    client.reset_counters()
    sync(warehouse, client)
    assert client.call_counts == {}
    client.close()
