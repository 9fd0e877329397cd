"""Enrolment, tiers on the rolling window, and the desired pass state of each member."""

from tests.loyalty.loyalty_builders import day, ledger, make_program, pass_of, passes, run

TIERS = {"window_days": 30, "levels": [{"id": "base", "min_spend": 0},
                                       {"id": "silver", "min_spend": 100},
                                       {"id": "gold", "min_spend": 300}]}


def test_enrolment_after_min_visits_with_a_contact(warehouse, toast):
    program = make_program(enrolment={"min_qualifying_visits": 2, "welcome_bonus_points": 50})
    toast.check("c1", 1, customer_id="cust-7", name="Grace Hopper", spend="10.00")
    toast.check("c2", 2, customer_id="cust-7", spend="0.00")            # not qualifying
    toast.check("c3", 3, customer_id="cust-7", spend="12.00")           # 2nd visit, no contact
    toast.load()
    summary = run(warehouse, program, 3)
    assert (summary.guests, summary.members) == (1, 0)
    toast.check("c4", 4, customer_id="cust-7", phone="+44 20 7946 0958", spend="1.00",
                voided=True)                                             # contact, void check
    toast.load()
    summary = run(warehouse, program, 4)
    assert summary.members_to_enrol == 1
    member = pass_of(warehouse, "c1")
    assert member["enrolled_on"] == day(4)
    assert (member["forename"], member["surname"], member["phone"]) == (
        "Grace", "Hopper", "+442079460958")
    assert member["points"] == 50 + 10 + 12                              # earlier checks count
    assert ("bonus", day(4), 50) in [(k, d, int(p)) for k, d, p in ledger(warehouse)]
    assert member["status"] == "active" and member["tier_id"] == "base"
    assert member["as_of"] == day(4)


def test_external_id_never_changes_and_holds_no_pii(warehouse, toast):
    toast.check("c1", 1, email="ada@x.com", name="Ada Lovelace", spend="10.00")
    toast.load()
    run(warehouse, make_program(), 1)
    first = pass_of(warehouse, "c1")["external_id"]
    toast.check("c0", 2, email="ada@x.com", phone="202-555-0143", spend="10.00")
    toast.check("c9", 2, phone="202-555-0143", customer_id="x", spend="10.00")
    toast.load()
    run(warehouse, make_program(), 2)
    assert pass_of(warehouse, "c9")["external_id"] == first
    for value in ("ada", "lovelace", "555", "0143"):
        assert value not in first.lower()


def test_tiers_follow_the_rolling_window_up_and_down(warehouse, toast):
    program = make_program(tiers=TIERS)
    toast.check("c1", 1, email="ada@x.com", spend="150.00")
    toast.load()
    run(warehouse, program, 1)
    assert pass_of(warehouse, "c1")["tier_id"] == "silver"
    toast.check("c2", 10, email="ada@x.com", spend="200.00")
    toast.load()
    run(warehouse, program, 10)
    assert pass_of(warehouse, "c1")["tier_id"] == "gold"                # 350 in (day -20, 10]
    run(warehouse, program, 30)
    assert pass_of(warehouse, "c1")["tier_id"] == "gold"                # day 1 still in window
    run(warehouse, program, 31)
    assert pass_of(warehouse, "c1")["tier_id"] == "silver"              # day 1 left: 200
    run(warehouse, program, 45)
    assert pass_of(warehouse, "c1")["tier_id"] == "base"                # day 10 left on day 40
    assert pass_of(warehouse, "c1")["points"] == 350                    # points do not expire


def test_refunds_reduce_tier_spend(warehouse, toast):
    program = make_program(tiers=TIERS)
    toast.check("c1", 1, email="ada@x.com", spend="150.00")
    toast.load()
    run(warehouse, program, 1)
    toast.refund("c1", "60.00", 3)                                       # no Refund Date
    toast.load()
    run(warehouse, program, 3)
    member = pass_of(warehouse, "c1")
    assert (member["tier_id"], member["points"]) == ("base", 90)
    assert ("reversal", day(3)) in [(k, d) for k, d, _ in ledger(warehouse)]


def test_one_pass_per_guest(warehouse, toast):
    toast.check("a", 1, email="ada@x.com", spend="5.00")
    toast.check("b", 1, email="bob@x.com", spend="5.00", location="L2")
    toast.check("c", 2, email="ADA@x.com ", spend="5.00", location="L2")
    toast.load()
    run(warehouse, make_program(), 2)
    assert sorted(p["email"] for p in passes(warehouse)) == ["ada@x.com", "bob@x.com"]
