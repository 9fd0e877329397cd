"""Lenient parsing of a logged PassKit webhook delivery into a normalised PassEvent.

PassKit's webhook payload is only partly documented (see specs/passkit.md, "Webhooks"):
``{"event": ..., "pass": {"id", "classId", "protocol", "externalId", "personDetails",
"metadata" | "metaData": {...}, "recordData": {"members.member.points": "100.000000", ...}}}``.
Enums may arrive as names or as numbers; the numbers below come from the protobuf definitions
shipped in PassKit's SDKs (``io/common/integration.proto``, ``protocols.proto``,
``metrics.proto``). Anything unusable becomes ``None`` (its field name is listed in
``PassEvent.warnings``) instead of failing: an event is a hint, and the member is re-read from
PassKit before acting on it.

Personal details (``personDetails``, IP addresses, user agents in the metadata) are never
copied into a PassEvent.

De-duplication: PassKit may deliver the same event twice, possibly with a slightly different
body, and out of order. ``PassEvent.event_key`` identifies the logical event:

    sha256("v1|<event_type>|<pass reference>|<anchor>")

where the pass reference is the pass id (else the member's, else the coupon's externalId) and
the anchor is, in this order:

1. for install / uninstall / invalidation events, the matching timestamp from the pass
   metadata (``lastInstalledAt``...): it names the occurrence, whatever else changed in the
   body;
2. for events that happen at most once per pass (record created or deleted, member enrolled,
   coupon created, redeemed or deleted): the word ``once``;
3. otherwise (updates, unknown events, no pass reference): ``delivery:<delivery_id>``, i.e.
   the body's hash, so identical redeliveries collapse but two different updates never do.

Ingest keeps the first event seen per ``event_key`` (and the first delivery per
``delivery_id``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

# PassEventId (io/common/integration.proto). Pass events apply to every protocol.
PASS_EVENT_NAMES: dict[int, str] = {
    1: "PASS_EVENT_RECORD_CREATED",
    2: "PASS_EVENT_INSTALLED",
    4: "PASS_EVENT_RECORD_UPDATED",
    8: "PASS_EVENT_UNINSTALLED",
    16: "PASS_EVENT_INVALIDATED",
    32: "PASS_EVENT_RECORD_DELETED",
}
# MembershipEventId and CouponEventId reuse the same small numbers, so a bare number is read
# as a pass event unless the payload carries a "member" or "coupon" object (UNCONFIRMED shape).
MEMBER_EVENT_NAMES: dict[int, str] = {1: "MEMBER_EVENT_ENROLLED", 2: "MEMBER_EVENT_UPDATED"}
COUPON_EVENT_NAMES: dict[int, str] = {
    1: "COUPON_EVENT_CREATED",
    2: "COUPON_EVENT_REDEEMED",
    4: "COUPON_EVENT_UPDATED",
    8: "COUPON_EVENT_DELETED",
}
# PassProtocol (io/common/protocols.proto).
PROTOCOL_NAMES: dict[int, str] = {
    1: "RAW_PROTOCOL",
    2: "V1_PROTOCOL",
    3: "FLIGHT_PROTOCOL",
    100: "MEMBERSHIP",
    101: "SINGLE_USE_COUPON",
    102: "EVENT_TICKETING",
}
# Status of the pass metadata (io/common/metrics.proto).
PASS_STATUS_NAMES: dict[int, str] = {
    0: "PASS_ISSUED",
    1: "PASS_INSTALLED",
    2: "PASS_UNINSTALLED",
    3: "PASS_INVALIDATED",
}

# Event -> metadata timestamps naming its occurrence, best first.
_LIFECYCLE_TIMESTAMPS: dict[str, tuple[str, ...]] = {
    "PASS_EVENT_INSTALLED": ("lastInstalledAt", "firstInstalledAt"),
    "PASS_EVENT_UNINSTALLED": ("lastUninstalledAt", "firstUninstalledAt"),
    "PASS_EVENT_INVALIDATED": ("invalidatedAt",),
}
# Best timestamp for other events: informative only, never used in event_key because PassKit
# does not document when lastUpdatedAt moves (two updates could share it).
_OTHER_TIMESTAMPS: dict[str, tuple[str, ...]] = {
    "PASS_EVENT_RECORD_UPDATED": ("lastUpdatedAt",),
    "MEMBER_EVENT_UPDATED": ("lastUpdatedAt",),
}
_ONCE_PER_PASS = frozenset(
    {
        "PASS_EVENT_RECORD_CREATED",
        "PASS_EVENT_RECORD_DELETED",
        "MEMBER_EVENT_ENROLLED",
        "COUPON_EVENT_CREATED",
        "COUPON_EVENT_REDEEMED",
        "COUPON_EVENT_DELETED",
    }
)
RECEIVED_AT = "received_at"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EventParseError(ValueError):
    """A logged record cannot be turned into an event at all (not a webhook delivery)."""

    def __init__(self, delivery_id: str | None, field: str, problem: str) -> None:
        super().__init__(f"delivery {delivery_id or '?'}: field {field!r}: {problem}")
        self.delivery_id = delivery_id
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class PassEvent:
    """One webhook delivery, normalised. Holds no personal details."""

    delivery_id: str
    event_key: str
    event_type: str  # e.g. PASS_EVENT_INSTALLED, or UNKNOWN_<n> for an unknown number
    pass_id: str | None
    class_id: str | None  # program id (membership) or campaign id (coupon)
    member_external_id: str | None
    protocol: str | None  # e.g. MEMBERSHIP, or UNKNOWN_<n>
    protocol_raw: str | int | None  # as sent: 100 or "MEMBERSHIP"
    status: str | None  # pass status, e.g. PASS_INSTALLED
    occurred_at: datetime
    occurred_at_source: str  # "metadata.<field>" or "received_at"
    first_installed_at: datetime | None
    last_installed_at: datetime | None
    last_uninstalled_at: datetime | None
    invalidated_at: datetime | None
    points: Decimal | None
    tier_id: str | None
    coupon_id: str | None
    coupon_external_id: str | None
    coupon_campaign_id: str | None
    received_at: datetime
    warnings: tuple[str, ...] = ()  # names of fields present but unusable

    @property
    def is_coupon_event(self) -> bool:
        return self.coupon_id is not None or self.coupon_external_id is not None


def parse_logged_event(record: Mapping[str, Any]) -> PassEvent:
    """Parse a record of the events log (``{"received_at", "body", "delivery_id", ...}``)."""
    body = record.get("body")
    delivery_id = _text(record.get("delivery_id"))
    if not isinstance(body, str):
        raise EventParseError(delivery_id, "body", "missing or not text")
    if delivery_id is None:
        delivery_id = hashlib.sha256(body.encode("utf-8")).hexdigest()
    received_at = parse_timestamp(record.get("received_at"))
    if received_at is None:
        raise EventParseError(delivery_id, "received_at", "missing or not a timestamp")
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise EventParseError(delivery_id, "body", f"not JSON ({type(exc).__name__})") from exc
    if not isinstance(payload, dict):
        raise EventParseError(delivery_id, "body", "not a JSON object")
    return parse_payload(payload, delivery_id=delivery_id, received_at=received_at)


def parse_payload(
    payload: Mapping[str, Any], *, delivery_id: str, received_at: datetime
) -> PassEvent:
    """Normalise a webhook payload; never fails on missing or odd fields."""
    warnings: list[str] = []
    pass_obj = _first_mapping(payload, "pass", "member", "coupon")
    metadata = _first_mapping(pass_obj, "metadata", "metaData")
    record_data = _first_mapping(pass_obj, "recordData")

    event_type = _event_type(payload)
    protocol_raw = _raw_enum(pass_obj.get("protocol"))
    protocol = enum_name(protocol_raw, PROTOCOL_NAMES)
    status = enum_name(_raw_enum(metadata.get("status")), PASS_STATUS_NAMES)

    def timestamp(name: str) -> datetime | None:
        try:
            return _meaningful(_to_datetime(metadata.get(name)))
        except (ValueError, OverflowError, TypeError):
            warnings.append(f"metadata.{name}")
            return None

    stamps = {
        name: timestamp(name)
        for name in (
            "firstInstalledAt",
            "lastInstalledAt",
            "firstUninstalledAt",
            "lastUninstalledAt",
            "invalidatedAt",
            "lastUpdatedAt",
        )
    }
    occurred_at, occurred_at_source = received_at, RECEIVED_AT
    lifecycle = _LIFECYCLE_TIMESTAMPS.get(event_type, ())
    for name in lifecycle + _OTHER_TIMESTAMPS.get(event_type, ()):
        if stamps.get(name) is not None:
            occurred_at, occurred_at_source = stamps[name], f"metadata.{name}"
            break

    is_coupon = (
        protocol == "SINGLE_USE_COUPON"
        or event_type.startswith("COUPON_EVENT_")
        or isinstance(payload.get("coupon"), Mapping)
    )
    pass_id = _text(pass_obj.get("id")) or _text(record_data.get("members.member.id"))
    class_id = (
        _text(pass_obj.get("classId"))
        or _text(pass_obj.get("programId"))
        or _text(pass_obj.get("campaignId"))
    )
    # recordData keys for coupons are UNCONFIRMED; they mirror the documented member keys.
    coupon_id = coupon_external_id = coupon_campaign_id = member_external_id = None
    if is_coupon:
        coupon_id = _text(record_data.get("coupons.coupon.id")) or pass_id
        coupon_external_id = _text(record_data.get("coupons.coupon.externalId")) or _text(
            pass_obj.get("externalId")
        )
        coupon_campaign_id = _text(record_data.get("coupons.campaign.id")) or class_id
        member_external_id = _text(record_data.get("members.member.externalId"))
    else:
        member_external_id = _text(pass_obj.get("externalId")) or _text(
            record_data.get("members.member.externalId")
        )

    points_raw = record_data.get("members.member.points", pass_obj.get("points"))
    points = parse_decimal(points_raw)
    if points is None and points_raw not in (None, ""):
        warnings.append("recordData.members.member.points")
    tier_id = _text(record_data.get("members.tier.id")) or _text(pass_obj.get("tierId"))

    pass_reference = pass_id or member_external_id or coupon_external_id
    if pass_reference and lifecycle and occurred_at_source != RECEIVED_AT:
        anchor = _iso(occurred_at)
    elif pass_reference and event_type in _ONCE_PER_PASS:
        anchor = "once"
    else:
        anchor = f"delivery:{delivery_id}"
    event_key = hashlib.sha256(
        "|".join(("v1", event_type, pass_reference or "", anchor)).encode("utf-8")
    ).hexdigest()

    return PassEvent(
        delivery_id=delivery_id,
        event_key=event_key,
        event_type=event_type,
        pass_id=pass_id,
        class_id=class_id,
        member_external_id=member_external_id,
        protocol=protocol,
        protocol_raw=protocol_raw,
        status=status,
        occurred_at=occurred_at,
        occurred_at_source=occurred_at_source,
        first_installed_at=stamps["firstInstalledAt"],
        last_installed_at=stamps["lastInstalledAt"],
        last_uninstalled_at=stamps["lastUninstalledAt"],
        invalidated_at=stamps["invalidatedAt"],
        points=points,
        tier_id=tier_id,
        coupon_id=coupon_id,
        coupon_external_id=coupon_external_id,
        coupon_campaign_id=coupon_campaign_id,
        received_at=received_at,
        warnings=tuple(warnings),
    )


def _event_type(payload: Mapping[str, Any]) -> str:
    raw = _raw_enum(payload.get("event"))
    if isinstance(payload.get("member"), Mapping):
        names = MEMBER_EVENT_NAMES
    elif isinstance(payload.get("coupon"), Mapping):
        names = COUPON_EVENT_NAMES
    else:
        names = PASS_EVENT_NAMES
    return enum_name(raw, names) or "UNKNOWN"


def _raw_enum(value: Any) -> str | int | None:
    """An enum value as sent, with numeric strings and integral floats turned into ints."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        return text or None
    return None


def enum_name(value: str | int | None, names: Mapping[int, str]) -> str | None:
    """Name of an enum value: names pass through (upper-cased), numbers are looked up."""
    if value is None:
        return None
    if isinstance(value, int):
        return names.get(value, f"UNKNOWN_{value}")
    return value.upper()


def parse_timestamp(value: Any) -> datetime | None:
    """A UTC-aware datetime from ISO 8601 text, ``{"seconds", "nanos"}`` or epoch seconds.

    None when absent or unparseable; protobuf's zero timestamp (1970-01-01 or year 1) means
    "never" and gives None too.
    """
    try:
        return _meaningful(_to_datetime(value))
    except (ValueError, OverflowError, TypeError):
        return None


def _to_datetime(value: Any) -> datetime | None:
    """None when absent; raises ValueError (or OverflowError) when present but unparseable."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, Mapping):
        seconds = int(value.get("seconds") or 0)
        nanos = int(value.get("nanos") or 0)
        return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(float(value))
    if isinstance(value, str):
        return _from_text(value.strip())
    raise ValueError(f"not a timestamp: {type(value).__name__}")


def _meaningful(moment: datetime | None) -> datetime | None:
    return None if moment is None or moment <= _EPOCH else moment


def _from_epoch(seconds: float) -> datetime:
    if seconds > 1e11:  # milliseconds
        seconds /= 1000
    return _EPOCH + timedelta(seconds=seconds)


def _from_text(text: str) -> datetime:
    if text.replace(".", "", 1).isdigit():
        return _from_epoch(float(text))
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Protobuf JSON may carry nanoseconds; datetime keeps microseconds.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_decimal(value: Any) -> Decimal | None:
    """A finite Decimal from text or a number (floats via repr, so 0.1 stays 0.1)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, int | str):
            number = Decimal(str(value).strip())
        else:
            return None
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _first_mapping(container: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    for key in keys:
        value = container.get(key)
        if isinstance(value, Mapping):
            return value
    return {}


def _text(value: Any) -> str | None:
    """Ids as strings: numbers are converted, empty strings and other types give None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | str):
        text = str(value).strip()
        return text or None
    return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
