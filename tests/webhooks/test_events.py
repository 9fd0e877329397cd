"""Tests of the lenient parsing of logged PassKit deliveries into PassEvents."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from toast_passkit.webhooks.events import (
    EventParseError,
    PassEvent,
    parse_logged_event,
    parse_payload,
    parse_timestamp,
)

RECEIVED = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
PERSON = {
    "forename": "Jane",
    "surname": "Guest",
    "displayName": "Jane Guest",
    "emailAddress": "jane@example.com",
    "mobileNumber": "+15550100",
}


def logged(payload: dict[str, Any] | str, received_at: str = "2025-03-01T12:00:05Z") -> dict:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return {
        "received_at": received_at,
        "method": "PUT",
        "headers": {},
        "body": body,
        "delivery_id": hashlib.sha256(body.encode()).hexdigest(),
    }


def member_pass(**overrides: Any) -> dict[str, Any]:
    pass_obj: dict[str, Any] = {
        "id": "5u5EO18473CDVG0Vw0VgPV",
        "classId": "24hmYozRggBJTtPt0Y2e3X",
        "protocol": "MEMBERSHIP",
        "externalId": "M-000123",
        "personDetails": PERSON,
        "metadata": {
            "status": "PASS_INSTALLED",
            "lifecycleEvents": ["RENDERED", "INSTALLED_APPLE"],
            "firstInstalledAt": "2025-02-01T09:00:00Z",
            "lastInstalledAt": "2025-03-01T11:59:58.123456789Z",
            "installIpAddress": "203.0.113.9",
        },
        "recordData": {
            "members.member.externalId": "M-000123",
            "members.member.points": "100.000000",
            "members.tier.id": "gold",
        },
    }
    pass_obj.update(overrides)
    return pass_obj


def test_documented_payload_is_normalised() -> None:
    event = parse_logged_event(logged({"event": "PASS_EVENT_INSTALLED", "pass": member_pass()}))
    assert event.event_type == "PASS_EVENT_INSTALLED"
    assert event.pass_id == "5u5EO18473CDVG0Vw0VgPV"
    assert event.class_id == "24hmYozRggBJTtPt0Y2e3X"
    assert event.member_external_id == "M-000123"
    assert (event.protocol, event.protocol_raw) == ("MEMBERSHIP", "MEMBERSHIP")
    assert event.status == "PASS_INSTALLED"
    assert event.points == Decimal("100.000000")
    assert event.tier_id == "gold"
    assert event.first_installed_at == datetime(2025, 2, 1, 9, tzinfo=UTC)
    assert event.last_installed_at == datetime(2025, 3, 1, 11, 59, 58, 123456, tzinfo=UTC)
    assert event.occurred_at == event.last_installed_at
    assert event.occurred_at_source == "metadata.lastInstalledAt"
    assert event.received_at == RECEIVED
    assert event.last_uninstalled_at is None and event.invalidated_at is None
    assert event.coupon_id is None and not event.is_coupon_event
    assert event.warnings == ()


def test_numeric_enums_and_metadata_spelled_metaData() -> None:
    pass_obj = member_pass(protocol=100)
    metadata = pass_obj.pop("metadata")
    pass_obj["metaData"] = {**metadata, "status": 1, "lifecycleEvents": [1, 2]}
    event = parse_logged_event(logged({"event": 2, "pass": pass_obj}))
    assert event.event_type == "PASS_EVENT_INSTALLED"
    assert (event.protocol, event.protocol_raw) == ("MEMBERSHIP", 100)
    assert event.status == "PASS_INSTALLED"
    assert event.occurred_at_source == "metadata.lastInstalledAt"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (1, "PASS_EVENT_RECORD_CREATED"),
        ("8", "PASS_EVENT_UNINSTALLED"),
        (16, "PASS_EVENT_INVALIDATED"),
        (32, "PASS_EVENT_RECORD_DELETED"),
        (64, "UNKNOWN_64"),
        ("pass_event_record_updated", "PASS_EVENT_RECORD_UPDATED"),
        ("SOMETHING_NEW", "SOMETHING_NEW"),
    ],
)
def test_event_names_from_numbers_and_strings(event: Any, expected: str) -> None:
    parsed = parse_logged_event(logged({"event": event, "pass": {"id": "p"}}))
    assert parsed.event_type == expected


def test_numeric_event_follows_the_payload_shape_for_member_and_coupon_events() -> None:
    member = parse_logged_event(logged({"event": 1, "member": {"id": "m", "externalId": "M-1"}}))
    coupon = parse_logged_event(logged({"event": 2, "coupon": {"id": "c", "campaignId": "camp"}}))
    assert member.event_type == "MEMBER_EVENT_ENROLLED"
    assert member.member_external_id == "M-1"
    assert coupon.event_type == "COUPON_EVENT_REDEEMED"
    assert (coupon.coupon_id, coupon.coupon_campaign_id) == ("c", "camp")


def test_unknown_protocol_and_status_numbers_are_kept() -> None:
    pass_obj = member_pass(protocol=999, metadata={"status": 42})
    event = parse_logged_event(logged({"event": "PASS_EVENT_RECORD_UPDATED", "pass": pass_obj}))
    assert (event.protocol, event.protocol_raw) == ("UNKNOWN_999", 999)
    assert event.status == "UNKNOWN_42"


def test_coupon_pass_event_fills_the_coupon_fields() -> None:
    pass_obj = {
        "id": "couponPassId00000000001",
        "classId": "campaign-1",
        "protocol": 101,
        "externalId": "M-000123-welcome",
        "personDetails": PERSON,
        "metadata": {"status": 3, "invalidatedAt": {"seconds": 1740830400, "nanos": 500000000}},
    }
    event = parse_logged_event(logged({"event": "PASS_EVENT_INVALIDATED", "pass": pass_obj}))
    assert event.protocol == "SINGLE_USE_COUPON"
    assert event.is_coupon_event
    assert event.coupon_id == "couponPassId00000000001"
    assert event.coupon_external_id == "M-000123-welcome"
    assert event.coupon_campaign_id == "campaign-1"
    assert event.member_external_id is None  # a coupon's externalId is not a member's
    assert event.status == "PASS_INVALIDATED"
    assert event.invalidated_at == datetime(2025, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
    assert event.occurred_at == event.invalidated_at


def test_member_external_id_falls_back_to_record_data() -> None:
    pass_obj = member_pass()
    del pass_obj["externalId"]
    event = parse_logged_event(logged({"event": "PASS_EVENT_RECORD_UPDATED", "pass": pass_obj}))
    assert event.member_external_id == "M-000123"


def test_personal_details_are_not_copied() -> None:
    event = parse_logged_event(logged({"event": "PASS_EVENT_INSTALLED", "pass": member_pass()}))
    dumped = repr(dataclasses.asdict(event))
    for value in (*PERSON.values(), "203.0.113.9"):
        assert value not in dumped
    assert not {"person", "personDetails", "email"} & {f.name for f in dataclasses.fields(event)}


def test_missing_or_odd_fields_do_not_fail() -> None:
    event = parse_logged_event(
        logged(
            {
                "event": "PASS_EVENT_INSTALLED",
                "pass": {
                    "id": 12345,
                    "metadata": {"lastInstalledAt": "yesterday", "firstInstalledAt": [1]},
                    "recordData": {"members.member.points": "lots"},
                },
            }
        )
    )
    assert event.pass_id == "12345"
    assert event.points is None
    assert event.last_installed_at is None
    assert event.occurred_at == RECEIVED and event.occurred_at_source == "received_at"
    assert set(event.warnings) == {
        "metadata.lastInstalledAt",
        "metadata.firstInstalledAt",
        "recordData.members.member.points",
    }
    bare = parse_logged_event(logged({"event": "PASS_EVENT_RECORD_UPDATED"}))
    assert bare.pass_id is None and bare.protocol is None and bare.status is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("100.000000", Decimal("100.000000")),
        ("12.5", Decimal("12.5")),
        (7, Decimal(7)),
        (0.1, Decimal("0.1")),
        ("NaN", None),
        ("", None),
        (True, None),
    ],
)
def test_points_are_exact_decimals(raw: Any, expected: Decimal | None) -> None:
    pass_obj = {"id": "p", "recordData": {"members.member.points": raw}}
    event = parse_logged_event(logged({"event": "PASS_EVENT_RECORD_UPDATED", "pass": pass_obj}))
    assert event.points == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-03-01T10:00:00Z", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("2025-03-01T11:00:00+01:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("2025-03-01T10:00:00.5Z", datetime(2025, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2025-03-01T10:00:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ({"seconds": "1740823200"}, datetime(2025, 3, 1, 10, tzinfo=UTC)),
        (1740823200, datetime(2025, 3, 1, 10, tzinfo=UTC)),
        (1740823200000, datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", None),  # protobuf's zero: never happened
        ("0001-01-01T00:00:00Z", None),
        ({}, None),
        ("garbage", None),
        (None, None),
    ],
)
def test_timestamps_are_parsed_leniently(raw: Any, expected: datetime | None) -> None:
    assert parse_timestamp(raw) == expected


# --- event_key --------------------------------------------------------------------------------


def key_of(payload: dict[str, Any], received_at: str = "2025-03-01T12:00:05Z") -> str:
    return parse_logged_event(logged(payload, received_at)).event_key


def test_redelivered_install_has_the_same_key_even_with_a_changed_body() -> None:
    first = {"event": "PASS_EVENT_INSTALLED", "pass": member_pass()}
    second = {"event": 2, "pass": member_pass(protocol=100, metaData=member_pass()["metadata"])}
    del second["pass"]["metadata"]
    assert key_of(first) == key_of(second, received_at="2025-03-01T12:07:00Z")


def test_two_installs_of_one_pass_have_different_keys() -> None:
    later = member_pass()
    later["metadata"] = {**later["metadata"], "lastInstalledAt": "2025-03-05T08:00:00Z"}
    first = {"event": "PASS_EVENT_INSTALLED", "pass": member_pass()}
    assert key_of(first) != key_of({"event": "PASS_EVENT_INSTALLED", "pass": later})


def test_updates_collapse_only_when_the_body_is_identical() -> None:
    update = {"event": "PASS_EVENT_RECORD_UPDATED", "pass": member_pass()}
    changed = {"event": "PASS_EVENT_RECORD_UPDATED", "pass": member_pass()}
    changed["pass"]["recordData"] = {
        **changed["pass"]["recordData"],
        "members.member.points": "150",
    }
    assert key_of(update) == key_of(update, received_at="2025-03-01T13:00:00Z")
    assert key_of(update) != key_of(changed)


def test_once_per_pass_events_collapse_on_the_pass() -> None:
    created = {"event": "PASS_EVENT_RECORD_CREATED", "pass": member_pass()}
    retried = {"event": "PASS_EVENT_RECORD_CREATED", "pass": member_pass(classId="other-form")}
    other_pass = {"event": "PASS_EVENT_RECORD_CREATED", "pass": member_pass(id="another")}
    assert key_of(created) == key_of(retried)
    assert key_of(created) != key_of(other_pass)


def test_event_type_is_part_of_the_key() -> None:
    installed = {"event": "PASS_EVENT_INSTALLED", "pass": member_pass()}
    uninstalled = {"event": "PASS_EVENT_UNINSTALLED", "pass": member_pass()}
    assert key_of(installed) != key_of(uninstalled)


# --- records that are not deliveries ----------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"received_at": "2025-03-01T12:00:05Z"}, "body"),
        ({"received_at": "2025-03-01T12:00:05Z", "body": "{oops"}, "body"),
        ({"received_at": "2025-03-01T12:00:05Z", "body": "[]"}, "body"),
        ({"body": '{"event": "X"}'}, "received_at"),
    ],
)
def test_records_that_are_not_deliveries_raise_with_the_field(
    record: dict[str, Any], field: str
) -> None:
    with pytest.raises(EventParseError) as error:
        parse_logged_event(record)
    assert error.value.field == field


def test_delivery_id_is_recomputed_when_missing() -> None:
    body = '{"event": "PASS_EVENT_RECORD_UPDATED"}'
    event = parse_logged_event({"received_at": "2025-03-01T12:00:05Z", "body": body})
    assert event.delivery_id == hashlib.sha256(body.encode()).hexdigest()


def test_parse_payload_can_be_used_without_a_log_record() -> None:
    event = parse_payload(
        {"event": "PASS_EVENT_UNINSTALLED", "pass": member_pass()},
        delivery_id="d1",
        received_at=RECEIVED,
    )
    assert isinstance(event, PassEvent)
    assert event.occurred_at_source == "received_at"  # no lastUninstalledAt in this payload
    assert event.delivery_id == "d1"
