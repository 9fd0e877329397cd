"""Ingest of the PassKit webhook log into the warehouse: events, pass activity and watermarks.

``ingest_webhook_log(warehouse, log_dir)`` reads what the receiver appended since the last
successful ingest (a byte offset per log file, kept in ``webhook_watermarks``), parses each
line leniently (``events.parse_logged_event``), and per batch, in **one transaction**:

1. stores the events not seen before in ``pass_events`` (one row per ``event_key``: PassKit
   may deliver an event twice, with a slightly different body, and out of order);
2. recomputes ``pass_activity`` (one row per member: installed / uninstalled / invalidated
   and the install times) for the members the batch touched, from all their events, so a late
   delivery can never move a state backwards (the latest PassKit timestamp wins);
3. keeps lines that are not webhook deliveries in ``pass_event_rejects`` (position only);
4. moves the watermarks past the batch.

Crash safety: a crash before the commit rolls back the events *and* the watermarks, so the
next run reads the same lines again; a crash after it has nothing left to redo. Even if the
watermarks were lost, ``event_key`` makes a re-read store nothing twice. Lines appended while
ingest runs are simply after the watermark. On PostgreSQL a transaction-level advisory lock
keeps two ingests of one warehouse from interleaving (the DAG also runs one at a time).

What webhooks do not drive: coupon redemptions are readable in the view
``passkit_coupon_redemptions`` and reported balances in ``pass_points_reconciliation``, but
nothing is written to ``passkit_redemptions``. A webhook carries the member's new balance, not
the PassKit member event (POINTS_BURNED) id the sync keys that table on, so a row made from a
webhook could never be matched with the sync's row for the same burn: the ledger would count
the redemption twice. The sync, reading member events, stays the only source of redemptions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from toast_passkit.warehouse import Warehouse
from toast_passkit.webhooks.eventlog import (
    CorruptLine,
    EventBatch,
    LoggedEvent,
    commit,
    read_new_events,
)
from toast_passkit.webhooks.events import EventParseError, PassEvent, parse_logged_event

log = logging.getLogger(__name__)

LOG_DIR_VARIABLE = "passkit_webhook_log_dir"
DEFAULT_BATCH_SIZE = 5000
# Any constant: the key of the PostgreSQL advisory lock held while a batch is ingested.
_INGEST_LOCK_KEY = 7_316_205_001
_POINTS_QUANTUM = Decimal("0.01")
_POINTS_LIMIT = Decimal("1e10")  # DECIMAL(12,2)

_TIMESTAMP = pa.timestamp("us", tz="UTC")
_WORK_SCHEMA = pa.schema([
    ("seq", pa.int32()),
    ("event_key", pa.string()),
    ("delivery_id", pa.string()),
    ("event_type", pa.string()),
    ("pass_kind", pa.string()),
    ("pass_id", pa.string()),
    ("class_id", pa.string()),
    ("member_external_id", pa.string()),
    ("protocol", pa.string()),
    ("status", pa.string()),
    ("occurred_at", _TIMESTAMP),
    ("occurred_at_source", pa.string()),
    ("first_installed_at", _TIMESTAMP),
    ("last_installed_at", _TIMESTAMP),
    ("last_uninstalled_at", _TIMESTAMP),
    ("invalidated_at", _TIMESTAMP),
    ("points", pa.decimal128(12, 2)),
    ("tier_id", pa.string()),
    ("coupon_id", pa.string()),
    ("coupon_external_id", pa.string()),
    ("coupon_campaign_id", pa.string()),
    ("warnings", pa.string()),
    ("received_at", _TIMESTAMP),
    ("source_file", pa.string()),
    ("source_offset", pa.int64()),
])


@dataclass
class IngestSummary:
    """What an ingest did, in counts (no personal details)."""

    batches: int = 0
    lines_read: int = 0  # complete event lines read past the watermarks
    events_new: int = 0  # events stored for the first time
    duplicates: int = 0  # lines whose event was already stored, or repeated in the batch
    rejected: int = 0  # lines that are not webhook deliveries (see pass_event_rejects)
    members_updated: int = 0  # pass_activity rows created or changed
    files: int = 0  # events files with new lines
    incomplete_tails: int = 0  # files ending in a line still being written

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class WarehouseWatermarkStore:
    """The ``WatermarkStore`` of ``eventlog`` over ``webhook_watermarks``, inside one transaction.

    Bound to the caller's open connection: ``set_many`` upserts in that transaction, so the
    offsets become durable exactly when (and only if) the events read up to them do.
    """

    def __init__(self, conn: Connection, now: datetime | None = None) -> None:
        self.conn = conn
        self.now = now

    def get(self, file_name: str) -> int:
        offset = self.conn.execute(
            sa.text("SELECT byte_offset FROM webhook_watermarks WHERE file_name = :file_name"),
            {"file_name": file_name},
        ).scalar()
        return int(offset) if offset is not None else 0

    def set_many(self, offsets: Mapping[str, int]) -> None:
        for name, offset in offsets.items():
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise ValueError(f"{name}: watermark must be a non-negative int, got {offset!r}")
        if not offsets:
            return
        updated_at = self.now or datetime.now(UTC)
        self.conn.execute(
            sa.text(
                "INSERT INTO webhook_watermarks (file_name, byte_offset, updated_at) "
                "VALUES (:file_name, :byte_offset, :updated_at) "
                "ON CONFLICT (file_name) DO UPDATE SET byte_offset = excluded.byte_offset, "
                "updated_at = excluded.updated_at"
            ),
            [
                {"file_name": name, "byte_offset": offset, "updated_at": updated_at}
                for name, offset in sorted(offsets.items())
            ],
        )


def ingest_webhook_log(
    warehouse: Warehouse,
    log_dir: Path | str,
    *,
    max_events: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> IngestSummary:
    """Ingest the lines appended to ``log_dir`` since the last successful ingest.

    Batches of at most ``batch_size`` lines are each committed in one transaction (events,
    pass activity and watermarks together); ``max_events`` bounds the whole call (None: until
    the log is drained). Safe to rerun and to crash at any point.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if max_events is not None and max_events < 1:
        raise ValueError(f"max_events must be at least 1, got {max_events}")
    if not Path(log_dir).is_dir():
        # Nothing to read yet, or a wrong setting: say so rather than ingest nothing silently.
        log.warning("webhook log directory %s does not exist (yet): nothing to ingest", log_dir)
    summary = IngestSummary()
    files: set[str] = set()
    while True:
        limit = batch_size
        if max_events is not None:
            limit = min(limit, max_events - summary.lines_read)
            if limit < 1:
                break
        ingested_at = datetime.now(UTC)
        with warehouse.begin() as conn:
            _lock(warehouse, conn)
            store = WarehouseWatermarkStore(conn, now=ingested_at)
            batch = read_new_events(log_dir, store, max_events=limit)
            summary.incomplete_tails = len(batch.incomplete_tails)
            if not batch.end_offsets:
                break
            _ingest_batch(warehouse, conn, batch, ingested_at, summary)
            commit(batch, store)
        files.update(batch.end_offsets)
        summary.batches += 1
        if len(batch.events) < limit:
            break
    summary.files = len(files)
    log.info("webhook ingest: %s", summary.as_dict())
    return summary


def _lock(warehouse: Warehouse, conn: Connection) -> None:
    if warehouse.dialect == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INGEST_LOCK_KEY})


def _ingest_batch(
    warehouse: Warehouse,
    conn: Connection,
    batch: EventBatch,
    ingested_at: datetime,
    summary: IngestSummary,
) -> None:
    """Store one batch's events and pass activity in the caller's transaction."""
    parsed: list[tuple[LoggedEvent, PassEvent]] = []
    rejects: list[dict[str, Any]] = [_corrupt_reject(line) for line in batch.corrupt_lines]
    for logged in batch.events:
        try:
            parsed.append((logged, parse_logged_event(logged.record)))
        except EventParseError as exc:
            rejects.append({
                "source_file": logged.file_name,
                "source_offset": logged.offset_start,
                "delivery_id": exc.delivery_id,
                "field": exc.field,
                "problem": exc.problem,
            })
            log.warning(
                "webhook log line rejected: file=%s offset=%d delivery=%s field=%s",
                logged.file_name,
                logged.offset_start,
                (exc.delivery_id or "-")[:16],
                exc.field,
            )

    warehouse.run_file(conn, "reengagement/ingest_000_clear_work.sql")
    warehouse.insert_arrow(conn, "pass_event_work", _work_table(parsed))
    new = warehouse.execute(conn, """
        SELECT COUNT(DISTINCT w.event_key) FROM pass_event_work w
        WHERE NOT EXISTS (SELECT 1 FROM pass_events e WHERE e.event_key = w.event_key)
    """).scalar()
    warehouse.run_file(conn, "reengagement/ingest_010_events.sql", {"ingested_at": ingested_at})
    warehouse.run_file(conn, "reengagement/ingest_020_pass_activity.sql")
    changed = warehouse.execute(conn, """
        SELECT COUNT(*) FROM pass_activity_work w
        WHERE NOT EXISTS (
            SELECT 1 FROM pass_activity p
            WHERE p.member_external_id = w.member_external_id AND p.state = w.state
              AND p.pass_id IS NOT DISTINCT FROM w.pass_id
              AND p.first_installed_at IS NOT DISTINCT FROM w.first_installed_at
              AND p.last_installed_at IS NOT DISTINCT FROM w.last_installed_at
              AND p.last_uninstalled_at IS NOT DISTINCT FROM w.last_uninstalled_at
              AND p.updated_at = w.updated_at)
    """).scalar()
    warehouse.run_file(conn, "reengagement/ingest_030_apply_pass_activity.sql")
    _store_rejects(conn, rejects, ingested_at)

    summary.lines_read += len(batch.events)
    summary.events_new += int(new or 0)
    summary.duplicates += len(parsed) - int(new or 0)
    summary.rejected += len(rejects)
    summary.members_updated += int(changed or 0)


def pass_kind(event: PassEvent) -> str:
    """'coupon', 'membership' (including events that name no protocol) or 'other'."""
    if (
        event.is_coupon_event
        or event.protocol == "SINGLE_USE_COUPON"
        or event.event_type.startswith("COUPON_EVENT_")
    ):
        return "coupon"
    if event.protocol in (None, "MEMBERSHIP"):
        return "membership"
    return "other"


def _work_table(parsed: Iterable[tuple[LoggedEvent, PassEvent]]) -> pa.Table:
    rows = [
        {
            "seq": seq,
            "event_key": event.event_key,
            "delivery_id": event.delivery_id,
            "event_type": event.event_type,
            "pass_kind": pass_kind(event),
            "pass_id": event.pass_id,
            "class_id": event.class_id,
            "member_external_id": event.member_external_id,
            "protocol": event.protocol,
            "status": event.status,
            "occurred_at": event.occurred_at,
            "occurred_at_source": event.occurred_at_source,
            "first_installed_at": event.first_installed_at,
            "last_installed_at": event.last_installed_at,
            "last_uninstalled_at": event.last_uninstalled_at,
            "invalidated_at": event.invalidated_at,
            "points": _points(event.points),
            "tier_id": event.tier_id,
            "coupon_id": event.coupon_id,
            "coupon_external_id": event.coupon_external_id,
            "coupon_campaign_id": event.coupon_campaign_id,
            "warnings": ",".join(event.warnings) or None,
            "received_at": event.received_at,
            "source_file": logged.file_name,
            "source_offset": logged.offset_start,
        }
        for seq, (logged, event) in enumerate(parsed)
    ]
    return pa.Table.from_pylist(rows, schema=_WORK_SCHEMA)


def _points(value: Decimal | None) -> Decimal | None:
    """Points as DECIMAL(12,2); a balance PassKit reports beyond that range is dropped."""
    if value is None:
        return None
    try:
        rounded = value.quantize(_POINTS_QUANTUM)
    except InvalidOperation:
        return None
    return rounded if abs(rounded) < _POINTS_LIMIT else None


def _corrupt_reject(line: CorruptLine) -> dict[str, Any]:
    return {
        "source_file": line.file_name,
        "source_offset": line.offset_start,
        "delivery_id": None,
        "field": "line",
        "problem": line.error,
    }


def _store_rejects(conn: Connection, rejects: list[dict[str, Any]], ingested_at: datetime) -> None:
    if not rejects:
        return
    conn.execute(sa.text("""
        INSERT INTO pass_event_rejects (source_file, source_offset, delivery_id, field, problem,
                                        ingested_at)
        VALUES (:source_file, :source_offset, :delivery_id, :field, :problem, :ingested_at)
        ON CONFLICT (source_file, source_offset) DO NOTHING
    """), [{**reject, "ingested_at": ingested_at} for reject in rejects])


# --- Airflow glue ----------------------------------------------------------------------------


def webhook_log_dir() -> Path:
    """The receiver's log directory: Variable ``passkit_webhook_log_dir``, else var/webhooks."""
    from airflow.sdk import Variable

    from toast_passkit.settings import VAR_DIR

    value = Variable.get(LOG_DIR_VARIABLE, default=None)
    return Path(value) if value not in (None, "") else VAR_DIR / "webhooks"


def ingest_task(max_events: int | None = None) -> dict[str, int]:
    """The DAG task: ingest the configured log into the ``toast_warehouse`` connection."""
    log_dir = webhook_log_dir()
    warehouse = Warehouse.from_connection()
    try:
        warehouse.migrate()
        summary = ingest_webhook_log(warehouse, log_dir, max_events=max_events)
    finally:
        warehouse.dispose()
    return summary.as_dict()
