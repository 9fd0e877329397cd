"""Eligible spend per check and guest identity as staged, on both engines."""

from decimal import Decimal

from tests.loyalty.loyalty_builders import Line, make_program, pass_of, run, spend_of


def test_eligible_spend_counts_only_counting_lines(warehouse, toast):
    program = make_program(earn={"exclude_menu_items": ["Gift Card", " Merch Tee "],
                                 "exclude_sales_categories": ["alcohol"]})
    toast.check("c1", 1, email="ada@x.com", tip="5.00", tax="2.10", lines=(
        Line("Dry Ribs", "18.95"),
        Line("Strawberry Kiwi Tea", "2.90", sales_category="NA Beverage"),
        Line("Dry Ribs", "18.95", voided=True),            # void line
        Line("Gift Card", "65.00", deferred=True),         # gift card, deferred
        Line("GIFT CARD ", "10.00"),                       # excluded item, any case
        Line("merch tee", "20.00"),                        # excluded item, trimmed
        Line("IPA", "7.00", sales_category=" Alcohol"),    # excluded category
        Line("Fries", "-1.50"),                            # a negative line counts
    ))
    toast.load()
    run(warehouse, program, 1)
    check = spend_of(warehouse, "c1")
    assert check["eligible_spend"] == Decimal("20.35")  # 18.95 + 2.90 - 1.50; no tax or tip
    assert check["qualifying"] is True
    assert pass_of(warehouse, "c1")["points"] == 20


def test_a_voided_order_voids_its_check(warehouse, toast):
    toast.check("c1", 1, email="ada@x.com", spend="30.00", voided=True)
    toast.check("c2", 1, email="ada@x.com", lines=(Line("Ribs", "9.00", voided=True),))
    toast.load()
    run(warehouse, make_program(), 1)
    assert spend_of(warehouse, "c1")["voided"] is True
    assert spend_of(warehouse, "c1")["eligible_spend"] == 0
    assert spend_of(warehouse, "c1")["qualifying"] is False
    assert spend_of(warehouse, "c2")["qualifying"] is False  # nothing counts
    assert warehouse.query("SELECT * FROM pass_states") == []  # no qualifying check


def test_identity_falls_back_to_the_payment_contact(warehouse, toast):
    toast.check("c1", 1, name="Ada King Lovelace", spend="10.00",
                payment_email=" ADA@X.COM", payment_phone="202-555-0143")
    toast.check("c2", 1, email="bob@x.com", phone="12345", spend="10.00",
                payment_phone="202-555-0199")  # the check's own (invalid) phone wins
    toast.load()
    run(warehouse, make_program(), 1)
    ada = pass_of(warehouse, "c1")
    assert (ada["email"], ada["phone"]) == ("ada@x.com", "+12025550143")
    assert (ada["forename"], ada["surname"]) == ("Ada", "King Lovelace")
    bob = pass_of(warehouse, "c2")
    assert (bob["email"], bob["phone"], bob["forename"]) == ("bob@x.com", None, None)


def test_a_check_without_identity_earns_nothing(warehouse, toast):
    toast.check("c1", 1, name="Walk In", spend="50.00")
    toast.load()
    summary = run(warehouse, make_program(), 1)
    assert spend_of(warehouse, "c1")["guest_id"] is None
    assert warehouse.query("SELECT * FROM loyalty_ledger") == []
    assert (summary.guests, summary.members) == (0, 0)


def test_points_round_down_at_the_program_rate(warehouse, toast):
    toast.check("c1", 1, email="ada@x.com", spend="19.99")
    toast.load()
    run(warehouse, make_program(earn={"points_per_currency_unit": 1.5}), 1)
    assert pass_of(warehouse, "c1")["points"] == 29  # floor(29.985)


def test_guest_spend_aggregates(warehouse, toast):
    program = make_program(tiers={"window_days": 30})
    toast.check("c1", 1, email="ada@x.com", spend="10.00")
    toast.check("c2", 20, email="ada@x.com", spend="20.00")
    toast.check("c3", 40, email="ada@x.com", spend="5.00", voided=True)
    toast.check("c4", 40, email="ada@x.com", spend="30.00")
    toast.refund("c4", "12.00", 41, refunded_on=41)
    toast.load()
    run(warehouse, program, 45)
    (row,) = warehouse.query("SELECT * FROM guest_spend")
    assert (row["checks"], row["visits"]) == (4, 3)
    assert (row["lifetime_spend"], row["lifetime_refunded"], row["lifetime_net_spend"]) == (
        Decimal("60.00"), Decimal("12.00"), Decimal("48.00"))
    assert row["window_net_spend"] == Decimal("38.00")  # days 16..45: 20 + (30 - 12)
    assert (row["first_visit_on"].day, row["last_visit_on"].day) == (1, 9)  # Jan 1, Feb 9
    assert row["points"] == Decimal("48.00")
