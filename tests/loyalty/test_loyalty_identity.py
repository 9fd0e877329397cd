"""Identity rules without a warehouse: normalisation, transitive guests, enrolment, merges."""

from datetime import date, timedelta

from toast_passkit.loyalty.identity import (
    CheckIdentity,
    IdentityPass,
    make_external_id,
    normalise_email,
    normalise_phone,
)

D1 = date(2025, 1, 1)


def check(check_id, on=1, email=None, phone=None, customer=None, qualifying=True):
    return CheckIdentity("L1", check_id, D1 + timedelta(days=on - 1), email, phone, customer,
                         qualifying)


def run_pass(checks, min_visits=1, program_id="prog"):
    """Feed the checks day by day; the result, and per check id (guest, covered by, since)."""
    identity = IdentityPass(program_id, min_visits, {}, {})
    fed = sorted(checks, key=lambda c: c.business_date)
    for day in sorted({c.business_date for c in fed}):
        identity.add_day(day, [c for c in fed if c.business_date == day])
    result = identity.result(D1 + timedelta(days=365))
    per_check = {c.check_id: (g, by, on) for c, g, by, on in zip(
        fed, result.check_guests, result.covered_by, result.covered_on, strict=True)}
    return result, per_check


def guests_of(per_check):
    groups = {}
    for check_id, (guest_id, _, _) in per_check.items():
        groups.setdefault(guest_id, set()).add(check_id)
    return sorted(sorted(g) for g in groups.values())


def test_phones_become_e164_with_the_default_region():
    assert normalise_phone("(202) 555-0143", "US") == "+12025550143"
    assert normalise_phone("+44 20 7946 0958", "US") == "+442079460958"
    assert normalise_phone("020 7946 0958", "GB") == "+442079460958"
    assert normalise_phone("555-0143", "US") is None  # too short to be valid
    assert normalise_phone("not a phone", "US") is None
    assert normalise_phone("  ", "US") is None


def test_emails_are_trimmed_and_lower_cased():
    assert normalise_email("  Ada@Example.COM ") == "ada@example.com"
    assert normalise_email("   ") is None


def test_checks_join_transitively_over_any_shared_identifier():
    _, per_check = run_pass([
        check("a", email="ada@x.com"),
        check("b", phone="+12025550143", customer="c-1"),
        check("c", email="ada@x.com", phone="+12025550143"),  # joins a and b
        check("d", customer="c-2"),
        check("e"),  # no identity: no guest
    ])
    assert guests_of(per_check) == [["a", "b", "c"], ["d"], ["e"]]
    assert per_check["e"][0] is None


def test_enrolment_waits_for_visits_and_a_contact():
    result, _ = run_pass([
        check("a", 1, customer="c-1"),
        check("b", 2, customer="c-1"),  # 2 visits but no e-mail or phone
        check("c", 3, customer="c-1", email="ada@x.com", qualifying=False),  # contact arrives
        check("z", 1, email="zed@x.com"),  # one visit only
    ], min_visits=2)
    assert [(m.enrolled_on, m.anchor_check_id) for m in result.members] == [
        (D1 + timedelta(days=2), "a")]


def test_external_id_is_a_keyed_hash_of_the_earliest_check():
    result, _ = run_pass([check("b", 2, email="ada@x.com"), check("a", 2, email="ada@x.com")])
    (member,) = result.members
    assert member.external_id == make_external_id("prog", "L1", "a")
    assert "ada" not in member.external_id and len(member.external_id) == 24
    assert make_external_id("other-program", "L1", "a") != member.external_id


def test_the_order_of_checks_within_a_day_does_not_matter():
    checks = [check("a", 1, email="x@x.com"), check("b", 1, phone="+12025550143"),
              check("c", 1, email="x@x.com", phone="+12025550143"), check("d", 2, email="x@x.com")]
    (first, first_checks), (second, second_checks) = (
        run_pass(checks), run_pass(list(reversed(checks))))
    assert first_checks == second_checks
    assert [m.external_id for m in first.members] == [m.external_id for m in second.members]


def test_joining_two_members_keeps_the_first_enrolled():
    result, per_check = run_pass([
        check("a", 1, email="ada@x.com"),
        check("b", 3, phone="+12025550143"),
        check("c", 5, email="ada@x.com", phone="+12025550143"),
    ])
    members = {m.anchor_check_id: m for m in result.members}
    assert members["a"].merged_into is None
    assert members["b"].merged_into == members["a"].external_id
    assert members["b"].merged_on == D1 + timedelta(days=4)
    assert members["a"].guest_id == members["b"].guest_id
    covered = {c: by for c, (_, by, _) in per_check.items()}
    # each check stays with the member that first held it; the joining check goes to 'a'
    assert covered == {"a": members["a"].external_id, "b": members["b"].external_id,
                       "c": members["a"].external_id}


def test_checks_before_enrolment_are_covered_on_the_enrolment_day():
    result, per_check = run_pass([check("a", 1, customer="c-1"),
                                  check("b", 4, customer="c-1", email="ada@x.com")],
                                 min_visits=2)
    covered = {c: (by, on) for c, (_, by, on) in per_check.items()}
    (member,) = result.members
    assert covered["a"] == (member.external_id, D1 + timedelta(days=3))
    assert covered["b"] == (member.external_id, D1 + timedelta(days=3))
