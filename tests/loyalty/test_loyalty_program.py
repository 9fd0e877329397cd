"""The program file: defaults, the shipped example, and a message naming the key on bad input."""

from decimal import Decimal
from pathlib import Path

import pytest

from toast_passkit.loyalty.program import ProgramError, load_program, parse_program

EXAMPLE = Path(__file__).resolve().parents[2] / "include" / "program.example.yaml"


def test_empty_file_takes_every_default():
    program = parse_program("")
    assert program.earn.points_per_currency_unit == Decimal(1)
    assert program.earn.exclude_menu_items == ["Gift Card"]
    assert program.enrolment.min_qualifying_visits == 1
    assert [level.id for level in program.tiers.levels] == ["base"]
    assert program.tiers.window_days == 365
    assert program.inactivity.reengage_after_days == 60
    assert program.inactivity.expire_points_after_days is None
    assert program.revoke.mode == "expire"


def test_the_example_is_complete():
    program = load_program(EXAMPLE)
    assert [(t.id, t.min_spend) for t in program.tiers.levels] == [
        ("base", 0), ("silver", 250), ("gold", 1000)]
    assert program.rewards[0].menu_items == ["Family Feast"]
    assert program.inactivity.expire_points_after_days == 365


def test_amounts_are_exact_decimals():
    program = parse_program("earn: {points_per_currency_unit: 0.1}\n"
                            "tiers: {levels: [{id: a, min_spend: 0}, {id: b, min_spend: 99.99}]}")
    assert program.earn.points_per_currency_unit == Decimal("0.1")
    assert program.tiers.levels[1].min_spend == Decimal("99.99")


@pytest.mark.parametrize(("text", "named"), [
    ("earn: {bogus: 1}", "earn.bogus: unknown key"),
    ("bogus_section: {}", "bogus_section: unknown key"),
    ("enrolment: {min_qualifying_visits: '2'}", "enrolment.min_qualifying_visits"),
    ("inactivity: {reengage_after_days: 1.5}", "inactivity.reengage_after_days"),
    ("revoke: {when_all_spend_refunded: 'yes'}", "revoke.when_all_spend_refunded"),
    ("revoke: {mode: archive}", "revoke.mode"),
    ("tiers: {levels: [{id: a, min_spend: 5}]}", "tiers.levels: the first tier ('a') must"),
    ("tiers: {levels: [{id: a, min_spend: 0}, {id: b, min_spend: 50}, {id: c, min_spend: 20}]}",
     "tiers.levels: tiers must ascend: 'c'"),
    ("tiers: {levels: [{id: a, min_spend: 0}, {id: b, min_spend: abc}]}",
     "tiers.levels.1.min_spend"),
    ("tiers: {window_days: 0}", "tiers.window_days"),
    ("program: {timezone: Mars/Olympus}", "program.timezone: unknown time zone"),
    ("program: {default_phone_region: XX}", "program.default_phone_region"),
    ("rewards: [{id: r, menu_items: [Cake]}]", "rewards.0.passkit_campaign_id"),
    ("earn: {points_per_currency_unit: 0}", "earn.points_per_currency_unit"),
    ("tiers: {window_days: 30, window_days: 60}", "duplicate key 'window_days'"),
    ("- just\n- a list", "must be a mapping"),
])
def test_bad_program_names_the_key(text, named):
    with pytest.raises(ProgramError) as error:
        parse_program(text, "program.yaml")
    assert named in str(error.value)
    assert str(error.value).startswith("program.yaml: ")


def test_missing_file_is_a_program_error(tmp_path):
    with pytest.raises(ProgramError, match="cannot read"):
        load_program(tmp_path / "absent.yaml")
