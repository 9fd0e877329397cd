"""The loyalty engine: staged Toast checks to guests, ledger, tiers, rewards and pass states.

`run_loyalty(warehouse, program, as_of)` folds everything staged up to business day `as_of`
into the loyalty tables, in one transaction, and says what it did in counts. The rules live
in the SQL models under include/sql/loyalty/ (run in file-name order); Python writes the
program into tables, parses phones and runs the identity pass (loyalty/identity.py).

A run is incremental when it can be: it folds in only the export partitions staged since the
previous run and recomputes only the guests they touch plus those whose time-based state moves
(a check leaving the tier window, an inactivity threshold reached). It recomputes everything
on the first run, when the program changed, when a partition at or before the previous run's
day is staged (late or reloaded), or when asked to.
A recomputed guest is replayed from its checkpoint (loyalty_guest_checkpoints: balance, open
absence, window and lifetime spend as of the last run that recomputed it) when every new fact
of it is dated after the previous run's day and no merge joined it (a guest first seen after
that day: from there); otherwise from its first check.
The ledger is keyed by natural keys and never duplicates an entry. Earn, bonus and redemption
entries are insert-only; reversal and expiry entries are derived from a guest's whole history,
so every run recomputes them for the guests it recomputes and removes or corrects those the
history no longer gives: loading day by day and loading at once give the same ledger.
A run never moves backwards: for a day before the latest one already computed it brings the
state up to date as of that latest day (rerunning a past day changes nothing).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from toast_passkit.loyalty.identity import (
    CheckIdentity,
    GuestState,
    IdentityPass,
    IdentityResult,
    RegisteredMember,
    normalise_phone,
)
from toast_passkit.loyalty.program import Program
from toast_passkit.warehouse import Warehouse

log = logging.getLogger(__name__)

EPOCH = date(1900, 1, 1)
# Most refunds come within weeks of their check: their checks are looked for among the
# checks of this many days before the run's day first (a read of recent row groups only).
RECENT_CHECKS = timedelta(days=31)

# The models of one run, in order. 000_reset runs first in a full recomputation only.
MODELS_BEFORE_IDENTITY = ("loyalty/020_check_facts.sql", "loyalty/025_check_rewards.sql")
MODELS_AFTER_IDENTITY = (
    "loyalty/030_apply_identity.sql",
    "loyalty/040_refunds.sql",
    "loyalty/050_affected_guests.sql",
    "loyalty/060_owners.sql",
    "loyalty/065_ledger_entries.sql",
    "loyalty/070_absences.sql",
    "loyalty/080_balances.sql",
    "loyalty/085_expiry_entries.sql",
    "loyalty/090_owner_states.sql",
    "loyalty/100_guest_spend.sql",
    "loyalty/110_pass_states.sql",
    "loyalty/115_checkpoints.sql",
    "loyalty/120_pass_coupons.sql",
    "loyalty/130_reengagements.sql",
    "loyalty/140_finish.sql",
)


@dataclass(frozen=True)
class LoyaltySummary:
    """What a run did, in counts (no PII): for the DAG's logs."""

    run_id: str
    as_of: date
    mode: str  # 'full' or 'incremental'
    partitions: int
    checks: int
    guests_recomputed: int
    guests_from_checkpoint: int  # of guests_recomputed, those replayed from their checkpoint
    guests: int
    members: int
    active_members: int
    members_to_enrol: int
    points_issued: int
    tier_counts: dict[str, int] = field(default_factory=dict)
    coupons: int = 0
    reengagements: int = 0
    revocations: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data


@dataclass(frozen=True)
class _PreviousRun:
    as_of: date
    program_fingerprint: str


def run_loyalty(warehouse: Warehouse, program: Program, as_of: date, *,
                full_recompute: bool = False, keep_work: bool = False) -> LoyaltySummary:
    """Compute guests, ledger, tiers, rewards, inactivity and pass states up to and including
    business date `as_of` from whatever is staged. Idempotent; one transaction.

    The run's scratch tables (loyalty_work_*) are emptied before it commits, so the next run
    doesn't pay for deleting them; `keep_work` keeps them for inspection until the next run."""
    started_at = datetime.now(UTC)
    run_id = f"{as_of:%Y%m%d}-{uuid.uuid4().hex[:10]}"
    with warehouse.begin() as conn, _engine_settings(warehouse, conn):
        previous = _previous_run(warehouse, conn)
        day = max(as_of, previous.as_of) if previous else as_of
        previous_as_of = previous.as_of if previous else EPOCH
        _write_program(warehouse, conn, program)
        window = timedelta(days=program.tiers.window_days)
        params = {"as_of": day, "previous_as_of": previous_as_of, "run_id": run_id,
                  # checks leaving the tier window in this run: dated in this range
                  "leaving_after": previous_as_of - window, "leaving_until": day - window,
                  # the checks of refunds are looked for after this day first (050)
                  "recent_after": day - RECENT_CHECKS}

        reason = _full_reason(full_recompute, previous, program)
        _stage_work(warehouse, conn, params)
        if reason is None:
            reason = _late_data(warehouse, conn, previous_as_of)
        full = reason is not None
        if full:
            log.info("loyalty run %s: full recomputation (%s)", run_id, reason)
            if warehouse.dialect == "postgresql":
                # Every statement of a full recomputation reads the whole history, where a
                # nested loop is never the right join; PostgreSQL picks them anyway, from row
                # estimates far too low (keys of several columns, the run's own work tables),
                # and they go quadratic: a year x 10 locations did not finish (090 alone ran
                # for more than 9 minutes); without them, 3 minutes. A daily run keeps them for
                # its index lookups of a few guests' rows and turns them off only in the
                # statements marked `-- postgresql: SET enable_nestloop = off`.
                conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
            registry = _registry(warehouse, conn)
            warehouse.run_file(conn, "loyalty/000_reset.sql")
            _stage_work(warehouse, conn, params)
        else:
            registry = []
        params["full_run"] = full
        for model in MODELS_BEFORE_IDENTITY:
            _run_model(warehouse, conn, model, params)

        identity = _identity_pass(warehouse, conn, program, day, full, registry)

        for model in MODELS_AFTER_IDENTITY:
            _run_model(warehouse, conn, model, params)

        summary = _summarise(warehouse, conn, run_id, day, full, previous, identity,
                             registry)
        if not keep_work:
            warehouse.run_file(conn, "loyalty/005_clear_work.sql")
        warehouse.execute(conn, """
            INSERT INTO loyalty_runs (run_id, requested_as_of, as_of, mode, program_fingerprint,
                                      partitions, checks, guests_recomputed, started_at,
                                      finished_at)
            VALUES (:run_id, :requested_as_of, :as_of, :mode, :fingerprint, :partitions,
                    :checks, :guests_recomputed, :started_at, :finished_at)
        """, {"run_id": run_id, "requested_as_of": as_of, "as_of": day, "mode": summary.mode,
              "fingerprint": program.fingerprint(), "partitions": summary.partitions,
              "checks": summary.checks, "guests_recomputed": summary.guests_recomputed,
              "started_at": started_at, "finished_at": datetime.now(UTC)})
    log.info("loyalty run %s as of %s: %s", run_id, day, summary.as_dict())
    return summary


@contextmanager
def _engine_settings(warehouse: Warehouse, conn: Connection) -> Iterator[None]:
    """PostgreSQL: no JIT (it costs seconds per statement on a run's small sets of rows).
    (No nested loops in a full recomputation: see run_loyalty.)

    DuckDB 2.0.1: its statistics propagation gets `COALESCE(SUM(CASE ...), 0) > 0` wrong after
    a LEFT JOIN to an empty table (e.g. no excluded sales category): the run turns that
    optimizer off on its connection, and puts the setting back afterwards."""
    if warehouse.dialect == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
    if warehouse.dialect != "duckdb":
        yield
        return
    before = conn.exec_driver_sql("SELECT current_setting('disabled_optimizers')").scalar()
    disabled = ",".join(filter(None, [str(before or ""), "statistics_propagation"]))
    conn.exec_driver_sql(f"SET disabled_optimizers = '{disabled}'")
    yield  # on failure the transaction is aborted and the error propagates as it is
    conn.exec_driver_sql(f"SET disabled_optimizers = '{before or ''}'")


def _run_model(warehouse: Warehouse, conn: Connection, model: str,
               params: dict[str, Any]) -> None:
    began = time.perf_counter()
    warehouse.run_file(conn, model, params)
    log.info("loyalty model %s: %.2fs", model, time.perf_counter() - began)


# -- run decisions ------------------------------------------------------------------------
def _previous_run(warehouse: Warehouse, conn: Connection) -> _PreviousRun | None:
    row = warehouse.execute(conn, """
        SELECT as_of, program_fingerprint FROM loyalty_runs
        ORDER BY as_of DESC, finished_at DESC LIMIT 1
    """).first()
    return _PreviousRun(row[0], row[1]) if row else None


def _full_reason(asked: bool, previous: _PreviousRun | None, program: Program) -> str | None:
    if asked:
        return "asked for"
    if previous is None:
        return "first run"
    if previous.program_fingerprint != program.fingerprint():
        return "program changed"
    return None


def _stage_work(warehouse: Warehouse, conn: Connection, params: dict[str, Any]) -> None:
    """The partitions to fold in, and the business dates they span (:work_from, :work_to):
    the models read staging rows only within them, so DuckDB skips older row groups."""
    warehouse.run_file(conn, "loyalty/005_clear_work.sql")
    warehouse.run_file(conn, "loyalty/010_partitions.sql", params)
    if warehouse.dialect == "postgresql":
        # Statistics of this run's partitions: without them PostgreSQL takes the staging rows
        # they select for a handful and merge-joins check facts on location alone (a full
        # recomputation of 30 days x 10 locations: 020_check_facts 42 s instead of 1.5 s; of a
        # year, with nested loops off, more than 15 minutes instead of 28 s).
        warehouse.execute(conn, "ANALYZE loyalty_work_partitions")
    first, last = warehouse.execute(conn, """
        SELECT MIN(business_date), MAX(business_date) FROM loyalty_work_partitions
    """).one()
    params["work_from"] = first or params["as_of"]
    params["work_to"] = last or params["as_of"]


def _late_data(warehouse: Warehouse, conn: Connection, previous_as_of: date) -> str | None:
    """A partition at or before the previous run's day (late or reloaded) needs a full run."""
    late = warehouse.execute(conn, """
        SELECT COUNT(*) FROM loyalty_work_partitions
        WHERE business_date <= CAST(:previous_as_of AS DATE)
    """, {"previous_as_of": previous_as_of}).scalar()
    if late:
        return f"{late} partition(s) staged at or before the previous run's day"
    return None


def _registry(warehouse: Warehouse, conn: Connection) -> list[RegisteredMember]:
    rows = warehouse.execute(conn, """
        SELECT external_id, anchor_location_id, anchor_check_id, enrolled_on
        FROM loyalty_members
    """).all()
    return [RegisteredMember(*row) for row in rows]


# -- the program as tables ----------------------------------------------------------------
def _write_program(warehouse: Warehouse, conn: Connection, program: Program) -> None:
    for table in ("loyalty_program_settings", "loyalty_program_tiers",
                  "loyalty_program_exclusions", "loyalty_program_rewards"):
        warehouse.execute(conn, f"DELETE FROM {table}")
    inactivity = program.inactivity
    warehouse.execute(conn, """
        INSERT INTO loyalty_program_settings (
            passkit_program_id, timezone, points_per_currency_unit, min_qualifying_visits,
            welcome_bonus_points, window_days, reengage_after_days, expire_points_after_days,
            revoke_pass_after_days, revoke_when_all_refunded, base_tier_id,
            default_phone_region)
        VALUES (:program_id, :timezone, :rate, :min_visits, :bonus, :window_days,
                :reengage, :expire, :revoke, :revoke_refunded, :base_tier, :phone_region)
    """, {"program_id": program.program.passkit_program_id,
          "timezone": program.program.timezone,
          "rate": program.earn.points_per_currency_unit,
          "min_visits": program.enrolment.min_qualifying_visits,
          "bonus": program.enrolment.welcome_bonus_points,
          "window_days": program.tiers.window_days,
          "reengage": inactivity.reengage_after_days,
          "expire": inactivity.expire_points_after_days,
          "revoke": inactivity.revoke_pass_after_days,
          "revoke_refunded": program.revoke.when_all_spend_refunded,
          "base_tier": program.tiers.levels[0].id,
          "phone_region": program.program.default_phone_region})
    _insert_rows(warehouse, conn, "loyalty_program_tiers", ("tier_id", "tier_rank", "min_spend"),
                 [(level.id, rank, level.min_spend)
                  for rank, level in enumerate(program.tiers.levels)])
    exclusions = {("menu_item", _name_key(name)) for name in program.earn.exclude_menu_items}
    exclusions |= {("sales_category", _name_key(name))
                   for name in program.earn.exclude_sales_categories}
    _insert_rows(warehouse, conn, "loyalty_program_exclusions", ("kind", "name_key"),
                 sorted(exclusions))
    rewards = {(reward.id, _name_key(item), reward.passkit_campaign_id, reward.passkit_offer_id)
               for reward in program.rewards for item in reward.menu_items}
    _insert_rows(warehouse, conn, "loyalty_program_rewards",
                 ("reward_id", "menu_item_key", "passkit_campaign_id", "passkit_offer_id"),
                 sorted(rewards))


def _name_key(name: str) -> str:
    return name.strip().lower()


def _insert_rows(warehouse: Warehouse, conn: Connection, table: str, columns: Sequence[str],
                 rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    placeholders = ", ".join(f":{c}" for c in columns)
    conn.execute(sa.text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"),
                 [dict(zip(columns, row, strict=True)) for row in rows])


# -- identity -----------------------------------------------------------------------------
_CHECK_COLUMNS = ("location_id", "check_id", "business_date", "email", "raw_phone",
                  "customer_id", "qualifying")


def _identity_pass(warehouse: Warehouse, conn: Connection, program: Program, day: date,
                   full: bool, registry: list[RegisteredMember]) -> IdentityResult:
    """Phones to E.164, then the union-find over identifiers; results into work tables."""
    checks = _fetch_arrow(warehouse, conn, f"""
        SELECT {', '.join(_CHECK_COLUMNS)} FROM loyalty_work_checks
        ORDER BY business_date, location_id, check_id
    """)
    phones = _phone_numbers(warehouse, conn, program.program.default_phone_region)

    existing_identifiers: dict[str, str] = {}
    existing_guests: dict[str, GuestState] = {}
    if not full and checks.num_rows:
        wanted = sorted({i for batch in _check_identities(checks, phones) for check in batch
                         for i in check.identifiers()})
        warehouse.insert_arrow(conn, "loyalty_work_identifiers", pa.table(
            {"identifier": pa.array(wanted, pa.string()),
             "guest_id": pa.nulls(len(wanted), pa.string())}))
        # the known identifiers with their guests' state, one read of each table
        rows = warehouse.execute(conn, """
            SELECT i.identifier, i.guest_id, g.first_business_date, g.first_location_id,
                   g.first_check_id, g.qualifying_checks, g.has_contact, g.first_visit_on,
                   g.last_visit_on, g.carrier_external_id, g.carrier_enrolled_on
            FROM loyalty_identifiers i
            JOIN loyalty_work_identifiers w ON w.identifier = i.identifier
            LEFT JOIN loyalty_guests g ON g.guest_id = i.guest_id
        """).all()
        existing_identifiers = {row[0]: row[1] for row in rows}
        existing_guests = {row[1]: GuestState(*row[1:]) for row in rows if row[2] is not None}
        warehouse.execute(conn, "DELETE FROM loyalty_work_identifiers")

    identity = IdentityPass(program.program.passkit_program_id,
                            program.enrolment.min_qualifying_visits,
                            existing_identifiers, existing_guests, registry)
    for batch in _check_identities(checks, phones):
        identity.add_day(batch[0].business_date, batch)
    result = identity.result(day)
    _write_identity(warehouse, conn, checks, result)
    return result


def _fetch_arrow(warehouse: Warehouse, conn: Connection, sql: str) -> pa.Table:
    if warehouse.dialect == "duckdb":
        return conn.connection.driver_connection.sql(sql).to_arrow_table()
    result = conn.execute(sa.text(sql))
    columns = list(result.keys())
    rows = result.all()
    return pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})


def _phone_numbers(warehouse: Warehouse, conn: Connection, region: str) -> dict[str, str | None]:
    """E.164 of every raw phone of the work checks, parsing only those never seen before."""
    rows = warehouse.execute(conn, """
        SELECT DISTINCT w.raw_phone, p.phone_e164,
               CASE WHEN p.raw_phone IS NULL THEN 0 ELSE 1 END AS known
        FROM loyalty_work_checks w
        LEFT JOIN loyalty_phone_numbers p ON p.raw_phone = w.raw_phone AND p.region = :region
        WHERE w.raw_phone IS NOT NULL
    """, {"region": region}).all()
    phones = {raw: e164 for raw, e164, known in rows if known}
    unknown = sorted({raw for raw, _, known in rows if not known})
    parsed = [normalise_phone(raw, region) for raw in unknown]
    phones.update(zip(unknown, parsed, strict=True))
    warehouse.insert_arrow(conn, "loyalty_phone_numbers", pa.table({
        "raw_phone": pa.array(unknown, pa.string()),
        "region": pa.array([region] * len(unknown), pa.string()),
        "phone_e164": pa.array(parsed, pa.string()),
    }))
    return phones


def _check_identities(checks: pa.Table, phones: dict[str, str | None],
                      ) -> Iterator[list[CheckIdentity]]:
    """The work checks (sorted by business date) one business day at a time, so that only
    one day's check objects live at once."""
    dates = checks.column("business_date").to_pylist()
    start = 0
    while start < len(dates):
        end = start
        while end < len(dates) and dates[end] == dates[start]:
            end += 1
        day = checks.slice(start, end - start)
        columns = [day.column(name).to_pylist() for name in _CHECK_COLUMNS]
        yield [CheckIdentity(location_id, check_id, business_date, email,
                             phones.get(raw_phone) if raw_phone else None, customer_id,
                             bool(qualifying))
               for location_id, check_id, business_date, email, raw_phone, customer_id,
               qualifying in zip(*columns, strict=True)]
        start = end


def _write_identity(warehouse: Warehouse, conn: Connection, checks: pa.Table,
                    result: IdentityResult) -> None:
    string, day = pa.string(), pa.date32()
    warehouse.insert_arrow(conn, "loyalty_work_identities", pa.table({
        "location_id": checks.column("location_id"),
        "check_id": checks.column("check_id"),
        "guest_id": pa.array(result.check_guests, string),
        "covered_by": pa.array(result.covered_by, string),
        "covered_on": pa.array(result.covered_on, day),
    }))
    warehouse.insert_arrow(conn, "loyalty_work_identifiers", pa.table({
        "identifier": pa.array([i for i, _ in result.new_identifiers], string),
        "guest_id": pa.array([g for _, g in result.new_identifiers], string),
    }))
    warehouse.insert_arrow(conn, "loyalty_work_guest_remap", pa.table({
        "old_guest_id": pa.array([old for old, _ in result.guest_remap], string),
        "new_guest_id": pa.array([new for _, new in result.guest_remap], string),
    }))
    warehouse.insert_arrow(conn, "loyalty_work_covers", pa.table({
        "guest_id": pa.array([c[0] for c in result.covers], string),
        "external_id": pa.array([c[1] for c in result.covers], string),
        "covered_on": pa.array([c[2] for c in result.covers], day),
    }))
    guests = result.guests
    warehouse.insert_arrow(conn, "loyalty_work_guest_rows", pa.table({
        "guest_id": pa.array([g.guest_id for g in guests], string),
        "first_business_date": pa.array([g.first_business_date for g in guests], day),
        "first_location_id": pa.array([g.first_location_id for g in guests], string),
        "first_check_id": pa.array([g.first_check_id for g in guests], string),
        "qualifying_checks": pa.array([g.qualifying_checks for g in guests], pa.int32()),
        "has_contact": pa.array([g.has_contact for g in guests], pa.bool_()),
        "first_visit_on": pa.array([g.first_visit_on for g in guests], day),
        "last_visit_on": pa.array([g.last_visit_on for g in guests], day),
        "carrier_external_id": pa.array([g.carrier_external_id for g in guests], string),
        "carrier_enrolled_on": pa.array([g.carrier_enrolled_on for g in guests], day),
    }))
    members = result.members
    warehouse.insert_arrow(conn, "loyalty_work_member_rows", pa.table({
        "external_id": pa.array([m.external_id for m in members], string),
        "guest_id": pa.array([m.guest_id for m in members], string),
        "enrolled_on": pa.array([m.enrolled_on for m in members], day),
        "anchor_location_id": pa.array([m.anchor_location_id for m in members], string),
        "anchor_check_id": pa.array([m.anchor_check_id for m in members], string),
        "merged_into": pa.array([m.merged_into for m in members], string),
        "merged_on": pa.array([m.merged_on for m in members], day),
    }))
    warehouse.insert_arrow(conn, "loyalty_work_member_merges", pa.table({
        "external_id": pa.array([m[0] for m in result.merges], string),
        "merged_into": pa.array([m[1] for m in result.merges], string),
        "merged_on": pa.array([m[2] for m in result.merges], day),
    }))


# -- summary ------------------------------------------------------------------------------
def _summarise(warehouse: Warehouse, conn: Connection, run_id: str, day: date, full: bool,
               previous: _PreviousRun | None, identity: IdentityResult,
               registry: list[RegisteredMember]) -> LoyaltySummary:
    def count(sql: str, params: dict[str, Any] | None = None) -> int:
        return int(warehouse.execute(conn, sql, params).scalar() or 0)

    known = {m.external_id for m in registry}
    enrolled = sum(1 for m in identity.members if m.external_id not in known)
    # every count of pass states from one read of the table (it holds every member)
    members = active = revocations = 0
    tiers: dict[str, int] = {}
    for tier_id, status, newly_revoked, n in warehouse.execute(conn, """
        SELECT tier_id, status,
               status = 'revoked' AND revoked_on > CAST(:previous_as_of AS DATE), COUNT(*)
        FROM pass_states
        GROUP BY 1, 2, 3
    """, {"previous_as_of": previous.as_of if previous else EPOCH}).all():
        members += n
        if status == "active":
            active += n
            tiers[str(tier_id)] = tiers.get(str(tier_id), 0) + n
        if newly_revoked:
            revocations += n
    by_run = {"run_id": run_id}
    return LoyaltySummary(
        run_id=run_id, as_of=day, mode="full" if full else "incremental",
        partitions=count("SELECT COUNT(*) FROM loyalty_work_partitions"),
        checks=count("SELECT COUNT(*) FROM loyalty_work_checks"),
        guests_recomputed=count("SELECT COUNT(*) FROM loyalty_work_guests"),
        guests_from_checkpoint=count("SELECT COUNT(*) FROM loyalty_work_checkpoints"),
        guests=count("SELECT COUNT(*) FROM loyalty_guests"),
        members=members,
        active_members=active,
        members_to_enrol=enrolled,
        points_issued=count("""
            SELECT SUM(points) FROM loyalty_ledger
            WHERE run_id = :run_id AND kind IN ('earn', 'bonus')
        """, by_run),
        tier_counts=dict(sorted(tiers.items())),
        coupons=count("SELECT COUNT(*) FROM pass_coupons WHERE run_id = :run_id", by_run),
        reengagements=count("SELECT COUNT(*) FROM reengagements WHERE run_id = :run_id",
                            by_run),
        revocations=revocations,
    )
