"""Planning re-engagement actions on DuckDB and PostgreSQL: arms, channels, once per absence,
the audience and its CSV export."""

from __future__ import annotations

import csv
import logging
import stat
from typing import Any

from tests.reengagement.reengagement_builders import (
    activity,
    at,
    day,
    insert_rows,
    member_pass,
    reengagement,
)
from toast_passkit.reengagement import (
    assign_arm,
    export_audience,
    plan_reengagement,
)
from toast_passkit.reengagement.plan import winback_coupon_external_id
from toast_passkit.reengagement.settings import ReengagementSettings
from toast_passkit.warehouse import Warehouse

NO_CONTROL = ReengagementSettings(control_share=0.0)


def actions(warehouse: Warehouse) -> list[dict[str, Any]]:
    return warehouse.query(
        "SELECT * FROM reengagement_actions ORDER BY external_id, absence_key, channel")


def channels(warehouse: Warehouse) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in actions(warehouse):
        out.setdefault(row["external_id"], []).append(row["channel"])
    return out


# --- control group (pure) ----------------------------------------------------------------


def test_control_assignment_is_stable_and_close_to_the_share() -> None:
    absences = [(f"member-{n:05d}", f"lapsed|2025-01-{n % 28 + 1:02d}") for n in range(20000)]
    arms = [assign_arm(m, a, control_share=0.1, salt="v1") for m, a in absences]
    assert arms == [assign_arm(m, a, control_share=0.1, salt="v1") for m, a in absences]
    assert abs(arms.count("control") / len(arms) - 0.1) < 0.01
    # Another salt is another draw of the same size; a share of 0 holds nobody out.
    other = [assign_arm(m, a, control_share=0.1, salt="v2") for m, a in absences]
    assert other != arms
    assert abs(other.count("control") / len(other) - 0.1) < 0.01
    assert {assign_arm(m, a, control_share=0.0, salt="v1") for m, a in absences} == {"treated"}
    # A larger share keeps every control member in control (the draw is nested).
    wider = [assign_arm(m, a, control_share=0.2, salt="v1") for m, a in absences]
    assert all(w == "control" for w, a in zip(wider, arms, strict=True) if a == "control")


# --- planning ----------------------------------------------------------------------------


def test_each_absence_is_planned_once(warehouse: Warehouse) -> None:
    insert_rows(warehouse, "pass_states", [member_pass("M1"), member_pass("M2")])
    insert_rows(warehouse, "reengagements", [
        reengagement("M1", "lapsed|2025-01-01", day(10)),
        reengagement("M2", "lapsed|2025-01-03", day(12))])

    assert plan_reengagement(warehouse, NO_CONTROL, day(10)).absences == 1   # M2 not due
    assert channels(warehouse) == {"M1": ["pass_message"]}
    assert plan_reengagement(warehouse, NO_CONTROL, day(12)).absences == 1
    before = actions(warehouse)
    assert plan_reengagement(warehouse, NO_CONTROL, day(12)).absences == 0   # rerun
    with_coupon = ReengagementSettings(control_share=0.0, channels=("pass_message", "coupon"),
                                       winback_campaign_id="camp", winback_offer_id="offer")
    assert plan_reengagement(warehouse, with_coupon, day(20)).absences == 0  # settings changed
    assert actions(warehouse) == before

    insert_rows(warehouse, "reengagements", [reengagement("M1", "lapsed|2025-01-30", day(60))])
    summary = plan_reengagement(warehouse, with_coupon, day(60))             # a new absence
    assert (summary.absences, summary.actions) == (1, {"coupon": 1, "pass_message": 1})
    new = [r for r in actions(warehouse) if r["absence_key"] == "lapsed|2025-01-30"]
    assert [(r["channel"], r["message"], r["coupon_external_id"], r["passkit_campaign_id"],
             r["passkit_offer_id"], r["due_on"]) for r in new] == [
        ("coupon", None, winback_coupon_external_id("M1", "lapsed|2025-01-30"), "camp",
         "offer", day(60)),
        ("pass_message", "We miss you! Come back for a treat.", None, None, None, day(60))]


def test_arms_follow_the_hash_and_control_members_get_nothing(warehouse: Warehouse) -> None:
    members = [f"M{n:02d}" for n in range(40)]
    insert_rows(warehouse, "pass_states", [member_pass(m, email=f"{m}@example.com")
                                           for m in members])
    insert_rows(warehouse, "reengagements", [
        reengagement(m, f"{'uninstalled' if n % 2 else 'lapsed'}|{n}", day(5),
                     reason="uninstalled" if n % 2 else "lapsed")
        for n, m in enumerate(members)])
    settings = ReengagementSettings(control_share=0.5, control_salt="test")
    summary = plan_reengagement(warehouse, settings, day(5))

    expected = {m: assign_arm(m, f"{'uninstalled' if n % 2 else 'lapsed'}|{n}",
                              control_share=0.5, salt="test") for n, m in enumerate(members)}
    assert 0 < summary.control < 40
    assert (summary.treated, summary.control) == (
        list(expected.values()).count("treated"), list(expected.values()).count("control"))
    audience = {r["external_id"] for r in warehouse.query(
        "SELECT external_id FROM reengagement_audience")}
    for row in actions(warehouse):
        member = row["external_id"]
        assert row["arm"] == expected[member]
        if row["arm"] == "control":
            assert row["channel"] == "control"
            assert member not in audience
        elif row["reason"] == "uninstalled":
            assert row["channel"] == "audience"
            assert member in audience
        else:
            assert row["channel"] == "pass_message"


def test_passes_that_cannot_be_notified_go_to_the_audience_and_its_csv(
        warehouse: Warehouse, tmp_path, caplog) -> None:
    insert_rows(warehouse, "pass_states", [
        member_pass("M1", email="ada@example.com", phone="+12125550101", forename="Ada"),
        member_pass("M2", email="bo@example.com", forename="Bo"),
        member_pass("M3", email="cy@example.com"),
        member_pass("M4", status="revoked", phone="+12125550104", forename="Di")])
    insert_rows(warehouse, "pass_activity", [
        activity("M1", "uninstalled", at(3)), activity("M2", "uninstalled", at(2)),
        activity("M3", "installed", at(1))])
    insert_rows(warehouse, "reengagements", [
        reengagement("M1", "uninstalled|1735905600", day(3), reason="uninstalled"),
        reengagement("M1", "lapsed|2024-12-01", day(2)),   # due at once: one CSV row
        reengagement("M2", "lapsed|2025-01-01", day(4)),   # lapsed and uninstalled since
        reengagement("M3", "lapsed|2025-01-02", day(4)),
        reengagement("M4", "lapsed|2025-01-02", day(4))])  # revoked since
    with caplog.at_level(logging.DEBUG):
        summary = plan_reengagement(warehouse, NO_CONTROL, day(4))
        export = export_audience(warehouse, day(4), tmp_path / "exports")
    assert (summary.audience, summary.actions) == (4, {"audience": 4, "pass_message": 1})
    assert channels(warehouse) == {"M1": ["audience", "audience"], "M2": ["audience"],
                                   "M3": ["pass_message"], "M4": ["audience"]}
    for secret in ("ada@example.com", "+12125550101", "Ada", "bo@example.com"):
        assert secret not in caplog.text

    assert export.path == tmp_path / "exports" / "reengagement_audience_2025-01-04.csv"
    assert stat.S_IMODE(export.path.stat().st_mode) == 0o600
    with export.path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [
        {"external_id": "M1", "absence_key": "uninstalled|1735905600", "reason": "uninstalled",
         "due_on": "2025-01-03", "email": "ada@example.com", "phone": "+12125550101",
         "forename": "Ada"},
        {"external_id": "M2", "absence_key": "lapsed|2025-01-01", "reason": "lapsed",
         "due_on": "2025-01-04", "email": "bo@example.com", "phone": "", "forename": "Bo"},
        {"external_id": "M4", "absence_key": "lapsed|2025-01-02", "reason": "lapsed",
         "due_on": "2025-01-04", "email": "", "phone": "+12125550104", "forename": "Di"}]

    # A rerun plans nothing and writes the same file; another day's file is empty.
    content = export.path.read_text()
    assert plan_reengagement(warehouse, NO_CONTROL, day(4)).absences == 0
    assert export_audience(warehouse, day(4), tmp_path / "exports").path.read_text() == content
    assert export_audience(warehouse, day(5), tmp_path / "exports").rows == 0
