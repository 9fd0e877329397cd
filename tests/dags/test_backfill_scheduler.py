"""A backfill run by a real Airflow scheduler (`airflow standalone`), as a user would start it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from toast_passkit.toast.sample_data import generate_exports
from toast_passkit.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _airflow(env: dict, *args: str, timeout: int = 120) -> str:
    done = subprocess.run(["airflow", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _backfill_create(env: dict, start: str, end: str) -> None:
    """`airflow backfill create`, retried while the scheduler holds SQLite's write lock."""
    for _ in range(10):
        done = subprocess.run(["airflow", "backfill", "create", "--dag-id", "toast_ingest",
                               "--from-date", start, "--to-date", end], env=env,
                              capture_output=True, text=True, timeout=120)
        if done.returncode == 0:
            return
        assert "database is locked" in done.stderr + done.stdout, done.stderr[-2000:]
        time.sleep(3)
    raise AssertionError("backfill create kept finding the SQLite database locked")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health",
                                    timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


def test_backfill_of_two_days_by_the_scheduler(tmp_path) -> None:
    exports = tmp_path / "exports"
    generate_exports(exports, locations=2, days=2, start=date(2026, 11, 1), seed=3)
    home = tmp_path / "airflow"
    home.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_CONN_TOAST_WAREHOUSE": json.dumps(
            {"conn_type": "duckdb", "host": str(tmp_path / "warehouse.duckdb")}),
        "AIRFLOW_CONN_TOAST_EXPORTS": json.dumps(
            {"conn_type": "fs", "extra": {"path": str(exports)}}),
        "AIRFLOW_VAR_TOAST_ARCHIVE_ROOT": str(tmp_path / "archive"),
        "GX_ANALYTICS_ENABLED": "False",
    }
    _airflow(env, "db", "migrate")
    _airflow(env, "pools", "set", "warehouse", "1", "warehouse writers")
    log = open(home / "standalone.log", "w")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(["airflow", "standalone"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: _healthy(port), 180, "the api-server to answer")
        _wait(lambda: "toast_ingest" in _airflow(env, "dags", "list", "-o", "plain"), 180,
              "the DAG processor to parse toast_ingest")
        # A run is included when its data interval starts within [from, to]: the runs of
        # business dates Nov 1 and Nov 2 start at 07:00 on those days, so to = Nov 3.
        _backfill_create(env, "2026-11-01", "2026-11-03")

        def backfill_done() -> bool:
            out = _airflow(env, "dags", "list-runs", "toast_ingest", "-o", "json")
            # Warnings may precede the JSON on stdout: read from the list's opening bracket.
            runs = json.loads(out[out.index("[{"):] if "[{" in out else "[]")
            backfill = [r for r in runs if r["run_id"].startswith("backfill__")]
            failed = [r for r in backfill if r["state"] == "failed"]
            assert not failed, f"backfill runs failed: {failed}; see {home}/standalone.log"
            return len(backfill) == 2 and all(r["state"] == "success" for r in backfill)

        _wait(backfill_done, 600, "both backfill runs to succeed")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()

    staged = _staged_when_released(tmp_path / "warehouse.duckdb")
    assert [(r["location_id"], r["business_date"]) for r in staged] == [
        ("100001", date(2026, 11, 1)), ("100001", date(2026, 11, 2)),
        ("100002", date(2026, 11, 1)), ("100002", date(2026, 11, 2))]


def _staged_when_released(path: Path, timeout: float = 120) -> list[dict]:
    """Staged partitions, read once the last task process has let go of the DuckDB file: a
    task of a downstream DAG (loyalty, on the staged-data asset) may still be closing it."""
    deadline = time.monotonic() + timeout
    while True:
        warehouse = Warehouse.from_url(f"duckdb:///{path}")
        try:
            return warehouse.query("SELECT location_id, business_date, COUNT(*) AS checks "
                                   "FROM stg_checks GROUP BY 1, 2 ORDER BY 1, 2")
        except sa.exc.OperationalError as exc:
            if "lock" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1)
        finally:
            warehouse.dispose()
