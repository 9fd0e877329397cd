"""Plan the re-engagement actions of due absences, once each, and export the e-mail audience.

For each row of ``reengagements`` due by the plan date and not planned yet:

1. **arm**: ``sha256(salt|external_id|absence_key)`` read as a number in [0, 1); below
   ``control_share`` is 'control', otherwise 'treated'. The arm is drawn before the channel,
   so both arms hold the same mix of lapsed and uninstalled members.
2. **channel**: a control absence gets one row, channel 'control' (nothing is sent). A treated
   absence whose pass cannot be notified (reason 'uninstalled', pass_activity state
   'uninstalled' or 'invalidated', pass revoked or unknown) gets one row 'audience' and a row
   in ``reengagement_audience`` with the member's contact details; any other treated absence
   gets one row per enabled channel ('pass_message' with the message, 'coupon' with a
   win-back coupon whose externalId is derived from the member and absence).

Rows are inserted once, in one transaction: an absence that has a row is never planned again,
whatever the settings say later, and the primary key (external_id, absence_key, channel)
backs that up. The PassKit sync sends the 'pass_message' and 'coupon' rows.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from toast_passkit.reengagement.settings import ReengagementSettings
from toast_passkit.warehouse import Warehouse, split_statements, sql_path

log = logging.getLogger(__name__)

TREATED, CONTROL = "treated", "control"
PASS_MESSAGE, COUPON, AUDIENCE = "pass_message", "coupon", "audience"
# Pass install states and statuses under which the pass cannot show a message.
UNREACHABLE_PASS_STATES = frozenset({"uninstalled", "invalidated"})
AUDIENCE_COLUMNS = ("external_id", "absence_key", "reason", "due_on", "email", "phone",
                    "forename")
_PLAN_LOCK_KEY = 7_316_205_002  # PostgreSQL advisory lock held while planning
_ACTIONS_SCHEMA = pa.schema([
    ("external_id", pa.string()),
    ("absence_key", pa.string()),
    ("reason", pa.string()),
    ("arm", pa.string()),
    ("channel", pa.string()),
    ("message", pa.string()),
    ("coupon_external_id", pa.string()),
    ("passkit_campaign_id", pa.string()),
    ("passkit_offer_id", pa.string()),
    ("due_on", pa.date32()),
    ("created_at", pa.timestamp("us", tz="UTC")),
])
_AUDIENCE_SCHEMA = pa.schema([
    ("external_id", pa.string()),
    ("absence_key", pa.string()),
    ("reason", pa.string()),
    ("due_on", pa.date32()),
    ("planned_on", pa.date32()),
    ("email", pa.string()),
    ("phone", pa.string()),
    ("forename", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
])


@dataclass
class PlanSummary:
    """What a planning run did, in counts."""

    as_of: date
    absences: int = 0  # re-engagements planned by this run
    treated: int = 0
    control: int = 0
    audience: int = 0  # treated absences whose pass cannot be notified
    actions: dict[str, int] = field(default_factory=dict)  # rows per channel

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "as_of": self.as_of.isoformat()}


@dataclass(frozen=True)
class AudienceExport:
    """An audience CSV file written for a plan date."""

    path: Path
    rows: int


def arm_bucket(external_id: str, absence_key: str, salt: str) -> float:
    """Stable number in [0, 1) for an absence: the first 8 bytes of its salted SHA-256."""
    digest = hashlib.sha256(f"{salt}|{external_id}|{absence_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_arm(external_id: str, absence_key: str, *, control_share: float, salt: str) -> str:
    """'control' for about ``control_share`` of absences, 'treated' for the others; stable."""
    return CONTROL if arm_bucket(external_id, absence_key, salt) < control_share else TREATED


def winback_coupon_external_id(external_id: str, absence_key: str) -> str:
    """The win-back coupon's externalId: one per member and absence, stable across reruns."""
    return "wb" + hashlib.sha256(f"{external_id}|{absence_key}".encode()).hexdigest()[:22]


def plan_reengagement(
    warehouse: Warehouse,
    settings: ReengagementSettings,
    as_of: date,
    *,
    now: datetime | None = None,
) -> PlanSummary:
    """Insert the actions (and audience rows) of every re-engagement due by ``as_of`` that has
    none yet; idempotent."""
    created_at = now or datetime.now(UTC)
    summary = PlanSummary(as_of=as_of)
    actions: list[dict[str, Any]] = []
    audience: list[dict[str, Any]] = []
    with warehouse.begin() as conn:
        if warehouse.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PLAN_LOCK_KEY})
        seen: set[tuple[str, str]] = set()
        for due in _query(conn, "reengagement/plan_010_pending.sql", {"as_of": as_of}):
            key = (due["external_id"], due["absence_key"])
            if key in seen:  # one pass_activity / pass_states row per member is expected
                continue
            seen.add(key)
            rows = plan_absence(due, settings, created_at)
            actions.extend(rows)
            if rows[0]["channel"] == AUDIENCE:
                audience.append({
                    **{k: due[k] for k in ("external_id", "absence_key", "reason", "due_on",
                                           "email", "phone", "forename")},
                    "planned_on": as_of, "created_at": created_at})
            summary.absences += 1
            if rows[0]["arm"] == CONTROL:
                summary.control += 1
            else:
                summary.treated += 1
        warehouse.insert_arrow(conn, "reengagement_actions",
                               pa.Table.from_pylist(actions, schema=_ACTIONS_SCHEMA))
        warehouse.insert_arrow(conn, "reengagement_audience",
                               pa.Table.from_pylist(audience, schema=_AUDIENCE_SCHEMA))
    summary.audience = len(audience)
    summary.actions = dict(sorted(Counter(a["channel"] for a in actions).items()))
    log.info("re-engagement plan: %s", summary.as_dict())
    return summary


def plan_absence(due: dict[str, Any], settings: ReengagementSettings,
                 created_at: datetime) -> list[dict[str, Any]]:
    """The action rows of one due absence (pure: the arm and channel rules)."""
    external_id, absence_key = due["external_id"], due["absence_key"]
    base = {"external_id": external_id, "absence_key": absence_key, "reason": due["reason"],
            "message": None, "coupon_external_id": None, "passkit_campaign_id": None,
            "passkit_offer_id": None, "due_on": due["due_on"], "created_at": created_at}
    arm = assign_arm(external_id, absence_key, control_share=settings.control_share,
                     salt=settings.control_salt)
    if arm == CONTROL:
        return [{**base, "arm": CONTROL, "channel": CONTROL}]
    if not can_notify_pass(due):
        return [{**base, "arm": TREATED, "channel": AUDIENCE}]
    rows = []
    for channel in settings.enabled_channels:
        row = {**base, "arm": TREATED, "channel": channel}
        if channel == PASS_MESSAGE:
            row["message"] = settings.message
        else:
            row.update(coupon_external_id=winback_coupon_external_id(external_id, absence_key),
                       passkit_campaign_id=settings.winback_campaign_id,
                       passkit_offer_id=settings.winback_offer_id)
        rows.append(row)
    return rows


def can_notify_pass(due: dict[str, Any]) -> bool:
    """Whether a message on the member's pass reaches the guest's wallet."""
    return (due["reason"] != "uninstalled"
            and due.get("pass_state") not in UNREACHABLE_PASS_STATES
            and due.get("pass_status") == "active")


def export_audience(warehouse: Warehouse, planned_on: date,
                    export_dir: Path | str) -> AudienceExport:
    """Write ``reengagement_audience_<date>.csv`` with the audience planned on ``planned_on``.

    The file holds contact details: it is created 0600 and replaced atomically, and a rerun
    writes the same file. An empty audience still gets a file (header only).
    """
    directory = Path(export_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"reengagement_audience_{planned_on.isoformat()}.csv"
    with warehouse.engine.connect() as conn:
        rows = _query(conn, "reengagement/plan_020_audience_export.sql",
                      {"planned_on": planned_on})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(AUDIENCE_COLUMNS)
            for row in rows:
                writer.writerow(["" if row[c] is None else str(row[c])
                                 for c in AUDIENCE_COLUMNS])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("re-engagement audience for %s: %d rows in %s", planned_on, len(rows), path.name)
    return AudienceExport(path=path, rows=len(rows))


def _query(conn: Connection, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    (statement,) = split_statements(sql_path(name).read_text())
    return [dict(row) for row in conn.execute(sa.text(statement.rstrip(";")),
                                              params).mappings()]
