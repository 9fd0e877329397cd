"""Inactivity: re-engagement once per absence, point expiry, revocation and reinstatement."""

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from tests.loyalty.loyalty_builders import day, ledger, make_program, pass_of, run


def reengagements(warehouse):
    return [(r["reason"], r["due_on"]) for r in warehouse.query(
        "SELECT reason, due_on FROM reengagements ORDER BY due_on, reason")]


def test_one_reengagement_per_absence(warehouse, toast):
    program = make_program(inactivity={"reengage_after_days": 30})
    toast.check("c1", 1, email="ada@x.com", spend="10.00")
    toast.load()
    run(warehouse, program, 1)
    assert run(warehouse, program, 30).reengagements == 0                # 29 days
    assert run(warehouse, program, 31).reengagements == 1                # 30 days
    assert run(warehouse, program, 40).reengagements == 0                # same absence
    toast.check("c2", 45, email="ada@x.com", spend="10.00")              # re-arms
    toast.load()
    run(warehouse, program, 45)
    run(warehouse, program, 80)
    assert reengagements(warehouse) == [("lapsed", day(31)), ("lapsed", day(75))]


def test_an_uninstalled_pass_is_reengaged_once_per_uninstall(warehouse, toast):
    program = make_program(inactivity={"reengage_after_days": 60})
    toast.check("c1", 1, email="ada@x.com", spend="10.00")
    toast.load()
    run(warehouse, program, 1)
    member = pass_of(warehouse, "c1")["external_id"]

    def pass_activity(state, uninstalled_on):
        with warehouse.begin() as conn:
            conn.execute(sa.text("DELETE FROM pass_activity"))
            conn.execute(sa.text(
                "INSERT INTO pass_activity (member_external_id, pass_id, state, "
                "last_uninstalled_at, updated_at) VALUES (:m, 'pass-1', :s, :u, :u)"),
                {"m": member, "s": state,
                 "u": datetime(2025, 1, uninstalled_on, 20, tzinfo=UTC)})

    pass_activity("uninstalled", 3)
    run(warehouse, program, 3)
    run(warehouse, program, 4)
    pass_activity("installed", 3)                                        # re-installed
    run(warehouse, program, 5)
    pass_activity("uninstalled", 6)                                      # a new absence
    run(warehouse, program, 6)
    assert reengagements(warehouse) == [("uninstalled", day(3)), ("uninstalled", day(6))]


def test_points_expire_after_an_absence_and_a_new_visit_earns_again(warehouse, toast):
    program = make_program(inactivity={"expire_points_after_days": 30},
                           enrolment={"welcome_bonus_points": 5})
    toast.check("c1", 1, email="ada@x.com", spend="20.00")
    toast.check("c2", 10, email="ada@x.com", spend="10.00")
    toast.load()
    run(warehouse, program, 10)
    assert run(warehouse, program, 39).mode == "incremental"
    assert pass_of(warehouse, "c1")["points"] == 35
    run(warehouse, program, 40)                                          # 30 days after day 10
    assert pass_of(warehouse, "c1")["points"] == 0
    assert ledger(warehouse, ("expiry",)) == [("expiry", day(40), Decimal(-35))]
    toast.check("c3", 50, email="ada@x.com", spend="4.00")
    toast.load()
    run(warehouse, program, 50)
    assert pass_of(warehouse, "c1")["points"] == 4
    run(warehouse, program, 50, full_recompute=True)
    assert len(ledger(warehouse, ("expiry",))) == 1


def test_revocation_freezes_the_pass_until_a_new_visit(warehouse, toast):
    program = make_program(inactivity={"revoke_pass_after_days": 60},
                           tiers={"window_days": 30,
                                  "levels": [{"id": "base", "min_spend": 0},
                                             {"id": "silver", "min_spend": 50}]})
    toast.check("c1", 1, email="ada@x.com", spend="60.00")
    toast.load()
    run(warehouse, program, 1)
    summary = run(warehouse, program, 61)
    member = pass_of(warehouse, "c1")
    assert (member["status"], member["revoked_reason"], member["revoked_on"]) == (
        "revoked", "inactive", day(61))
    assert (member["points"], member["tier_id"]) == (60, "base")         # as on day 61
    assert summary.revocations == 1
    toast.refund("c1", "60.00", 65, refunded_on=65)                      # after revocation
    toast.load()
    run(warehouse, program, 65)
    assert pass_of(warehouse, "c1")["points"] == 60                      # frozen
    toast.check("c2", 70, email="ada@x.com", spend="55.00")
    toast.load()
    run(warehouse, program, 70)
    member = pass_of(warehouse, "c1")
    assert (member["status"], member["points"], member["tier_id"]) == ("active", 55, "silver")
