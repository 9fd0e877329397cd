"""Joined guests: the first-enrolled member carries on with the joint history, one bonus."""

from decimal import Decimal

from tests.loyalty.loyalty_builders import (
    Toast,
    day,
    ledger,
    load_daily_and_at_once,
    make_program,
    pass_of,
    passes,
    redeem,
    run,
    snapshot,
)

REWARD = [{"id": "feast", "menu_items": ["Family Feast"], "passkit_campaign_id": "c",
           "passkit_offer_id": "o"}]


def test_a_check_joining_two_members(warehouse, toast):
    program = make_program(enrolment={"welcome_bonus_points": 10}, rewards=REWARD,
                           tiers={"levels": [{"id": "base", "min_spend": 0},
                                             {"id": "silver", "min_spend": 60}]})
    toast.check("a1", 1, email="ada@x.com", name="Ada Lovelace", spend="30.00")
    toast.load()
    run(warehouse, program, 1)
    toast.check("b1", 3, phone="202-555-0143", name="A. Lovelace",
                lines=(("Family Feast", "25.00"),))
    toast.load()
    run(warehouse, program, 3)
    first, second = passes(warehouse)
    assert (first["points"], second["points"]) == (40, 35)
    redeem(warehouse, "burn-b", second["external_id"], "5", 3)
    run(warehouse, program, 3)

    toast.check("j1", 5, email="ada@x.com", phone="(202) 555-0143", spend="8.00")
    toast.load()
    summary = run(warehouse, program, 5)
    first, second = passes(warehouse)
    # joint history: 30 + 25 + 8 earned, one bonus (the first member's), b's redemption of 5
    assert (first["status"], first["points"], first["tier_id"]) == ("active", 68, "silver")
    assert first["guest_id"] == second["guest_id"]
    assert (second["status"], second["revoked_reason"], second["revoked_on"]) == (
        "revoked", "merged", day(5))
    assert (second["points"], second["tier_id"]) == (30, "base")         # as on day 4
    assert summary.revocations == 1 and summary.members == 2
    coupon = warehouse.query("SELECT external_id FROM pass_coupons")
    assert coupon == [{"external_id": second["external_id"]}]            # its coupon stays
    run(warehouse, program, 5, full_recompute=True)
    assert passes(warehouse) == [{**first}, {**second}]


def test_a_merge_that_fills_a_gap_in_the_visits_corrects_the_expiry_entries(
        warehouse, toast, fresh_warehouse):
    """Expiry entries are derived: the joint history replaces those written before the merge."""
    program = make_program(inactivity={"expire_points_after_days": 2})

    def stage(toast, n):
        if n == 1:
            toast.check("a1", 1, email="ada@x.com", spend="10.00")          # Ada enrols
        elif n == 2:
            toast.check("b1", 2, phone="202-555-0143", spend="4.00")        # B enrols
        elif n == 5:
            toast.check("j1", 5, email="ada@x.com", phone="202-555-0143",   # joins them,
                        spend="0.00")                                       # not a visit

    def expiries(wh):
        return [(r["entry_key"], r["entry_date"], Decimal(r["points"]), r["external_id"])
                for r in wh.query("SELECT * FROM loyalty_ledger WHERE kind = 'expiry' "
                                  "ORDER BY entry_key")]

    for n in range(1, 6):
        stage(toast, n)
        toast.load()
        run(warehouse, program, n)
        if n == 4:  # apart, each guest's points expired 2 days after its visit
            ada, b = passes(warehouse)
            assert expiries(warehouse) == [
                ("expiry|L1|a1", day(3), Decimal(-10), ada["external_id"]),
                ("expiry|L1|b1", day(4), Decimal(-4), b["external_id"])]
    # joint visits on days 1 and 2: no gap of 2 days after day 1, so Ada's day-3 expiry goes;
    # the absence after day 2 expires all 14 points on day 4, held by Ada (enrolled first)
    assert expiries(warehouse) == [("expiry|L1|b1", day(4), Decimal(-14), ada["external_id"])]
    assert ledger(warehouse) == [("earn", day(1), Decimal(10)), ("earn", day(2), Decimal(4)),
                                 ("expiry", day(4), Decimal(-14))]
    ada, b = passes(warehouse)
    assert (ada["status"], ada["points"], b["revoked_reason"]) == ("active", 0, "merged")

    at_once = fresh_warehouse()
    toast = Toast(at_once)
    for n in range(1, 6):
        stage(toast, n)
    toast.load()
    run(at_once, program, 5)
    assert snapshot(at_once) == snapshot(warehouse)
    run(warehouse, program, 5)                                              # rerun: no change
    assert snapshot(warehouse) == snapshot(at_once)


def test_a_refund_moved_after_a_merge_corrects_the_joined_members_frozen_pass(
        fresh_warehouse):
    # Bob's pass keeps his state as of the day before the merge; a later export of the same
    # Payment Id moves his refund to after the merge, so that state had no refund after all
    program = make_program(enrolment={"min_qualifying_visits": 1, "welcome_bonus_points": 0})

    def stage(toast, days):
        if 1 in days:
            toast.check("c1", 1, email="ada@x.com", spend="10.00")           # Ada enrols day 1
        if 3 in days:
            toast.check("c2", 3, phone="202-555-0101", spend="10.00")        # Bob enrols day 3
            toast.refund("c2", "9.99", 3, refunded_on=3, payment_id="p-c2")  # reverses 9
        if 4 in days:                                 # joins them: Bob's member is revoked
            toast.check("c3", 4, email="ada@x.com", phone="202-555-0101", spend="0.00")
        if 5 in days:                                 # same Payment Id, now dated day 5
            toast.refund("c2", "30.00", 5, refunded_on=5, payment_id="p-c2")

    daily, at_once = fresh_warehouse(), fresh_warehouse()
    load_daily_and_at_once(daily, at_once, program, stage, 5)

    bob = [p for p in passes(daily) if p["status"] == "revoked"]
    assert [(p["revoked_reason"], p["revoked_on"], p["points"]) for p in bob] == [
        ("merged", day(4), 10)]
    assert snapshot(daily) == snapshot(at_once)


def test_the_later_enrolled_member_of_the_older_guest_is_merged(fresh_warehouse):
    # Bob visits first (his guest's id, from the earliest check, is the one kept) but enrols
    # after Ada: a check joining them merges Bob's member into Ada's, whose guest takes his id
    program = make_program(enrolment={"min_qualifying_visits": 2, "welcome_bonus_points": 0})

    def stage(toast, days):
        if 1 in days:
            toast.check("b1", 1, phone="202-555-0101", spend="10.00")       # Bob, 1 visit
        if 2 in days:
            toast.check("a1", 2, email="ada@x.com", spend="20.00")          # Ada, 1 visit
        if 3 in days:
            toast.check("a2", 3, email="ada@x.com", spend="5.00")           # Ada enrols
        if 4 in days:
            toast.check("b2", 4, phone="202-555-0101", spend="7.00")        # Bob enrols
        if 5 in days:                                                       # joins them
            toast.check("j1", 5, email="ada@x.com", phone="202-555-0101", spend="0.00")

    daily, at_once = fresh_warehouse(), fresh_warehouse()
    load_daily_and_at_once(daily, at_once, program, stage, 5)

    ada, bob = passes(daily)                                                # by enrolment
    assert pass_of(daily, "b2") == ada
    assert (ada["status"], ada["points"], ada["enrolled_on"]) == ("active", 42, day(3))
    assert bob["enrolled_on"] == day(4) and bob["guest_id"] == ada["guest_id"]
    assert (bob["status"], bob["revoked_reason"], bob["revoked_on"], bob["points"]) == (
        "revoked", "merged", day(5), 17)                                    # as on day 4
    assert snapshot(daily) == snapshot(at_once)
