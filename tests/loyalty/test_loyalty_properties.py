"""Property-based: random check streams keep the ledger rules, whatever the order of arrival.

Bounded for CI: 8 examples of up to 10 checks over 5 days, no shrinking (a failure reports
the example as generated); the two warehouses are emptied, not re-created, per example.
"""

import math
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.loyalty.loyalty_builders import Toast, empty_warehouse, make_program, run, snapshot

DAYS = 5
EMAILS = [None, "a@x.com", "b@x.com"]
PHONES = [None, "202-555-0101", "202-555-0102"]
CUSTOMERS = [None, "c-1", "c-2"]

checks = st.fixed_dictionaries({
    "on": st.integers(1, DAYS),
    "email": st.sampled_from(EMAILS),
    "phone": st.sampled_from(PHONES),
    "customer_id": st.sampled_from(CUSTOMERS),
    "spend": st.sampled_from(["0.00", "0.50", "4.99", "10.00", "25.50"]),
    "voided": st.sampled_from([False, False, False, True]),
    # (amount, days until exported, days its Refund Date lies before that, Payment Id):
    # a Payment Id exported twice is a refund whose amount changed (the latest export wins)
    "refunds": st.lists(st.tuples(st.sampled_from(["2.00", "9.99", "30.00"]),
                                  st.integers(0, 2), st.integers(0, 1), st.integers(0, 1)),
                        max_size=2),
})
programs = st.fixed_dictionaries({
    "min_visits": st.sampled_from([1, 2]),
    "bonus": st.sampled_from([0, 5]),
    "rate": st.sampled_from([1, 1.5]),
    "expire": st.sampled_from([None, 2]),
    # a short tier window and revocation: checks leave the window, passes are revoked and
    # reinstated within the stream's days (day-by-day runs replay guests from checkpoints)
    "window": st.sampled_from([2, 365]),
    "revoke": st.sampled_from([None, 3]),
})


def program_of(p):
    return make_program(
        earn={"points_per_currency_unit": p["rate"]},
        enrolment={"min_qualifying_visits": p["min_visits"], "welcome_bonus_points": p["bonus"]},
        tiers={"window_days": p["window"],
               "levels": [{"id": "base", "min_spend": 0}, {"id": "silver", "min_spend": 20}]},
        inactivity={"expire_points_after_days": p["expire"], "reengage_after_days": 2,
                    "revoke_pass_after_days": p["revoke"]})


def stage(toast, stream, days):
    for index, c in stream:
        if c["on"] not in days:
            continue
        check_id = f"k{index}"
        toast.check(check_id, c["on"], email=c["email"], phone=c["phone"],
                    customer_id=c["customer_id"], spend=c["spend"], voided=c["voided"])
    for index, c in stream:
        for amount, delay, backdate, payment in c["refunds"]:
            exported_on = min(c["on"] + delay, DAYS)
            if exported_on in days:
                toast.refund(f"k{index}", amount, exported_on,
                             refunded_on=max(c["on"], exported_on - backdate),
                             payment_id=f"p-k{index}-{payment}")


def expected_totals(stream, rate):
    earned = reversed_ = Decimal(0)
    for _, c in stream:
        spend = Decimal(c["spend"])
        if c["voided"] or spend <= 0 or not (c["email"] or c["phone"] or c["customer_id"]):
            continue
        points = math.floor(spend * Decimal(str(rate)))
        latest = {}  # per Payment Id, its latest export (the later one within an export day)
        for number, (amount, delay, _, payment) in enumerate(c["refunds"]):
            exported_on = min(c["on"] + delay, DAYS)
            if payment not in latest or (exported_on, number) > latest[payment][0]:
                latest[payment] = ((exported_on, number), Decimal(amount))
        refunded = sum((amount for _, amount in latest.values()), Decimal(0))
        earned += points
        reversed_ += min(math.floor(refunded * Decimal(str(rate))), points)
    return earned, reversed_


@pytest.fixture
def two_warehouses(fresh_warehouse):
    """Two migrated warehouses shared by the test's examples (each example empties them)."""
    return fresh_warehouse(), fresh_warehouse()


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stream=st.lists(checks, min_size=1, max_size=10), p=programs, order=st.randoms())
def test_random_check_streams(two_warehouses, stream, p, order):
    program = program_of(p)
    stream = list(enumerate(stream))
    daily, at_once = two_warehouses
    for warehouse in two_warehouses:
        empty_warehouse(warehouse)

    toast = Toast(daily)
    for n in range(1, DAYS + 1):
        stage(toast, stream, {n})
        toast.load()
        run(daily, program, n)

    toast = Toast(at_once)
    shuffled = list(stream)
    order.shuffle(shuffled)                       # arrival order within the exports
    stage(toast, shuffled, set(range(1, DAYS + 1)))
    toast.load()
    run(at_once, program, DAYS, keep_work=True)  # its scratch balances are checked below

    assert snapshot(daily) == snapshot(at_once)

    totals = {r["kind"]: Decimal(r["total"]) for r in daily.query(
        "SELECT kind, SUM(points) AS total FROM loyalty_ledger GROUP BY kind")}
    earned, reversed_ = expected_totals(stream, p["rate"])
    assert totals.get("earn", Decimal(0)) == earned
    assert -totals.get("reversal", Decimal(0)) == reversed_
    for warehouse in (daily, at_once):
        assert warehouse.scalar("SELECT COUNT(*) FROM pass_states WHERE points < 0") == 0
        assert warehouse.scalar("SELECT COUNT(*) FROM guest_spend WHERE points < 0") == 0
    assert at_once.scalar(
        "SELECT COUNT(*) FROM loyalty_work_balances WHERE balance_after < 0") == 0
