"""The PassKit sync against the sandbox, on DuckDB and PostgreSQL: onboarding in one call per
member, one call per changed member, nothing on a rerun, dry run, revocation guard,
revocation and reinstatement, staff redemptions read back, unknown outcomes reconciled,
parking after repeated failures."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.passkit.conftest import (
    AS_OF,
    FAST,
    PROGRAM,
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
from toast_passkit.passkit.plan import RevocationGuardError, points_event_id
from toast_passkit.passkit.state import LeaseHeldError, SyncStore
from toast_passkit.passkit.sync import (
    PassKitSyncAborted,
    read_back_redemptions,
    requeue_given_up,
)


def members(n: int, prefix: str = "m") -> list[dict]:
    return [member_state(f"{prefix}{i:03d}", points=10 * i) for i in range(n)]


def onboard(warehouse, client, *rows) -> None:
    put_pass_states(warehouse, *rows)
    sync(warehouse, client)
    client.reset_counters()


def test_onboarding_a_history_is_one_enrol_per_member_and_a_rerun_makes_no_call(
        warehouse, sync_sandbox, sync_client) -> None:
    history = member_state("m-regular", points=1234, tier="gold", name="Bea Regular")
    put_pass_states(warehouse, history, *members(4))
    add_coupon(warehouse, "cpn-1", "m001")
    add_reengagement(warehouse, "m002", "abs-1", "pass_message", message="We miss you")
    add_reengagement(warehouse, "m003", "abs-1", "pass_message", arm="control",
                     message="never sent")

    report = sync(warehouse, sync_client)

    assert sync_client.call_counts == {"enrol_member": 5, "issue_coupon": 1}
    assert report.plan["counts"]["enrol"] == 5
    assert_passkit_holds(sync_sandbox, warehouse)
    regular = next(m for m in sync_sandbox.state()["members"]
                   if m["externalId"] == "m-regular")
    assert (regular["points"], regular["tierId"]) == (1234, "gold")

    sync_client.reset_counters()
    rerun = sync(warehouse, sync_client)
    assert sync_client.call_counts == {}
    assert rerun.total_calls == 0
    states = SyncStore(warehouse).state_counts()
    assert states == {"member": {"synced": 5}, "coupon": {"synced": 1}}


def test_a_changed_member_costs_one_call(warehouse, sync_sandbox, sync_client) -> None:
    onboard(warehouse, sync_client, *members(8))
    change(warehouse, "m001", points=25)                    # earn 15
    change(warehouse, "m002", points=5, tier_id="silver")   # burn 15, tier on the same call
    change(warehouse, "m003", email="new-address@example.com")
    change(warehouse, "m004", tier_id="gold")
    change(warehouse, "m005", tier_id="silver", surname="Renamed")  # tier rides on the update
    add_reengagement(warehouse, "m006", "abs-1", "pass_message", message="Come back")

    sync(warehouse, sync_client)

    assert sync_client.call_counts == {"earn_points": 1, "burn_points": 1, "update_member": 3,
                                       "change_tier": 1}
    assert sum(sync_client.call_counts.values()) == 6  # six changed members
    assert_passkit_holds(sync_sandbox, warehouse)
    sync_client.reset_counters()
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {}


def test_dry_run_makes_no_call_and_reports_the_plan_without_personal_data(
        warehouse, sync_sandbox, sync_client) -> None:
    onboard(warehouse, sync_client, *members(10))
    change(warehouse, "m001", points=99, tier_id="silver")
    change(warehouse, "m002", status="revoked")
    change(warehouse, "m003", email="other@example.com")
    put_pass_states(warehouse, member_state("m-new", points=40, name="Cy New"))
    add_coupon(warehouse, "cpn-new", "m-new")
    before = sync_sandbox.stats()["requests"]

    report = sync(warehouse, sync_client, dry_run=True)

    assert sync_client.call_counts == {}
    assert sync_sandbox.stats()["requests"] == before
    counts = report.plan["counts"]
    assert {k: counts[k] for k in ("enrol", "points", "tier", "update", "coupon", "revoke",
                                   "reinstate")} == {
        "enrol": 1, "points": 1, "tier": 1, "update": 1, "coupon": 1, "revoke": 1,
        "reinstate": 0}
    assert counts["calls_planned"] == 5
    assert report.plan["revocations"] == 1 and report.plan["revocation_share"] == 0.1
    sample = json.dumps(report.plan["sample"])
    assert {s.get("external_id") for s in report.plan["sample"]} == {
        "m001", "m002", "m003", "m-new"}
    for personal in ("@", "example.com", "+1555", "Ann", "Cy"):
        assert personal not in sample
    run = warehouse.query("SELECT kind, outcome FROM passkit_sync_runs WHERE run_id = :r",
                          {"r": report.run_id})
    assert run == [{"kind": "dry_run", "outcome": "ok"}]


def test_revocation_guard_stops_the_run_before_any_call(warehouse, sync_sandbox,
                                                        sync_client) -> None:
    onboard(warehouse, sync_client, *members(10))
    change(warehouse, "m001", status="revoked")
    change(warehouse, "m002", status="revoked")
    change(warehouse, "m003", points=1)
    before = sync_sandbox.state()

    with pytest.raises(RevocationGuardError, match=r"revoke 2 of 10 members.*20\.0%"):
        sync(warehouse, sync_client)

    assert sync_client.call_counts == {}
    assert sync_sandbox.state() == before
    outcomes = [r["outcome"] for r in warehouse.query(
        "SELECT outcome FROM passkit_sync_runs WHERE kind = 'apply' ORDER BY started_at")]
    assert outcomes[-1] == "guard"

    sync(warehouse, sync_client, config=replace(FAST, max_revocation_share=0.2))
    assert_passkit_holds(sync_sandbox, warehouse)
    assert sync_client.call_counts == {"update_expiry": 2, "burn_points": 1}


def test_revoke_then_reinstate_in_expire_mode(warehouse, sync_sandbox, sync_client) -> None:
    onboard(warehouse, sync_client, *members(20))
    change(warehouse, "m005", status="revoked")
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {"update_expiry": 1}
    assert_passkit_holds(sync_sandbox, warehouse)

    # A revoked pass is never updated: its balance and tier changes wait.
    change(warehouse, "m005", points=0, tier_id="gold")
    sync_client.reset_counters()
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {}

    change(warehouse, "m005", status="active", revoked_on=None, revoked_reason=None,
           points=70, tier_id="silver")
    sync_client.reset_counters()
    report = sync(warehouse, sync_client)
    assert report.plan["counts"]["reinstate"] == 1
    assert sync_client.call_counts == {"update_expiry": 1, "earn_points": 1}
    assert_passkit_holds(sync_sandbox, warehouse)


def test_revoke_then_reinstate_in_delete_mode(warehouse, sync_sandbox, sync_client) -> None:
    put_pass_states(warehouse, *members(20))
    sync(warehouse, sync_client, revoke_mode="delete")
    change(warehouse, "m007", status="revoked")
    sync_client.reset_counters()
    sync(warehouse, sync_client, revoke_mode="delete")
    assert sync_client.call_counts == {"delete_member": 1}
    assert_passkit_holds(sync_sandbox, warehouse, revoke_mode="delete")

    change(warehouse, "m007", status="active", revoked_on=None, revoked_reason=None,
           points=555, tier_id="gold")
    sync_client.reset_counters()
    sync(warehouse, sync_client, revoke_mode="delete")
    # Reinstated with the same externalId, balance and tier in the one enrol call.
    assert sync_client.call_counts == {"enrol_member": 1}
    assert_passkit_holds(sync_sandbox, warehouse, revoke_mode="delete")
    assert [m["externalId"] for m in sync_sandbox.state()["deletedMembers"]] == ["m007"]


def test_staff_burns_are_read_back_and_never_overwritten(warehouse, sync_sandbox,
                                                         sync_client) -> None:
    onboard(warehouse, sync_client, member_state("m-a", points=100),
            member_state("m-b", points=50))
    staff_burn(sync_client, "m-a", 30, "till-1")
    sync_client.reset_counters()

    # Before the read-back the sync does not know about the burn, and does not undo it.
    change(warehouse, "m-a", points=110)  # a visit earned 10 meanwhile
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {"earn_points": 1}
    assert _points(sync_sandbox, "m-a") == 80

    report = read_back_redemptions(warehouse, sync_client, program_id=PROGRAM, config=FAST)
    assert (report.redemptions, report.points_redeemed, report.drift_corrected) == (1, 30, 0)
    rows = warehouse.query("SELECT member_external_id, points FROM passkit_redemptions")
    assert [(r["member_external_id"], int(r["points"])) for r in rows] == [("m-a", 30)]
    # Read back twice: recorded once.
    read_back_redemptions(warehouse, sync_client, program_id=PROGRAM, config=FAST)
    assert warehouse.scalar("SELECT COUNT(*) FROM passkit_redemptions") == 1

    # The ledger has not counted it yet: the sync neither burns it again nor credits it back.
    sync_client.reset_counters()
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {}
    assert_passkit_holds(sync_sandbox, warehouse)

    # The loyalty run counts it (balance 80), plus a new visit: one earn of the visit only.
    ledger_counts_redemptions(warehouse)
    change(warehouse, "m-a", points=95)
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {"earn_points": 1}
    assert _points(sync_sandbox, "m-a") == 95
    assert_passkit_holds(sync_sandbox, warehouse)
    log = warehouse.query("SELECT operation, outcome FROM passkit_sync_log "
                          "WHERE operation = 'redemption'")
    assert log == [{"operation": "redemption", "outcome": "recorded"}]


def test_an_earn_whose_answer_was_lost_is_looked_up_not_repeated(warehouse, sync_sandbox,
                                                                  sync_client) -> None:
    onboard(warehouse, sync_client, member_state("m-a", points=100))
    change(warehouse, "m-a", points=130)
    sync_sandbox.set_faults(rate=1.0, kinds=["applied_then_500"], count=1,
                            operations=["earn_points"])

    sync(warehouse, sync_client)

    assert sync_client.call_counts["earn_points"] == 1  # never sent twice
    assert sync_client.call_counts["list_member_events"] == 1
    assert _points(sync_sandbox, "m-a") == 130
    assert_passkit_holds(sync_sandbox, warehouse)
    outcomes = {(r["operation"], r["outcome"]) for r in warehouse.query(
        "SELECT operation, outcome FROM passkit_sync_log")}
    assert {("earn", "uncertain"), ("reconcile", "applied")} <= outcomes


def test_an_earn_dropped_before_it_was_applied_is_sent_again_once(warehouse, sync_sandbox,
                                                                   sync_client) -> None:
    onboard(warehouse, sync_client, member_state("m-a", points=100))
    change(warehouse, "m-a", points=130)
    sync_sandbox.set_faults(rate=1.0, kinds=["drop"], count=1, operations=["earn_points"])

    sync(warehouse, sync_client)

    assert sync_client.call_counts["earn_points"] == 2
    assert _points(sync_sandbox, "m-a") == 130
    assert_passkit_holds(sync_sandbox, warehouse)
    event_id = points_event_id("tpk-", "m-a", 100, 130, 1)
    events = [e for e in sync_sandbox.state()["events"] if e["externalId"] == event_id]
    assert len(events) == 1  # the retry kept the externalEventId of the same change


def test_enrol_and_coupon_whose_answers_were_lost_are_looked_up(warehouse, sync_sandbox,
                                                                sync_client) -> None:
    put_pass_states(warehouse, member_state("m-a", points=60, tier="silver"))
    add_coupon(warehouse, "cpn-a", "m-a")
    sync_sandbox.set_faults(rate=1.0, kinds=["applied_then_500"], count=2,
                            operations=["enrol_member", "issue_coupon"])

    sync(warehouse, sync_client)

    counts = sync_client.call_counts
    assert (counts["enrol_member"], counts["issue_coupon"]) == (1, 1)
    assert counts["get_member_by_external_id"] == 1
    assert counts["get_coupon_by_external_id"] == 1
    assert_passkit_holds(sync_sandbox, warehouse)
    sync_client.reset_counters()
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {}


def test_a_failing_member_is_parked_after_max_attempts_with_a_readable_reason(
        warehouse, sync_sandbox, sync_client) -> None:
    config = replace(FAST, max_attempts=3, max_passes=1)
    put_pass_states(warehouse, member_state("m-ok"), member_state("m-bad", tier="platinum"))
    for _ in range(3):
        sync(warehouse, sync_client, config=config)
    row = warehouse.query("SELECT sync_state, attempts, last_error, last_status_code "
                          "FROM passkit_sync_members WHERE external_id = 'm-bad'")[0]
    assert (row["sync_state"], row["attempts"], row["last_status_code"]) == ("given_up", 3, 400)
    assert "gave up after 3 attempts" in row["last_error"]
    assert "tier 'platinum' does not exist" in row["last_error"]
    assert warehouse.scalar("SELECT COUNT(*) FROM passkit_sync_log WHERE external_id = "
                            "'m-bad' AND outcome = 'given_up'") == 1

    sync_client.reset_counters()
    sync(warehouse, sync_client, config=config)
    assert sync_client.call_counts == {}  # parked: left alone

    sync_sandbox.data.set_tiers(["base", "silver", "gold", "platinum"])  # someone fixed it
    assert requeue_given_up(warehouse, ["m-bad"]) == 1
    sync(warehouse, sync_client, config=config)
    assert_passkit_holds(sync_sandbox, warehouse)


def test_a_parked_member_is_tried_again_when_its_desired_state_changes(
        warehouse, sync_sandbox, sync_client) -> None:
    config = replace(FAST, max_attempts=1, max_passes=1)
    put_pass_states(warehouse, member_state("m-bad", tier="platinum"))
    sync(warehouse, sync_client, config=config)
    assert warehouse.scalar("SELECT sync_state FROM passkit_sync_members") == "given_up"
    change(warehouse, "m-bad", tier_id="gold")
    sync(warehouse, sync_client, config=config)
    assert_passkit_holds(sync_sandbox, warehouse)


def test_winback_coupons_and_messages_are_sent_once_and_controls_never(
        warehouse, sync_sandbox, sync_client) -> None:
    onboard(warehouse, sync_client, *members(4))
    add_reengagement(warehouse, "m001", "abs-1", "coupon", coupon_external_id="wb-m001-1")
    add_reengagement(warehouse, "m001", "abs-1", "pass_message", message="A treat for you")
    add_reengagement(warehouse, "m002", "abs-1", "coupon", arm="control",
                     coupon_external_id="wb-m002-1")
    add_reengagement(warehouse, "m003", "abs-9", "pass_message", message="Later",
                     due_on=date(2026, 12, 1))  # not due yet

    sync(warehouse, sync_client)

    assert sync_client.call_counts == {"issue_coupon": 1, "update_member": 1}
    assert_passkit_holds(sync_sandbox, warehouse)
    sync_client.reset_counters()
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {}


def test_two_runs_never_send_at_once(warehouse, sync_sandbox, sync_client) -> None:
    store = SyncStore(warehouse)
    store.acquire_lease("another-run", 60)
    put_pass_states(warehouse, *members(2))
    with pytest.raises(LeaseHeldError, match="another-run"):
        sync(warehouse, sync_client)
    assert sync_client.call_counts == {}
    store.release_lease("another-run")
    sync(warehouse, sync_client)
    assert_passkit_holds(sync_sandbox, warehouse)


def test_sync_log_holds_no_personal_data(warehouse, sync_sandbox, sync_client) -> None:
    put_pass_states(warehouse, member_state("m-a", name="Zed Private",
                                            email="zed.private@example.com",
                                            phone="+15555550123"))
    sync(warehouse, sync_client)
    change(warehouse, "m-a", email="zed.other@example.com", points=5)
    sync(warehouse, sync_client)
    dump = json.dumps(warehouse.query("SELECT * FROM passkit_sync_log"), default=str)
    dump += json.dumps(warehouse.query("SELECT * FROM passkit_sync_members"), default=str)
    for personal in ("Zed", "Private", "example.com", "5550123"):
        assert personal not in dump
    assert AS_OF  # the log is per run; the business date is in passkit_sync_runs


def _points(sandbox, external_id: str) -> float:
    return next(m["points"] for m in sandbox.state()["members"]
                if m["externalId"] == external_id)


def test_passkit_down_stops_the_run_and_leaves_the_rest_queued(warehouse, sync_sandbox) -> None:
    client = make_client(sync_sandbox.url, max_attempts=1)
    put_pass_states(warehouse, *members(30))
    sync_sandbox.set_faults(rate=1.0, kinds=["503"])
    config = replace(FAST, breaker_threshold=3, threads=1, batch_size=2, max_passes=1)

    with pytest.raises(PassKitSyncAborted, match="unreachable for 3 members in a row"):
        sync(warehouse, client, config=config)

    assert sum(client.call_counts.values()) < 10
    states = SyncStore(warehouse).state_counts()["member"]
    assert states.get("sent", 0) == 0  # nothing left in doubt: 503 means not applied
    assert states["failed"] >= 3
    sync_sandbox.clear_faults()
    sync(warehouse, client)
    assert_passkit_holds(sync_sandbox, warehouse)

    refused = make_client(sync_sandbox.url, max_attempts=1)
    refused._api_secret = "not-the-secret-of-this-sandbox-account-0123"
    change(warehouse, "m001", points=1)
    change(warehouse, "m002", points=2)
    with pytest.raises(PassKitSyncAborted, match="refused the credentials"):
        sync(warehouse, refused, config=config)
    assert sum(refused.call_counts.values()) <= 2  # the batch already handed out, at most
    client.close()
    refused.close()


def test_a_change_made_in_passkit_outside_the_rules_is_logged_and_put_back(
        warehouse, sync_sandbox, sync_client) -> None:
    onboard(warehouse, sync_client, member_state("m-a", points=100, tier="silver"))
    sync_client.earn_points("m-a", 50, external_event_id="manual-goodwill")
    sync_client.change_tier("m-a", "gold")

    report = read_back_redemptions(warehouse, sync_client, program_id=PROGRAM, config=FAST)
    assert (report.redemptions, report.drift_corrected) == (0, 2)
    drift = {json.loads(r["request"])["field"] for r in warehouse.query(
        "SELECT request FROM passkit_sync_log WHERE operation = 'drift'")}
    assert drift == {"points", "tier"}
    sync_client.reset_counters()
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {"burn_points": 1}  # tier rides on the burn
    assert_passkit_holds(sync_sandbox, warehouse)


def test_without_a_reengagement_table_members_and_rewards_still_sync(
        warehouse, sync_sandbox, sync_client) -> None:
    cascade = " CASCADE" if warehouse.dialect == "postgresql" else ""
    with warehouse.begin() as conn:
        conn.execute(sa.text("DROP VIEW IF EXISTS passkit_coupon_redemptions"))
        conn.execute(sa.text(f"DROP TABLE IF EXISTS reengagement_actions{cascade}"))
    put_pass_states(warehouse, *members(3))
    add_coupon(warehouse, "cpn-1", "m002")
    assert SyncStore(warehouse).prepare_plan(
        as_of=AS_OF, revoke_mode="expire", now=datetime.now(UTC)) == {
        "reengagement_actions": False}
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {"enrol_member": 3, "issue_coupon": 1}
    assert_passkit_holds(sync_sandbox, warehouse)


def test_with_the_loyalty_engine_a_redemption_goes_round_once(warehouse, sync_sandbox,
                                                              sync_client) -> None:
    """Toast checks → loyalty run → sync → staff burn in PassKit → read-back → the next
    loyalty run counts the redemption → the sync sends only the new visit's points."""
    from tests.loyalty.loyalty_builders import START, Toast, make_program
    from toast_passkit.loyalty.engine import run_loyalty

    today = (datetime.now(UTC).date() - START).days + 1  # builder day numbers
    program = make_program(tiers={"levels": [{"id": "base", "min_spend": 0},
                                             {"id": "silver", "min_spend": 100}]})
    toast = Toast(warehouse)
    toast.check("a-1", today - 4, email="ann@example.com", name="Ann Example", spend="120.00")
    toast.check("b-1", today - 4, email="bob@example.com", name="Bob Example", spend="40.00")
    toast.check("a-2", today - 3, email="ann@example.com", spend="30.00")
    toast.load()
    run_loyalty(warehouse, program, START + timedelta(days=today - 3))
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {"enrol_member": 2}
    assert_passkit_holds(sync_sandbox, warehouse)
    ann = warehouse.scalar("SELECT external_id FROM pass_states WHERE email = 'ann@example.com'")
    assert (_points(sync_sandbox, ann), warehouse.scalar(
        "SELECT tier_id FROM pass_states WHERE external_id = :e", {"e": ann})) == (150, "silver")

    staff_burn(sync_client, ann, 50, "dessert")
    read_back_redemptions(warehouse, sync_client, program_id=PROGRAM, config=FAST)
    sync_client.reset_counters()
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {}  # the burn is not undone before the ledger has it

    toast.check("a-3", today - 1, email="ann@example.com", spend="20.00")
    toast.load()
    run_loyalty(warehouse, program, START + timedelta(days=today))  # counts the redemption
    assert warehouse.scalar("SELECT points FROM pass_states WHERE external_id = :e",
                            {"e": ann}) == 120
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {"earn_points": 1}  # +20, nothing burned twice
    assert _points(sync_sandbox, ann) == 120
    assert_passkit_holds(sync_sandbox, warehouse)
    sync_client.reset_counters()
    sync(warehouse, sync_client)
    assert sync_client.call_counts == {}
