"""Guest identity: checks joined into guests over shared identifiers, day by day, with members.

Python does what SQL is the wrong tool for: phone parsing (the `phonenumbers` library) and a
union-find over identifiers (normalised e-mail, E.164 phone, customer id) that walks business
days in order. At the end of each day a guest with enough qualifying checks and an e-mail or a
phone is enrolled; when a check joins guests that both hold a member, the member enrolled first
carries on and the other is merged into it. Walking days in order makes the result the same
whether history arrives day by day or all at once, and independent of the order of checks
within a day. Identifiers hold PII; the ids this module makes (guest ids, member external ids)
are hashes of check ids and hold none.
"""

from __future__ import annotations

import hashlib
import hmac
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import phonenumbers

CheckKey = tuple[str, str]  # (location_id, check_id)


def normalise_phone(raw: str | None, region: str) -> str | None:
    """E.164 form of a phone the library parses (with `region` when no country code) and finds
    valid; None for anything else."""
    if raw is None or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str | None) -> str | None:
    """E-mail trimmed and lower-cased; None when empty."""
    if raw is None:
        return None
    email = raw.strip().lower()
    return email or None


def make_guest_id(location_id: str, check_id: str) -> str:
    """Guest id: a hash of the guest's earliest check (changes when an older guest joins)."""
    digest = hashlib.sha256(f"{location_id}|{check_id}".encode()).hexdigest()
    return "g" + digest[:19]


def make_external_id(program_id: str, location_id: str, check_id: str) -> str:
    """Member externalId: a keyed hash of the guest's earliest check at enrolment (no PII)."""
    digest = hmac.new(program_id.encode(), f"{location_id}|{check_id}".encode(), "sha256")
    return digest.hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class CheckIdentity:
    """What the identity pass needs of one check."""

    location_id: str
    check_id: str
    business_date: date
    email: str | None
    phone: str | None
    customer_id: str | None
    qualifying: bool

    def identifiers(self) -> list[str]:
        ids = []
        if self.email:
            ids.append("email|" + self.email)
        if self.phone:
            ids.append("phone|" + self.phone)
        if self.customer_id:
            ids.append("customer|" + self.customer_id)
        return ids


@dataclass(slots=True)
class GuestState:
    """A guest as the previous runs left it (a row of loyalty_guests)."""

    guest_id: str
    first_business_date: date
    first_location_id: str
    first_check_id: str
    qualifying_checks: int
    has_contact: bool
    first_visit_on: date | None
    last_visit_on: date | None
    carrier_external_id: str | None
    carrier_enrolled_on: date | None


@dataclass(frozen=True, slots=True)
class RegisteredMember:
    """A member enrolled by an earlier run: its externalId must survive a recomputation."""

    external_id: str
    anchor_location_id: str
    anchor_check_id: str
    enrolled_on: date


@dataclass(slots=True)
class MemberRow:
    external_id: str
    guest_id: str
    enrolled_on: date
    anchor_location_id: str
    anchor_check_id: str
    merged_into: str | None = None
    merged_on: date | None = None


@dataclass(slots=True)
class _Agg:
    """Aggregate of one union-find root (a guest while the pass runs)."""

    first: tuple[date, str, str]
    qualifying: int = 0
    contact: bool = False
    first_visit: date | None = None
    last_visit: date | None = None
    carrier: tuple[date, str] | None = None  # (enrolled_on, external_id)
    existing_guest_ids: list[str] = field(default_factory=list)
    uncovered_checks: list[int] = field(default_factory=list)
    uncovered_guest_ids: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)  # registered members inside


@dataclass
class IdentityResult:
    """What the pass hands back to SQL (see loyalty/030_apply_identity.sql)."""

    # per check fed in, in feeding order: guest, covering member, covered since
    check_guests: list[str | None]
    covered_by: list[str | None]
    covered_on: list[date | None]
    new_identifiers: list[tuple[str, str]]
    guest_remap: list[tuple[str, str]]
    covers: list[tuple[str, str, date]]
    guests: list[GuestState]
    members: list[MemberRow]  # enrolled (or re-adopted) in this pass, merged or not
    merges: list[tuple[str, str, date]]  # (external_id, merged_into, merged_on), older members
    enrolled: int = 0
    merged: int = 0


class IdentityPass:
    """Union-find over identifiers, fed with new checks in business-date order.

    `existing_identifiers` maps identifiers already known to their guest; `existing_guests`
    holds those guests. In a full recomputation both are empty and `registry` lists members
    enrolled by earlier runs, whose externalIds are reused for the guests holding their
    anchor check.
    """

    def __init__(self, program_id: str, min_qualifying_visits: int,
                 existing_identifiers: dict[str, str], existing_guests: dict[str, GuestState],
                 registry: Iterable[RegisteredMember] = ()) -> None:
        self.program_id = program_id
        self.min_visits = min_qualifying_visits
        self.parent: list[int] = []
        self.node_of_identifier: dict[str, int] = {}
        self.node_of_guest: dict[str, int] = {}
        self.aggs: dict[int, _Agg] = {}
        self.existing_identifiers = existing_identifiers
        self.registry = {(m.anchor_location_id, m.anchor_check_id): m for m in registry}
        self.registry_by_id = {m.external_id: m for m in self.registry.values()}
        self.assigned: set[str] = set()
        # per check fed in, in feeding order: its union-find node (-1: no identity) and the
        # member that first held it, since when
        self.check_node = array("l")
        self.covered_by: list[str | None] = []
        self.covered_on: list[date | None] = []
        self.anchor_checks: dict[CheckKey, int] = {}
        self.members: dict[str, MemberRow] = {}
        self.merges: list[tuple[str, str, date]] = []
        self.covers: list[tuple[str, str, date]] = []
        self.enrolled = 0
        self.merged = 0
        self.touched_roots: set[int] = set()
        for guest in existing_guests.values():
            node = self._new_node()
            self.node_of_guest[guest.guest_id] = node
            carrier = None
            if guest.carrier_external_id and guest.carrier_enrolled_on:
                carrier = (guest.carrier_enrolled_on, guest.carrier_external_id)
            self.aggs[node] = _Agg(
                first=(guest.first_business_date, guest.first_location_id, guest.first_check_id),
                qualifying=guest.qualifying_checks, contact=guest.has_contact,
                first_visit=guest.first_visit_on, last_visit=guest.last_visit_on,
                carrier=carrier, existing_guest_ids=[guest.guest_id],
                uncovered_guest_ids=[] if carrier else [guest.guest_id],
            )

    # -- union-find ---------------------------------------------------------------------
    def _new_node(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def _find(self, node: int) -> int:
        parent = self.parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def _node_for(self, identifier: str) -> int:
        node = self.node_of_identifier.get(identifier)
        if node is None:
            guest_id = self.existing_identifiers.get(identifier)
            node = self.node_of_guest.get(guest_id) if guest_id else None
            if node is None:
                node = self._new_node()
            self.node_of_identifier[identifier] = node
        return node

    def _union(self, a: int, b: int, day: date) -> int:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return ra
        agg_a, agg_b = self.aggs.get(ra), self.aggs.get(rb)
        if agg_a is None or agg_b is None:  # a bare identifier node: no data yet
            keep, drop = (ra, rb) if agg_a is not None else (rb, ra)
            self.parent[drop] = keep
            return keep
        if len(agg_a.uncovered_checks) < len(agg_b.uncovered_checks):
            ra, rb, agg_a, agg_b = rb, ra, agg_b, agg_a
        self.parent[rb] = ra
        del self.aggs[rb]
        agg_a.first = min(agg_a.first, agg_b.first)
        agg_a.qualifying += agg_b.qualifying
        agg_a.contact = agg_a.contact or agg_b.contact
        agg_a.first_visit = _min_date(agg_a.first_visit, agg_b.first_visit)
        agg_a.last_visit = _max_date(agg_a.last_visit, agg_b.last_visit)
        agg_a.existing_guest_ids.extend(agg_b.existing_guest_ids)
        agg_a.anchors.extend(agg_b.anchors)
        if agg_a.carrier and agg_b.carrier:
            keep_carrier, other = sorted([agg_a.carrier, agg_b.carrier])
            agg_a.carrier = keep_carrier
            self._merge_member(other, keep_carrier[1], day)
        elif agg_a.carrier or agg_b.carrier:
            uncovered = agg_b if agg_a.carrier else agg_a
            carrier = agg_a.carrier or agg_b.carrier
            assert carrier is not None
            self._cover(uncovered, carrier[1], day)
            agg_a.carrier = carrier
            agg_a.uncovered_checks, agg_a.uncovered_guest_ids = [], []
        else:
            agg_a.uncovered_checks.extend(agg_b.uncovered_checks)
            agg_a.uncovered_guest_ids.extend(agg_b.uncovered_guest_ids)
        return ra

    def _cover(self, agg: _Agg, external_id: str, day: date) -> None:
        for check_index in agg.uncovered_checks:
            self.covered_by[check_index] = external_id
            self.covered_on[check_index] = day
        for guest_id in agg.uncovered_guest_ids:
            self.covers.append((guest_id, external_id, day))
        agg.uncovered_checks = []
        agg.uncovered_guest_ids = []

    def _merge_member(self, member: tuple[date, str], into: str, day: date) -> None:
        external_id = member[1]
        row = self.members.get(external_id)
        if row is None:  # a member of an earlier run: only its merge is new
            self.merges.append((external_id, into, day))
        else:
            row.merged_into, row.merged_on = into, day
        self.merged += 1

    # -- the pass -----------------------------------------------------------------------
    def add_day(self, day: date, checks: Iterable[CheckIdentity]) -> None:
        """Fold one business day's checks in, then enrol the guests that qualify."""
        touched: set[int] = set()
        for check in checks:
            ids = check.identifiers()
            index = len(self.check_node)
            self.covered_by.append(None)
            self.covered_on.append(None)
            if not ids:
                self.check_node.append(-1)
                continue
            node = self._new_node()
            self.check_node.append(node)
            agg = _Agg(first=(check.business_date, check.location_id, check.check_id),
                       contact=bool(check.email or check.phone),
                       uncovered_checks=[index])
            if check.qualifying:
                agg.qualifying = 1
                agg.first_visit = agg.last_visit = check.business_date
            anchor = self.registry.get((check.location_id, check.check_id))
            if anchor is not None:
                agg.anchors.append(anchor.external_id)
                self.anchor_checks[(check.location_id, check.check_id)] = index
            self.aggs[node] = agg
            for identifier in ids:
                node = self._union(node, self._node_for(identifier), day)
            touched.add(node)
        for root in {self._find(node) for node in touched}:
            self._enrol_if_qualified(root, day)
            self.touched_roots.add(root)

    def _enrol_if_qualified(self, root: int, day: date) -> None:
        agg = self.aggs[root]
        if agg.carrier or agg.qualifying < self.min_visits or not agg.contact:
            return
        candidates = sorted(
            (self.registry_by_id[x].enrolled_on, x) for x in agg.anchors if x not in self.assigned
        )
        if candidates:
            member = self.registry_by_id[candidates[0][1]]
            external_id, anchor = member.external_id, (member.anchor_location_id,
                                                       member.anchor_check_id)
        else:
            anchor = (agg.first[1], agg.first[2])
            external_id = make_external_id(self.program_id, *anchor)
        self.assigned.add(external_id)
        self.members[external_id] = MemberRow(external_id, "", day, anchor[0], anchor[1])
        self.enrolled += 1
        agg.carrier = (day, external_id)
        self._cover(agg, external_id, day)

    def result(self, as_of: date) -> IdentityResult:
        """Everything to write back; `as_of` dates merges of orphaned registered members."""
        guest_of_root = {root: make_guest_id(agg.first[1], agg.first[2])
                         for root, agg in self.aggs.items()}
        self._adopt_orphans(guest_of_root, as_of)
        check_guests = [guest_of_root[self._find(node)] if node >= 0 else None
                        for node in self.check_node]
        new_identifiers = [(identifier, guest_of_root[self._find(node)])
                           for identifier, node in self.node_of_identifier.items()
                           if identifier not in self.existing_identifiers]
        remap = []
        for guest_id, node in self.node_of_guest.items():
            new_id = guest_of_root[self._find(node)]
            if new_id != guest_id:
                remap.append((guest_id, new_id))
        touched = {self._find(root) for root in self.touched_roots}
        guests = [self._guest_row(root, guest_of_root[root]) for root in sorted(touched)]
        carrier_guest = {agg.carrier[1]: guest_of_root[root]
                         for root, agg in self.aggs.items() if agg.carrier}
        merged_into = {external_id: into for external_id, into, _ in self.merges}
        merged_into.update((m.external_id, m.merged_into) for m in self.members.values()
                           if m.merged_into)
        for row in self.members.values():
            carrier = _final_carrier(row.external_id, merged_into)
            row.guest_id = carrier_guest.get(carrier, row.guest_id)
        return IdentityResult(check_guests, self.covered_by, self.covered_on, new_identifiers,
                              remap, self.covers, guests, list(self.members.values()),
                              self.merges, self.enrolled, self.merged)

    def _adopt_orphans(self, guest_of_root: dict[int, str], as_of: date) -> None:
        """Registered members a recomputation did not re-enrol keep their externalId: merged
        into the member now holding their anchor check's guest, or holding it themselves."""
        for external_id, member in self.registry_by_id.items():
            if external_id in self.assigned:
                continue
            root = self._root_of_check(member.anchor_location_id, member.anchor_check_id)
            if root is None:
                continue
            agg = self.aggs[root]
            row = MemberRow(external_id, guest_of_root[root], member.enrolled_on,
                            member.anchor_location_id, member.anchor_check_id)
            if agg.carrier:
                row.merged_into, row.merged_on = agg.carrier[1], as_of
            else:
                agg.carrier = (member.enrolled_on, external_id)
                self._cover(agg, external_id, as_of)
            self.members[external_id] = row
            self.assigned.add(external_id)

    def _root_of_check(self, location_id: str, check_id: str) -> int | None:
        index = self.anchor_checks.get((location_id, check_id))
        if index is None or self.check_node[index] < 0:
            return None
        return self._find(self.check_node[index])

    def _guest_row(self, root: int, guest_id: str) -> GuestState:
        agg = self.aggs[root]
        return GuestState(
            guest_id=guest_id, first_business_date=agg.first[0],
            first_location_id=agg.first[1], first_check_id=agg.first[2],
            qualifying_checks=agg.qualifying, has_contact=agg.contact,
            first_visit_on=agg.first_visit, last_visit_on=agg.last_visit,
            carrier_external_id=agg.carrier[1] if agg.carrier else None,
            carrier_enrolled_on=agg.carrier[0] if agg.carrier else None,
        )


def _final_carrier(external_id: str, merged_into: dict[str, str]) -> str:
    """The member that now carries on for `external_id` (itself when never merged)."""
    target, seen = external_id, set()
    while target in merged_into and target not in seen:
        seen.add(target)
        target = merged_into[target]
    return target


def _min_date(a: date | None, b: date | None) -> date | None:
    return b if a is None else a if b is None else min(a, b)


def _max_date(a: date | None, b: date | None) -> date | None:
    return b if a is None else a if b is None else max(a, b)
