"""Local PassKit sandbox server: the REST surface our client uses, with validation, state, faults.

Like stripe-mock, it is part of the product: the demo, the tests and the benchmarks talk to it
instead of PassKit. It checks what the real service is documented to check (JWT, required
fields, duplicate externalId, tiers, non-negative amounts), keeps its state in a JSON file
(temp file + atomic rename after every mutation) and can inject faults on purpose.

Run it standalone (PYTHONPATH=plugins):

    python -m toast_passkit.passkit.sandbox --port 8765 --state-file var/passkit-sandbox.json \\
        --api-key K --api-secret S [--tiers base,silver,gold] [--fault-rate 0.1 ...]

or from Python: `with run_sandbox_in_thread(api_key=..., api_secret=...) as sandbox: ...`.

Sandbox choices where PassKit is silent or UNCONFIRMED (see docs of each operation below):
duplicate externalId answers 409; unknown fields are rejected with 400 (PassKit may drop
them silently, which is worse); delete removes the member (get answers 404 and the
externalId can be enrolled again) and keeps a tombstone with status DELETED in the state
dump; a voided coupon stays readable with status VOIDED; points are float32 like PassKit's.

Admin endpoints (no auth; bind to loopback only) live under /_sandbox/: health, state,
stats, faults (GET/POST/DELETE), reset, tiers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import re
import secrets
import signal
import socket
import string
import struct
import sys
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt

log = logging.getLogger(__name__)

# The tiers of include/program.example.yaml; real programs pass theirs (--tiers).
DEFAULT_TIERS: tuple[str, ...] = ("base", "silver", "gold")
FAULT_KINDS: tuple[str, ...] = ("503", "429", "slow", "drop", "applied_then_500")
MEMBER_STATUSES = frozenset(
    {"ENROLLED", "ACTIVE", "CHECKED_IN", "EXPIRED", "CHECKED_OUT", "DELETED"}
)
# fmt: off
MEMBER_FIELDS = frozenset({
    "id", "externalId", "programId", "tierId", "person", "metaData", "points",
    "secondaryPoints", "tierPoints", "expiryDate", "status", "optOut", "passOverrides",
    "created", "updated",
})
PERSON_FIELDS = frozenset({
    "forename", "surname", "displayName", "emailAddress", "mobileNumber", "dateOfBirth",
})
POINTS_FIELDS = frozenset({
    "id", "externalId", "programId", "points", "tierPoints", "secondaryPoints", "eventDetails",
    "tierId",
})
SET_POINTS_FIELDS = POINTS_FIELDS | {"resetPoints", "resetTierPoints", "resetSecondaryPoints"}
COUPON_FIELDS = frozenset({
    "id", "campaignId", "offerId", "externalId", "person", "metaData", "sku", "status",
    "expiryDate", "created", "updated",
})
# fmt: on
# Operations whose answer is newline-delimited JSON.
STREAMING = frozenset({"list_members", "list_member_events"})
# gRPC status codes, as grpc-gateway puts them in `{"code", "message", "details"}` bodies.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 409: 6, 413: 3, 429: 8, 500: 13, 503: 14}
_MAX_BODY = 1 << 20
_ID_ALPHABET = string.ascii_letters + string.digits
_MOBILE = re.compile(r"^\+[1-9]\d{5,14}$")

ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), operation)
    for method, pattern, operation in (
        ("POST", r"/members/member", "enrol_member"),
        ("GET", r"/members/member/id/(?P<id>[^/]+)", "get_member"),
        (
            "GET",
            r"/members/member/externalId/(?P<programId>[^/]+)/(?P<externalId>[^/]+)",
            "get_member_by_external_id",
        ),
        ("PUT", r"/members/member", "update_member"),
        ("PUT", r"/members/member/points/earn", "earn_points"),
        ("PUT", r"/members/member/points/burn", "burn_points"),
        ("PUT", r"/members/member/points/set", "set_points"),
        ("PUT", r"/members/member/tier", "change_tier"),
        ("PUT", r"/members/member/updateExpiry", "update_expiry"),
        ("DELETE", r"/members/member", "delete_member"),
        ("POST", r"/members/member/list/events/(?P<id>[^/]+)", "list_member_events"),
        ("POST", r"/members/member/list/(?P<programId>[^/]+)", "list_members"),
        ("POST", r"/coupon/singleUse/coupon", "issue_coupon"),
        (
            "GET",
            r"/coupon/singleUse/coupon/externalId/(?P<campaignId>[^/]+)/(?P<externalId>[^/]+)",
            "get_coupon_by_external_id",
        ),
        ("PUT", r"/coupon/singleUse/coupon/redeem", "redeem_coupon"),
        ("DELETE", r"/coupon/singleUse/coupon", "void_coupon"),
    )
)


_OPERATION_NAMES = frozenset(operation for _, _, operation in ROUTES)


class SandboxError(Exception):
    """An error answer: HTTP status plus the `{"code", "message", "details"}` body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"code": _GRPC_CODES.get(self.status, 2), "message": self.message, "details": []}


def _bad(message: str) -> SandboxError:
    return SandboxError(400, message)


# ---------------------------------------------------------------------- values


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_timestamp(value: Any, name: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise _bad(f"{name} must be an RFC 3339 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _bad(f"{name} is not an RFC 3339 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise _bad(f"{name} needs a time zone (e.g. Z): {value!r}")
    return parsed


def _f32(value: float) -> float:
    """Round to float32 like PassKit, then to the shortest decimal that survives float32.

    Protobuf JSON prints float32 fields in their shortest form, so 10.1 stays 10.1 but
    16777217 becomes 16777216.
    """
    try:
        rounded = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError as exc:
        raise _bad(f"points out of float32 range: {value!r}") from exc
    for digits in range(1, 10):
        text = f"{rounded:.{digits}g}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == rounded:
            return float(text)
    return rounded


def _number(body: Mapping[str, Any], name: str) -> float:
    value = body.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{name} must be a number")
    if value != value or value in (float("inf"), float("-inf")):
        raise _bad(f"{name} must be finite")
    return float(value)


def _uint(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise _bad(f"{name} must be an integer")
    if value < 0:
        raise _bad(f"{name} must be >= 0")
    return int(value)


def _string(body: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise _bad(f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string")
    return value


def _check_fields(body: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _bad(f"unknown field(s) in {what}: {', '.join(unknown)}")


def _new_id() -> str:
    # PassKit ids are 22 characters.
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


def _empty(value: Any) -> bool:
    """PATCH semantics: missing, zero and empty values are ignored."""
    return value is None or value == "" or value == 0 or value == {} or value == []


# ---------------------------------------------------------------------- faults


@dataclass(frozen=True)
class FaultConfig:
    """Which faults to inject, and how.

    rate: probability that an eligible request gets a fault (seeded RNG).
    kinds: chosen uniformly among "503", "429" (with Retry-After), "slow" (sleep
        slow_seconds, then answer normally), "drop" (close the socket without an answer,
        before applying), "applied_then_500" (apply the mutation, then answer 500).
    count: stop after this many faults (None: no limit); operations: only these operations.
    latency_ms: added to every PassKit request, faulty or not (benchmarks use 50).
    retry_after: seconds sent in Retry-After on 429 (fractions allowed, for fast tests).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ("503",)
    retry_after: float = 1.0
    slow_seconds: float = 2.0
    seed: int | None = None
    latency_ms: float = 0.0
    count: int | None = None
    operations: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within [0, 1], got {self.rate!r}")
        unknown = [kind for kind in self.kinds if kind not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}; known: {list(FAULT_KINDS)}")
        if self.rate > 0 and not self.kinds:
            raise ValueError("fault kinds are required when rate > 0")
        bad_ops = [op for op in self.operations or () if op not in _OPERATION_NAMES]
        if bad_ops:
            raise ValueError(f"unknown operation(s) {bad_ops}")
        if min(self.retry_after, self.slow_seconds, self.latency_ms) < 0:
            raise ValueError("retry_after, slow_seconds and latency_ms must be >= 0")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultConfig:
        """Build from JSON-like input (admin endpoint, CLI); unknown keys are an error."""
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        values = dict(data)
        if isinstance(values.get("kinds"), str):
            values["kinds"] = [values["kinds"]]
        if "kinds" in values:
            values["kinds"] = tuple(str(kind) for kind in values["kinds"])
        if values.get("operations") is not None:
            values["operations"] = tuple(values["operations"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(str(exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kinds"] = list(self.kinds)
        data["operations"] = None if self.operations is None else list(self.operations)
        return data


class _FaultInjector:
    """Decides, with a seeded RNG, which request gets which fault."""

    def __init__(self, config: FaultConfig) -> None:
        self._lock = threading.Lock()
        self.configure(config)

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self._left = config.count

    def pick(self, operation: str) -> str | None:
        with self._lock:
            config = self.config
            if config.rate <= 0 or self._left == 0:
                return None
            if config.operations is not None and operation not in config.operations:
                return None
            if self._rng.random() >= config.rate:
                return None
            if self._left is not None:
                self._left -= 1
            return self._rng.choice(config.kinds)


# ---------------------------------------------------------------------- state


class SandboxState:
    """Members, coupons and member events, with PassKit's validation rules.

    Every public operation takes the decoded JSON body and path parameters and returns the
    answer payload, or raises SandboxError. Thread-safe; persisted after each mutation when
    a state file is given.
    """

    def __init__(
        self,
        state_file: str | os.PathLike[str] | None = None,
        *,
        tiers: Sequence[str] | None = DEFAULT_TIERS,
        program_tiers: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._seq = 0
        self._written_seq = 0
        self.state_file = Path(state_file) if state_file else None
        self._default_tiers: frozenset[str] | None = None
        self._program_tiers: dict[str, frozenset[str] | None] = {}
        self.set_tiers(tiers)
        for program, program_tier_ids in (program_tiers or {}).items():
            self.set_tiers(program_tier_ids, program_id=program)
        self._clear()
        if self.state_file and self.state_file.exists():
            self._load(json.loads(self.state_file.read_text(encoding="utf-8")))

    # -- configuration and persistence

    def set_tiers(self, tiers: Sequence[str] | None, *, program_id: str | None = None) -> None:
        """Accepted tier ids for one program, or for every program (None or "*": any tier)."""
        with self._lock:
            accepted = None if tiers is None or "*" in tiers else frozenset(tiers)
            if program_id is None:
                self._default_tiers = accepted
            else:
                self._program_tiers[program_id] = accepted

    def tiers(self) -> dict[str, Any]:
        with self._lock:

            def listed(accepted: frozenset[str] | None) -> list[str] | str:
                return "*" if accepted is None else sorted(accepted)

            return {
                "default": listed(self._default_tiers),
                "programs": {p: listed(t) for p, t in self._program_tiers.items()},
            }

    def _clear(self) -> None:
        self.members: dict[str, dict[str, Any]] = {}
        self.deleted_members: dict[str, dict[str, Any]] = {}
        self.coupons: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._member_ids: dict[tuple[str, str], str] = {}
        self._coupon_ids: dict[tuple[str, str], str] = {}
        self._events_by_member: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def _load(self, data: Mapping[str, Any]) -> None:
        for member in data.get("members", []):
            self._index_member(member)
        for member in data.get("deletedMembers", []):
            self.deleted_members[member["id"]] = member
        for coupon in data.get("coupons", []):
            self.coupons[coupon["id"]] = coupon
            if coupon.get("externalId"):
                self._coupon_ids[(coupon["campaignId"], coupon["externalId"])] = coupon["id"]
        for event in data.get("events", []):
            self.events.append(event)
            self._events_by_member[event["memberId"]].append(event)

    def _index_member(self, member: dict[str, Any]) -> None:
        self.members[member["id"]] = member
        if member.get("externalId"):
            self._member_ids[(member["programId"], member["externalId"])] = member["id"]

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-ready: members, deletedMembers, coupons, events."""
        with self._lock:
            return json.loads(self._dump())

    def _dump(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "members": list(self.members.values()),
                "deletedMembers": list(self.deleted_members.values()),
                "coupons": list(self.coupons.values()),
                "events": self.events,
            },
            separators=(",", ":"),
        )

    def _changed(self) -> None:
        """Note a mutation (called with self._lock held); `flush()` writes it out."""
        self._seq += 1

    def flush(self) -> None:
        """Write the state file (temp file + atomic rename) if it lags behind the data.

        Group commit: a writer snapshots everything changed so far, so mutations that
        queued behind it are already on disk when they get the write lock and skip the
        write. Each answer still leaves only after its own mutation is on disk.
        """
        if self.state_file is None:
            return
        with self._lock:
            wanted = self._seq
        with self._write_lock:
            if self._written_seq >= wanted:
                return
            with self._lock:
                seq, text = self._seq, self._dump()
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.state_file.name}.", dir=self.state_file.parent
            )
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(tmp, self.state_file)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            self._written_seq = seq

    def apply(self, operation: str, body: Mapping[str, Any], params: Mapping[str, str]) -> Any:
        """Run one PassKit operation by name, then persist what it changed."""
        if operation not in _OPERATION_NAMES:
            raise SandboxError(404, f"unknown operation {operation!r}")
        try:
            return getattr(self, operation)(body, params)
        finally:
            self.flush()

    def reset(self) -> None:
        """Forget all members, coupons and events (and persist the empty state)."""
        with self._lock:
            self._clear()
            self._changed()
        self.flush()

    # -- shared validation

    def _check_tier(self, program_id: str, tier_id: str) -> None:
        accepted = self._program_tiers.get(program_id, self._default_tiers)
        if accepted is not None and tier_id not in accepted:
            raise _bad(f"tier {tier_id!r} does not exist in program {program_id!r}")

    @staticmethod
    def _check_person(person: Any) -> dict[str, Any]:
        if not isinstance(person, dict):
            raise _bad("person must be an object")
        _check_fields(person, PERSON_FIELDS, "person")
        for name, value in person.items():
            if name == "dateOfBirth":
                continue  # a string or a {year, month, day} object: accept both
            if value is not None and not isinstance(value, str):
                raise _bad(f"person.{name} must be a string")
        mobile = person.get("mobileNumber")
        if mobile and not _MOBILE.match(mobile):
            raise _bad("person.mobileNumber must look like +{country code}{number}")
        email = person.get("emailAddress")
        if email and "@" not in email:
            raise _bad("person.emailAddress is not an e-mail address")
        return dict(person)

    @staticmethod
    def _check_meta(meta: Any) -> dict[str, str]:
        if not isinstance(meta, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
        ):
            raise _bad("metaData must be an object of string values")
        return dict(meta)

    @staticmethod
    def _expiry_status(expiry: datetime) -> str:
        return "EXPIRED" if expiry <= _now() else "ACTIVE"

    def _member(
        self, body: Mapping[str, Any], id_key: str = "id", external_key: str = "externalId"
    ) -> dict[str, Any]:
        member_id = _string(body, id_key)
        if member_id:
            member = self.members.get(member_id)
        else:
            external_id = _string(body, external_key)
            program_id = _string(body, "programId")
            if not external_id or not program_id:
                raise _bad(f"{id_key} or {external_key} with programId is required")
            found = self._member_ids.get((program_id, external_id))
            member = self.members.get(found) if found else None
        if member is None:
            raise SandboxError(404, "member not found")
        return member

    def _record_event(
        self, member: dict[str, Any], event_type: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        details = body.get("eventDetails") or {}
        if not isinstance(details, dict):
            raise _bad("eventDetails must be an object")
        event = {
            "id": _new_id(),
            "eventType": event_type,
            "memberId": member["id"],
            "programId": member["programId"],
            "memberExternalId": member.get("externalId", ""),
            "externalId": details.get("externalEventId", ""),
            "eventDetails": details,
            "tierId": member["tierId"],
            "points": member["points"],
            "secondaryPoints": member["secondaryPoints"],
            "tierPoints": member["tierPoints"],
            "created": _timestamp(_now()),
        }
        if "points" in body:
            event["amount"] = body["points"]
        self.events.append(event)
        self._events_by_member[member["id"]].append(event)
        return event

    @staticmethod
    def _balances(member: Mapping[str, Any]) -> dict[str, Any]:
        return {
            key: member[key]
            for key in ("id", "externalId", "programId", "points", "secondaryPoints", "tierPoints")
        }

    # -- members

    def enrol_member(self, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """POST /members/member: programId and tierId required; externalId unique → 409."""
        _check_fields(body, MEMBER_FIELDS, "member")
        if body.get("id") or body.get("created") or body.get("updated"):
            raise _bad("id, created and updated are assigned by PassKit")
        program_id = _string(body, "programId", required=True)
        tier_id = _string(body, "tierId", required=True)
        external_id = _string(body, "externalId")
        now = _timestamp(_now())
        member: dict[str, Any] = {
            "id": _new_id(),
            "externalId": external_id,
            "programId": program_id,
            "tierId": tier_id,
            "person": self._check_person(body.get("person") or {}),
            "metaData": self._check_meta(body.get("metaData") or {}),
            "points": _f32(_number(body, "points")),
            "secondaryPoints": _f32(_number(body, "secondaryPoints")),
            "tierPoints": _uint(body, "tierPoints"),
            "expiryDate": "",
            "status": "ENROLLED",
            "optOut": bool(body.get("optOut", False)),
            "passOverrides": body.get("passOverrides") or {},
            "created": now,
            "updated": now,
        }
        if member["points"] < 0 or member["secondaryPoints"] < 0:
            raise _bad("points must be >= 0")
        status = _string(body, "status")
        if status:
            if status not in MEMBER_STATUSES:
                raise _bad(f"unknown status {status!r}")
            member["status"] = status
        if body.get("expiryDate"):
            expiry = _parse_timestamp(body["expiryDate"], "expiryDate")
            member["expiryDate"] = _timestamp(expiry)
            if expiry <= _now():
                member["status"] = "EXPIRED"
        with self._lock:
            self._check_tier(program_id, tier_id)
            if external_id and (program_id, external_id) in self._member_ids:
                raise SandboxError(
                    409, f"member with externalId {external_id!r} already exists in program"
                )
            self._index_member(member)
            self._changed()
        return {"id": member["id"]}

    def get_member(self, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """GET /members/member/id/{id}."""
        with self._lock:
            member = self.members.get(params["id"])
            if member is None:
                raise SandboxError(404, "member not found")
            return dict(member)

    def get_member_by_external_id(
        self, body: Mapping[str, Any], params: Mapping[str, str]
    ) -> dict[str, Any]:
        """GET /members/member/externalId/{programId}/{externalId}: 404 when absent."""
        with self._lock:
            return dict(self._member(params))

    def update_member(self, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """PUT /members/member, PATCH semantics: empty and zero values are ignored.

        Balances (points, secondaryPoints, tierPoints) and created/updated are ignored too:
        balances change only through the points endpoints.
        """
        _check_fields(body, MEMBER_FIELDS, "member")
        with self._lock:
            member = self._member(body)
            if body.get("id") and body.get("externalId") not in (None, "", member["externalId"]):
                raise _bad("externalId cannot be changed")
            if body.get("programId") not in (None, "", member["programId"]):
                raise _bad("programId cannot be changed")
            changes: dict[str, Any] = {}
            if not _empty(body.get("tierId")):
                tier_id = _string(body, "tierId")
                self._check_tier(member["programId"], tier_id)
                changes["tierId"] = tier_id
            if not _empty(body.get("person")):
                person = self._check_person(body["person"])
                merged = dict(member["person"])
                merged.update({k: v for k, v in person.items() if not _empty(v)})
                changes["person"] = merged
            if not _empty(body.get("metaData")):
                meta = self._check_meta(body["metaData"])
                changes["metaData"] = {
                    **member["metaData"],
                    **{k: v for k, v in meta.items() if v != ""},
                }
            if not _empty(body.get("status")):
                if body["status"] not in MEMBER_STATUSES:
                    raise _bad(f"unknown status {body['status']!r}")
                changes["status"] = body["status"]
            if not _empty(body.get("expiryDate")):
                expiry = _parse_timestamp(body["expiryDate"], "expiryDate")
                changes["expiryDate"] = _timestamp(expiry)
                changes["status"] = self._expiry_status(expiry)
            if body.get("optOut") is True:
                changes["optOut"] = True
            if not _empty(body.get("passOverrides")):
                changes["passOverrides"] = body["passOverrides"]
            if changes:
                member.update(changes, updated=_timestamp(_now()))
                self._changed()
            return {"id": member["id"]}

    def _points_change(self, body: Mapping[str, Any], event_type: str, sign: int) -> dict[str, Any]:
        _check_fields(body, POINTS_FIELDS, "points request")
        points = _number(body, "points")
        secondary = _number(body, "secondaryPoints")
        if points < 0 or secondary < 0:
            raise _bad("points and secondaryPoints must be >= 0")
        tier_points = _uint(body, "tierPoints")
        with self._lock:
            member = self._member(body)
            new_points = _f32(member["points"] + sign * points)
            new_secondary = _f32(member["secondaryPoints"] + sign * secondary)
            new_tier_points = member["tierPoints"] + sign * tier_points
            if min(new_points, new_secondary, new_tier_points) < 0:
                raise _bad("insufficient points: a burn cannot take a balance below zero")
            tier_id = _string(body, "tierId")
            if tier_id:
                self._check_tier(member["programId"], tier_id)
                member["tierId"] = tier_id
            member.update(
                points=new_points,
                secondaryPoints=new_secondary,
                tierPoints=new_tier_points,
                updated=_timestamp(_now()),
            )
            self._record_event(member, event_type, body)
            self._changed()
            return self._balances(member)

    def earn_points(self, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """PUT /members/member/points/earn: amounts >= 0; records POINTS_EARNED."""
        return self._points_change(body, "POINTS_EARNED", +1)

    def burn_points(self, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """PUT /members/member/points/burn: amounts >= 0, balance stays >= 0; POINTS_BURNED."""
        return self._points_change(body, "POINTS_BURNED", -1)

    def set_points(self, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """PUT /members/member/points/set: non-zero values overwrite; reset* flags set 0."""
        _check_fields(body, SET_POINTS_FIELDS, "set points request")
        points = _number(body, "points")
        secondary = _number(body, "secondaryPoints")
        if points < 0 or secondary < 0:
            raise _bad("points must be >= 0")
        tier_points = _uint(body, "tierPoints")
        with self._lock:
            member = self._member(body)
            if body.get("resetPoints"):
                member["points"] = 0.0
            if body.get("resetSecondaryPoints"):
                member["secondaryPoints"] = 0.0
            if body.get("resetTierPoints"):
                member["tierPoints"] = 0
            if points:
                member["points"] = _f32(points)
            if secondary:
                member["secondaryPoints"] = _f32(secondary)
            if tier_points:
                member["tierPoints"] = tier_points
            tier_id = _string(body, "tierId")
            if tier_id:
                self._check_tier(member["programId"], tier_id)
                member["tierId"] = tier_id
            member["updated"] = _timestamp(_now())
            self._record_event(member, "POINTS_SET", body)
            self._changed()
            return self._balances(member)

    def change_tier(self, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """PUT /members/member/tier (memberId or externalMemberId+programId); TIER_CHANGED."""
        _check_fields(
            body,
            frozenset({"memberId", "externalMemberId", "programId", "tierId", "eventDetails"}),
            "tier request",
        )
        tier_id = _string(body, "tierId", required=True)
        with self._lock:
            member = self._member(body, "memberId", "externalMemberId")
            self._check_tier(member["programId"], tier_id)
            member.update(tierId=tier_id, updated=_timestamp(_now()))
            event = self._record_event(member, "TIER_CHANGED", body)
            self._changed()
            return dict(event)

    def update_expiry(self, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """PUT /members/member/updateExpiry: past → EXPIRED, future → ACTIVE."""
        _check_fields(body, frozenset({"id", "externalId", "programId", "expiryDate"}), "expiry")
        expiry = _parse_timestamp(body.get("expiryDate"), "expiryDate")
        with self._lock:
            member = self._member(body)
            member.update(
                expiryDate=_timestamp(expiry),
                status=self._expiry_status(expiry),
                updated=_timestamp(_now()),
            )
            self._changed()
            return {"id": member["id"]}

    def delete_member(self, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """DELETE /members/member: removed (404 afterwards); tombstone kept, status DELETED."""
        _check_fields(body, frozenset({"id", "externalId", "programId"}), "delete request")
        with self._lock:
            member = self._member(body)
            del self.members[member["id"]]
            self._member_ids.pop((member["programId"], member.get("externalId", "")), None)
            member.update(status="DELETED", updated=_timestamp(_now()))
            self.deleted_members[member["id"]] = member
            self._changed()
            return {}

    def list_members(self, body: Mapping[str, Any], params: Mapping[str, str]) -> list[Any]:
        """POST /members/member/list/{programId}: filters, order, offset, limit (-1 = all)."""
        filters = body.get("filters") or {}
        if not isinstance(filters, dict):
            raise _bad("filters must be an object")
        _check_fields(
            filters,
            frozenset({"limit", "offset", "orderBy", "orderAsc", "filterGroups"}),
            "filters",
        )
        with self._lock:
            members = [
                dict(m) for m in self.members.values() if m["programId"] == params["programId"]
            ]
        groups = filters.get("filterGroups") or []
        members = [m for m in members if all(_group_matches(m, g) for g in groups)]
        order_by = filters.get("orderBy") or "created"
        members.sort(
            key=lambda m: _sort_key(_field(m, order_by)),
            reverse=filters.get("orderAsc") is False,
        )
        return _page(members, filters)

    def list_member_events(self, body: Mapping[str, Any], params: Mapping[str, str]) -> list[Any]:
        """POST /members/member/list/events/{id}: the member's events, oldest first."""
        with self._lock:
            member_id = params["id"]
            if member_id not in self.members and member_id not in self.deleted_members:
                raise SandboxError(404, "member not found")
            events = [dict(e) for e in self._events_by_member.get(member_id, [])]
        filters = body.get("filters") or {}
        return _page(events, filters if isinstance(filters, dict) else {})

    # -- coupons

    def _coupon(self, body: Mapping[str, Any]) -> dict[str, Any]:
        coupon_id = _string(body, "id")
        if coupon_id:
            coupon = self.coupons.get(coupon_id)
        else:
            campaign_id = _string(body, "campaignId")
            external_id = _string(body, "externalId")
            if not campaign_id or not external_id:
                raise _bad("id or externalId with campaignId is required")
            found = self._coupon_ids.get((campaign_id, external_id))
            coupon = self.coupons.get(found) if found else None
        if coupon is None:
            raise SandboxError(404, "coupon not found")
        return coupon

    def issue_coupon(self, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """POST /coupon/singleUse/coupon: campaignId, offerId required; externalId unique."""
        _check_fields(body, COUPON_FIELDS, "coupon")
        if body.get("id") or body.get("created") or body.get("updated"):
            raise _bad("id, created and updated are assigned by PassKit")
        campaign_id = _string(body, "campaignId", required=True)
        offer_id = _string(body, "offerId", required=True)
        external_id = _string(body, "externalId")
        now = _timestamp(_now())
        coupon = {
            "id": _new_id(),
            "campaignId": campaign_id,
            "offerId": offer_id,
            "externalId": external_id,
            "person": self._check_person(body.get("person") or {}),
            "metaData": self._check_meta(body.get("metaData") or {}),
            "sku": _string(body, "sku"),
            "status": "UNREDEEMED",
            "expiryDate": "",
            "created": now,
            "updated": now,
        }
        if body.get("expiryDate"):
            coupon["expiryDate"] = _timestamp(_parse_timestamp(body["expiryDate"], "expiryDate"))
        with self._lock:
            if external_id and (campaign_id, external_id) in self._coupon_ids:
                raise SandboxError(
                    409, f"coupon with externalId {external_id!r} already exists in campaign"
                )
            self.coupons[coupon["id"]] = coupon
            if external_id:
                self._coupon_ids[(campaign_id, external_id)] = coupon["id"]
            self._changed()
        return {"id": coupon["id"]}

    def get_coupon_by_external_id(
        self, body: Mapping[str, Any], params: Mapping[str, str]
    ) -> dict[str, Any]:
        """GET /coupon/singleUse/coupon/externalId/{campaignId}/{externalId}: 404 if absent."""
        with self._lock:
            return dict(self._coupon(params))

    def redeem_coupon(self, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """PUT /coupon/singleUse/coupon/redeem: UNREDEEMED → REDEEMED, else 400."""
        _check_fields(body, frozenset({"id", "campaignId", "externalId"}), "redeem request")
        with self._lock:
            coupon = self._coupon(body)
            if coupon["status"] != "UNREDEEMED":
                raise _bad(f"coupon cannot be redeemed: status {coupon['status']}")
            now = _timestamp(_now())
            coupon.update(status="REDEEMED", redemptionDate=now, updated=now)
            self._changed()
            return dict(coupon)

    def void_coupon(self, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """DELETE /coupon/singleUse/coupon: status VOIDED (irreversible; repeat is a no-op)."""
        _check_fields(body, frozenset({"id", "campaignId", "externalId"}), "void request")
        with self._lock:
            coupon = self._coupon(body)
            if coupon["status"] != "VOIDED":
                coupon.update(status="VOIDED", updated=_timestamp(_now()))
                self._changed()
            return {}


def _field(record: Mapping[str, Any], name: str) -> Any:
    value: Any = record
    for part in name.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, "" if value is None else str(value))


def _compare(value: Any, operator: str, wanted: Any) -> bool:
    if operator == "like":
        pattern = re.escape(str(wanted)).replace("%", ".*").replace("_", ".")
        return re.fullmatch(pattern, "" if value is None else str(value), re.I) is not None
    try:
        left: Any = float(value)
        right: Any = float(wanted)
    except (TypeError, ValueError):
        left, right = ("" if value is None else str(value)), str(wanted)
    if operator == "eq":
        return bool(left == right)
    ops = {"gt": left > right, "lt": left < right, "gte": left >= right, "lte": left <= right}
    if operator not in ops:
        raise _bad(f"unknown filterOperator {operator!r}")
    return bool(ops[operator])


def _group_matches(member: Mapping[str, Any], group: Any) -> bool:
    if not isinstance(group, dict):
        raise _bad("filterGroups entries must be objects")
    checks = [
        _compare(
            _field(member, f.get("filterField", "")),
            f.get("filterOperator", "eq"),
            f.get("filterValue"),
        )
        for f in group.get("fieldFilters") or []
    ]
    if not checks:
        return True
    return any(checks) if str(group.get("condition", "AND")).upper() == "OR" else all(checks)


def _page(items: list[Any], filters: Mapping[str, Any]) -> list[Any]:
    limit = filters.get("limit") or 25  # protobuf zero means "not set": PassKit's default
    offset = filters.get("offset") or 0
    if not isinstance(limit, int) or not isinstance(offset, int) or offset < 0:
        raise _bad("limit and offset must be integers")
    items = items[offset:]
    return items if limit < 0 else items[:limit]


# ---------------------------------------------------------------------- HTTP server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 refuses bursts from an 8-thread client pool

    def __init__(self, address: tuple[str, int], sandbox: PassKitSandbox) -> None:
        self.sandbox = sandbox
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is routine here (the "slow" fault does it).
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        log.exception("PassKit sandbox: error serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients reuse pooled connections
    server_version = "PassKitSandbox/1.0"
    timeout = 120  # an idle keep-alive connection must not pin a thread for ever
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without TCP_NODELAY, Nagle plus the
        # client's delayed ACK adds ~40 ms to every keep-alive request.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("PassKit sandbox: " + format, *args)

    def _dispatch(self) -> None:
        sandbox = self.server.sandbox
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(400, _bad("invalid Content-Length").body())
            return
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self._send(411, SandboxError(411, "Content-Length required").body())
            return
        if length > _MAX_BODY:
            self.close_connection = True
            self._send(413, SandboxError(413, "request body too large").body())
            return
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path.rstrip("/") or "/"
        if path.startswith("/_sandbox/") or path == "/_sandbox":
            self._admin(path, raw)
            return
        operation, params, allowed = _route(self.command, path)
        sandbox.count("requests", operation or "unknown")
        if operation is None:
            error = SandboxError(
                405 if allowed else 404, "method not allowed" if allowed else "not found"
            )
            self._send(error.status, error.body())
            return
        sandbox.latency()
        fault = sandbox.faults.pick(operation)
        if fault:
            sandbox.count("faults", fault)
        if fault == "drop":
            # Request read, nothing applied, no answer: the client sees the connection close.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "503":
            self._send(503, SandboxError(503, "service unavailable (sandbox fault)").body())
            return
        if fault == "429":
            seconds = sandbox.faults.config.retry_after
            header = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
            error = SandboxError(429, "too many requests (sandbox fault)")
            self._send(429, error.body(), {"Retry-After": header})
            return
        if fault == "slow":
            sandbox.pause(sandbox.faults.config.slow_seconds)
            if sandbox.stopping:
                # Stopped meanwhile: applying now could overwrite the state file of a
                # sandbox restarted on the same file.
                self.close_connection = True
                return
        try:
            sandbox.authenticate(self.headers.get("Authorization"))
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError as exc:
                raise _bad("request body is not valid JSON") from exc
            if not isinstance(body, dict):
                raise _bad("request body must be a JSON object")
            result = sandbox.data.apply(operation, body, params)
        except SandboxError as error:
            self._send(error.status, error.body())
            return
        except Exception:
            log.exception("PassKit sandbox: %s failed", operation)
            self._send(500, SandboxError(500, "internal error").body())
            return
        if fault == "applied_then_500":
            self._send(
                500, SandboxError(500, "internal error after applying (sandbox fault)").body()
            )
            return
        if operation in STREAMING:
            self._send_ndjson(result)
        else:
            self._send(200, result)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def _admin(self, path: str, raw: bytes) -> None:
        sandbox = self.server.sandbox
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            key = (self.command, path)
            if key == ("GET", "/_sandbox/health"):
                self._send(200, {"ok": True}, admin=True)
            elif key == ("GET", "/_sandbox/state"):
                self._send(200, sandbox.state(), admin=True)
            elif key == ("GET", "/_sandbox/stats"):
                self._send(200, sandbox.stats(), admin=True)
            elif key == ("GET", "/_sandbox/faults"):
                self._send(200, sandbox.faults.config.to_dict(), admin=True)
            elif key in (("POST", "/_sandbox/faults"), ("PUT", "/_sandbox/faults")):
                self._send(
                    200, sandbox.set_faults(FaultConfig.from_dict(body)).to_dict(), admin=True
                )
            elif key == ("DELETE", "/_sandbox/faults"):
                self._send(200, sandbox.clear_faults().to_dict(), admin=True)
            elif key == ("POST", "/_sandbox/reset"):
                sandbox.reset()
                self._send(200, {}, admin=True)
            elif key == ("GET", "/_sandbox/tiers"):
                self._send(200, sandbox.data.tiers(), admin=True)
            elif key in (("POST", "/_sandbox/tiers"), ("PUT", "/_sandbox/tiers")):
                tiers = body.get("tiers")
                if tiers is not None and (
                    not isinstance(tiers, list) or not all(isinstance(t, str) for t in tiers)
                ):
                    raise ValueError("tiers must be a list of strings (or null / ['*'] for any)")
                sandbox.data.set_tiers(tiers, program_id=body.get("programId"))
                self._send(200, sandbox.data.tiers(), admin=True)
            else:
                self._send(
                    404,
                    SandboxError(404, f"no admin endpoint {self.command} {path}").body(),
                    admin=True,
                )
        except ValueError as exc:
            self._send(400, SandboxError(400, str(exc)).body(), admin=True)

    def _send(
        self,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        admin: bool = False,
    ) -> None:
        if not admin:  # statistics describe PassKit traffic, not the test harness
            self.server.sandbox.count("responses", str(status))
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_ndjson(self, items: list[Any]) -> None:
        """Stream one `{"result": item}` per line, chunked, as PassKit's list endpoints do."""
        self.server.sandbox.count("responses", "200")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for item in items:
            line = json.dumps({"result": item}).encode("utf-8") + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode("ascii") + line + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


def _route(method: str, path: str) -> tuple[str | None, dict[str, str], bool]:
    """(operation, path params, path exists with another method)."""
    path_exists = False
    for route_method, pattern, operation in ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if route_method != method:
            path_exists = True
            continue
        return operation, {k: unquote(v) for k, v in match.groupdict().items()}, True
    return None, {}, path_exists


class PassKitSandbox:
    """The sandbox server: state, JWT check, fault switches and request statistics.

    Use `start()`/`stop()` (or as a context manager); `url` is known once started. Port 0
    picks a free port.
    """

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | os.PathLike[str] | None = None,
        tiers: Sequence[str] | None = DEFAULT_TIERS,
        program_tiers: Mapping[str, Sequence[str]] | None = None,
        faults: FaultConfig | Mapping[str, Any] | None = None,
        jwt_leeway_seconds: float = 5.0,
        max_token_lifetime_seconds: int = 3600,
    ) -> None:
        if not api_key or not api_secret:
            raise ValueError("api_key and api_secret are required")
        self.api_key = api_key
        self._api_secret = api_secret
        self.host = host
        self.port = port
        self.jwt_leeway = jwt_leeway_seconds
        self.max_token_lifetime = max_token_lifetime_seconds
        self.data = SandboxState(state_file, tiers=tiers, program_tiers=program_tiers)
        if isinstance(faults, Mapping):
            faults = FaultConfig.from_dict(faults)
        self.faults = _FaultInjector(faults or FaultConfig())
        self._stats_lock = threading.Lock()
        self._stats: dict[str, Counter[str]] = defaultdict(Counter)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PassKitSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321 (valid once started)."""
        if self._server is None:
            raise RuntimeError("sandbox not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> PassKitSandbox:
        """Bind and serve in a daemon thread; return self."""
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"passkit-sandbox-{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        log.debug("PassKit sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (idle keep-alive ones included)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a "slow" fault
        server.shutdown()
        with server.connections_lock:
            connections = list(server.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- used by the handler

    def authenticate(self, header: str | None) -> None:
        """Accept `<jwt>` or `Bearer <jwt>` signed HS256 with our secret, uid = our key."""
        if not header:
            raise SandboxError(401, "missing Authorization header")
        token = header[7:] if header.startswith("Bearer ") else header
        try:
            claims = jwt.decode(
                token.strip(),
                self._api_secret,
                algorithms=["HS256"],
                options={"require": ["exp", "iat", "uid"]},
                leeway=self.jwt_leeway,
            )
        except jwt.ExpiredSignatureError as exc:
            raise SandboxError(401, "token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise SandboxError(401, f"invalid token: {type(exc).__name__}") from exc
        if claims.get("uid") != self.api_key:
            raise SandboxError(401, "unknown API key")
        if claims["exp"] - claims["iat"] > self.max_token_lifetime:
            raise SandboxError(401, "token lifetime exceeds the maximum")

    def latency(self) -> None:
        delay = self.faults.config.latency_ms / 1000.0
        if delay > 0:
            self.pause(delay)

    def pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def count(self, group: str, key: str) -> None:
        with self._stats_lock:
            self._stats[group][key] += 1

    # -- control API (also behind /_sandbox/)

    def state(self) -> dict[str, Any]:
        """All members, deleted members (tombstones), coupons and events."""
        return self.data.snapshot()

    def stats(self) -> dict[str, dict[str, int]]:
        """Counts of requests per operation, responses per status and faults per kind."""
        with self._stats_lock:
            return {
                group: dict(self._stats.get(group, {}))
                for group in ("requests", "responses", "faults")
            }

    def set_faults(
        self, config: FaultConfig | Mapping[str, Any] | None = None, **settings: Any
    ) -> FaultConfig:
        """Replace the fault settings (and reseed): a FaultConfig, a dict or keywords."""
        if config is None:
            config = FaultConfig.from_dict(settings)
        elif isinstance(config, Mapping):
            config = FaultConfig.from_dict({**config, **settings})
        self.faults.configure(config)
        return config

    def clear_faults(self) -> FaultConfig:
        """No faults and no added latency."""
        return self.set_faults(FaultConfig())

    def reset(self) -> None:
        """Empty the data and the statistics; fault settings are kept."""
        self.data.reset()
        with self._stats_lock:
            self._stats.clear()


@contextlib.contextmanager
def run_sandbox_in_thread(**kwargs: Any) -> Iterator[PassKitSandbox]:
    """Start a sandbox on 127.0.0.1, a free port by default; stop it on exit.

    Keyword arguments are those of PassKitSandbox (api_key and api_secret are required).
    """
    sandbox = PassKitSandbox(**kwargs)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


# ---------------------------------------------------------------------- CLI


def _csv(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _program_tiers(values: Sequence[str]) -> dict[str, tuple[str, ...]]:
    result = {}
    for value in values:
        program, sep, tiers = value.partition("=")
        if not sep or not program:
            raise argparse.ArgumentTypeError(f"expected PROGRAM=tier1,tier2, got {value!r}")
        result[program] = _csv(tiers)
    return result


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of `python -m toast_passkit.passkit.sandbox`."""
    parser = argparse.ArgumentParser(
        prog="python -m toast_passkit.passkit.sandbox",
        description="Local PassKit REST sandbox (members, points, tiers, coupons, faults).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 = any free port)")
    parser.add_argument("--state-file", help="JSON file keeping state across restarts")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("PASSKIT_SANDBOX_API_KEY"),
        help="accepted API key (default $PASSKIT_SANDBOX_API_KEY)",
    )
    parser.add_argument(
        "--api-secret",
        default=os.environ.get("PASSKIT_SANDBOX_API_SECRET"),
        help="secret the JWTs must be signed with (default $PASSKIT_SANDBOX_API_SECRET)",
    )
    parser.add_argument(
        "--tiers",
        type=_csv,
        default=DEFAULT_TIERS,
        help="tier ids accepted in every program, comma-separated, or '*' for any "
        f"(default {','.join(DEFAULT_TIERS)})",
    )
    parser.add_argument(
        "--program-tiers",
        action="append",
        default=[],
        metavar="PROGRAM=T1,T2",
        help="tier ids for one program (repeatable); overrides --tiers for that program",
    )
    faults = parser.add_argument_group("faults (also settable at runtime: POST /_sandbox/faults)")
    faults.add_argument("--fault-rate", type=float, default=0.0, help="probability 0..1")
    faults.add_argument(
        "--fault-kinds", type=_csv, default=("503",), help=f"comma-separated: {FAULT_KINDS}"
    )
    faults.add_argument("--fault-count", type=int, help="stop after this many faults")
    faults.add_argument("--fault-operations", type=_csv, help="only these operations")
    faults.add_argument("--retry-after", type=float, default=1.0, help="Retry-After on 429 (s)")
    faults.add_argument("--slow-seconds", type=float, default=2.0, help="delay of 'slow' (s)")
    faults.add_argument("--seed", type=int, help="RNG seed for fault selection")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGINT or SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.api_key or not args.api_secret:
        parser.error("--api-key and --api-secret (or their environment variables) are required")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        fault_config = FaultConfig(
            rate=args.fault_rate,
            kinds=args.fault_kinds,
            retry_after=args.retry_after,
            slow_seconds=args.slow_seconds,
            seed=args.seed,
            latency_ms=args.latency_ms,
            count=args.fault_count,
            operations=args.fault_operations,
        )
        program_tiers = _program_tiers(args.program_tiers)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        parser.error(str(exc))
    tiers = None if "*" in args.tiers else args.tiers
    sandbox = PassKitSandbox(
        api_key=args.api_key,
        api_secret=args.api_secret,
        host=args.host,
        port=args.port,
        state_file=args.state_file,
        tiers=tiers,
        program_tiers=program_tiers,
        faults=fault_config,
    )
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    sandbox.start()
    print(f"PassKit sandbox listening on {sandbox.url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
