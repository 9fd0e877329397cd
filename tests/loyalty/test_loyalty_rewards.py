"""Item rewards: one coupon per (reward, qualifying check), to the member holding the check."""

from tests.loyalty.loyalty_builders import Line, day, make_program, pass_of, run

REWARDS = [{"id": "feast-dessert", "menu_items": ["Family Feast"],
            "passkit_campaign_id": "camp-1", "passkit_offer_id": "offer-1"},
           {"id": "ribs-drink", "menu_items": ["Dry Ribs", "Wet Ribs"],
            "passkit_campaign_id": "camp-2", "passkit_offer_id": "offer-2"}]


def coupons(warehouse):
    return warehouse.query("SELECT * FROM pass_coupons ORDER BY issued_on, check_id, reward_id")


def test_coupons_per_reward_and_check(warehouse, toast):
    program = make_program(rewards=REWARDS, enrolment={"min_qualifying_visits": 2})
    toast.check("c1", 1, email="ada@x.com", lines=(("family feast ", "40.00"),
                                                   ("Family Feast", "40.00")))
    toast.load()
    run(warehouse, program, 1)
    assert coupons(warehouse) == []                                      # not yet a member
    toast.check("c2", 3, email="ada@x.com", lines=(("Dry Ribs", "18.95"),
                                                   ("Family Feast", "40.00")))
    toast.check("c3", 3, email="ada@x.com", lines=(Line("Family Feast", "40.00", voided=True),
                                                   ("Tea", "3.00")))     # voided line
    toast.check("c4", 3, email="ada@x.com", voided=True, lines=(("Family Feast", "40.00"),))
    toast.load()
    summary = run(warehouse, program, 3)
    member = pass_of(warehouse, "c1")["external_id"]
    got = [(c["reward_id"], c["check_id"], c["issued_on"], c["external_id"])
           for c in coupons(warehouse)]
    assert got == [("feast-dessert", "c1", day(3), member),             # at enrolment
                   ("feast-dessert", "c2", day(3), member),
                   ("ribs-drink", "c2", day(3), member)]
    assert summary.coupons == 3
    ids = {c["coupon_external_id"] for c in coupons(warehouse)}
    run(warehouse, program, 3, full_recompute=True)
    assert {c["coupon_external_id"] for c in coupons(warehouse)} == ids  # never twice
    assert all(c.startswith("cpn") and len(c) == 24 for c in ids)
    assert {(c["passkit_campaign_id"], c["passkit_offer_id"]) for c in coupons(warehouse)} == {
        ("camp-1", "offer-1"), ("camp-2", "offer-2")}
