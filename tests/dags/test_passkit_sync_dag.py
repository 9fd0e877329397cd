"""End-to-end runs of the passkit_sync DAG with `dag.test()` against the PassKit sandbox:
a dry run sends nothing, a run loads the pass states, a staff redemption is read back, the
revocation guard fails the run before any call."""

from __future__ import annotations

import json
from datetime import date

import pytest

from tests.passkit.conftest import (
    PROGRAM,
    SYNC_API_KEY,
    SYNC_API_SECRET,
    add_coupon,
    assert_passkit_holds,
    change,
    make_client,
    member_state,
    put_pass_states,
    staff_burn,
)
from toast_passkit.devtools import load_dag
from toast_passkit.passkit.sandbox import run_sandbox_in_thread
from toast_passkit.warehouse import Warehouse

DAY = date(2026, 11, 3)
pytestmark = pytest.mark.airflow

PROGRAM_FILE = f"""
program:
  passkit_program_id: "{PROGRAM}"
tiers:
  levels:
    - {{id: base, min_spend: 0}}
    - {{id: silver, min_spend: 250}}
    - {{id: gold, min_spend: 1000}}
revoke:
  mode: expire
"""


def open_warehouse(conn: dict) -> Warehouse:
    return Warehouse.from_connection_fields(conn)


def run(conf: dict, *, expect: str = "success"):
    result = load_dag("passkit_sync", retries=0).test(
        run_conf={"business_date": DAY.isoformat(), **conf})
    assert result.state == expect, result.state
    return result


def test_passkit_sync_dag_dry_run_then_apply_then_read_back(
        airflow_db, monkeypatch, tmp_path, warehouse_conn) -> None:
    program_file = tmp_path / "program.yaml"
    program_file.write_text(PROGRAM_FILE)
    monkeypatch.setenv("AIRFLOW_VAR_LOYALTY_PROGRAM_FILE", str(program_file))
    monkeypatch.setenv("AIRFLOW_CONN_TOAST_WAREHOUSE", json.dumps(warehouse_conn))
    wh = open_warehouse(warehouse_conn)
    wh.migrate()
    put_pass_states(wh, member_state("m-regular", points=1234, tier="gold"),
                    *[member_state(f"m{i:03d}", points=10 * i) for i in range(11)])
    add_coupon(wh, "cpn-1", "m001")
    wh.dispose()

    with run_sandbox_in_thread(api_key=SYNC_API_KEY, api_secret=SYNC_API_SECRET) as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_PASSKIT_DEFAULT", json.dumps({
            "conn_type": "passkit", "host": sandbox.url, "login": SYNC_API_KEY,
            "password": SYNC_API_SECRET,
            "extra": {"program_id": PROGRAM, "requests_per_second": 0, "timeout_seconds": 5}}))

        run({"dry_run": True})
        assert sandbox.stats()["requests"] == {}
        assert open_runs(warehouse_conn) == [("dry_run", "ok")]

        run({})
        assert sandbox.stats()["requests"] == {"enrol_member": 12, "issue_coupon": 1,
                                               "list_members": 1}
        wh = open_warehouse(warehouse_conn)
        assert_passkit_holds(sandbox, wh)
        wh.dispose()

        with make_client(sandbox.url) as client:
            staff_burn(client, "m-regular", 200, "till-1")
        run({})
        wh = open_warehouse(warehouse_conn)
        redemptions = wh.query("SELECT member_external_id, points FROM passkit_redemptions")
        assert [(r["member_external_id"], int(r["points"])) for r in redemptions] == [
            ("m-regular", 200)]
        assert_passkit_holds(sandbox, wh)

        # Two of twelve revoked (17 %) is more than the default 10 %: stopped at the plan.
        change(wh, "m001", status="revoked")
        change(wh, "m002", status="revoked")
        wh.dispose()
        before = sandbox.state()
        run({}, expect="failed")
        assert sandbox.state() == before
        run({"max_revocation_share": 0.2})
        wh = open_warehouse(warehouse_conn)
        assert_passkit_holds(sandbox, wh)
        wh.dispose()
    assert [kind for kind, _ in open_runs(warehouse_conn)].count("apply") == 3


def open_runs(conn: dict) -> list[tuple[str, str]]:
    wh = open_warehouse(conn)
    try:
        return [(r["kind"], r["outcome"]) for r in wh.query(
            "SELECT kind, outcome FROM passkit_sync_runs WHERE kind IN ('dry_run', 'apply') "
            "ORDER BY started_at")]
    finally:
        wh.dispose()
