"""The PassKit sync: loads the desired pass states into PassKit exactly once.

A reverse-ETL sync in the manner of Hightouch or Census. The warehouse keeps, per member and
per coupon, what PassKit holds (passkit_sync_members / passkit_sync_coupons) and a log of
every call (passkit_sync_log). A run:

1. plans (SQL: the diff between `pass_states` and the sync state) and stops, sending
   nothing, if it would revoke more than `max_revocation_share` of the members;
2. reconciles every call whose outcome is unknown (left 'sent' by a crash, or 'uncertain'
   after a timeout, dropped connection or 5xx) by reading PassKit: the member by externalId,
   its member events by externalEventId, the coupon by externalId;
3. sends only what differs, from a thread pool sharing the client's rate limiter: one
   enrol call carries balance, tier, person and message; balances move by earn/burn deltas
   against the last applied balance (never set points: a staff burn must survive), each
   with an externalEventId unique to (member, from, to, sequence) and written to the
   warehouse before the call goes out;
4. records each result (state, attempts, exponential next attempt, a reason a person can
   read after `max_attempts`) and repeats 2-3 for calls that settle within the run.

`read_back` lists the members PassKit changed since the last read-back and turns staff
redemptions (POINTS_BURNED events the sync did not make) into `passkit_redemptions`, which
the loyalty ledger counts; the sync's applied balance follows, so nothing is burned twice.

Logs carry counts and external ids only: never a guest's name, e-mail or phone.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any

from toast_passkit.passkit.client import (
    PassKitAuthError,
    PassKitClient,
    PassKitClientError,
    PassKitError,
    PassKitNotFound,
    PassKitOutcomeUnknown,
    PassKitUnavailable,
    format_timestamp,
)
from toast_passkit.passkit.plan import (
    CouponPlan,
    MemberPlan,
    RevocationGuardError,
    SyncPlan,
    guard_error,
    person_hash,
    points_event_id,
    points_value,
)
from toast_passkit.passkit.state import (
    FAILED,
    GIVEN_UP,
    NEW,
    PENDING,
    SENT,
    SYNCED,
    UNCERTAIN,
    CouponRow,
    LogEntry,
    MemberRow,
    Redemption,
    SyncStore,
)
from toast_passkit.warehouse import Warehouse

log = logging.getLogger(__name__)

__all__ = [
    "PassKitSync",
    "PassKitSyncAborted",
    "ReadbackReport",
    "RevocationGuardError",
    "SyncConfig",
    "SyncReport",
    "plan_sync",
    "read_back_redemptions",
    "requeue_given_up",
    "run_sync",
]

MESSAGE_FIELD = "reengagementMessage"
_EMAIL = re.compile(r"[^\s'\"]+@[^\s'\"]+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


class PassKitSyncAborted(RuntimeError):
    """The run stopped early (PassKit unreachable, credentials refused); state is saved."""


class SyncConfigError(ValueError):
    """The sync is configured wrongly (program id, settings)."""


@dataclass(frozen=True)
class SyncConfig:
    """How a sync behaves. Defaults suit production; tests shrink the delays.

    threads: members synced in parallel (they share the client's rate limiter).
    max_attempts: failed tries of a member or coupon before it is parked ('given_up').
    retry_base_seconds / retry_max_seconds: next attempt after n failures is
        base * 2**(n-1), capped.
    settle_seconds: how long after a call with an unknown outcome PassKit is read to find
        out what happened (a request that timed out may still be applied meanwhile).
    max_passes: reconcile-then-send passes in one run (calls that settle within the run are
        finished in it).
    max_revocation_share: the run stops before sending anything when it would revoke more
        than this share of the members in PassKit.
    sample_size: planned operations listed by a dry run.
    breaker_threshold: consecutive members failing because PassKit is unreachable before the
        run stops sending (and fails).
    batch_size: members handed to the pool per write-ahead transaction (0: threads * 4).
    flush_seconds: results are written at least this often.
    lease_seconds: lifetime of the run lease (renewed at every write).
    event_id_prefix: marks the externalEventIds the sync makes (a burn without it is staff's).
    reactivate_expiry: expiry date that reactivates a soft-revoked pass.
    readback_overlap_seconds: the read-back re-reads changes this far before its watermark.
    readback_full_scan: list every member instead of those updated since the watermark.
    """

    threads: int = 4
    max_attempts: int = 5
    retry_base_seconds: float = 300.0
    retry_max_seconds: float = 6 * 3600.0
    settle_seconds: float = 120.0
    max_passes: int = 3
    max_revocation_share: float = 0.10
    sample_size: int = 20
    breaker_threshold: int = 10
    batch_size: int = 0
    flush_seconds: float = 1.0
    lease_seconds: float = 900.0
    event_id_prefix: str = "tpk-"
    reactivate_expiry: datetime = datetime(2099, 12, 31, tzinfo=UTC)
    readback_overlap_seconds: float = 6 * 3600.0
    readback_full_scan: bool = False

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise SyncConfigError(f"threads must be >= 1, got {self.threads}")
        if self.max_attempts < 1:
            raise SyncConfigError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not 0.0 <= self.max_revocation_share <= 1.0:
            raise SyncConfigError(
                f"max_revocation_share must be within [0, 1], got {self.max_revocation_share}")
        if self.max_passes < 1 or self.breaker_threshold < 1:
            raise SyncConfigError("max_passes and breaker_threshold must be >= 1")
        if min(self.retry_base_seconds, self.retry_max_seconds, self.settle_seconds,
               self.flush_seconds, self.readback_overlap_seconds) < 0:
            raise SyncConfigError("delays must be >= 0")
        if self.lease_seconds <= 0:
            raise SyncConfigError("lease_seconds must be > 0")
        if not self.event_id_prefix:
            raise SyncConfigError("event_id_prefix must not be empty")

    @property
    def dispatch_batch(self) -> int:
        return self.batch_size or self.threads * 4

    def next_attempt(self, attempts: int, now: datetime) -> datetime:
        """When a record that failed `attempts` times is tried again."""
        delay = min(self.retry_base_seconds * 2 ** max(attempts - 1, 0), self.retry_max_seconds)
        return now + timedelta(seconds=delay)


@dataclass
class SyncReport:
    """What a run did, in counts and ids (no personal data)."""

    run_id: str
    dry_run: bool
    plan: dict[str, Any]
    passes: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    given_up: list[str] = field(default_factory=list)
    aborted: str | None = None

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "dry_run": self.dry_run, "plan": self.plan,
                "passes": self.passes, "calls": dict(self.calls),
                "total_calls": self.total_calls, "outcomes": dict(self.outcomes),
                "given_up": list(self.given_up), "aborted": self.aborted}


@dataclass
class ReadbackReport:
    """What a read-back found, in counts (no personal data)."""

    run_id: str
    listed: int = 0
    examined: int = 0
    redemptions: int = 0
    points_redeemed: Decimal = Decimal(0)
    drift_corrected: int = 0
    duplicates: int = 0
    unknown_members: int = 0
    skipped_unsettled: int = 0
    calls: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "listed": self.listed, "examined": self.examined,
                "redemptions": self.redemptions, "points_redeemed": str(self.points_redeemed),
                "drift_corrected": self.drift_corrected, "duplicates": self.duplicates,
                "unknown_members": self.unknown_members,
                "skipped_unsettled": self.skipped_unsettled, "calls": dict(self.calls)}


def _now() -> datetime:
    return datetime.now(UTC)


def _scrub(text: str) -> str:
    """Remove anything that looks like an e-mail address or a phone number."""
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


def describe_error(exc: BaseException) -> str:
    """One line about a failed call, safe for the log table (no bodies, no personal data)."""
    if not isinstance(exc, PassKitError):
        return _scrub(f"{type(exc).__name__}: {exc}")[:500]
    parts = [f"{type(exc).__name__}: {exc.reason}"]
    if exc.status is not None:
        parts.append(f"HTTP {exc.status}")
    if exc.message:
        parts.append(_scrub(exc.message)[:300])
    return "; ".join(parts)


def _status_of(exc: BaseException) -> int | None:
    return getattr(exc, "status", None)


def _points(value: Any) -> Decimal:
    return points_value(value if value is not None else 0)


def _event_amount(event: Mapping[str, Any]) -> Decimal | None:
    for key in ("amount", "pointsAmount", "pointsDelta"):
        if event.get(key) not in (None, ""):
            return abs(_points(event[key]))
    return None


def _event_time(event: Mapping[str, Any]) -> datetime:
    for key in ("created", "createdAt", "timestamp", "eventTime"):
        value = event.get(key)
        if isinstance(value, str) and value:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return _now()


def _event_external_id(event: Mapping[str, Any]) -> str:
    details = event.get("eventDetails") or {}
    return str(details.get("externalEventId") or event.get("externalId") or "")


# ---------------------------------------------------------------------- jobs


class _Uncertain(Exception):
    """A non-idempotent call's outcome is unknown: stop this record's calls here."""


@dataclass
class _JobResult:
    """What one job hands back to the coordinator (which alone writes the warehouse)."""

    member: MemberRow | None = None
    coupons: list[CouponRow] = field(default_factory=list)
    entries: list[LogEntry] = field(default_factory=list)
    redemptions: list[Redemption] = field(default_factory=list)
    unreachable: bool = False  # PassKit could not be reached / refused our credentials
    auth_failed: bool = False


class _Recorder:
    """Makes PassKit calls for one record and logs each one (request summaries only)."""

    def __init__(self, external_id: str, attempt: int) -> None:
        self.external_id = external_id
        self.attempt = attempt
        self.entries: list[LogEntry] = []

    def call(self, operation: str, request: Mapping[str, Any] | None,
             fn: Callable[..., Any], *args: Any, coupon: str | None = None,
             **kwargs: Any) -> Any:
        at, started = _now(), time.monotonic()
        try:
            result = fn(*args, **kwargs)
        except PassKitError as exc:
            outcome = "uncertain" if isinstance(exc, PassKitOutcomeUnknown) else "failed"
            self.entries.append(LogEntry(
                self.external_id, operation, outcome, at, request=request,
                status_code=_status_of(exc), error=describe_error(exc), attempt=self.attempt,
                elapsed_ms=int((time.monotonic() - started) * 1000),
                coupon_external_id=coupon))
            raise
        self.entries.append(LogEntry(
            self.external_id, operation, "ok", at, request=request, status_code=200,
            attempt=self.attempt, elapsed_ms=int((time.monotonic() - started) * 1000),
            coupon_external_id=coupon))
        return result

    def note(self, operation: str, outcome: str, request: Mapping[str, Any] | None = None,
             *, error: str | None = None, coupon: str | None = None) -> None:
        self.entries.append(LogEntry(self.external_id, operation, outcome, _now(),
                                     request=request, error=error, attempt=self.attempt,
                                     coupon_external_id=coupon))


class _Jobs:
    """The PassKit calls of one member (and its coupons); runs in a pool thread.

    Jobs never touch the warehouse: they return rows for the coordinator to write.
    """

    def __init__(self, client: PassKitClient, program_id: str, config: SyncConfig,
                 run_id: str) -> None:
        self.client = client
        self.program_id = program_id
        self.config = config
        self.run_id = run_id

    # -- shared pieces ------------------------------------------------------------------
    def _finish_failure(self, row: MemberRow | CouponRow, exc: BaseException,
                        rec: _Recorder, now: datetime, *, label: str) -> None:
        row.attempts += 1
        row.last_status_code = _status_of(exc)
        error = describe_error(exc)
        if row.attempts >= self.config.max_attempts:
            row.sync_state = GIVEN_UP
            row.next_attempt_at = None
            row.last_error = (
                f"gave up after {row.attempts} attempts; last error: {error}. Fix the cause, "
                "then requeue it (toast_passkit.passkit.sync.requeue_given_up); it is also "
                "tried again when its desired state changes.")
            coupon = row.coupon_external_id if isinstance(row, CouponRow) else None
            rec.note(label, "given_up", error=row.last_error, coupon=coupon)
        else:
            row.sync_state = FAILED
            row.next_attempt_at = self.config.next_attempt(row.attempts, now)
            row.last_error = error

    def snapshot(self, member: Mapping[str, Any], rec: _Recorder,
                  ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The member and its events, read so that they agree: events between two reads of
        the member that show the same `updated` (a change in between is retried)."""
        current = dict(member)
        for _ in range(3):
            events = rec.call("events", None, self.client.list_member_events, current["id"])
            again = rec.call("lookup", None, self.client.get_member, current["id"])
            if (again.get("updated"), again.get("points")) == (current.get("updated"),
                                                                current.get("points")):
                return again, events
            current = again
        return current, events

    def staff_burns(self, external_id: str,
                     events: Iterable[Mapping[str, Any]]) -> list[Redemption]:
        burns = []
        for event in events:
            if event.get("eventType") != "POINTS_BURNED" or not event.get("id"):
                continue
            if _event_external_id(event).startswith(self.config.event_id_prefix):
                continue  # a burn the sync made
            amount = _event_amount(event)
            if amount is None or amount <= 0:
                continue
            burns.append(Redemption(str(event["id"]), external_id, amount, _event_time(event)))
        return burns

    def _adopt(self, row: MemberRow, member: Mapping[str, Any], rec: _Recorder,
               now: datetime) -> list[Redemption]:
        """Take what PassKit holds as applied (a member enrolled by a call whose answer was
        lost). Staff burns on it are returned as redemptions: its balance already lost them.
        """
        member, events = self.snapshot(member, rec)
        expired = str(member.get("status", "")).upper() == "EXPIRED"
        person = member.get("person") or {}
        row.passkit_member_id = str(member["id"])
        row.applied_status = "revoked" if expired else "active"
        row.applied_revoke_mode = "expire" if expired else None
        row.applied_tier_id = member.get("tierId")
        row.applied_points = _points(member.get("points"))
        row.applied_person_hash = person_hash(
            person.get("forename"), person.get("surname"), person.get("emailAddress"),
            person.get("mobileNumber"))
        row.applied_message = (member.get("metaData") or {}).get(MESSAGE_FIELD)
        row.applied_at = now
        rec.note("lookup", "adopted", {"tier_id": row.applied_tier_id,
                                       "points": str(row.applied_points)})
        return self.staff_burns(row.external_id, events)

    def _enrol_body(self, plan: MemberPlan) -> dict[str, Any]:
        body: dict[str, Any] = {"externalId": plan.external_id, "programId": self.program_id,
                                "tierId": plan.tier_id, "points": plan.points}
        person = plan.person.as_passkit()
        if person:
            body["person"] = person
        if plan.message:
            body["metaData"] = {MESSAGE_FIELD: plan.message}
        return body

    # -- member -------------------------------------------------------------------------
    def member_job(self, plan: MemberPlan | None, row: MemberRow | None,
                   coupons: Sequence[CouponPlan]) -> _JobResult:
        """Bring one member to its desired pass, then issue its coupons."""
        result = _JobResult()
        member_active = bool(coupons) and coupons[0].member_applied_status == "active"
        if plan is not None and row is not None:
            rec = _Recorder(plan.external_id, row.attempts + 1)
            try:
                self._member_calls(plan, row, rec, result)
                row.sync_state = SYNCED
                row.attempts = 0
                row.next_attempt_at = None
                row.last_status_code = row.last_error = None
                row.clear_operation()
            except _Uncertain as exc:
                row.sync_state = UNCERTAIN
                row.attempts += 1
                row.next_attempt_at = _now() + timedelta(seconds=self.config.settle_seconds)
                cause = exc.__cause__ or exc
                row.last_status_code = _status_of(cause)
                row.last_error = describe_error(cause)
            except PassKitError as exc:
                result.unreachable = isinstance(exc, PassKitUnavailable | PassKitAuthError)
                result.auth_failed = isinstance(exc, PassKitAuthError)
                if isinstance(exc, PassKitNotFound) and not plan.needs_enrol:
                    # The pass is gone from PassKit (deleted outside the sync): enrol it again.
                    row.applied_status = row.applied_revoke_mode = row.passkit_member_id = None
                    rec.note("lookup", "absent", error="member not found in PassKit")
                self._finish_failure(row, exc, rec, _now(), label="member")
            row.updated_at = _now()
            row.last_run_id = self.run_id
            result.member = row
            result.entries.extend(rec.entries)
            member_active = row.sync_state == SYNCED and row.applied_status == "active"
        for coupon in coupons:
            if not member_active:
                result.coupons.append(self.coupon_waits(coupon))
                continue
            crow, entries, unreachable = self.coupon_job(coupon)
            result.coupons.append(crow)
            result.entries.extend(entries)
            result.unreachable = result.unreachable or unreachable
        return result

    def _member_calls(self, plan: MemberPlan, row: MemberRow, rec: _Recorder,
                      result: _JobResult) -> None:
        client, pid = self.client, self.program_id
        if plan.needs_enrol:
            self._enrol(plan, row, rec, result)
            return
        if plan.needs_delete:
            rec.call("delete", {"revoke_mode": "delete"}, client.delete_member,
                     plan.external_id, program_id=pid)
            row.applied_status, row.applied_revoke_mode = "revoked", "delete"
            row.applied_at = _now()
            return
        if plan.needs_reactivate:
            expiry = self.config.reactivate_expiry
            rec.call("reactivate", {"expiry": format_timestamp(expiry)}, client.update_expiry,
                     plan.external_id, expiry, program_id=pid)
            row.applied_status, row.applied_revoke_mode = "active", None
            row.applied_at = _now()
        tier_sent = False
        if plan.points_delta != 0:
            self._move_points(plan, row, rec)
            tier_sent = plan.tier_in_points_call
        if plan.needs_update:
            body: dict[str, Any] = {"externalId": plan.external_id, "programId": pid}
            request: dict[str, Any] = {"fields": []}
            if plan.needs_person and plan.person.as_passkit():
                body["person"] = plan.person.as_passkit()
                request["fields"].append("person")
            if plan.needs_message and plan.message:
                body["metaData"] = {MESSAGE_FIELD: plan.message}
                request["fields"].append("metaData")
            if plan.needs_tier and not tier_sent:
                body["tierId"] = plan.tier_id
                request["tier_id"] = plan.tier_id
                tier_sent = True
            if len(body) > 2:
                rec.call("update", request, client.update_member, body)
            row.applied_person_hash = plan.person_hash
            row.applied_message = plan.message
            if "tierId" in body:
                row.applied_tier_id = plan.tier_id
            row.applied_at = _now()
        if plan.needs_tier and not tier_sent:
            rec.call("tier", {"tier_id": plan.tier_id}, client.change_tier, plan.external_id,
                     plan.tier_id, program_id=pid)
            row.applied_tier_id = plan.tier_id
            row.applied_at = _now()
        if plan.needs_expire:
            expiry = self._revocation_expiry(plan.revoked_on)
            rec.call("expire", {"expiry": format_timestamp(expiry)}, client.update_expiry,
                     plan.external_id, expiry, program_id=pid)
            row.applied_status, row.applied_revoke_mode = "revoked", "expire"
            row.applied_at = _now()

    def _revocation_expiry(self, revoked_on: date | None) -> datetime:
        latest = _now() - timedelta(minutes=1)
        if revoked_on is None:
            return latest
        return min(datetime.combine(revoked_on, dtime(0, 0), tzinfo=UTC), latest)

    def _enrol(self, plan: MemberPlan, row: MemberRow, rec: _Recorder,
               result: _JobResult) -> None:
        """Enrol with balance and tier in the body. Any failure but 'certainly not sent' is
        looked up by externalId first: PassKit keeps externalIds unique, so when the lookup
        finds nothing, enrolling again cannot create a second member."""
        request = {"tier_id": plan.tier_id, "points": str(plan.points),
                   "metaData": ["reengagementMessage"] if plan.message else []}
        for attempt in (1, 2):
            try:
                member_id = rec.call("enrol", request, self.client.enrol_member,
                                     self._enrol_body(plan))
            except (PassKitOutcomeUnknown, PassKitClientError) as exc:
                if isinstance(exc, PassKitAuthError):
                    raise
                found = rec.call("lookup", None, self.client.get_member_by_external_id,
                                 plan.external_id, program_id=self.program_id)
                if found is not None:
                    result.redemptions.extend(self._adopt(row, found, rec, _now()))
                    return
                rec.note("lookup", "absent")
                if isinstance(exc, PassKitOutcomeUnknown) and attempt == 1:
                    continue
                raise
            row.passkit_member_id = member_id
            row.applied_status, row.applied_revoke_mode = "active", None
            row.applied_tier_id = plan.tier_id
            row.applied_points = plan.points
            row.applied_person_hash = plan.person_hash
            row.applied_message = plan.message
            row.applied_at = _now()
            return

    def _move_points(self, plan: MemberPlan, row: MemberRow, rec: _Recorder) -> None:
        """Earn or burn the delta. Its externalEventId and balances were written to the
        warehouse ('sent') before this call; an unknown outcome is never repeated here."""
        delta = plan.points_delta
        request: dict[str, Any] = {"points_delta": str(delta), "from": str(row.op_from_points),
                                   "to": str(row.op_to_points), "event_id": row.op_event_id}
        tier = plan.tier_id if plan.tier_in_points_call else None
        if tier:
            request["tier_id"] = tier
        move = self.client.earn_points if delta > 0 else self.client.burn_points
        try:
            rec.call("earn" if delta > 0 else "burn", request, move, plan.external_id,
                     abs(delta), external_event_id=row.op_event_id, tier_id=tier,
                     program_id=self.program_id)
        except PassKitOutcomeUnknown as exc:
            raise _Uncertain from exc
        row.applied_points = plan.points
        row.points_sequence += 1
        if tier:
            row.applied_tier_id = tier
        row.applied_at = _now()
        row.op_event_id = row.op_from_points = row.op_to_points = row.op_tier_id = None

    # -- coupons ------------------------------------------------------------------------
    def coupon_waits(self, coupon: CouponPlan) -> CouponRow:
        """A coupon whose member is not in PassKit yet: back in the queue, no attempt."""
        row = replace(coupon.prior, last_run_id=self.run_id, updated_at=_now())
        if row.sync_state in (NEW, SENT):
            row.sync_state = PENDING
        return row

    def coupon_job(self, coupon: CouponPlan) -> tuple[CouponRow, list[LogEntry], bool]:
        """Issue one coupon. Its externalId is unique in its campaign: any doubtful answer
        (unknown outcome, 409, 400) is looked up before anything else is done."""
        row = replace(coupon.prior, last_run_id=self.run_id)
        rec = _Recorder(row.external_id, row.attempts + 1)
        cid = row.coupon_external_id
        body = {"campaignId": row.passkit_campaign_id, "offerId": row.passkit_offer_id,
                "externalId": cid, "metaData": {"memberExternalId": row.external_id,
                                                 "source": row.source}}
        request = {"campaign_id": row.passkit_campaign_id, "offer_id": row.passkit_offer_id}
        unreachable = False
        try:
            for attempt in (1, 2):
                try:
                    row.passkit_coupon_id = rec.call("issue_coupon", request,
                                                     self.client.issue_coupon, body, coupon=cid)
                    break
                except (PassKitOutcomeUnknown, PassKitClientError) as exc:
                    if isinstance(exc, PassKitAuthError):
                        raise
                    found = rec.call("lookup", None, self.client.get_coupon_by_external_id,
                                     row.passkit_campaign_id, cid, coupon=cid)
                    if found is not None:
                        row.passkit_coupon_id = str(found.get("id") or "") or None
                        rec.note("lookup", "adopted", coupon=cid)
                        break
                    rec.note("lookup", "absent", coupon=cid)
                    if isinstance(exc, PassKitOutcomeUnknown) and attempt == 1:
                        continue
                    raise
            row.sync_state = SYNCED
            row.attempts = 0
            row.next_attempt_at = None
            row.last_status_code = row.last_error = None
            row.issued_at = _now()
        except PassKitError as exc:
            unreachable = isinstance(exc, PassKitUnavailable | PassKitAuthError)
            self._finish_failure(row, exc, rec, _now(), label="coupon")
        row.updated_at = _now()
        return row, rec.entries, unreachable

    # -- reconciliation -----------------------------------------------------------------
    def reconcile_member(self, row: MemberRow) -> _JobResult:
        """Find out what a call with an unknown outcome did, by reading PassKit.

        - an enrol: the member by externalId (found: its state is adopted);
        - an earn/burn: the member's events carrying the call's externalEventId; the
          balance moves once per event found (two events: PassKit applied it twice, and
          the next plan takes the surplus back);
        - idempotent calls (update, tier, expiry, delete) need no look-up: the plan sends
          them again if PassKit still differs.
        Afterwards the member is 'pending' and the plan decides what is left to send.
        """
        result = _JobResult()
        rec = _Recorder(row.external_id, row.attempts)
        calls = set((row.op_calls or "").split(","))
        now = _now()
        try:
            if "enrol" in calls:
                found = rec.call("lookup", None, self.client.get_member_by_external_id,
                                 row.external_id, program_id=self.program_id)
                if found is None:
                    rec.note("lookup", "absent", {"calls": sorted(calls)})
                else:
                    result.redemptions.extend(self._adopt(row, found, rec, now))
            if row.op_event_id:
                self._reconcile_points(row, rec, now)
        except PassKitError as exc:
            # Still unknown: keep the operation (never plan around it) and try again later.
            row.sync_state = UNCERTAIN
            row.attempts += 1
            row.next_attempt_at = self.config.next_attempt(row.attempts, now)
            row.last_status_code = _status_of(exc)
            row.last_error = "reconciliation failed, retried later: " + describe_error(exc)
            result.unreachable = isinstance(exc, PassKitUnavailable | PassKitAuthError)
        else:
            row.sync_state = PENDING
            row.next_attempt_at = None
            row.clear_operation()
        row.updated_at = now
        row.last_run_id = self.run_id
        result.member = row
        result.entries = rec.entries
        return result

    def _reconcile_points(self, row: MemberRow, rec: _Recorder, now: datetime) -> None:
        event_id = row.op_event_id
        member_id = row.passkit_member_id
        if member_id is None:
            found = rec.call("lookup", None, self.client.get_member_by_external_id,
                             row.external_id, program_id=self.program_id)
            member_id = None if found is None else str(found["id"])
        events = [] if member_id is None else rec.call(
            "events", {"event_id": event_id}, self.client.list_member_events, member_id)
        applied = sum(1 for e in events if _event_external_id(e) == event_id)
        start, end = _points(row.op_from_points), _points(row.op_to_points)
        request = {"event_id": event_id, "from": str(start), "to": str(end),
                   "events_found": applied}
        if applied == 0:
            rec.note("reconcile", "not_applied", request)
            return
        row.applied_points = start + applied * (end - start)
        row.points_sequence += 1
        if row.op_tier_id:
            row.applied_tier_id = row.op_tier_id
        row.applied_at = now
        rec.note("reconcile", "applied" if applied == 1 else "duplicate", request)

    def reconcile_coupon(self, row: CouponRow) -> tuple[CouponRow, list[LogEntry], bool]:
        """A coupon issue with an unknown outcome: the coupon by externalId decides."""
        rec = _Recorder(row.external_id, row.attempts)
        now = _now()
        try:
            found = rec.call("lookup", None, self.client.get_coupon_by_external_id,
                             row.passkit_campaign_id, row.coupon_external_id,
                             coupon=row.coupon_external_id)
        except PassKitError as exc:
            row.sync_state = UNCERTAIN
            row.attempts += 1
            row.next_attempt_at = self.config.next_attempt(row.attempts, now)
            row.last_error = "reconciliation failed, retried later: " + describe_error(exc)
            row.updated_at = now
            return row, rec.entries, isinstance(exc, PassKitUnavailable | PassKitAuthError)
        if found is None:
            rec.note("lookup", "absent", coupon=row.coupon_external_id)
            row.sync_state = PENDING
        else:
            rec.note("lookup", "adopted", coupon=row.coupon_external_id)
            row.passkit_coupon_id = str(found.get("id") or "") or None
            row.sync_state = SYNCED
            row.attempts = 0
            row.last_error = None
            row.issued_at = row.issued_at or now
        row.next_attempt_at = None
        row.updated_at = now
        row.last_run_id = self.run_id
        return row, rec.entries, False


# ---------------------------------------------------------------------- the run


@dataclass
class _Task:
    """One unit of work for the pool, with the rows written before it is sent."""

    external_id: str
    run: Callable[[], _JobResult]
    ahead_member: MemberRow | None = None
    ahead_coupons: list[CouponRow] = field(default_factory=list)
    not_started: Callable[[], _JobResult] | None = None


class PassKitSync:
    """A sync between the warehouse's pass states and one PassKit program.

    One instance = one run id. `plan()` makes no call; `run()` sends; `read_back()` reads
    staff redemptions. The client may be shared (its rate limiter is shared by the pool).
    """

    def __init__(self, warehouse: Warehouse, client: PassKitClient | None, *,
                 program_id: str, revoke_mode: str = "expire",
                 config: SyncConfig | None = None, run_id: str | None = None) -> None:
        if not program_id or program_id == "REPLACE_ME":
            raise SyncConfigError(
                "the program's passkit_program_id is not set (program file, key "
                "program.passkit_program_id)")
        if revoke_mode not in ("expire", "delete"):
            raise SyncConfigError(f"revoke mode must be 'expire' or 'delete', got {revoke_mode!r}")
        self.store = SyncStore(warehouse)
        self.program_id = program_id
        self.revoke_mode = revoke_mode
        self.config = config or SyncConfig()
        self.run_id = run_id or f"sync-{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self._jobs = None if client is None else _Jobs(client, program_id, self.config,
                                                       self.run_id)
        self._counts: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self._given_up: list[str] = []

    # -- plan -----------------------------------------------------------------------------
    def plan(self, as_of: date) -> SyncPlan:
        """The diff as of business date `as_of` (SQL only, no call)."""
        now = _now()
        self.store.prepare_plan(as_of=as_of, revoke_mode=self.revoke_mode, now=now)
        members, coupons = self.store.due_reconciliations(now)
        return SyncPlan.from_rows(
            self.store.planned_members(now), self.store.planned_coupons(now),
            reconcile_members=len(members), reconcile_coupons=len(coupons),
            members_in_passkit=self.store.active_member_count())

    # -- run ------------------------------------------------------------------------------
    def run(self, as_of: date, *, dry_run: bool = False, kind: str | None = None,
            ) -> SyncReport:
        """Plan, check the revocation guard, then (unless `dry_run`) reconcile and send.

        `kind` names the run in passkit_sync_runs (default 'dry_run' or 'apply'; the DAG's
        plan step is recorded as 'plan').
        """
        store, config = self.store, self.config
        if not dry_run and self._jobs is None:
            raise SyncConfigError("a PassKit client is needed to send (only a dry run works "
                                  "without one)")
        store.acquire_lease(self.run_id, config.lease_seconds)
        store.start_run(self.run_id, kind or ("dry_run" if dry_run else "apply"), as_of,
                        _now())
        report = SyncReport(self.run_id, dry_run, plan={})
        outcome = "failed"
        try:
            plan = self.plan(as_of)
            report.plan = plan.summary(config.sample_size, config.max_revocation_share)
            if plan.guard_tripped(config.max_revocation_share):
                outcome = "guard"
                if not dry_run:
                    plan.check_guard(config.max_revocation_share)
            if dry_run:
                log.info("PassKit sync %s dry run as of %s: %s (nothing sent)", self.run_id,
                         as_of, report.plan["counts"])
                outcome = "ok" if outcome != "guard" else outcome
                return report
            self._passes(as_of, plan, report)
            outcome = "aborted" if report.aborted else "ok"
        finally:
            report.calls = dict(self.client_calls())
            report.outcomes = dict(self._outcomes)
            report.given_up = list(self._given_up)
            try:
                store.finish_run(self.run_id, outcome, report.as_dict())
            finally:
                store.release_lease(self.run_id)
        log.info("PassKit sync %s as of %s: %d calls %s, outcomes %s, %d given up, %d passes",
                 self.run_id, as_of, report.total_calls, report.calls, report.outcomes,
                 len(report.given_up), report.passes)
        if report.aborted:
            raise PassKitSyncAborted(report.aborted)
        return report

    @property
    def jobs(self) -> _Jobs:
        if self._jobs is None:
            raise SyncConfigError("no PassKit client: this sync can only plan")
        return self._jobs

    def client_calls(self) -> Counter[str]:
        """Calls made by this run, per operation of the log (lookups included)."""
        return Counter(self._counts)

    def _passes(self, as_of: date, plan: SyncPlan, report: SyncReport) -> None:
        """Reconcile-then-send passes until nothing is left that this run can finish: calls
        with an unknown outcome are waited for (up to settle_seconds) and looked up, and
        whatever they leave undone is planned and sent again."""
        config, store = self.config, self.store
        for number in range(config.max_passes):
            delay = self._settling_delay()
            if delay:
                log.info("PassKit sync %s: waiting %.1fs for calls to settle", self.run_id,
                         delay)
                time.sleep(delay)
            members, coupons = store.due_reconciliations(_now())
            reconciled = bool(members or coupons)
            if reconciled:
                tasks = [self._reconcile_member_task(row) for row in members]
                tasks += [self._reconcile_coupon_task(row) for row in coupons]
                self._execute(tasks, report)
                if report.aborted:
                    return
            if number or reconciled:
                plan = self.plan(as_of)
                plan.check_guard(config.max_revocation_share)
            if not plan.is_empty:
                report.passes = number + 1
                self._execute(self._plan_tasks(plan), report)
                if report.aborted:
                    return
            settling = self._settling_delay() is not None
            if not settling and (plan.is_empty or not self._retry_now()):
                break

    def _settling_delay(self) -> float | None:
        """Seconds until the next 'sent' or 'uncertain' record may be looked up, when that is
        within settle_seconds (None: there is none, or it waits for a later run)."""
        due = self.store.next_reconciliation_at()
        if due is None:
            return None
        delay = (due - _now()).total_seconds()
        return max(delay, 0.0) if delay <= self.config.settle_seconds + 1 else None

    def _retry_now(self) -> bool:
        """Failed records may be retried within the run only when the back-off is zero."""
        return self.config.retry_base_seconds == 0

    # -- tasks ----------------------------------------------------------------------------
    def _plan_tasks(self, plan: SyncPlan) -> list[_Task]:
        now = _now()
        settle = timedelta(seconds=self.config.settle_seconds)
        by_member: dict[str, list[CouponPlan]] = {}
        for coupon in plan.coupons:
            by_member.setdefault(coupon.external_id, []).append(coupon)
        tasks: list[_Task] = []
        member_plans = {m.external_id: m for m in plan.members}
        for external_id in sorted(set(member_plans) | set(by_member)):
            member = member_plans.get(external_id)
            coupons = by_member.get(external_id, [])
            row = self._write_ahead(member, now, settle) if member else None
            ahead_coupons = [replace(c.prior, sync_state=SENT, next_attempt_at=now + settle,
                                     last_run_id=self.run_id, updated_at=now)
                             for c in coupons]
            tasks.append(_Task(
                external_id,
                run=lambda m=member, r=row, c=coupons: self.jobs.member_job(
                    m, None if r is None else replace(r), c),
                ahead_member=row, ahead_coupons=ahead_coupons,
                not_started=lambda m=member, c=coupons: self._not_started(m, c)))
        return tasks

    def _write_ahead(self, plan: MemberPlan, now: datetime, settle: timedelta) -> MemberRow:
        """The member's row as written before its calls go out: 'sent', with the calls, the
        desired hash and, for a points change, its externalEventId and balances."""
        row = replace(plan.prior, sync_state=SENT, op_calls=",".join(plan.calls),
                      op_desired_hash=plan.desired_hash, next_attempt_at=now + settle,
                      last_run_id=self.run_id, updated_at=now)
        row.op_event_id = row.op_from_points = row.op_to_points = row.op_tier_id = None
        if plan.points_delta != 0:
            start = _points(plan.prior.applied_points)
            sequence = plan.prior.points_sequence + 1
            row.op_from_points, row.op_to_points = start, plan.points
            row.op_event_id = points_event_id(self.config.event_id_prefix, plan.external_id,
                                              start, plan.points, sequence)
            row.op_tier_id = plan.tier_id if plan.tier_in_points_call else None
        return row

    def _not_started(self, plan: MemberPlan | None,
                     coupons: Sequence[CouponPlan]) -> _JobResult:
        """Rows of a task cancelled before it ran (the run stopped): back in the queue."""
        result = _JobResult()
        now = _now()
        if plan is not None:
            prior = plan.prior
            state = PENDING if prior.sync_state in (NEW, SYNCED, PENDING) else prior.sync_state
            result.member = replace(prior, sync_state=state, last_run_id=self.run_id,
                                    updated_at=now)
        result.coupons = [self.jobs.coupon_waits(c) for c in coupons]
        return result

    def _reconcile_member_task(self, row: MemberRow) -> _Task:
        return _Task(row.external_id, run=lambda r=row: self.jobs.reconcile_member(replace(r)))

    def _reconcile_coupon_task(self, row: CouponRow) -> _Task:
        def run(r: CouponRow = row) -> _JobResult:
            crow, entries, unreachable = self.jobs.reconcile_coupon(replace(r))
            return _JobResult(coupons=[crow], entries=entries, unreachable=unreachable)

        return _Task(row.external_id, run=run)

    # -- execution ------------------------------------------------------------------------
    def _execute(self, tasks: Sequence[_Task], report: SyncReport) -> None:
        """Run tasks on the pool: each batch is written 'sent' before it is handed over,
        results are written at least every flush_seconds. Stops handing out work when
        PassKit is unreachable `breaker_threshold` members in a row."""
        config, store = self.config, self.store
        queue: deque[_Task] = deque(tasks)
        inflight: dict[Future[_JobResult], _Task] = {}
        buffer: list[_JobResult] = []
        failures_in_row = 0
        last_flush = time.monotonic()
        crash: BaseException | None = None
        batch = config.dispatch_batch

        def flush() -> None:
            nonlocal last_flush
            if buffer:
                self._save(buffer)
                buffer.clear()
            last_flush = time.monotonic()

        with ThreadPoolExecutor(max_workers=config.threads,
                                thread_name_prefix="passkit-sync") as pool:
            while queue or inflight:
                if queue and not report.aborted and len(inflight) < batch:
                    handed = [queue.popleft() for _ in range(min(batch, len(queue)))]
                    members = [t.ahead_member for t in handed if t.ahead_member is not None]
                    coupons = [c for t in handed for c in t.ahead_coupons]
                    if members or coupons:
                        store.save(run_id=self.run_id, members=members, coupons=coupons,
                                   lease_seconds=config.lease_seconds)
                    for task in handed:
                        inflight[pool.submit(task.run)] = task
                if not inflight:
                    break
                done, _ = wait(list(inflight), timeout=max(config.flush_seconds, 0.05),
                               return_when=FIRST_COMPLETED)
                for future in done:
                    task = inflight.pop(future)
                    if future.cancelled():
                        if task.not_started is not None:
                            buffer.append(task.not_started())
                        continue
                    error = future.exception()
                    if error is not None:
                        # A bug, not a PassKit answer: the task's rows stay 'sent' and the
                        # next run reconciles them. Fail this run once the rest is saved.
                        log.error("PassKit sync %s: job for %s crashed: %s", self.run_id,
                                  task.external_id, describe_error(error))
                        crash = crash or error
                        continue
                    result = future.result()
                    buffer.append(result)
                    failures_in_row = failures_in_row + 1 if result.unreachable else 0
                    if (result.auth_failed or failures_in_row >= config.breaker_threshold) \
                            and not report.aborted:
                        report.aborted = (
                            "stopped sending: PassKit refused the credentials"
                            if result.auth_failed else
                            f"stopped sending: PassKit unreachable for {failures_in_row} "
                            "members in a row (circuit breaker)")
                        log.error("PassKit sync %s: %s", self.run_id, report.aborted)
                        for other, other_task in list(inflight.items()):
                            if other.cancel():
                                inflight.pop(other)
                                if other_task.not_started is not None:
                                    buffer.append(other_task.not_started())
                        queue.clear()  # never handed out, never written 'sent'
                if len(buffer) >= batch or time.monotonic() - last_flush >= config.flush_seconds:
                    flush()
            flush()
        if crash is not None:
            raise crash

    def _save(self, results: Sequence[_JobResult]) -> None:
        members = [r.member for r in results if r.member is not None]
        coupons = [c for r in results for c in r.coupons]
        entries = [e for r in results for e in r.entries]
        redemptions = [x for r in results for x in r.redemptions]
        self.store.save(run_id=self.run_id, members=members, coupons=coupons, entries=entries,
                        redemptions=redemptions, lease_seconds=self.config.lease_seconds)
        for entry in entries:
            if entry.outcome in ("ok", "failed", "uncertain"):
                self._counts[entry.operation] += 1
            self._outcomes[f"{entry.operation}:{entry.outcome}"] += 1
        self._given_up.extend(m.external_id for m in members if m.sync_state == GIVEN_UP)
        self._given_up.extend(c.coupon_external_id for c in coupons if c.sync_state == GIVEN_UP)

    # -- read-back ------------------------------------------------------------------------
    def read_back(self) -> ReadbackReport:
        """Read staff redemptions (and drift) back from PassKit into the warehouse.

        Lists the members PassKit changed since the last read-back (one call), and reads the
        events of those whose balance is not what the sync applied (two calls each).
        New POINTS_BURNED events the sync did not make become passkit_redemptions, and the
        member's applied balance drops by them in the same transaction, so the next plan
        neither burns them again nor credits them back. Any difference left (a change made
        in PassKit outside the rules, or a call applied twice) is logged as drift and the
        applied state set to what PassKit holds, so the next sync brings it back in line.
        """
        store, config, _ = self.store, self.config, self.jobs
        store.acquire_lease(self.run_id, config.lease_seconds)
        started = _now()
        store.start_run(self.run_id, "readback", None, started)
        report = ReadbackReport(self.run_id)
        outcome = "failed"
        try:
            self._read_back(report)
            outcome = "ok"
        finally:
            report.calls = dict(self._counts)
            try:
                store.finish_run(self.run_id, outcome, report.as_dict())
            finally:
                store.release_lease(self.run_id)
        log.info("PassKit read-back %s: %s", self.run_id, report.as_dict())
        return report

    def _read_back(self, report: ReadbackReport) -> None:
        config, store = self.config, self.store
        watermark = None if config.readback_full_scan else store.readback_watermark()
        groups = None
        if watermark is not None:
            since = watermark - timedelta(seconds=config.readback_overlap_seconds)
            groups = [{"condition": "AND", "fieldFilters": [{
                "filterField": "updated", "filterOperator": "gte",
                "filterValue": since.astimezone(UTC).isoformat(
                    timespec="milliseconds").replace("+00:00", "Z")}]}]
        listed = self.jobs.client.list_members(self.program_id, filter_groups=groups)
        self._counts["list_members"] += 1
        members = {str(m["externalId"]): m for m in listed if m.get("externalId")}
        report.listed = len(members)
        rows = store.members_by_id(members)
        report.unknown_members = sum(1 for ext in members if ext not in rows)
        now = _now()
        to_examine: list[tuple[MemberRow, dict[str, Any]]] = []
        direct: list[MemberRow] = []
        entries: list[LogEntry] = []
        for external_id, member in sorted(members.items()):
            row = rows.get(external_id)
            if row is None or row.applied_status is None:
                continue
            if row.sync_state in (SENT, UNCERTAIN):
                report.skipped_unsettled += 1
                continue
            changed = self._status_and_tier_drift(row, member, entries, now)
            if _points(member.get("points")) != _points(row.applied_points):
                to_examine.append((row, member))
            elif changed:
                direct.append(row)
        report.examined = len(to_examine)
        findings = self._map(lambda item: self._examine(*item), to_examine)
        recorded = store.recorded_redemption_ids(
            b.passkit_event_id for _, _, burns, _ in findings for b in burns)
        redemptions: list[Redemption] = []
        for row, member, burns, rec_entries in findings:
            entries.extend(rec_entries)
            new = [b for b in burns if b.passkit_event_id not in recorded]
            recorded.update(b.passkit_event_id for b in new)
            for burn in new:
                entries.append(LogEntry(row.external_id, "redemption", "recorded", now,
                                        request={"points": str(burn.points),
                                                 "passkit_event_id": burn.passkit_event_id}))
            expected = _points(row.applied_points) - sum((b.points for b in new), Decimal(0))
            actual = _points(member.get("points"))
            row.applied_points = expected
            if actual != expected:
                report.drift_corrected += 1
                entries.append(LogEntry(row.external_id, "drift", "corrected", now, request={
                    "field": "points", "expected": str(expected), "actual": str(actual),
                    "difference": str(actual - expected)}))
                row.applied_points = actual
            row.updated_at, row.last_run_id = now, self.run_id
            redemptions.extend(new)
            report.redemptions += len(new)
            report.points_redeemed += sum((b.points for b in new), Decimal(0))
            report.duplicates += sum(1 for e in rec_entries if e.outcome == "duplicate")
            direct.append(row)
        report.drift_corrected += sum(1 for e in entries if e.operation == "drift"
                                      and e.request and e.request.get("field") != "points")
        store.save(run_id=self.run_id, members=direct, entries=entries,
                   redemptions=redemptions, lease_seconds=config.lease_seconds)

    def _status_and_tier_drift(self, row: MemberRow, member: Mapping[str, Any],
                               entries: list[LogEntry], now: datetime) -> bool:
        """A tier or expiry changed in PassKit outside the sync: note it, and take PassKit's
        value as applied so that the next sync puts the desired one back."""
        changed = False
        expired = str(member.get("status", "")).upper() == "EXPIRED"
        status = "revoked" if expired else "active"
        if row.applied_status != status and row.applied_revoke_mode != "delete":
            entries.append(LogEntry(row.external_id, "drift", "corrected", now, request={
                "field": "status", "expected": row.applied_status, "actual": status}))
            row.applied_status = status
            row.applied_revoke_mode = "expire" if expired else None
            changed = True
        tier = member.get("tierId")
        if tier and tier != row.applied_tier_id and row.applied_status == "active":
            entries.append(LogEntry(row.external_id, "drift", "corrected", now, request={
                "field": "tier", "expected": row.applied_tier_id, "actual": tier}))
            row.applied_tier_id = tier
            changed = True
        if changed:
            row.updated_at, row.last_run_id = now, self.run_id
        return changed

    def _examine(self, row: MemberRow, member: Mapping[str, Any],
                 ) -> tuple[MemberRow, dict[str, Any], list[Redemption], list[LogEntry]]:
        rec = _Recorder(row.external_id, 1)
        member, events = self.jobs.snapshot(member, rec)
        burns = self.jobs.staff_burns(row.external_id, events)
        ours = Counter(_event_external_id(e) for e in events
                       if _event_external_id(e).startswith(self.config.event_id_prefix))
        for event_id, seen in ours.items():
            if seen > 1:
                rec.note("events", "duplicate", {"event_id": event_id, "events_found": seen})
        return row, dict(member), burns, rec.entries

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=self.config.threads,
                                thread_name_prefix="passkit-readback") as pool:
            results = list(pool.map(fn, items))
        for _, _, _, rec_entries in results:
            for entry in rec_entries:
                if entry.outcome in ("ok", "failed", "uncertain"):
                    self._counts[entry.operation] += 1
        return results


# ---------------------------------------------------------------------- public functions


def plan_sync(warehouse: Warehouse, *, program_id: str, as_of: date,
              revoke_mode: str = "expire", config: SyncConfig | None = None,
              ) -> dict[str, Any]:
    """A dry run: the plan's counts and a sample of planned operations; no call is made
    (no PassKit client is needed)."""
    sync = PassKitSync(warehouse, None, program_id=program_id, revoke_mode=revoke_mode,
                       config=config)
    return sync.run(as_of, dry_run=True).plan


def run_sync(warehouse: Warehouse, client: PassKitClient | None, *, program_id: str,
             as_of: date, revoke_mode: str = "expire", config: SyncConfig | None = None,
             dry_run: bool = False, run_id: str | None = None,
             kind: str | None = None) -> SyncReport:
    """Bring PassKit to the desired pass states as of business date `as_of` (a dry run
    makes no call and needs no client)."""
    sync = PassKitSync(warehouse, client, program_id=program_id, revoke_mode=revoke_mode,
                       config=config, run_id=run_id)
    return sync.run(as_of, dry_run=dry_run, kind=kind)


def read_back_redemptions(warehouse: Warehouse, client: PassKitClient, *, program_id: str,
                          config: SyncConfig | None = None,
                          run_id: str | None = None) -> ReadbackReport:
    """Record staff redemptions made in PassKit into passkit_redemptions (see read_back)."""
    sync = PassKitSync(warehouse, client, program_id=program_id, config=config, run_id=run_id)
    return sync.read_back()


def requeue_given_up(warehouse: Warehouse, external_ids: Iterable[str] | None = None) -> int:
    """Put parked ('given_up') members and coupons back in the queue; returns how many."""
    return SyncStore(warehouse).requeue_given_up(external_ids)


# ---------------------------------------------------------------------- Airflow glue


def _config_from_params(params: Mapping[str, Any]) -> SyncConfig:
    values: dict[str, Any] = {}
    for name, cast in (("threads", int), ("max_attempts", int), ("sample_size", int),
                       ("max_revocation_share", float)):
        if params.get(name) is not None:
            values[name] = cast(params[name])
    return SyncConfig(**values)


def _open(passkit_conn_id: str | None,
          ) -> tuple[Warehouse, PassKitClient | None, Any, str, str]:
    """The warehouse (migrated), the PassKit client (None without a connection id), its hook,
    and the program's PassKit id and revoke mode (from the program file)."""
    from toast_passkit.loyalty.program import load_program
    from toast_passkit.settings import load_settings

    program = load_program(load_settings().program_file)
    program_id = program.program.passkit_program_id
    if not program_id or program_id == "REPLACE_ME":  # fail before touching anything
        raise SyncConfigError(
            "the program's passkit_program_id is not set (program file "
            f"{load_settings().program_file}, key program.passkit_program_id)")
    warehouse = Warehouse.from_connection()
    warehouse.migrate()
    hook = client = None
    if passkit_conn_id is not None:
        from toast_passkit.passkit.hook import PassKitHook

        hook = PassKitHook(passkit_conn_id)
        client = hook.get_client()
    return warehouse, client, hook, program_id, program.revoke.mode


def _close(warehouse: Warehouse, hook: Any) -> None:
    if hook is not None:
        hook.close()
    warehouse.dispose()


def plan_task(day: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """DAG task: the plan for business date `day` (a dry run: no call, no PassKit
    connection). Unless the run is a dry run, a tripped revocation guard fails the task, so
    nothing is applied."""
    warehouse, _, hook, program_id, mode = _open(None)
    config = _config_from_params(params)
    try:
        report = run_sync(warehouse, None, program_id=program_id,
                          as_of=date.fromisoformat(day), revoke_mode=mode, config=config,
                          dry_run=True, kind="dry_run" if params.get("dry_run") else "plan")
    finally:
        _close(warehouse, hook)
    plan = report.plan
    log.info("PassKit sync plan as of %s: %s; revocations %d of %d members; sample %s", day,
             plan["counts"], plan["revocations"], plan["members_in_passkit"], plan["sample"])
    if plan["guard_tripped"] and not params.get("dry_run"):
        raise guard_error(plan["revocations"], plan["members_in_passkit"],
                          config.max_revocation_share)
    return report.as_dict()


def wants_apply(planned: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """DAG gate: False (the run stops after the plan) for a dry run."""
    if params.get("dry_run"):
        log.info("PassKit sync dry run: nothing sent (plan %s)", planned["plan"]["counts"])
        return False
    return True


def apply_task(day: str, params: Mapping[str, Any],
               passkit_conn_id: str = "passkit_default") -> dict[str, Any]:
    """DAG task: reconcile and send, for business date `day`."""
    warehouse, client, hook, program_id, mode = _open(passkit_conn_id)
    try:
        report = run_sync(warehouse, client, program_id=program_id,
                          as_of=date.fromisoformat(day), revoke_mode=mode,
                          config=_config_from_params(params))
    finally:
        _close(warehouse, hook)
    return report.as_dict()


def readback_task(params: Mapping[str, Any] | None = None,
                  passkit_conn_id: str = "passkit_default") -> dict[str, Any]:
    """DAG task: read staff redemptions back from PassKit."""
    warehouse, client, hook, program_id, _ = _open(passkit_conn_id)
    try:
        report = read_back_redemptions(warehouse, client, program_id=program_id,
                                       config=_config_from_params(params or {}))
    finally:
        _close(warehouse, hook)
    return report.as_dict()


def report_task(apply: Mapping[str, Any], readback: Mapping[str, Any]) -> dict[str, Any]:
    """DAG task: the run's calls and outcomes next to the state of every record (counts)."""
    warehouse = Warehouse.from_connection()
    try:
        store = SyncStore(warehouse)
        states = store.state_counts()
        log_counts = store.run_log_counts(str(apply["run_id"]))
    finally:
        warehouse.dispose()
    summary = {"run_id": apply["run_id"], "calls": apply.get("calls", {}),
               "total_calls": apply.get("total_calls", 0), "log": log_counts,
               "states": states, "given_up": len(apply.get("given_up", [])),
               "readback": dict(readback)}
    log.info("PassKit sync %s: %d calls; members by state %s; coupons by state %s; "
             "%d parked; read-back %s", apply["run_id"], summary["total_calls"],
             states["member"], states["coupon"], summary["given_up"], dict(readback))
    if summary["given_up"]:
        log.warning("PassKit sync %s: %d records parked after repeated failures; see "
                    "passkit_sync_members / passkit_sync_coupons where sync_state = "
                    "'given_up' (last_error says why)", apply["run_id"], summary["given_up"])
    return summary
