"""End to end: PassKit webhooks through the real receiver, the passkit_webhooks DAG, the loyalty
engine and the reengagement DAG, then the PassKit sync sending the actions to the sandbox.

Both DAGs run with `dag.test()` against the warehouse of `AIRFLOW_CONN_TOAST_WAREHOUSE`, on
DuckDB and on PostgreSQL; so does the passkit_sync DAG, against the local PassKit sandbox.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.loyalty.loyalty_builders import Toast, make_program, pass_of
from tests.reengagement.reengagement_builders import at, day, pass_payload
from toast_passkit.devtools import load_dag
from toast_passkit.loyalty.engine import run_loyalty
from toast_passkit.passkit.sandbox import run_sandbox_in_thread
from toast_passkit.warehouse import Warehouse
from toast_passkit.webhooks.receiver import ReceiverSettings, create_app

pytestmark = pytest.mark.airflow
TOKEN = "e2e-token-not-a-secret-0123"
# Throwaway credentials, only ever valid for the in-test sandbox.
API_KEY, API_SECRET = "e2e-key", "e2e-secret-for-the-sandbox-only-0123456789"
PROGRAM = "prog-test"  # the program of make_program()
WINBACK = {"winback_campaign_id": "camp-winback", "winback_offer_id": "offer-winback"}
MESSAGE = "We miss you! Come back for a treat."


def open_warehouse(conn: dict) -> Warehouse:
    return Warehouse.from_connection_fields(conn)


def run(dag_id: str, **kwargs: Any) -> None:
    dag_run = load_dag(dag_id, retries=0).test(**kwargs)
    assert dag_run.state == "success", f"{dag_id}: {dag_run.state}"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[TestClient]:
    settings = ReceiverSettings(token=TOKEN, log_dir=tmp_path / "webhooks")
    with TestClient(create_app(settings)) as client:
        yield client


def deliver(client: TestClient, payload: dict[str, Any]) -> None:
    response = client.put(f"/{TOKEN}/events", content=json.dumps(payload))
    assert response.status_code == 202, response.text


def test_webhooks_drive_pass_activity_and_reengagement_actions(
        airflow_db, monkeypatch, tmp_path, warehouse_conn, receiver) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TOAST_WAREHOUSE", json.dumps(warehouse_conn))
    monkeypatch.setenv("AIRFLOW_VAR_PASSKIT_WEBHOOK_LOG_DIR", str(tmp_path / "webhooks"))
    monkeypatch.setenv("AIRFLOW_VAR_REENGAGEMENT_CONFIG", json.dumps(
        {"control_share": 0.0, "export_dir": str(tmp_path / "exports"),
         "channels": ["pass_message", "coupon"], **WINBACK}))
    warehouse = open_warehouse(warehouse_conn)
    warehouse.migrate()
    try:
        # Two guests enrol on day 1; the loyalty engine re-engages after 30 days.
        program = make_program(inactivity={"reengage_after_days": 30})
        toast = Toast(warehouse)
        toast.check("c1", 1, email="ada@example.com", name="Ada Lovelace", spend="10.00")
        toast.check("c2", 1, email="bob@example.com", name="Bob Smith", spend="12.00")
        toast.load()
        run_loyalty(warehouse, program, day(1))
        ada, bob = pass_of(warehouse, "c1")["external_id"], pass_of(warehouse, "c2")["external_id"]

        # PassKit: both install their pass; Ada uninstalls on day 3. Deliveries come twice
        # and out of order.
        installed_ada = pass_payload("PASS_EVENT_INSTALLED", ada, installed=at(1))
        uninstalled_ada = pass_payload("PASS_EVENT_UNINSTALLED", ada, installed=at(1),
                                       uninstalled=at(3))
        installed_bob = pass_payload("PASS_EVENT_INSTALLED", bob, installed=at(1, hour=13))
        for payload in (installed_bob, uninstalled_ada, uninstalled_ada, installed_ada,
                        installed_bob):
            deliver(receiver, payload)
        warehouse.dispose()  # DuckDB: the DAG's tasks open the file themselves

        run("passkit_webhooks")
        assert warehouse.scalar("SELECT COUNT(*) FROM pass_events") == 3
        assert {r["member_external_id"]: r["state"] for r in warehouse.query(
            "SELECT member_external_id, state FROM pass_activity")} == {
            ada: "uninstalled", bob: "installed"}

        # Day 31: Ada is due for her uninstalled pass (day 3) and, like Bob, for 30 days
        # without a visit.
        run_loyalty(warehouse, program, day(31))
        assert sorted((r["external_id"], r["reason"]) for r in warehouse.query(
            "SELECT external_id, reason FROM reengagements")) == sorted(
            [(ada, "uninstalled"), (ada, "lapsed"), (bob, "lapsed")])
        warehouse.dispose()

        # Ada's pass can't show a message: she goes to the e-mail audience; Bob gets a message
        # on his pass and a win-back coupon.
        run("reengagement", run_conf={"business_date": day(31).isoformat()})
        planned = warehouse.query(
            "SELECT external_id, reason, arm, channel, message FROM reengagement_actions")
        assert sorted((r["external_id"], r["reason"], r["arm"], r["channel"], r["message"])
                      for r in planned) == sorted([
            (ada, "uninstalled", "treated", "audience", None),
            (ada, "lapsed", "treated", "audience", None),
            (bob, "lapsed", "treated", "coupon", None),
            (bob, "lapsed", "treated", "pass_message", MESSAGE)])
        export = tmp_path / "exports" / "reengagement_audience_2025-01-31.csv"
        with export.open(newline="") as handle:
            assert [(r["external_id"], r["email"], r["forename"])
                    for r in csv.DictReader(handle)] == [(ada, "ada@example.com", "Ada")]
        assert warehouse.scalar("SELECT COUNT(*) FROM reengagement_report "
                                "WHERE report_on = :d", {"d": day(31)}) == 2
        warehouse.dispose()

        # Rerunning both DAGs stores and plans nothing twice.
        run("passkit_webhooks")
        run("reengagement", run_conf={"business_date": day(31).isoformat()})
        assert warehouse.scalar("SELECT COUNT(*) FROM pass_events") == 3
        assert warehouse.scalar("SELECT COUNT(*) FROM reengagement_actions") == 4

        # The PassKit sync sends them: Bob's pass shows the message and he has a win-back
        # coupon; Ada (audience) gets nothing from PassKit.
        coupon_id = warehouse.scalar("SELECT coupon_external_id FROM reengagement_actions "
                                     "WHERE channel = 'coupon'")
        warehouse.dispose()
        program_file = tmp_path / "program.yaml"
        program_file.write_text(yaml.safe_dump(program.model_dump(mode="json")))
        monkeypatch.setenv("AIRFLOW_VAR_LOYALTY_PROGRAM_FILE", str(program_file))
        with run_sandbox_in_thread(api_key=API_KEY, api_secret=API_SECRET) as sandbox:
            monkeypatch.setenv("AIRFLOW_CONN_PASSKIT_DEFAULT", json.dumps({
                "conn_type": "http", "host": sandbox.url, "login": API_KEY,
                "password": API_SECRET, "extra": {"program_id": PROGRAM}}))
            run("passkit_sync", run_conf={"business_date": day(31).isoformat()})
            snapshot = sandbox.data.snapshot()
            members = {m["externalId"]: m for m in snapshot["members"]}
            coupons = snapshot["coupons"]
        assert members[bob]["metaData"].get("reengagementMessage") == MESSAGE
        assert "reengagementMessage" not in (members[ada].get("metaData") or {})
        assert [(c["externalId"], c["campaignId"], c["offerId"]) for c in coupons] == [
            (coupon_id, "camp-winback", "offer-winback")]
    finally:
        warehouse.dispose()


def test_the_dags_are_scheduled_and_chained_as_documented() -> None:
    from airflow.sdk import CronTriggerTimetable

    webhooks = load_dag("passkit_webhooks")
    assert isinstance(webhooks.timetable, CronTriggerTimetable)
    assert (webhooks.max_active_runs, webhooks.catchup) == (1, False)
    assert webhooks.get_task("ingest_events").pool == "warehouse"

    reengagement = load_dag("reengagement")
    assert reengagement.max_active_runs == 1
    assert reengagement.timetable.asset_condition.name == "loyalty_pass_states"
    plan = reengagement.get_task("plan_actions")
    assert plan.pool == "warehouse"
    assert [o.name for o in plan.outlets] == ["reengagement_actions"]
    assert plan.downstream_task_ids == {"export_audience", "report"}
