"""The PassKit sync plan: which calls bring each member and coupon to its desired state.

The diff itself is SQL (include/sql/passkit/plan_members.sql, plan_coupons.sql); this module
turns its rows into `MemberPlan` / `CouponPlan` values, orders each member's calls, counts
the plan for a dry run (with a sample of ids, never person data) and applies the
revocation guard. Pure functions and values: no I/O.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from toast_passkit.passkit.state import NEW, CouponRow, MemberRow

#: Logical operations counted in a plan (a tier change folded into a points call counts as
#: both 'points' and 'tier'; calls_planned counts HTTP calls).
OPERATIONS: tuple[str, ...] = (
    "enrol", "points", "tier", "update", "coupon", "revoke", "reinstate", "reconcile")
CENTS = Decimal("0.01")


class RevocationGuardError(RuntimeError):
    """A run would revoke more members than the configured share: nothing was sent."""


def points_value(value: Any) -> Decimal:
    """A points amount as the warehouse keeps it (DECIMAL(12,2))."""
    return Decimal(str(value)).quantize(CENTS)


def person_hash(forename: str | None, surname: str | None, email: str | None,
                phone: str | None) -> str:
    """MD5 of the person fields, exactly as 040_desired_members.sql computes it."""
    text = "|".join(value or "" for value in (forename, surname, email, phone))
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def points_event_id(prefix: str, external_id: str, from_points: Decimal, to_points: Decimal,
                    sequence: int) -> str:
    """The externalEventId of one points change: the same change (member, balances moved
    between, sequence number) always gets the same id, and no other change gets it."""
    key = f"{external_id}|{points_value(from_points)}|{points_value(to_points)}|{sequence}"
    return prefix + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def guard_error(revocations: int, members_in_passkit: int,
                max_share: float) -> RevocationGuardError:
    """The revocation guard's error, saying what to check and how to go on if intended."""
    share = revocations / members_in_passkit if members_in_passkit else 0.0
    return RevocationGuardError(
        f"revocation guard: this run would revoke {revocations} of {members_in_passkit} "
        f"members in PassKit ({share:.1%}), more than max_revocation_share {max_share:.1%}. "
        "Nothing was sent. Check the loyalty run (inactivity thresholds, refunds, merges); "
        f"if the revocations are intended, run again with max_revocation_share >= "
        f"{share:.2f}.")


@dataclass(frozen=True)
class Person:
    """A member's person fields (personal data: never logged, never stored by the sync)."""

    forename: str | None = None
    surname: str | None = None
    email: str | None = None
    phone: str | None = None

    def __repr__(self) -> str:
        return "Person(<redacted>)"

    def as_passkit(self) -> dict[str, str]:
        """PassKit's `person` object, empty fields left out (PATCH ignores them anyway)."""
        fields = {"forename": self.forename, "surname": self.surname,
                  "emailAddress": self.email, "mobileNumber": self.phone}
        return {k: v for k, v in fields.items() if v}


@dataclass(frozen=True)
class MemberPlan:
    """What to send for one member: its sync row now, the desired pass, and the flags."""

    prior: MemberRow
    status: str
    revoke_mode: str
    revoked_on: date | None
    tier_id: str
    points: Decimal
    person_hash: str
    message: str | None
    desired_hash: str
    needs_enrol: bool
    needs_reactivate: bool
    needs_expire: bool
    needs_delete: bool
    points_delta: Decimal
    needs_tier: bool
    needs_person: bool
    needs_message: bool
    person: Person = field(default_factory=Person, repr=False)

    @property
    def external_id(self) -> str:
        return self.prior.external_id

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MemberPlan:
        """Build from one row of plan_members.sql."""
        prior = MemberRow.from_mapping(row)
        if row["sync_state"] == NEW:
            prior.sync_state = NEW
        return cls(
            prior=prior, status=row["status"], revoke_mode=row["revoke_mode"],
            revoked_on=row["revoked_on"], tier_id=row["tier_id"],
            points=points_value(row["points"]), person_hash=row["person_hash"],
            message=row["message"], desired_hash=row["desired_hash"],
            needs_enrol=bool(row["needs_enrol"]),
            needs_reactivate=bool(row["needs_reactivate"]),
            needs_expire=bool(row["needs_expire"]), needs_delete=bool(row["needs_delete"]),
            points_delta=points_value(row["points_delta"]), needs_tier=bool(row["needs_tier"]),
            needs_person=bool(row["needs_person"]), needs_message=bool(row["needs_message"]),
            person=Person(row["forename"], row["surname"], row["email"], row["phone"]),
        )

    @property
    def needs_update(self) -> bool:
        return self.needs_person or self.needs_message

    @property
    def tier_in_points_call(self) -> bool:
        """A tier change rides on the earn/burn call (PassKit takes tierId there)."""
        return self.needs_tier and self.points_delta != 0

    @property
    def calls(self) -> tuple[str, ...]:
        """The PassKit calls, in order. One call in the common cases: enrol (balance and
        tier in the body), earn/burn (tier folded in), update (tier folded in), tier."""
        if self.needs_enrol:
            return ("enrol",)
        if self.needs_delete:
            return ("delete",)
        calls: list[str] = []
        if self.needs_reactivate:
            calls.append("reactivate")
        if self.points_delta > 0:
            calls.append("earn")
        elif self.points_delta < 0:
            calls.append("burn")
        if self.needs_tier and self.points_delta == 0 and not self.needs_update:
            calls.append("tier")
        if self.needs_update:
            calls.append("update")
        if self.needs_expire:
            calls.append("expire")
        return tuple(calls)

    @property
    def is_reinstatement(self) -> bool:
        return self.needs_reactivate or (self.needs_enrol and self.prior.applied_status
                                         == "revoked")

    @property
    def operations(self) -> tuple[str, ...]:
        """The logical operations of OPERATIONS this plan performs."""
        if self.needs_enrol:
            return ("reinstate",) if self.is_reinstatement else ("enrol",)
        ops: list[str] = []
        if self.needs_reactivate:
            ops.append("reinstate")
        if self.points_delta != 0:
            ops.append("points")
        if self.needs_tier:
            ops.append("tier")
        if self.needs_update:
            ops.append("update")
        if self.needs_expire or self.needs_delete:
            ops.append("revoke")
        return tuple(ops)

    def summary(self) -> dict[str, Any]:
        """Ids and amounts only (no person data): for dry-run samples and logs."""
        data: dict[str, Any] = {"external_id": self.external_id,
                                "operations": list(self.operations), "calls": list(self.calls)}
        if self.points_delta:
            data["points_delta"] = str(self.points_delta)
            data["points_to"] = str(self.points)
        if self.needs_tier or self.needs_enrol:
            data["tier_id"] = self.tier_id
        if self.needs_enrol:
            data["points"] = str(self.points)
        return data


@dataclass(frozen=True)
class CouponPlan:
    """A coupon to issue, with its sync row now and whether its member is in PassKit."""

    prior: CouponRow
    member_applied_status: str | None = None

    @property
    def coupon_external_id(self) -> str:
        return self.prior.coupon_external_id

    @property
    def external_id(self) -> str:
        return self.prior.external_id

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CouponPlan:
        """Build from one row of plan_coupons.sql."""
        prior = CouponRow.from_mapping(row)
        if row["sync_state"] == NEW:
            prior.sync_state = NEW
        return cls(prior=prior, member_applied_status=row.get("member_applied_status"))

    def summary(self) -> dict[str, Any]:
        return {"external_id": self.external_id, "coupon_external_id": self.coupon_external_id,
                "operations": ["coupon"], "source": self.prior.source}


@dataclass(frozen=True)
class SyncPlan:
    """Everything one pass of a sync would send, plus what must be reconciled first."""

    members: tuple[MemberPlan, ...]
    coupons: tuple[CouponPlan, ...]
    reconcile_members: int = 0
    reconcile_coupons: int = 0
    members_in_passkit: int = 0

    @classmethod
    def from_rows(cls, member_rows: Iterable[Mapping[str, Any]],
                  coupon_rows: Iterable[Mapping[str, Any]], *, reconcile_members: int = 0,
                  reconcile_coupons: int = 0, members_in_passkit: int = 0) -> SyncPlan:
        return cls(members=tuple(MemberPlan.from_row(r) for r in member_rows),
                   coupons=tuple(CouponPlan.from_row(r) for r in coupon_rows),
                   reconcile_members=reconcile_members, reconcile_coupons=reconcile_coupons,
                   members_in_passkit=members_in_passkit)

    @property
    def is_empty(self) -> bool:
        return not (self.members or self.coupons)

    @property
    def revocations(self) -> int:
        return sum(1 for m in self.members if m.needs_expire or m.needs_delete)

    @property
    def revocation_share(self) -> float:
        """Revocations planned / members in PassKit (0 when PassKit holds none)."""
        return self.revocations / self.members_in_passkit if self.members_in_passkit else 0.0

    def guard_tripped(self, max_share: float) -> bool:
        return self.revocations > 0 and self.revocation_share > max_share

    def check_guard(self, max_share: float) -> None:
        """Raise RevocationGuardError when revocations exceed `max_share` of the members."""
        if self.guard_tripped(max_share):
            raise guard_error(self.revocations, self.members_in_passkit, max_share)

    def counts(self) -> dict[str, int]:
        """Operations per kind (see OPERATIONS), calls planned and members/coupons touched."""
        counter: Counter[str] = Counter({op: 0 for op in OPERATIONS})
        for member in self.members:
            counter.update(member.operations)
        counter["coupon"] = len(self.coupons)
        counter["reconcile"] = self.reconcile_members + self.reconcile_coupons
        data = dict(counter)
        data["members"] = len(self.members)
        data["calls_planned"] = sum(len(m.calls) for m in self.members) + len(self.coupons)
        return data

    def sample(self, size: int) -> list[dict[str, Any]]:
        """Up to `size` planned operations, ids and amounts only, taken round-robin over the
        kinds of operation so that rare ones (revoke, reinstate) show up too."""
        if size <= 0:
            return []
        queues: dict[str, list[dict[str, Any]]] = {}
        for member in self.members:
            kind = member.operations[0] if member.operations else "noop"
            queues.setdefault(kind, []).append(member.summary())
        for coupon in self.coupons:
            queues.setdefault("coupon", []).append(coupon.summary())
        picked: list[dict[str, Any]] = []
        while len(picked) < size and any(queues.values()):
            for kind in sorted(queues):
                if queues[kind] and len(picked) < size:
                    picked.append(queues[kind].pop(0))
        return picked

    def summary(self, sample_size: int, max_revocation_share: float) -> dict[str, Any]:
        """The dry-run report: counts, the guard's view and a sample (JSON-ready, no PII)."""
        return {
            "counts": self.counts(),
            "revocations": self.revocations,
            "members_in_passkit": self.members_in_passkit,
            "revocation_share": round(self.revocation_share, 4),
            "max_revocation_share": max_revocation_share,
            "guard_tripped": self.guard_tripped(max_revocation_share),
            "sample": self.sample(sample_size),
        }
