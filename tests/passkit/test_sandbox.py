"""Tests of the PassKit sandbox server over real HTTP: validation, state, admin and faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from toast_passkit.passkit.sandbox import (
    FaultConfig,
    PassKitSandbox,
    _f32,
    build_parser,
    run_sandbox_in_thread,
)

# Throwaway credentials, only ever valid for the in-test sandbox.
API_KEY = "test-key-0002"
API_SECRET = "test-secret-for-the-sandbox-only-abcdefghij"
PROGRAM = "prog-test"
PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def token(secret: str = API_SECRET, uid: str = API_KEY, lifetime: int = 300, age: int = 0) -> str:
    now = int(time.time()) - age
    return jwt.encode({"uid": uid, "iat": now, "exp": now + lifetime}, secret, algorithm="HS256")


class Api:
    """Raw HTTP calls to the sandbox, so the server is tested without our client."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.headers = {"Authorization": token()}

    def __call__(self, method: str, path: str, body: Any = None, **kw: Any) -> requests.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        kw.setdefault("timeout", 5)
        return self.session.request(method, self.url + path, json=body, headers=headers, **kw)

    def enrol(self, external_id: str = "guest-1", **fields: Any) -> requests.Response:
        member = {"programId": PROGRAM, "tierId": "base", "externalId": external_id, **fields}
        return self("POST", "/members/member", member)

    def member(self, external_id: str = "guest-1") -> dict[str, Any]:
        response = self("GET", f"/members/member/externalId/{PROGRAM}/{external_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def points(self, verb: str, amount: float, event: str, **fields: Any) -> requests.Response:
        body = {
            "externalId": "guest-1",
            "programId": PROGRAM,
            "points": amount,
            "eventDetails": {"externalEventId": event},
            **fields,
        }
        return self("PUT", f"/members/member/points/{verb}", body)


@pytest.fixture
def sandbox() -> Iterator[PassKitSandbox]:
    with run_sandbox_in_thread(api_key=API_KEY, api_secret=API_SECRET) as running:
        yield running


@pytest.fixture
def api(sandbox: PassKitSandbox) -> Iterator[Api]:
    client = Api(sandbox.url)
    yield client
    client.session.close()


def test_starts_fast_on_a_free_loopback_port() -> None:
    started = time.monotonic()
    with run_sandbox_in_thread(api_key=API_KEY, api_secret=API_SECRET) as running:
        assert time.monotonic() - started < 0.5
        assert running.url.startswith("http://127.0.0.1:")
        assert requests.get(running.url + "/_sandbox/health", timeout=2).json() == {"ok": True}


# ---------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        (None, "missing Authorization header"),
        ({"secret": "a-different-secret-of-at-least-32-bytes"}, "invalid token"),
        ({"age": 400, "lifetime": 300}, "token expired"),
        ({"uid": "someone-else"}, "unknown API key"),
        ({"lifetime": 7200}, "token lifetime exceeds the maximum"),
        ("not-a-jwt", "invalid token"),
    ],
)
def test_bad_tokens_get_401(api: Api, claims: dict[str, Any] | str | None,
                            message: str) -> None:
    # tokens are minted as the test runs: minted at collection, a valid one could expire
    # before a slow suite reaches it (seen: 'token expired' for the unknown API key)
    if claims is None:
        api.headers = {}
    elif isinstance(claims, str):
        api.headers = {"Authorization": claims}
    else:
        api.headers = {"Authorization": token(**claims)}
    response = api("GET", f"/members/member/externalId/{PROGRAM}/guest-1")
    assert response.status_code == 401
    assert response.json()["code"] == 16
    assert response.json()["message"].startswith(message)


def test_bearer_prefix_is_accepted(api: Api) -> None:
    api.headers = {"Authorization": "Bearer " + token()}
    assert api.enrol().status_code == 200


# ---------------------------------------------------------------------- members


def test_enrol_requires_program_and_tier_and_known_fields(api: Api) -> None:
    for missing in ("programId", "tierId"):
        body = {"programId": PROGRAM, "tierId": "base", "externalId": "g"}
        del body[missing]
        response = api("POST", "/members/member", body)
        assert response.status_code == 400
        assert f"{missing} is required" in response.json()["message"]
    assert api.enrol(tierID="base").status_code == 400  # misspelt field is not dropped
    assert api.enrol(person={"email": "x@example.com"}).status_code == 400
    assert api.enrol(person={"mobileNumber": "0612345678"}).status_code == 400
    assert api.enrol(metaData={"visits": 3}).status_code == 400
    assert api.enrol(points=-1).status_code == 400
    assert api("POST", "/members/member", data=b"{oops").status_code == 400


def test_duplicate_external_id_is_409_with_json_error(api: Api) -> None:
    assert api.enrol().status_code == 200
    response = api.enrol()
    assert response.status_code == 409
    assert response.json() == {
        "code": 6,
        "message": "member with externalId 'guest-1' already exists in program",
        "details": [],
    }
    # Same externalId in another program is a different member.
    other = api(
        "POST", "/members/member", {"programId": "p2", "tierId": "gold", "externalId": "guest-1"}
    )
    assert other.status_code == 200


def test_unknown_tier_is_400_and_tiers_are_configurable() -> None:
    with run_sandbox_in_thread(
        api_key=API_KEY,
        api_secret=API_SECRET,
        tiers=["tin"],
        program_tiers={"vip": ["black"]},
    ) as running:
        api = Api(running.url)
        response = api.enrol()  # tierId "base" is not among the configured tiers
        assert response.status_code == 400
        assert "tier 'base' does not exist" in response.json()["message"]
        assert api.enrol(tierId="tin").status_code == 200
        vip = {"programId": "vip", "externalId": "v1"}
        assert api("POST", "/members/member", {**vip, "tierId": "tin"}).status_code == 400
        assert api("POST", "/members/member", {**vip, "tierId": "black"}).status_code == 200
        tiers = requests.post(
            running.url + "/_sandbox/tiers", json={"tiers": ["*"]}, timeout=2
        ).json()
        assert tiers == {"default": "*", "programs": {"vip": ["black"]}}
        assert api.enrol("g2", tierId="anything").status_code == 200


def test_update_has_patch_semantics(api: Api) -> None:
    api.enrol(person={"forename": "Ada", "surname": "Lovelace"}, metaData={"home": "SoHo"})
    update = {
        "externalId": "guest-1",
        "programId": PROGRAM,
        "tierId": "",
        "points": 0,
        "optOut": False,
        "person": {"forename": "Augusta", "surname": ""},
        "metaData": {"visits": "3"},
    }
    response = api("PUT", "/members/member", update)
    assert response.status_code == 200, response.text
    member = api.member()
    assert member["tierId"] == "base"  # empty: ignored
    assert member["person"] == {"forename": "Augusta", "surname": "Lovelace"}
    assert member["metaData"] == {"home": "SoHo", "visits": "3"}
    changed = {"id": member["id"], "externalId": "another"}
    assert api("PUT", "/members/member", changed).status_code == 400  # externalId is for ever
    unknown = {"externalId": "nobody", "programId": PROGRAM, "tierId": "gold"}
    assert api("PUT", "/members/member", unknown).status_code == 404


def test_points_are_float32_and_never_negative(api: Api) -> None:
    api.enrol()
    assert api.points("earn", 10.1, "e1").json()["points"] == 10.1
    assert api.points("earn", 0.2, "e2").json()["points"] == pytest.approx(10.3)
    assert api.points("earn", -1, "e3").status_code == 400
    assert api.points("burn", -1, "e4").status_code == 400
    assert api.points("burn", 11, "e5").status_code == 400
    assert api.points("burn", 10.3, "e6").json()["points"] == 0
    assert _f32(16777217.0) == 16777216.0


def test_set_points_overwrites_and_needs_reset_for_zero(api: Api) -> None:
    api.enrol()
    api.points("earn", 50, "e1", tierPoints=5)
    assert api.points("set", 0, "s1").json()["points"] == 50  # zero alone is ignored
    reset = api.points("set", 0, "s2", resetPoints=True, resetTierPoints=True).json()
    assert (reset["points"], reset["tierPoints"]) == (0, 0)
    assert api.points("set", 12.5, "s3").json()["points"] == 12.5


def test_member_events_record_external_event_ids(api: Api) -> None:
    member_id = api.enrol().json()["id"]
    api.points("earn", 10, "check-1")
    api.points("burn", 4, "reward-1")
    api.points("set", 3, "fix-1")
    tier = {
        "externalMemberId": "guest-1",
        "programId": PROGRAM,
        "tierId": "gold",
        "eventDetails": {"externalEventId": "tier-1"},
    }
    assert api("PUT", "/members/member/tier", tier).json()["eventType"] == "TIER_CHANGED"
    assert api("PUT", "/members/member/tier", {**tier, "tierId": "iron"}).status_code == 400
    response = api("POST", f"/members/member/list/events/{member_id}", {})
    lines = [json.loads(line) for line in response.text.splitlines()]
    events = [line["result"] for line in lines]
    assert [(e["eventType"], e["eventDetails"]["externalEventId"]) for e in events] == [
        ("POINTS_EARNED", "check-1"),
        ("POINTS_BURNED", "reward-1"),
        ("POINTS_SET", "fix-1"),
        ("TIER_CHANGED", "tier-1"),
    ]
    assert events[1]["points"] == 6  # balance after the event
    assert api("POST", "/members/member/list/events/unknown", {}).status_code == 404


def test_update_expiry_sets_expired_or_active(api: Api) -> None:
    api.enrol()
    body = {"externalId": "guest-1", "programId": PROGRAM}
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    api("PUT", "/members/member/updateExpiry", {**body, "expiryDate": past})
    assert api.member()["status"] == "EXPIRED"
    api("PUT", "/members/member/updateExpiry", {**body, "expiryDate": future})
    assert api.member()["status"] == "ACTIVE"
    naive = {**body, "expiryDate": "2030-01-01T00:00:00"}
    assert api("PUT", "/members/member/updateExpiry", naive).status_code == 400


def test_delete_removes_the_member_and_keeps_a_tombstone(sandbox: PassKitSandbox, api: Api) -> None:
    member_id = api.enrol().json()["id"]
    body = {"externalId": "guest-1", "programId": PROGRAM}
    assert api("DELETE", "/members/member", body).json() == {}
    assert api("GET", f"/members/member/id/{member_id}").status_code == 404
    assert api("DELETE", "/members/member", body).status_code == 404
    state = sandbox.state()
    assert state["members"] == []
    assert [(m["id"], m["status"]) for m in state["deletedMembers"]] == [(member_id, "DELETED")]
    assert api.enrol().status_code == 200  # the externalId is free again


def test_list_members_streams_ndjson_with_filters_and_paging(api: Api) -> None:
    for number in range(30):
        api.enrol(f"guest-{number:02d}", tierId="gold" if number % 3 == 0 else "base")
    api("POST", "/members/member", {"programId": "other", "tierId": "gold", "externalId": "x"})
    response = api("POST", f"/members/member/list/{PROGRAM}", {})
    assert response.headers["Transfer-Encoding"] == "chunked"
    lines = response.text.splitlines()
    assert len(lines) == 25  # PassKit's default page
    assert all(set(json.loads(line)) == {"result"} for line in lines)
    everything = api("POST", f"/members/member/list/{PROGRAM}", {"filters": {"limit": -1}})
    assert len(everything.text.splitlines()) == 30
    filters = {
        "limit": 3,
        "offset": 1,
        "orderBy": "externalId",
        "orderAsc": False,
        "filterGroups": [
            {
                "condition": "AND",
                "fieldFilters": [
                    {"filterField": "tierId", "filterValue": "gold", "filterOperator": "eq"},
                    {
                        "filterField": "externalId",
                        "filterValue": "guest-%",
                        "filterOperator": "like",
                    },
                ],
            }
        ],
    }
    page = api("POST", f"/members/member/list/{PROGRAM}", {"filters": filters})
    ids = [json.loads(line)["result"]["externalId"] for line in page.text.splitlines()]
    assert ids == ["guest-24", "guest-21", "guest-18"]


def test_coupons(api: Api, sandbox: PassKitSandbox) -> None:
    coupon = {"campaignId": "camp", "offerId": "offer", "externalId": "guest-1-r1"}
    for missing in ("campaignId", "offerId"):
        body = dict(coupon)
        del body[missing]
        assert api("POST", "/coupon/singleUse/coupon", body).status_code == 400
    coupon_id = api("POST", "/coupon/singleUse/coupon", coupon).json()["id"]
    assert api("POST", "/coupon/singleUse/coupon", coupon).status_code == 409
    other_campaign = {**coupon, "campaignId": "camp-2"}
    assert api("POST", "/coupon/singleUse/coupon", other_campaign).status_code == 200
    found = api("GET", "/coupon/singleUse/coupon/externalId/camp/guest-1-r1").json()
    assert (found["id"], found["status"]) == (coupon_id, "UNREDEEMED")
    ref = {"campaignId": "camp", "externalId": "guest-1-r1"}
    assert api("PUT", "/coupon/singleUse/coupon/redeem", ref).json()["status"] == "REDEEMED"
    assert api("PUT", "/coupon/singleUse/coupon/redeem", ref).status_code == 400
    assert api("DELETE", "/coupon/singleUse/coupon", ref).status_code == 200
    assert api("DELETE", "/coupon/singleUse/coupon", ref).status_code == 200  # no-op repeat
    assert (
        api("GET", "/coupon/singleUse/coupon/externalId/camp/guest-1-r1").json()["status"]
        == "VOIDED"
    )
    assert api("GET", "/coupon/singleUse/coupon/externalId/camp/none").status_code == 404


def test_unknown_route_is_404_and_wrong_method_405(api: Api) -> None:
    assert api("GET", "/members/nothing").status_code == 404
    assert api("PATCH", "/members/member", {}).status_code == 405


def test_path_parameters_are_url_decoded(api: Api) -> None:
    api.enrol("guest/with space")
    response = api("GET", f"/members/member/externalId/{PROGRAM}/guest%2Fwith%20space")
    assert response.status_code == 200
    assert response.json()["externalId"] == "guest/with space"


# ---------------------------------------------------------------------- state file


def test_state_survives_a_restart_from_the_same_file(tmp_path: Path) -> None:
    state_file = tmp_path / "var" / "passkit-sandbox.json"
    settings = {"api_key": API_KEY, "api_secret": API_SECRET, "state_file": state_file}
    with run_sandbox_in_thread(**settings) as first:
        api = Api(first.url)
        member_id = api.enrol().json()["id"]
        api.points("earn", 42, "check-1")
        api("POST", "/coupon/singleUse/coupon", {"campaignId": "c", "offerId": "o"})
    saved = json.loads(state_file.read_text())
    assert saved["members"][0]["points"] == 42
    assert [p.name for p in state_file.parent.iterdir()] == [state_file.name]  # no temp left
    with run_sandbox_in_thread(**settings) as second:
        api = Api(second.url)
        assert api.member()["id"] == member_id
        assert api.member()["points"] == 42
        assert api.enrol().status_code == 409  # the index is rebuilt too
        events = api("POST", f"/members/member/list/events/{member_id}", {}).text
        assert "check-1" in events
        assert len(second.state()["coupons"]) == 1


# ---------------------------------------------------------------------- admin and faults


def test_admin_endpoints(sandbox: PassKitSandbox, api: Api) -> None:
    admin = sandbox.url + "/_sandbox"
    api.enrol()
    stats = requests.get(admin + "/stats", timeout=2).json()
    assert stats["requests"] == {"enrol_member": 1}
    assert stats["responses"] == {"200": 1}
    settings = {"rate": 0.25, "kinds": ["503", "429"], "retry_after": 1, "seed": 1}
    assert requests.post(admin + "/faults", json=settings, timeout=2).json()["rate"] == 0.25
    assert requests.get(admin + "/faults", timeout=2).json()["kinds"] == ["503", "429"]
    bad = requests.post(admin + "/faults", json={"kinds": ["fire"]}, timeout=2)
    assert bad.status_code == 400
    assert requests.post(admin + "/faults", json={"rat": 1}, timeout=2).status_code == 400
    assert requests.delete(admin + "/faults", timeout=2).json()["rate"] == 0
    state = requests.get(admin + "/state", timeout=2).json()
    assert [m["externalId"] for m in state["members"]] == ["guest-1"]
    assert requests.post(admin + "/reset", timeout=2).status_code == 200
    assert sandbox.state()["members"] == []
    assert sandbox.stats()["requests"] == {}
    assert requests.get(admin + "/nothing", timeout=2).status_code == 404


def test_faults_are_reproducible_with_a_seed(sandbox: PassKitSandbox, api: Api) -> None:
    def statuses() -> list[int]:
        sandbox.set_faults(rate=0.5, kinds=["503", "429"], seed=7, retry_after=0)
        path = f"/members/member/externalId/{PROGRAM}/guest-1"
        return [api("GET", path).status_code for _ in range(20)]

    first = statuses()
    assert first == statuses()
    assert {404, 503, 429} <= set(first)


def test_429_carries_retry_after(sandbox: PassKitSandbox, api: Api) -> None:
    sandbox.set_faults(rate=1.0, kinds=["429"], retry_after=2)
    response = api.enrol()
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json()["code"] == 8
    assert sandbox.state()["members"] == []


def test_drop_closes_the_connection_before_applying(sandbox: PassKitSandbox, api: Api) -> None:
    sandbox.set_faults(rate=1.0, kinds=["drop"], count=1)
    with pytest.raises(requests.ConnectionError):
        api.enrol()
    assert sandbox.state()["members"] == []
    assert api.enrol().status_code == 200  # next request is served normally


def test_applied_then_500_applies_the_mutation(sandbox: PassKitSandbox, api: Api) -> None:
    api.enrol()
    sandbox.set_faults(rate=1.0, kinds=["applied_then_500"], count=1)
    response = api.points("earn", 5, "check-1")
    assert response.status_code == 500
    assert api.member()["points"] == 5


def test_slow_and_latency_delay_answers(sandbox: PassKitSandbox, api: Api) -> None:
    path = f"/members/member/externalId/{PROGRAM}/guest-1"
    sandbox.set_faults(rate=1.0, kinds=["slow"], count=1, slow_seconds=0.3)
    with pytest.raises(requests.ReadTimeout):
        api("GET", path, timeout=0.1)
    sandbox.set_faults(latency_ms=50)
    started = time.monotonic()
    for _ in range(4):
        api("GET", path)
    assert time.monotonic() - started >= 0.2


def test_fault_config_validation() -> None:
    with pytest.raises(ValueError):
        FaultConfig(rate=1.5)
    with pytest.raises(ValueError):
        FaultConfig.from_dict({"kinds": ["meteor"]})
    with pytest.raises(ValueError):
        FaultConfig.from_dict({"operations": ["steal_points"]})
    assert FaultConfig.from_dict({"kinds": "drop", "rate": 1}).kinds == ("drop",)


def test_faults_can_be_set_at_start() -> None:
    faults = {"rate": 1.0, "kinds": ["503"], "count": 1}
    with run_sandbox_in_thread(api_key=API_KEY, api_secret=API_SECRET, faults=faults) as running:
        api = Api(running.url)
        assert api.enrol().status_code == 503
        assert api.enrol().status_code == 200


# ---------------------------------------------------------------------- CLI


def test_cli_parses_fault_and_tier_flags() -> None:
    args = build_parser().parse_args(
        ["--port", "0", "--tiers", "a,b", "--fault-kinds", "503,drop", "--latency-ms", "50"]
    )
    assert args.tiers == ("a", "b")
    assert args.fault_kinds == ("503", "drop")
    assert args.latency_ms == 50


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    env = {**os.environ, "PYTHONPATH": str(PLUGINS), "PASSKIT_SANDBOX_API_SECRET": API_SECRET}
    command = [
        sys.executable,
        "-m",
        "toast_passkit.passkit.sandbox",
        "--port",
        "0",
        "--state-file",
        str(state_file),
        "--api-key",
        API_KEY,
        "--latency-ms",
        "1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        assert Api(url).enrol().status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert json.loads(state_file.read_text())["members"][0]["externalId"] == "guest-1"
