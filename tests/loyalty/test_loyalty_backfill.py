"""History loaded day by day or all at once gives the same ledger and states; reruns add nothing.

The scenario's day-by-day and at-once loads are computed once per engine for the module
(`daily`, `backfilled`); tests compare with their snapshots, taken when they were loaded.
"""

import pytest

from tests.loyalty.loyalty_builders import Toast, make_program, redeem, run, snapshot
from tests.loyalty.loyalty_builders import day as day_of
from toast_passkit.loyalty.identity import make_external_id

PROGRAM = make_program(
    enrolment={"welcome_bonus_points": 5},
    tiers={"window_days": 10, "levels": [{"id": "base", "min_spend": 0},
                                         {"id": "silver", "min_spend": 50}]},
    rewards=[{"id": "feast", "menu_items": ["Family Feast"], "passkit_campaign_id": "c",
              "passkit_offer_id": "o"}],
    inactivity={"reengage_after_days": 5, "expire_points_after_days": 6,
                "revoke_pass_after_days": 9},
    revoke={"when_all_spend_refunded": True},
)
LAST_DAY = 12
ADA = make_external_id("prog-test", "L1", "a1")


def stage_day(toast: Toast, n: int) -> None:
    """The scenario's exports of business day n."""
    if n == 1:
        toast.check("a1", 1, email="ada@x.com", name="Ada Lovelace", spend="20.00")
        toast.check("b1", 1, phone="202-555-0101", lines=(("Family Feast", "30.00"),),
                    location="L2")
        toast.check("n1", 1, spend="12.00")
    elif n == 2:
        toast.check("c1", 2, customer_id="cy", spend="15.00")
        toast.check("a2", 2, payment_email="Ada@X.com", spend="10.00", location="L2")
    elif n == 3:
        toast.check("b2", 3, phone="202-555-0101", spend="40.00", voided=True, location="L2")
        toast.refund("a1", "5.00", 3, refunded_on=3)
    elif n == 4:
        toast.check("c2", 4, customer_id="cy", email="cy@x.com",
                    lines=(("Family Feast", "20.00"),))
    elif n == 5:
        toast.check("d1", 5, email="dee@x.com", phone="202-555-0102", spend="25.00")
        toast.check("e1", 5, phone="202-555-0103", spend="30.00")
    elif n == 6:
        toast.check("j1", 6, email="dee@x.com", phone="202-555-0103", spend="5.00")
    elif n == 7:
        toast.refund("b1", "30.00", 7, refunded_on=7, location="L2")
    elif n == 9:
        toast.check("c3", 9, customer_id="cy", spend="9.99")
    elif n == 12:
        toast.check("a3", 12, email="ada@x.com", spend="60.00")


def redemptions_of_day(warehouse, n: int) -> None:
    if n == 4:
        redeem(warehouse, "burn-ada", ADA, "10", 4)


def load_day_by_day(warehouse) -> None:
    toast = Toast(warehouse)
    replayed = 0
    for n in range(1, LAST_DAY + 1):
        stage_day(toast, n)
        toast.load()
        redemptions_of_day(warehouse, n)
        summary = run(warehouse, PROGRAM, n)
        assert summary.mode == ("full" if n == 1 else "incremental")
        replayed += summary.guests_from_checkpoint
    assert replayed > 0  # the daily runs replay guests from their checkpoints


def load_all_at_once(warehouse) -> None:
    toast = Toast(warehouse)
    for n in range(1, LAST_DAY + 1):
        stage_day(toast, n)
        redemptions_of_day(warehouse, n)
    toast.load()
    run(warehouse, PROGRAM, LAST_DAY)


@pytest.fixture(scope="module")
def daily(warehouse_pool):
    """The scenario loaded and run day by day, and its snapshot right after."""
    warehouse = warehouse_pool.take()
    load_day_by_day(warehouse)
    return warehouse, snapshot(warehouse)


@pytest.fixture(scope="module")
def backfilled(warehouse_pool):
    """Snapshot of the scenario loaded all at once and run once, for its last day."""
    warehouse = warehouse_pool.take()
    load_all_at_once(warehouse)
    return snapshot(warehouse)


def test_day_by_day_equals_all_at_once(daily, backfilled):
    _, by_day = daily
    for table in by_day:
        assert by_day[table] == backfilled[table], table
    states = {r[0]: r for r in by_day["pass_states"]}
    assert states[ADA][7:10] == (60, "active", None)                    # reinstated, expired
    statuses = sorted((r[8], r[9]) for r in by_day["pass_states"])
    assert statuses == [("active", None), ("active", None), ("active", None),
                        ("revoked", "merged"), ("revoked", "refunded")]


def test_rerunning_a_day_or_the_whole_history_changes_nothing(daily):
    warehouse, before = daily
    # A run for a day before the latest one computed runs as of that latest day, so the
    # first day, a day in the middle and the latest day cover every rerun of a past day.
    for n in (1, LAST_DAY // 2, LAST_DAY):
        summary = run(warehouse, PROGRAM, n)
        assert (summary.points_issued, summary.members_to_enrol, summary.coupons) == (0, 0, 0)
        assert summary.as_of == day_of(LAST_DAY)
    assert snapshot(warehouse) == before
    run(warehouse, PROGRAM, LAST_DAY, full_recompute=True)
    assert snapshot(warehouse) == before


def test_a_late_partition_recomputes_to_the_same_result(warehouse, backfilled):
    toast = Toast(warehouse)
    for n in range(1, LAST_DAY + 1):
        stage_day(toast, n)
        if n == 2:  # day 2's exports of L2 arrive only after day 3 ran
            late = {k: [r for r in v if r["location_id"] == "L2"] for k, v in
                    toast.pending.items()}
            toast.pending = type(toast.pending)(
                list, {k: [r for r in v if r["location_id"] != "L2"] for k, v in
                       toast.pending.items()})
            toast.partitions.discard(("L2", day_of(2)))
        toast.load()
        redemptions_of_day(warehouse, n)
        summary = run(warehouse, PROGRAM, n)
        if n == 3:
            toast.pending.update(late)
            toast.partitions.add(("L2", day_of(2)))
            toast.load()
        if n == 4:
            assert summary.mode == "full"
    assert snapshot(warehouse) == backfilled
