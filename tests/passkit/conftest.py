"""Fixtures and builders for the PassKit sync tests: a sandbox, a fast client, pass states,
and `assert_passkit_holds`, which checks the sandbox against what the warehouse wants."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from toast_passkit.passkit.client import PassKitClient
from toast_passkit.passkit.sandbox import PassKitSandbox, run_sandbox_in_thread
from toast_passkit.passkit.sync import SyncConfig, SyncReport, run_sync
from toast_passkit.warehouse import Warehouse

# Throwaway credentials, only ever valid for the in-test sandbox.
SYNC_API_KEY = "sync-test-key"
SYNC_API_SECRET = "sync-test-secret-for-the-sandbox-only-0123"
PROGRAM = "prog-sync"
AS_OF = date(2026, 11, 3)
CAMPAIGN, OFFER = "camp-rewards", "offer-dessert"
WINBACK_CAMPAIGN, WINBACK_OFFER = "camp-winback", "offer-winback"
# Production delays shrunk: failures retried within the run, unknown outcomes read back
# 0.4 s later (longer than the sandbox's late "slow" answers), results written often.
FAST = SyncConfig(retry_base_seconds=0, settle_seconds=0.4, max_passes=4, flush_seconds=0.1,
                  lease_seconds=60, breaker_threshold=1000)

REENGAGEMENT_DDL = """
CREATE TABLE IF NOT EXISTS reengagement_actions (
    external_id VARCHAR NOT NULL, absence_key VARCHAR NOT NULL, reason VARCHAR NOT NULL,
    arm VARCHAR NOT NULL, channel VARCHAR NOT NULL, message VARCHAR,
    coupon_external_id VARCHAR, passkit_campaign_id VARCHAR, passkit_offer_id VARCHAR,
    due_on DATE NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (external_id, absence_key, channel))
"""


@pytest.fixture
def sync_sandbox() -> Iterator[PassKitSandbox]:
    with run_sandbox_in_thread(api_key=SYNC_API_KEY, api_secret=SYNC_API_SECRET) as sandbox:
        yield sandbox


def make_client(url: str, **overrides: Any) -> PassKitClient:
    """A client with short timeouts and back-off, unthrottled unless asked."""
    settings: dict[str, Any] = {
        "program_id": PROGRAM, "requests_per_second": None, "read_timeout": 0.25,
        "connect_timeout": 0.5, "max_attempts": 5, "max_retry_seconds": 5.0,
        "backoff_initial": 0.01, "backoff_max": 0.05,
    }
    settings.update(overrides)
    return PassKitClient(url, SYNC_API_KEY, SYNC_API_SECRET, **settings)


@pytest.fixture
def sync_client(sync_sandbox: PassKitSandbox) -> Iterator[PassKitClient]:
    with make_client(sync_sandbox.url) as client:
        yield client


def sync(warehouse: Warehouse, client: PassKitClient, **kwargs: Any) -> SyncReport:
    """One sync run with the test defaults (program, business date, FAST config)."""
    kwargs.setdefault("config", FAST)
    kwargs.setdefault("as_of", AS_OF)
    return run_sync(warehouse, client, program_id=PROGRAM, **kwargs)


# ---------------------------------------------------------------------- builders


def member_state(external_id: str, *, points: int = 0, tier: str = "base",
                 status: str = "active", revoked_on: date | None = None,
                 name: str | None = "Ann Example", email: str | None = None,
                 phone: str | None = "+15555550100") -> dict[str, Any]:
    """A pass_states row (test guests only: example.com addresses, 555 numbers)."""
    forename, _, surname = (name or "").partition(" ")
    return {
        "external_id": external_id, "guest_id": f"g-{external_id}",
        "forename": forename or None, "surname": surname or None,
        "email": email if email is not None else f"{external_id}@example.com",
        "phone": phone, "tier_id": tier, "points": points, "status": status,
        "revoked_reason": "inactive" if status == "revoked" else None,
        "revoked_on": revoked_on or (AS_OF if status == "revoked" else None),
        "enrolled_on": date(2026, 1, 5), "as_of": AS_OF,
    }


def put_pass_states(warehouse: Warehouse, *rows: dict[str, Any]) -> None:
    """Replace these members' pass_states rows (as a loyalty run would)."""
    with warehouse.begin() as conn:
        for row in rows:
            conn.execute(sa.text("DELETE FROM pass_states WHERE external_id = :external_id"),
                         row)
            conn.execute(sa.text(
                "INSERT INTO pass_states (external_id, guest_id, forename, surname, email, "
                "phone, tier_id, points, status, revoked_reason, revoked_on, enrolled_on, "
                "as_of) VALUES (:external_id, :guest_id, :forename, :surname, "
                ":email, :phone, :tier_id, :points, :status, :revoked_reason, :revoked_on, "
                ":enrolled_on, :as_of)"), row)


def change(warehouse: Warehouse, external_id: str, **fields: Any) -> None:
    """Change some fields of one member's desired pass."""
    row = warehouse.query("SELECT * FROM pass_states WHERE external_id = :e",
                          {"e": external_id})[0]
    row.update(fields)
    put_pass_states(warehouse, row)


def add_coupon(warehouse: Warehouse, coupon_external_id: str, external_id: str) -> None:
    """An item-reward coupon, as the loyalty engine issues it."""
    with warehouse.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO pass_coupons (coupon_external_id, external_id, reward_id, "
            "location_id, check_id, passkit_campaign_id, passkit_offer_id, issued_on, run_id) "
            "VALUES (:c, :e, 'dessert', 'loc-1', :c, :camp, :offer, :day, 'test')"),
            {"c": coupon_external_id, "e": external_id, "camp": CAMPAIGN, "offer": OFFER,
             "day": AS_OF})


def add_reengagement(warehouse: Warehouse, external_id: str, absence_key: str, channel: str,
                     *, arm: str = "treated", message: str | None = None,
                     coupon_external_id: str | None = None, due_on: date = AS_OF) -> None:
    """A re-engagement action (the table is created when the environment lacks it)."""
    with warehouse.begin() as conn:
        conn.execute(sa.text(REENGAGEMENT_DDL))
        conn.execute(sa.text(
            "INSERT INTO reengagement_actions (external_id, absence_key, reason, arm, channel, "
            "message, coupon_external_id, passkit_campaign_id, passkit_offer_id, due_on, "
            "created_at) VALUES (:e, :a, 'lapsed', :arm, :channel, :message, :coupon, "
            ":camp, :offer, :due_on, :created_at)"),
            {"e": external_id, "a": absence_key, "arm": arm, "channel": channel,
             "message": message, "coupon": coupon_external_id,
             "camp": WINBACK_CAMPAIGN if coupon_external_id else None,
             "offer": WINBACK_OFFER if coupon_external_id else None, "due_on": due_on,
             "created_at": datetime.now(UTC)})


def staff_burn(client: PassKitClient, external_id: str, points: int, ref: str) -> None:
    """A redemption made by staff scanning the pass (not by the sync)."""
    client.burn_points(external_id, points, external_event_id=f"pos-{ref}")


def ledger_counts_redemptions(warehouse: Warehouse) -> None:
    """What the next loyalty run does with read-back redemptions: ledger entries for them,
    and each member's balance lowered by them."""
    rows = warehouse.query(
        "SELECT r.passkit_event_id, r.member_external_id, r.points FROM passkit_redemptions r "
        "WHERE NOT EXISTS (SELECT 1 FROM loyalty_ledger l "
        "WHERE l.entry_key = 'redemption|' || r.passkit_event_id)")
    with warehouse.begin() as conn:
        for row in rows:
            conn.execute(sa.text(
                "INSERT INTO loyalty_ledger (entry_key, kind, entry_date, points, external_id, "
                "passkit_event_id, run_id, created_at) VALUES ('redemption|' || :id, "
                "'redemption', :day, :minus, :e, :id, 'test', :now)"),
                {"id": row["passkit_event_id"], "day": AS_OF, "minus": -row["points"],
                 "e": row["member_external_id"], "now": datetime.now(UTC)})
            conn.execute(sa.text(
                "UPDATE pass_states SET points = points - CAST(:p AS INTEGER) "
                "WHERE external_id = :e"), {"p": row["points"], "e": row["member_external_id"]})


# ---------------------------------------------------------------------- the assertion


def _has_reengagement(warehouse: Warehouse) -> bool:
    return bool(warehouse.scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = "
        "'reengagement_actions' AND table_schema = current_schema()"))


def expected_passkit(warehouse: Warehouse) -> dict[str, Any]:
    """What PassKit must hold: desired members (points net of redemptions the ledger has not
    counted yet) and coupons (of active members), computed independently of the sync."""
    members = {r["external_id"]: r for r in warehouse.query(
        "SELECT p.*, COALESCE(u.points, 0) AS unledgered FROM pass_states p LEFT JOIN ("
        " SELECT member_external_id, SUM(points) AS points FROM passkit_redemptions r"
        " WHERE NOT EXISTS (SELECT 1 FROM loyalty_ledger l"
        "                   WHERE l.entry_key = 'redemption|' || r.passkit_event_id)"
        " GROUP BY member_external_id) u ON u.member_external_id = p.external_id")}
    messages: dict[str, str] = {}
    # A revoked member's coupons issued before the revocation stay; new ones wait for it.
    owners = {r["coupon_external_id"]: r["external_id"] for r in warehouse.query(
        "SELECT coupon_external_id, external_id FROM pass_coupons")}
    if _has_reengagement(warehouse):
        for row in warehouse.query(
                "SELECT * FROM reengagement_actions WHERE arm = 'treated' AND due_on <= :d "
                "ORDER BY due_on, created_at, absence_key", {"d": AS_OF}):
            if row["channel"] == "pass_message" and row["message"]:
                messages[row["external_id"]] = row["message"]
            if row["channel"] == "coupon" and row["coupon_external_id"]:
                owners[row["coupon_external_id"]] = row["external_id"]
    required = {c for c, e in owners.items() if members.get(e, {}).get("status") == "active"}
    return {"members": members, "messages": messages, "coupons": required,
            "allowed_coupons": set(owners)}


def assert_passkit_holds(sandbox: PassKitSandbox, warehouse: Warehouse,
                         revoke_mode: str = "expire") -> None:
    """The sandbox holds exactly the desired states: one member per enrolled guest with the
    right balance, tier, status, person and message; every coupon once (those of an active
    member, plus those a revoked member got before its revocation); no double credit."""
    want = expected_passkit(warehouse)
    state = sandbox.state()
    members = [m for m in state["members"] if m["programId"] == PROGRAM]
    per_external_id = Counter(m["externalId"] for m in members)
    assert all(n == 1 for n in per_external_id.values()), "duplicate members"
    held = {m["externalId"]: m for m in members}
    assert set(held) <= set(want["members"]), f"unexpected members {set(held) - set(want)}"
    for external_id, desired in want["members"].items():
        member = held.get(external_id)
        if desired["status"] == "revoked":
            if revoke_mode == "delete":
                assert member is None, f"{external_id} should be deleted"
            else:
                assert member is None or member["status"] == "EXPIRED", external_id
            continue
        assert member is not None, f"{external_id} missing from PassKit"
        assert member["status"] != "EXPIRED", external_id
        balance = max(Decimal(desired["points"]) - Decimal(desired["unledgered"]), Decimal(0))
        assert Decimal(str(member["points"])) == balance, (external_id, member["points"], balance)
        assert member["tierId"] == desired["tier_id"], external_id
        assert member["person"].get("emailAddress") == desired["email"], external_id
        assert member["person"].get("forename") == desired["forename"], external_id
        message = want["messages"].get(external_id)
        assert member["metaData"].get("reengagementMessage") == message, external_id
    coupons = Counter(c["externalId"] for c in state["coupons"])
    assert want["coupons"] <= set(coupons) <= want["allowed_coupons"], (
        want["coupons"] - set(coupons), set(coupons) - want["allowed_coupons"])
    assert all(n == 1 for n in coupons.values())
    ours = Counter(e["externalId"] for e in state["events"]
                   if str(e.get("externalId", "")).startswith("tpk-"))
    assert all(n == 1 for n in ours.values()), "a points change was applied twice"
