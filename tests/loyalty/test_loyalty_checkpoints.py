"""A guest recomputed by a daily run is replayed from its checkpoint, with the same result as
a full recomputation: a check leaving the tier window, a late refund of an older check and
a later visit after the checkpoint, each with a hand-computed expectation, on both engines.
"""

from decimal import Decimal

from tests.loyalty.loyalty_builders import Toast, make_program, pass_of, run, snapshot

PROGRAM = make_program(
    enrolment={"min_qualifying_visits": 2, "welcome_bonus_points": 50},
    tiers={"window_days": 3, "levels": [{"id": "base", "min_spend": 0},
                                        {"id": "silver", "min_spend": 40}]},
)


def stage_day(toast: Toast, n: int) -> None:
    if n == 1:
        toast.check("a1", 1, email="ada@x.com", name="Ada Lovelace", spend="30.00")
    elif n == 2:
        toast.check("a2", 2, email="ada@x.com", spend="20.00")
    elif n == 3:
        toast.check("n3", 3, spend="5.00")  # someone else: day 3's export
    elif n == 4:
        toast.check("a4", 4, email="ada@x.com", name="Ada King", spend="10.00")
    elif n == 5:
        toast.refund("a2", "20.00", 5, refunded_on=5)  # a2 fully refunded, three days on


def spend_row(warehouse) -> dict:
    rows = warehouse.query("""
        SELECT s.* FROM guest_spend s JOIN loyalty_checks c ON c.guest_id = s.guest_id
        WHERE c.check_id = 'a1'
    """)
    assert len(rows) == 1
    return rows[0]


def test_daily_runs_replay_from_checkpoints_as_a_full_recomputation_would(fresh_warehouse):
    daily, at_once = fresh_warehouse(), fresh_warehouse()
    toast = Toast(daily)
    replayed = {}
    for n in range(1, 6):
        stage_day(toast, n)
        toast.load()
        summary = run(daily, PROGRAM, n)
        replayed[n] = summary.guests_from_checkpoint
        if n == 2:   # enrolled on its second visit: 30 + 20 + 50 bonus, 50 spend in the window
            ada = pass_of(daily, "a1")
            assert (ada["points"], ada["tier_id"]) == (100, "silver")
        if n == 4:   # a1 (day 1) left the window (1, 4]: 20 + 10 < 40
            ada = pass_of(daily, "a1")
            assert (ada["points"], ada["tier_id"], ada["forename"]) == (110, "base", "Ada")
            assert ada["surname"] == "King"  # the latest check's name
    assert replayed == {1: 0, 2: 1, 3: 0, 4: 1, 5: 1}  # Ada, from her latest checkpoint

    # Day 5: a2's refund reverses its 20 points; window (2, 5] holds a4 only.
    ada = pass_of(daily, "a1")
    assert (ada["points"], ada["tier_id"], ada["status"]) == (90, "base", "active")
    spend = spend_row(daily)
    assert (spend["checks"], spend["visits"]) == (3, 3)
    assert (spend["lifetime_spend"], spend["lifetime_refunded"],
            spend["lifetime_net_spend"], spend["window_net_spend"]) == (
        Decimal("60.00"), Decimal("20.00"), Decimal("40.00"), Decimal("10.00"))
    checkpoint = daily.query("""
        SELECT k.checkpoint_on, k.balance, k.last_check_id, k.qualifying_checks,
               k.refunded_checks, k.window_spend
        FROM loyalty_guest_checkpoints k JOIN loyalty_checks c ON c.guest_id = k.guest_id
        WHERE c.check_id = 'a1'
    """)
    assert [tuple(r.values())[1:] for r in checkpoint] == [
        (Decimal("90.00"), "a4", 3, 1, Decimal("10.00"))]

    toast = Toast(at_once)
    for n in range(1, 6):
        stage_day(toast, n)
    toast.load()
    assert run(at_once, PROGRAM, 5).guests_from_checkpoint == 0  # a full recomputation
    assert snapshot(daily) == snapshot(at_once)
