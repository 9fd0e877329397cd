"""Refunds: latest export of each Payment Id, cumulative reversal capped at what was earned."""

from decimal import Decimal

from tests.loyalty.loyalty_builders import day, ledger, make_program, pass_of, run


def test_late_refunds_reverse_cumulatively_up_to_the_points_earned(warehouse, toast):
    program = make_program(earn={"points_per_currency_unit": 2})
    toast.check("c1", 1, email="ada@x.com", spend="40.00")               # earns 80
    toast.check("c2", 1, email="ada@x.com", spend="10.00")               # earns 20
    toast.load()
    run(warehouse, program, 1)
    toast.refund("c1", "15.25", 5, refunded_on=4)                        # same Payment Id, later
    toast.load()
    run(warehouse, program, 5)
    assert pass_of(warehouse, "c1")["points"] == 100 - 30               # floor(30.5)
    toast.refund("c1", "30.00", 7, refunded_on=7, payment_id="p-c1-second")
    toast.load()
    run(warehouse, program, 7)
    # cumulative: min(floor(45.25 x 2), 80) = 80, so this one reverses 50
    assert ledger(warehouse, ("reversal",)) == [
        ("reversal", day(4), Decimal(-30)), ("reversal", day(7), Decimal(-50))]
    assert pass_of(warehouse, "c1")["points"] == 20
    run(warehouse, program, 7, full_recompute=True)
    assert len(ledger(warehouse, ("reversal",))) == 2


def test_the_latest_export_of_a_payment_wins(warehouse, toast):
    toast.check("c1", 1, email="ada@x.com", spend="40.00")
    toast.refund("c1", "5.00", 2, refunded_on=2)
    toast.refund("c1", "8.00", 3, refunded_on=2)                         # re-exported, 8 wins
    toast.load()
    run(warehouse, make_program(), 3)
    assert ledger(warehouse, ("reversal",)) == [("reversal", day(2), Decimal(-8))]


def test_all_spend_refunded_revokes_until_a_new_visit(warehouse, toast):
    program = make_program(revoke={"when_all_spend_refunded": True})
    toast.check("c1", 1, email="ada@x.com", spend="20.00")
    toast.check("c2", 2, email="ada@x.com", spend="10.00")
    toast.load()
    run(warehouse, program, 2)
    toast.refund("c1", "20.00", 3, refunded_on=3)
    toast.load()
    run(warehouse, program, 3)
    assert pass_of(warehouse, "c1")["status"] == "active"                # c2 still stands
    toast.refund("c2", "10.00", 4, refunded_on=4)
    toast.load()
    summary = run(warehouse, program, 4)
    member = pass_of(warehouse, "c1")
    assert (member["status"], member["revoked_reason"], member["revoked_on"]) == (
        "revoked", "refunded", day(4))
    assert summary.revocations == 1
    toast.check("c3", 6, email="ada@x.com", spend="3.00")
    toast.load()
    run(warehouse, program, 6)
    member = pass_of(warehouse, "c1")
    assert (member["status"], member["points"]) == ("active", 3)        # reinstated


def test_a_payment_refund_exported_again_with_a_new_amount_corrects_its_reversal(
        warehouse, toast):
    """Reversals are derived: day by day gives what the at-once load gives (8, not 5)."""
    toast.check("c1", 1, email="ada@x.com", spend="40.00")               # earns 40
    toast.load()
    run(warehouse, make_program(), 1)
    toast.refund("c1", "5.00", 2, refunded_on=2)
    toast.load()
    run(warehouse, make_program(), 2)
    assert ledger(warehouse, ("reversal",)) == [("reversal", day(2), Decimal(-5))]
    toast.refund("c1", "8.00", 3, refunded_on=2)                         # re-exported, 8 wins
    toast.load()
    run(warehouse, make_program(), 3)
    assert ledger(warehouse, ("reversal",)) == [("reversal", day(2), Decimal(-8))]
    assert pass_of(warehouse, "c1")["points"] == 32


def test_a_refund_dated_before_one_already_reversed_splits_the_cap_in_date_order(
        warehouse, toast):
    toast.check("c1", 1, email="ada@x.com", spend="40.00")               # earns 40
    toast.load()
    run(warehouse, make_program(), 1)
    toast.refund("c1", "30.00", 3, refunded_on=3, payment_id="p-later")
    toast.load()
    run(warehouse, make_program(), 3)
    assert ledger(warehouse, ("reversal",)) == [("reversal", day(3), Decimal(-30))]
    toast.refund("c1", "15.00", 4, refunded_on=2, payment_id="p-earlier")
    toast.load()
    run(warehouse, make_program(), 4)
    # in date order: day 2 reverses 15, day 3 min(45, 40) - 15 = 25; never more than earned
    assert ledger(warehouse, ("reversal",)) == [
        ("reversal", day(2), Decimal(-15)), ("reversal", day(3), Decimal(-25))]
    assert pass_of(warehouse, "c1")["points"] == 0


def test_a_refund_exported_months_after_its_check_is_reversed(warehouse, toast):
    # the run looks for a refund's check among the last month's checks first, then older ones
    program = make_program(earn={"points_per_currency_unit": 2})
    toast.check("c1", 1, email="ada@x.com", spend="40.00")               # earns 80
    toast.check("c2", 50, email="ada@x.com", spend="10.00")              # earns 20
    toast.load()
    run(warehouse, program, 50)
    toast.refund("c1", "15.00", 70, refunded_on=70)                      # c1 is 69 days old
    toast.check("c3", 70, email="bob@x.com", spend="5.00")
    toast.load()
    summary = run(warehouse, program, 70)
    assert summary.mode == "incremental"
    assert ledger(warehouse, ("reversal",)) == [("reversal", day(70), Decimal(-30))]
    assert pass_of(warehouse, "c1")["points"] == 80 + 20 - 30
    run(warehouse, program, 70, full_recompute=True)
    assert ledger(warehouse, ("reversal",)) == [("reversal", day(70), Decimal(-30))]
    assert pass_of(warehouse, "c1")["points"] == 70
