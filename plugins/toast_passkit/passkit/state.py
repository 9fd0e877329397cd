"""Warehouse side of the PassKit sync: sync state rows, the plan queries, the log, the lease.

Everything the sync reads or writes in the warehouse goes through `SyncStore`, in short
transactions on one connection (the SQL lives in include/sql/passkit/). The sync calls
PassKit between those transactions, never inside one.

Row types mirror the tables of include/sql/schema/020_passkit_sync.sql: `MemberRow`
(passkit_sync_members), `CouponRow` (passkit_sync_coupons), `LogEntry` (passkit_sync_log)
and `Redemption` (passkit_redemptions).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from toast_passkit.warehouse import Warehouse, sql_path

log = logging.getLogger(__name__)

LEASE_NAME = "passkit_sync"
# Sync states (see the schema file for their meaning).
SYNCED, PENDING, SENT, UNCERTAIN, FAILED, GIVEN_UP = (
    "synced", "pending", "sent", "uncertain", "failed", "given_up")
NEW = "new"  # no row yet (plan queries only)

_POINTS = pa.decimal128(12, 2)
_TIMESTAMP = pa.timestamp("us", tz="UTC")


class SyncStateError(RuntimeError):
    """The sync state cannot be used (lease held by another run, lost lease)."""


class LeaseHeldError(SyncStateError):
    """Another sync run holds the lease: two runs must never send at once."""


@dataclass
class MemberRow:
    """One row of passkit_sync_members (applied_hash is computed by save_members.sql)."""

    external_id: str
    passkit_member_id: str | None = None
    applied_status: str | None = None
    applied_revoke_mode: str | None = None
    applied_tier_id: str | None = None
    applied_points: Decimal | None = None
    applied_person_hash: str | None = None
    applied_message: str | None = None
    applied_at: datetime | None = None
    points_sequence: int = 0
    sync_state: str = PENDING
    op_calls: str | None = None
    op_desired_hash: str | None = None
    op_event_id: str | None = None
    op_from_points: Decimal | None = None
    op_to_points: Decimal | None = None
    op_tier_id: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    last_run_id: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MemberRow:
        """Build from a query row (extra columns are ignored)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def clear_operation(self) -> None:
        """Forget the operation in progress (it is finished or known not to have happened)."""
        self.op_calls = self.op_desired_hash = self.op_event_id = self.op_tier_id = None
        self.op_from_points = self.op_to_points = None


MEMBER_SCHEMA = pa.schema([
    ("external_id", pa.string()), ("passkit_member_id", pa.string()),
    ("applied_status", pa.string()), ("applied_revoke_mode", pa.string()),
    ("applied_tier_id", pa.string()), ("applied_points", _POINTS),
    ("applied_person_hash", pa.string()), ("applied_message", pa.string()),
    ("applied_at", _TIMESTAMP), ("points_sequence", pa.int64()), ("sync_state", pa.string()),
    ("op_calls", pa.string()), ("op_desired_hash", pa.string()), ("op_event_id", pa.string()),
    ("op_from_points", _POINTS), ("op_to_points", _POINTS), ("op_tier_id", pa.string()),
    ("attempts", pa.int64()), ("next_attempt_at", _TIMESTAMP),
    ("last_status_code", pa.int64()), ("last_error", pa.string()), ("last_run_id", pa.string()),
    ("updated_at", _TIMESTAMP),
])


@dataclass
class CouponRow:
    """One row of passkit_sync_coupons."""

    coupon_external_id: str
    external_id: str
    source: str
    passkit_campaign_id: str
    passkit_offer_id: str
    passkit_coupon_id: str | None = None
    sync_state: str = PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    issued_at: datetime | None = None
    last_run_id: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CouponRow:
        """Build from a query row (extra columns are ignored)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


COUPON_SCHEMA = pa.schema([
    ("coupon_external_id", pa.string()), ("external_id", pa.string()), ("source", pa.string()),
    ("passkit_campaign_id", pa.string()), ("passkit_offer_id", pa.string()),
    ("passkit_coupon_id", pa.string()), ("sync_state", pa.string()), ("attempts", pa.int64()),
    ("next_attempt_at", _TIMESTAMP), ("last_status_code", pa.int64()),
    ("last_error", pa.string()), ("issued_at", _TIMESTAMP), ("last_run_id", pa.string()),
    ("updated_at", _TIMESTAMP),
])


@dataclass(frozen=True)
class LogEntry:
    """One row of passkit_sync_log: a PassKit call or a finding, without personal data."""

    external_id: str
    operation: str
    outcome: str
    logged_at: datetime
    request: Mapping[str, Any] | None = None
    status_code: int | None = None
    error: str | None = None
    attempt: int = 1
    elapsed_ms: int | None = None
    coupon_external_id: str | None = None


LOG_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("logged_at", _TIMESTAMP), ("external_id", pa.string()),
    ("coupon_external_id", pa.string()), ("operation", pa.string()), ("request", pa.string()),
    ("outcome", pa.string()), ("status_code", pa.int64()), ("error", pa.string()),
    ("attempt", pa.int64()), ("elapsed_ms", pa.int64()),
])


@dataclass(frozen=True)
class Redemption:
    """A POINTS_BURNED member event made in PassKit by staff (one row of passkit_redemptions)."""

    passkit_event_id: str
    member_external_id: str
    points: Decimal
    recorded_at: datetime


REDEMPTION_SCHEMA = pa.schema([
    ("passkit_event_id", pa.string()), ("member_external_id", pa.string()),
    ("points", _POINTS), ("recorded_at", _TIMESTAMP),
])


def _arrow(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([{name: row.get(name) for name in schema.names} for row in rows],
                                schema=schema)


def _used(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if f":{k}" in sql}


class SyncStore:
    """The sync's reads and writes, each in its own short transaction.

    Holds one warehouse; `close()` (or the context manager) disposes its engine so that a
    DuckDB file is released for the next task.
    """

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def __enter__(self) -> SyncStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the warehouse connection."""
        self.warehouse.dispose()

    # -- helpers --------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.warehouse.begin() as conn:
            yield conn

    def _select(self, conn: Connection, name: str,
                params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        sql = sql_path(f"passkit/{name}").read_text()
        result = conn.execute(sa.text(sql), _used(sql, dict(params or {})))
        return [dict(row._mapping) for row in result]

    def _has_table(self, conn: Connection, table: str) -> bool:
        count = conn.execute(sa.text(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_name = :table AND table_schema = current_schema()"),
            {"table": table}).scalar()
        return bool(count)

    # -- plan -----------------------------------------------------------------------------
    def prepare_plan(self, *, as_of: date, revoke_mode: str, now: datetime) -> dict[str, bool]:
        """Rebuild the desired members and coupons, and settle members with nothing to do.

        Re-engagement actions are read when their table exists (it is optional).
        """
        params = {"as_of": as_of, "revoke_mode": revoke_mode, "now": now}
        with self._tx() as conn:
            reengagement = self._has_table(conn, "reengagement_actions")
            run = self.warehouse.run_file
            run(conn, "passkit/010_clear_work.sql", params)
            if reengagement:
                run(conn, "passkit/020_messages.sql", params)
            run(conn, "passkit/030_reward_coupons.sql", params)
            if reengagement:
                run(conn, "passkit/035_winback_coupons.sql", params)
            run(conn, "passkit/040_desired_members.sql", params)
            run(conn, "passkit/050_settle_unchanged.sql", params)
        return {"reengagement_actions": reengagement}

    def planned_members(self, now: datetime) -> list[dict[str, Any]]:
        """Rows of plan_members.sql (they hold person data: never log them)."""
        with self._tx() as conn:
            return self._select(conn, "plan_members.sql", {"now": now})

    def planned_coupons(self, now: datetime) -> list[dict[str, Any]]:
        """Rows of plan_coupons.sql."""
        with self._tx() as conn:
            return self._select(conn, "plan_coupons.sql", {"now": now})

    def due_reconciliations(self, now: datetime) -> tuple[list[MemberRow], list[CouponRow]]:
        """Members and coupons whose last call's outcome must be found out before going on."""
        with self._tx() as conn:
            members = [MemberRow.from_mapping(r)
                       for r in self._select(conn, "due_members.sql", {"now": now})]
            coupons = [CouponRow.from_mapping(r)
                       for r in self._select(conn, "due_coupons.sql", {"now": now})]
        return members, coupons

    def next_reconciliation_at(self) -> datetime | None:
        """When the earliest 'sent' or 'uncertain' row becomes due (None: there is none)."""
        with self._tx() as conn:
            members = conn.execute(sa.text(
                "SELECT MIN(next_attempt_at) FROM passkit_sync_members "
                "WHERE sync_state IN ('sent', 'uncertain')")).scalar()
            coupons = conn.execute(sa.text(
                "SELECT MIN(next_attempt_at) FROM passkit_sync_coupons "
                "WHERE sync_state IN ('sent', 'uncertain')")).scalar()
        found = [t for t in (members, coupons) if t is not None]
        return min(found) if found else None

    def active_member_count(self) -> int:
        """Members whose pass is active in PassKit (the revocation guard's denominator)."""
        with self._tx() as conn:
            return int(conn.execute(sa.text(
                "SELECT COUNT(*) FROM passkit_sync_members WHERE applied_status = 'active'"
            )).scalar() or 0)

    # -- writes ---------------------------------------------------------------------------
    def save(self, *, run_id: str, members: Iterable[MemberRow] = (),
             coupons: Iterable[CouponRow] = (), entries: Iterable[LogEntry] = (),
             redemptions: Iterable[Redemption] = (), lease_seconds: float | None = None,
             ) -> None:
        """Write member and coupon rows, log entries and redemptions in one transaction.

        With `lease_seconds`, the run's lease is renewed in the same transaction, and the
        write fails (rolled back) if the lease was lost to another run.
        """
        member_rows = {row.external_id: row for row in members}  # one row per member
        coupon_rows = {row.coupon_external_id: row for row in coupons}
        log_rows = [{**asdict(e), "run_id": run_id,
                     "request": None if e.request is None else json.dumps(
                         e.request, sort_keys=True, default=str)} for e in entries]
        redemption_rows = [asdict(r) for r in redemptions]
        wh = self.warehouse
        with self._tx() as conn:
            if lease_seconds is not None:
                self._renew_lease(conn, run_id, lease_seconds)
            if member_rows:
                wh.insert_arrow(conn, "passkit_sync_work_member_rows", _arrow(
                    [asdict(r) for r in member_rows.values()], MEMBER_SCHEMA))
                wh.run_file(conn, "passkit/save_members.sql")
            if coupon_rows:
                wh.insert_arrow(conn, "passkit_sync_work_coupon_rows", _arrow(
                    [asdict(r) for r in coupon_rows.values()], COUPON_SCHEMA))
                wh.run_file(conn, "passkit/save_coupons.sql")
            if redemption_rows:
                wh.insert_arrow(conn, "passkit_sync_work_redemptions",
                                _arrow(redemption_rows, REDEMPTION_SCHEMA))
                wh.run_file(conn, "passkit/save_redemptions.sql")
            if log_rows:
                wh.insert_arrow(conn, "passkit_sync_log", _arrow(log_rows, LOG_SCHEMA))

    def recorded_redemption_ids(self, event_ids: Iterable[str]) -> set[str]:
        """Which of these PassKit event ids are already in passkit_redemptions."""
        wanted = sorted(set(event_ids))
        found: set[str] = set()
        with self._tx() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                stmt = sa.text("SELECT passkit_event_id FROM passkit_redemptions "
                               "WHERE passkit_event_id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True))
                found.update(r[0] for r in conn.execute(stmt, {"ids": chunk}))
        return found

    def members_by_id(self, external_ids: Iterable[str]) -> dict[str, MemberRow]:
        """Sync rows of these members (absent ids are left out)."""
        wanted = sorted(set(external_ids))
        rows: dict[str, MemberRow] = {}
        with self._tx() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                stmt = sa.text("SELECT * FROM passkit_sync_members "
                               "WHERE external_id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True))
                for r in conn.execute(stmt, {"ids": chunk}):
                    row = MemberRow.from_mapping(dict(r._mapping))
                    rows[row.external_id] = row
        return rows

    def requeue_given_up(self, external_ids: Iterable[str] | None = None,
                         now: datetime | None = None) -> int:
        """Put parked members and coupons back in the queue (attempts reset); returns how many.

        For a person who fixed the cause named in last_error (e.g. created a missing tier).
        """
        now = now or datetime.now(UTC)
        ids = None if external_ids is None else sorted(set(external_ids))
        where = "sync_state = 'given_up'" + ("" if ids is None else " AND external_id IN :ids")
        total = 0
        with self._tx() as conn:
            for table in ("passkit_sync_members", "passkit_sync_coupons"):
                stmt = sa.text(f"UPDATE {table} SET sync_state = 'pending', attempts = 0, "
                               f"next_attempt_at = NULL, updated_at = :now WHERE {where}")
                params: dict[str, Any] = {"now": now}
                if ids is not None:
                    stmt = stmt.bindparams(sa.bindparam("ids", expanding=True))
                    params["ids"] = ids or [""]
                total += conn.execute(stmt, params).rowcount or 0
        return total

    # -- runs and lease -------------------------------------------------------------------
    def start_run(self, run_id: str, kind: str, business_date: date | None,
                  now: datetime) -> None:
        """Record a run as 'running'."""
        with self._tx() as conn:
            conn.execute(sa.text(
                "INSERT INTO passkit_sync_runs (run_id, kind, business_date, started_at, outcome) "
                "VALUES (:run_id, :kind, :business_date, :now, 'running')"),
                {"run_id": run_id, "kind": kind, "business_date": business_date, "now": now})

    def finish_run(self, run_id: str, outcome: str, summary: Mapping[str, Any]) -> None:
        """Record how a run ended and its counts."""
        with self._tx() as conn:
            conn.execute(sa.text(
                "UPDATE passkit_sync_runs SET finished_at = :now, outcome = :outcome, "
                "summary = :summary WHERE run_id = :run_id"),
                {"run_id": run_id, "outcome": outcome, "now": datetime.now(UTC),
                 "summary": json.dumps(summary, sort_keys=True, default=str)})

    def readback_watermark(self) -> datetime | None:
        """Start of the last successful read-back (PassKit changes since then are read)."""
        with self._tx() as conn:
            return conn.execute(sa.text(
                "SELECT MAX(started_at) FROM passkit_sync_runs "
                "WHERE kind = 'readback' AND outcome = 'ok'")).scalar()

    def acquire_lease(self, holder: str, seconds: float, now: datetime | None = None) -> None:
        """Take the sync lease or raise LeaseHeldError naming the holder and its expiry."""
        now = now or datetime.now(UTC)
        with self._tx() as conn:
            self.warehouse.run_file(conn, "passkit/lease_acquire.sql", {
                "holder": holder, "now": now,
                "expires_at": now + timedelta(seconds=seconds)})
            row = conn.execute(sa.text(
                "SELECT holder, expires_at FROM passkit_sync_lease WHERE lease_name = :name"),
                {"name": LEASE_NAME}).one()
        if row.holder != holder:
            raise LeaseHeldError(
                f"another PassKit sync run ({row.holder}) holds the lease until "
                f"{row.expires_at:%Y-%m-%d %H:%M:%S %Z}; two runs must never send at once. "
                "Wait for it to finish (a crashed run's lease expires by itself).")

    def _renew_lease(self, conn: Connection, holder: str, seconds: float) -> None:
        now = datetime.now(UTC)
        updated = conn.execute(sa.text(
            "UPDATE passkit_sync_lease SET expires_at = :expires_at "
            "WHERE lease_name = :name AND holder = :holder"),
            {"expires_at": now + timedelta(seconds=seconds), "name": LEASE_NAME,
             "holder": holder}).rowcount
        if not updated:
            raise SyncStateError(
                f"sync run {holder} lost its lease (it expired and another run took it): "
                "stopping before writing anything more")

    def release_lease(self, holder: str) -> None:
        """Give the lease back (no-op when not held by `holder`)."""
        with self._tx() as conn:
            conn.execute(sa.text(
                "DELETE FROM passkit_sync_lease WHERE lease_name = :name AND holder = :holder"),
                {"name": LEASE_NAME, "holder": holder})

    # -- reports --------------------------------------------------------------------------
    def state_counts(self) -> dict[str, dict[str, int]]:
        """{'member': {state: n}, 'coupon': {state: n}}."""
        counts: dict[str, dict[str, int]] = {"member": {}, "coupon": {}}
        with self._tx() as conn:
            for row in self._select(conn, "states_report.sql"):
                counts[row["record"]][row["sync_state"]] = int(row["records"])
        return counts

    def run_log_counts(self, run_id: str) -> dict[str, dict[str, int]]:
        """{operation: {outcome: n}} for one run."""
        counts: dict[str, dict[str, int]] = {}
        with self._tx() as conn:
            for row in self._select(conn, "run_log_report.sql", {"run_id": run_id}):
                counts.setdefault(row["operation"], {})[row["outcome"]] = int(row["entries"])
        return counts
