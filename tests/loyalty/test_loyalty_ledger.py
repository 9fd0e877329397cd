"""The points ledger: entries keyed by natural key, the balance order, never below 0, reruns."""

from decimal import Decimal

from tests.loyalty.loyalty_builders import day, ledger, make_program, pass_of, redeem, run


def test_balance_applies_the_day_order_and_never_goes_below_zero(warehouse, toast):
    program = make_program(enrolment={"welcome_bonus_points": 5})
    toast.check("c1", 1, email="ada@x.com", spend="20.00")
    toast.load()
    run(warehouse, program, 1)
    member = pass_of(warehouse, "c1")["external_id"]
    assert pass_of(warehouse, "c1")["points"] == 25          # bonus 5 + earn 20

    toast.check("c2", 2, email="ada@x.com", spend="10.00")
    toast.load()
    redeem(warehouse, "burn-1", member, "30", 2)
    run(warehouse, program, 2)
    assert pass_of(warehouse, "c1")["points"] == 5           # earn before redemption: 35 - 30

    toast.refund("c1", "20.00", 3, refunded_on=3)
    toast.load()
    run(warehouse, program, 3)
    assert pass_of(warehouse, "c1")["points"] == 0           # 5 - 20 stops at 0

    toast.check("c3", 4, email="ada@x.com", spend="7.00")
    toast.load()
    run(warehouse, program, 4)
    assert pass_of(warehouse, "c1")["points"] == 7           # no debt carried
    assert ledger(warehouse) == [
        ("bonus", day(1), Decimal(5)), ("earn", day(1), Decimal(20)),
        ("earn", day(2), Decimal(10)), ("redemption", day(2), Decimal(-30)),
        ("reversal", day(3), Decimal(-20)), ("earn", day(4), Decimal(7)),
    ]


def test_redemption_dated_by_local_time_and_reversal_after_it(warehouse, toast):
    toast.check("c1", 1, email="ada@x.com", spend="10.00")
    toast.load()
    run(warehouse, make_program(), 1)
    member = pass_of(warehouse, "c1")["external_id"]
    toast.refund("c1", "4.00", 2, refunded_on=2)
    toast.load()
    redeem(warehouse, "burn-1", member, "8", 2, hour=23)      # 04:00 UTC on day 3
    run(warehouse, make_program(), 2)
    # within day 2, redemption (8) before reversal (4) would clamp; both apply: 10-8 -> 2-4 -> 0
    assert pass_of(warehouse, "c1")["points"] == 0
    assert ("redemption", day(2), Decimal(-8)) in ledger(warehouse)


def test_rerunning_a_day_or_an_earlier_day_changes_nothing(warehouse, toast):
    program = make_program(enrolment={"welcome_bonus_points": 3})
    for n in (1, 2, 3):
        toast.check(f"c{n}", n, email="ada@x.com", spend=f"{n}0.00")
        toast.load()
        run(warehouse, program, n)
    before = (ledger(warehouse), warehouse.query("SELECT * FROM pass_states"))
    again = run(warehouse, program, 3)
    earlier = run(warehouse, program, 1)
    full = run(warehouse, program, 3, full_recompute=True)
    assert (again.mode, again.points_issued, again.members_to_enrol) == ("incremental", 0, 0)
    assert earlier.as_of == day(3)
    assert (full.mode, full.points_issued, full.members_to_enrol) == ("full", 0, 0)
    assert (ledger(warehouse), warehouse.query("SELECT * FROM pass_states")) == before
    assert pass_of(warehouse, "c1")["points"] == 63


def test_a_reloaded_partition_recomputes_everything_without_duplicates(warehouse, toast):
    program = make_program()
    toast.check("c1", 1, email="ada@x.com", spend="10.00")
    toast.load()
    run(warehouse, program, 1)
    toast.check("c2", 2, email="ada@x.com", spend="5.00")
    toast.load()
    run(warehouse, program, 2)
    toast.partitions.add(("L1", day(1)))  # day 1 staged again (same rows, newer load)
    toast.load()
    toast.check("c3", 3, email="ada@x.com", spend="1.00")
    toast.load()
    summary = run(warehouse, program, 3)
    assert summary.mode == "full"
    assert pass_of(warehouse, "c1")["points"] == 16
    assert [k for k, _, _ in ledger(warehouse)] == ["earn", "earn", "earn"]


def test_summary_counts_what_the_run_did(warehouse, toast):
    program = make_program(enrolment={"welcome_bonus_points": 10},
                           tiers={"levels": [{"id": "base", "min_spend": 0},
                                             {"id": "gold", "min_spend": 50}]})
    toast.check("c1", 1, email="ada@x.com", spend="60.00")
    toast.check("c2", 1, email="bob@x.com", spend="5.00")
    toast.check("c3", 1, name="No Identity", spend="5.00")
    toast.load()
    summary = run(warehouse, program, 1)
    assert (summary.guests, summary.members, summary.members_to_enrol) == (2, 2, 2)
    assert summary.points_issued == 60 + 5 + 2 * 10
    assert summary.tier_counts == {"base": 1, "gold": 1}
    assert (summary.checks, summary.partitions) == (3, 1)
    assert "ada" not in repr(summary.as_dict())
