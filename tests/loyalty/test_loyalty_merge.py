"""Joined guests: the first-enrolled member carries on with the joint history, one bonus."""

from tests.loyalty.loyalty_builders import day, make_program, passes, redeem, run

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
