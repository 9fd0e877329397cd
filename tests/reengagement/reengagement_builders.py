"""Builders for webhook and re-engagement tests: PassKit payloads, log deliveries, loyalty rows.

Times are UTC; ``at(n)`` is day n of January 2025 at noon, ``day(n)`` its date (as in the
loyalty builders: day 1 is 2025-01-01).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from toast_passkit.warehouse import Warehouse
from toast_passkit.webhooks.eventlog import EventLogWriter

PROGRAM_ID = "prog-test"


def at(n: int, hour: int = 12) -> datetime:
    return datetime(2025, 1, 1, hour, tzinfo=UTC) + timedelta(days=n - 1)


def day(n: int) -> date:
    return date(2025, 1, 1) + timedelta(days=n - 1)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def pass_payload(event: str, member: str | None, pass_id: str | None = None, *,
                 first_installed: datetime | None = None,
                 installed: datetime | None = None,
                 uninstalled: datetime | None = None,
                 invalidated: datetime | None = None,
                 points: str | None = None, note: str | None = None) -> dict[str, Any]:
    """A membership pass webhook as PassKit sends it (with a guest's details, as in life)."""
    metadata = {key: iso(value) for key, value in (
        ("firstInstalledAt", first_installed), ("lastInstalledAt", installed),
        ("lastUninstalledAt", uninstalled), ("invalidatedAt", invalidated)) if value}
    record_data: dict[str, Any] = {"members.tier.id": "base"}
    if points is not None:
        record_data["members.member.points"] = points
    body: dict[str, Any] = {
        "id": pass_id or f"pass-{member}", "classId": PROGRAM_ID, "protocol": 100,
        "personDetails": {"displayName": "Jane Guest", "emailAddress": "jane@example.com"},
        "metadata": metadata, "recordData": record_data,
    }
    if member is not None:
        body["externalId"] = member
    if note is not None:  # a redelivery with a slightly different body
        body["metadata"]["note"] = note
    return {"event": event, "pass": body}


def coupon_payload(event: str, coupon_external_id: str, *, campaign: str = "camp-1",
                   coupon_id: str | None = None) -> dict[str, Any]:
    """A single-use coupon webhook (its pass has install events of its own)."""
    return {"event": event, "pass": {
        "id": coupon_id or f"cpn-pass-{coupon_external_id}", "classId": campaign,
        "protocol": 101, "externalId": coupon_external_id, "metadata": {}}}


def log_record(payload: dict[str, Any] | str, received_at: datetime) -> dict[str, Any]:
    """The events-log record the receiver writes for an accepted delivery."""
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return {"received_at": iso(received_at), "method": "PUT", "headers": {},
            "body": body, "delivery_id": hashlib.sha256(body.encode("utf-8")).hexdigest()}


class Deliveries:
    """Appends deliveries to a log directory as the receiver would (durably, in order)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.writer = EventLogWriter(log_dir)

    def deliver(self, payload: dict[str, Any] | str, received_at: datetime | None = None
                ) -> str:
        received = received_at or datetime(2025, 2, 1, tzinfo=UTC)
        return self.writer.append_event(log_record(payload, received), received)

    def close(self) -> None:
        self.writer.close()


def insert_rows(warehouse: Warehouse, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = sorted({key for row in rows for key in row})
    with warehouse.begin() as conn:
        conn.execute(sa.text(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + c for c in columns)})"),
            [{c: row.get(c) for c in columns} for row in rows])


def member_pass(external_id: str, *, status: str = "active", email: str | None = None,
                phone: str | None = None, forename: str | None = None) -> dict[str, Any]:
    """A pass_states row."""
    return {"external_id": external_id, "guest_id": f"g-{external_id}", "forename": forename,
            "surname": "Guest", "email": email, "phone": phone, "tier_id": "base",
            "points": 10, "status": status, "enrolled_on": day(1), "as_of": day(1)}


def reengagement(external_id: str, absence_key: str, due_on: date,
                 reason: str = "lapsed") -> dict[str, Any]:
    """A reengagements row as the loyalty engine writes it."""
    return {"external_id": external_id, "absence_key": absence_key, "reason": reason,
            "due_on": due_on, "run_id": "test-run", "created_at": at(1)}


def activity(external_id: str, state: str, when: datetime) -> dict[str, Any]:
    """A pass_activity row."""
    return {"member_external_id": external_id, "pass_id": f"pass-{external_id}",
            "state": state, "last_uninstalled_at": when if state == "uninstalled" else None,
            "last_installed_at": when if state == "installed" else None, "updated_at": when}
