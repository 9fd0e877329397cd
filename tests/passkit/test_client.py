"""Tests of the PassKit client, its rate limiters and the Airflow hook, against the sandbox."""

from __future__ import annotations

import json
import logging
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from types import SimpleNamespace

import jwt
import pytest

from toast_passkit.passkit import client as client_module
from toast_passkit.passkit.client import (
    PassKitAuthError,
    PassKitClient,
    PassKitClientError,
    PassKitConflict,
    PassKitError,
    PassKitNotFound,
    PassKitOutcomeUnknown,
    PassKitUnavailable,
    _parse_retry_after,
    format_timestamp,
)
from toast_passkit.passkit.ratelimit import FileRateLimiter, RateLimiter, make_limiter
from toast_passkit.passkit.sandbox import PassKitSandbox, run_sandbox_in_thread

# Throwaway credentials, only ever valid for the in-test sandbox.
API_KEY = "test-key-0001"
API_SECRET = "test-secret-for-the-sandbox-only-0123456789"
PROGRAM = "prog-test"
PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


@pytest.fixture
def sandbox() -> Iterator[PassKitSandbox]:
    with run_sandbox_in_thread(api_key=API_KEY, api_secret=API_SECRET) as running:
        yield running


def make_client(url: str, **overrides: object) -> PassKitClient:
    settings: dict[str, object] = {
        "program_id": PROGRAM,
        "requests_per_second": None,
        "read_timeout": 0.5,
        "connect_timeout": 0.5,
        "max_attempts": 4,
        "max_retry_seconds": 5.0,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
    }
    settings.update(overrides)
    return PassKitClient(url, API_KEY, API_SECRET, **settings)  # type: ignore[arg-type]


@pytest.fixture
def client(sandbox: PassKitSandbox) -> Iterator[PassKitClient]:
    with make_client(sandbox.url) as passkit:
        yield passkit


def enrol(client: PassKitClient, external_id: str = "guest-1", **fields: object) -> str:
    member = {"externalId": external_id, "tierId": "base", **fields}
    return client.enrol_member(member)


def frozen_clock(at: float) -> SimpleNamespace:
    """Stands in for the client module's `time`: wall clock fixed, monotonic clock real."""
    return SimpleNamespace(time=lambda: at, monotonic=time.monotonic, sleep=time.sleep)


def sandbox_member(sandbox: PassKitSandbox, external_id: str) -> dict:
    return next(m for m in sandbox.state()["members"] if m["externalId"] == external_id)


# ---------------------------------------------------------------------- auth


def test_token_is_hs256_with_uid_iat_exp_and_short_lived(client: PassKitClient) -> None:
    token = client._authorization()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, API_SECRET, algorithms=["HS256"])
    assert claims["uid"] == API_KEY
    assert 0 < claims["exp"] - claims["iat"] <= 600
    assert client._authorization() == token  # cached while fresh


def test_token_is_re_signed_before_it_expires(
    client: PassKitClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = client._authorization()
    later = time.time() + 290  # 10 s before a 300 s token expires
    monkeypatch.setattr(client_module, "time", frozen_clock(later))
    second = client._authorization()
    assert second != first
    assert jwt.decode(second, API_SECRET, algorithms=["HS256"], leeway=400)["exp"] > later


def test_wrong_secret_is_rejected_with_auth_error(sandbox: PassKitSandbox) -> None:
    bad = PassKitClient(sandbox.url, API_KEY, "another-secret-of-at-least-32-bytes!")
    with bad, pytest.raises(PassKitAuthError) as caught:
        bad.get_member_by_external_id("guest-1", program_id=PROGRAM)
    assert caught.value.status == 401
    assert bad.request_counts == {"get_member_by_external_id": 1}  # 4xx is not retried


def test_expired_token_is_rejected(
    sandbox: PassKitSandbox, client: PassKitClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "time", frozen_clock(time.time() - 3600))
    with pytest.raises(PassKitAuthError) as caught:
        client.get_member_by_external_id("guest-1")
    assert caught.value.message == "token expired"


# ---------------------------------------------------------------------- members


def test_enrol_then_get_by_external_id(client: PassKitClient) -> None:
    member_id = enrol(client, person={"forename": "Ada", "emailAddress": "ada@example.com"})
    member = client.get_member_by_external_id("guest-1")
    assert member is not None
    assert member["id"] == member_id
    assert member["tierId"] == "base"
    assert member["person"]["forename"] == "Ada"
    assert client.get_member(member_id)["externalId"] == "guest-1"
    assert client.get_member_by_external_id("nobody") is None


def test_get_member_by_unknown_id_raises_not_found(client: PassKitClient) -> None:
    with pytest.raises(PassKitNotFound):
        client.get_member("does-not-exist")


def test_duplicate_enrol_is_a_409_client_error_and_the_member_exists(
    client: PassKitClient,
) -> None:
    member_id = enrol(client)
    with pytest.raises(PassKitClientError) as caught:
        enrol(client)
    error = caught.value
    assert isinstance(error, PassKitConflict)
    assert error.status == 409
    assert error.code == 6
    assert "already exists" in (error.message or "")
    assert error.method == "POST"
    assert error.path == "/members/member"
    assert client.request_counts["enrol_member"] == 2  # not retried
    found = client.get_member_by_external_id("guest-1")
    assert found is not None
    assert found["id"] == member_id


def test_earn_and_burn_return_new_balances(client: PassKitClient) -> None:
    enrol(client)
    earned = client.earn_points("guest-1", 120.5, external_event_id="check-1", tier_points=12)
    assert earned["points"] == 120.5
    assert earned["tierPoints"] == 12
    burned = client.burn_points("guest-1", 20, external_event_id="reward-1")
    assert burned["points"] == 100.5
    assert burned["externalId"] == "guest-1"
    assert burned["programId"] == PROGRAM


def test_negative_amount_is_rejected_with_400_and_not_retried(client: PassKitClient) -> None:
    enrol(client)
    with pytest.raises(PassKitClientError) as caught:
        client.earn_points("guest-1", -5, external_event_id="check-neg")
    assert caught.value.status == 400
    assert client.request_counts["earn_points"] == 1


def test_burn_below_zero_is_rejected(client: PassKitClient) -> None:
    enrol(client)
    client.earn_points("guest-1", 10, external_event_id="check-1")
    with pytest.raises(PassKitClientError) as caught:
        client.burn_points("guest-1", 11, external_event_id="reward-1")
    assert caught.value.status == 400
    assert client.get_member_by_external_id("guest-1")["points"] == 10  # type: ignore[index]


def test_set_points_zero_sends_reset_and_change_tier_and_expiry(client: PassKitClient) -> None:
    member_id = enrol(client)
    client.earn_points("guest-1", 50, external_event_id="check-1")
    assert client.set_points("guest-1", 0)["points"] == 0
    assert client.set_points("guest-1", 75)["points"] == 75
    event = client.change_tier("guest-1", "gold", external_event_id="tier-1")
    assert event["eventType"] == "TIER_CHANGED"
    assert client.get_member(member_id)["tierId"] == "gold"
    client.update_expiry("guest-1", datetime.now(UTC) - timedelta(days=1))
    assert client.get_member(member_id)["status"] == "EXPIRED"
    client.update_expiry("guest-1", datetime.now(UTC) + timedelta(days=30))
    assert client.get_member(member_id)["status"] == "ACTIVE"
    types = [e["eventType"] for e in client.list_member_events(member_id)]
    assert types == ["POINTS_EARNED", "POINTS_SET", "POINTS_SET", "TIER_CHANGED"]


def test_update_member_and_delete(client: PassKitClient) -> None:
    enrol(client, person={"forename": "Ada", "surname": "Lovelace"})
    client.update_member({"externalId": "guest-1", "person": {"forename": "Augusta"}})
    member = client.get_member_by_external_id("guest-1")
    assert member is not None
    assert member["person"] == {"forename": "Augusta", "surname": "Lovelace"}
    assert client.delete_member("guest-1") is True
    assert client.get_member_by_external_id("guest-1") is None
    assert client.delete_member("guest-1") is False  # already gone: a retry ends well


def test_list_members_streams_all_pages(client: PassKitClient) -> None:
    for number in range(30):
        enrol(client, f"guest-{number:02d}")
    members = client.list_members()
    assert len(members) == 30  # limit -1: more than PassKit's default page of 25
    assert {m["externalId"] for m in members} == {f"guest-{n:02d}" for n in range(30)}
    page = client.list_members(limit=5, offset=10, order_by="externalId")
    assert [m["externalId"] for m in page] == [f"guest-{n:02d}" for n in range(10, 15)]


def test_coupons_issue_get_redeem_void(client: PassKitClient) -> None:
    coupon = {"campaignId": "camp-1", "offerId": "offer-1", "externalId": "guest-1-r1"}
    coupon_id = client.issue_coupon(coupon)
    found = client.get_coupon_by_external_id("camp-1", "guest-1-r1")
    assert found is not None
    assert found["id"] == coupon_id
    assert found["status"] == "UNREDEEMED"
    with pytest.raises(PassKitConflict):
        client.issue_coupon(coupon)
    assert client.redeem_coupon("camp-1", "guest-1-r1")["status"] == "REDEEMED"
    assert client.void_coupon("camp-1", "guest-1-r1") is True
    assert client.get_coupon_by_external_id("camp-1", "nope") is None
    assert client.void_coupon("camp-1", "nope") is False


def test_request_bodies_use_the_documented_camel_case_fields(
    sandbox: PassKitSandbox, client: PassKitClient
) -> None:
    # The sandbox rejects unknown fields, so every call succeeding proves the field names.
    enrol(client)
    client.earn_points(
        "guest-1", 1, external_event_id="e-1", event_details={"externalDeviceId": "pos-1"}
    )
    client.set_points("guest-1", 3, tier_points=0, reset_points=True)
    client.change_tier("guest-1", "silver")
    event = sandbox.state()["events"][0]
    assert event["eventDetails"] == {"externalDeviceId": "pos-1", "externalEventId": "e-1"}


def test_invalid_arguments_fail_before_any_request(client: PassKitClient) -> None:
    with pytest.raises(ValueError):
        client.earn_points("guest-1", float("nan"), external_event_id="e")
    with pytest.raises(ValueError):
        client.earn_points("guest-1", 1, external_event_id="")
    with pytest.raises(ValueError):
        client.update_expiry("guest-1", datetime(2030, 1, 1))  # naive: ambiguous
    with pytest.raises(ValueError):
        PassKitClient("api.pub2.passkit.io", API_KEY, API_SECRET)
    assert client.request_counts == {}


def test_format_timestamp_is_rfc3339_utc() -> None:
    when = datetime(2026, 5, 1, 6, 30, tzinfo=UTC)
    assert format_timestamp(when) == "2026-05-01T06:30:00Z"


# ---------------------------------------------------------------------- retries and faults


def test_503_is_retried_for_idempotent_calls(
    sandbox: PassKitSandbox, client: PassKitClient
) -> None:
    enrol(client)
    sandbox.set_faults(rate=1.0, kinds=["503"], count=2, operations=["get_member_by_external_id"])
    assert client.get_member_by_external_id("guest-1") is not None
    assert client.request_counts["get_member_by_external_id"] == 3
    assert sandbox.stats()["faults"] == {"503": 2}


def test_429_honours_retry_after(sandbox: PassKitSandbox, client: PassKitClient) -> None:
    sandbox.set_faults(rate=1.0, kinds=["429"], count=2, retry_after=0.2)
    started = time.monotonic()
    assert client.get_member_by_external_id("guest-1") is None
    assert time.monotonic() - started >= 0.4
    assert client.request_counts["get_member_by_external_id"] == 3


def test_503_and_429_on_earn_are_repeated_because_not_applied(
    sandbox: PassKitSandbox, client: PassKitClient
) -> None:
    member_id = enrol(client)
    sandbox.set_faults(
        rate=1.0, kinds=["503", "429"], count=2, retry_after=0.05, operations=["earn_points"]
    )
    assert client.earn_points("guest-1", 7, external_event_id="check-7")["points"] == 7
    assert client.request_counts["earn_points"] == 3
    assert len(client.list_member_events(member_id)) == 1


def test_applied_then_500_on_earn_is_outcome_unknown_and_not_repeated(
    sandbox: PassKitSandbox, client: PassKitClient
) -> None:
    member_id = enrol(client)
    sandbox.set_faults(rate=1.0, kinds=["applied_then_500"], count=1, operations=["earn_points"])
    with pytest.raises(PassKitOutcomeUnknown) as caught:
        client.earn_points("guest-1", 25, external_event_id="check-42")
    assert caught.value.status == 500
    assert client.request_counts["earn_points"] == 1
    assert sandbox_member(sandbox, "guest-1")["points"] == 25  # applied exactly once
    event = client.find_member_event(member_id, "check-42")
    assert event is not None
    assert event["eventType"] == "POINTS_EARNED"
    assert event["eventDetails"]["externalEventId"] == "check-42"
    assert client.find_member_event(member_id, "check-43") is None


def test_dropped_connection_on_idempotent_get_is_retried(
    sandbox: PassKitSandbox, client: PassKitClient
) -> None:
    enrol(client)
    sandbox.set_faults(rate=1.0, kinds=["drop"], count=1, operations=["get_member_by_external_id"])
    assert client.get_member_by_external_id("guest-1") is not None
    assert client.request_counts["get_member_by_external_id"] == 2


def test_dropped_connection_on_enrol_is_outcome_unknown(
    sandbox: PassKitSandbox, client: PassKitClient
) -> None:
    sandbox.set_faults(rate=1.0, kinds=["drop"], count=1, operations=["enrol_member"])
    with pytest.raises(PassKitOutcomeUnknown) as caught:
        enrol(client)
    assert caught.value.status is None
    assert client.request_counts["enrol_member"] == 1
    # The caller reconciles: here the sandbox dropped it before applying.
    assert client.get_member_by_external_id("guest-1") is None


def test_read_timeout_retries_a_get_but_not_an_earn(
    sandbox: PassKitSandbox, client: PassKitClient
) -> None:
    enrol(client)
    sandbox.set_faults(rate=1.0, kinds=["slow"], count=1, slow_seconds=0.8)
    assert client.get_member_by_external_id("guest-1") is not None
    assert client.request_counts["get_member_by_external_id"] == 2
    sandbox.set_faults(rate=1.0, kinds=["slow"], count=1, slow_seconds=0.8)
    with pytest.raises(PassKitOutcomeUnknown, match="read timeout"):
        client.earn_points("guest-1", 3, external_event_id="check-slow")
    assert client.request_counts["earn_points"] == 1


def test_500_on_an_idempotent_call_is_retried(
    sandbox: PassKitSandbox, client: PassKitClient
) -> None:
    enrol(client)
    sandbox.set_faults(rate=1.0, kinds=["applied_then_500"], count=1, operations=["set_points"])
    assert client.set_points("guest-1", 40)["points"] == 40
    assert client.request_counts["set_points"] == 2


def test_retries_are_bounded_and_end_in_unavailable(
    sandbox: PassKitSandbox, client: PassKitClient
) -> None:
    sandbox.set_faults(rate=1.0, kinds=["503"])
    with pytest.raises(PassKitUnavailable) as caught:
        client.get_member_by_external_id("guest-1")
    assert caught.value.status == 503
    assert caught.value.attempts == 4
    assert "after 4 attempts" in str(caught.value)
    assert client.request_counts["get_member_by_external_id"] == 4


def test_retry_after_longer_than_the_budget_stops_early(
    sandbox: PassKitSandbox, client: PassKitClient
) -> None:
    sandbox.set_faults(rate=1.0, kinds=["429"], retry_after=30)
    started = time.monotonic()
    with pytest.raises(PassKitUnavailable) as caught:
        client.get_member_by_external_id("guest-1")
    assert time.monotonic() - started < 2
    assert caught.value.retry_after == 30


def test_connection_refused_is_retried_even_for_enrol() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with make_client(f"http://127.0.0.1:{port}") as passkit:
        with pytest.raises(PassKitUnavailable):
            enrol(passkit)
        assert passkit.request_counts["enrol_member"] == 4  # never sent, so safe to repeat


def test_parse_retry_after_seconds_and_http_date() -> None:
    assert _parse_retry_after("3") == 3.0
    assert _parse_retry_after("0.25") == 0.25
    assert _parse_retry_after(None) is None
    assert _parse_retry_after("soon") is None
    in_ten = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    assert 8 <= (_parse_retry_after(in_ten) or 0) <= 10
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=10), usegmt=True)
    assert _parse_retry_after(past) == 0.0


# ---------------------------------------------------------------------- errors and logs


def test_errors_and_logs_never_carry_credentials_or_person_data(
    sandbox: PassKitSandbox, client: PassKitClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="toast_passkit")
    token = client._authorization()
    enrol(client, person={"emailAddress": "ada@example.com", "forename": "Ada"})
    sandbox.set_faults(rate=1.0, kinds=["503"], count=1)
    client.get_member_by_external_id("guest-1")
    with pytest.raises(PassKitError) as caught:
        enrol(client, person={"emailAddress": "ada@example.com"})
    text = " ".join([str(caught.value), repr(caught.value), caught.value.body or "", caplog.text])
    for secret in (API_SECRET, token, "ada@example.com", "Ada"):
        assert secret not in text
    assert "GET /members/member/externalId/{programId}/{externalId} -> 503" in caplog.text


def test_errors_survive_pickling() -> None:
    error = PassKitOutcomeUnknown(
        "server error", operation="earn_points", method="PUT", path="/p", status=500, body="x"
    )
    error.attempts = 2
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is PassKitOutcomeUnknown
    assert (copy.status, copy.operation, copy.attempts) == (500, "earn_points", 2)
    assert str(copy) == str(error)


# ---------------------------------------------------------------------- concurrency and limits


def test_client_is_safe_from_a_thread_pool(sandbox: PassKitSandbox, client: PassKitClient) -> None:
    for number in range(8):
        enrol(client, f"guest-{number}")

    def earn(index: int) -> None:
        client.earn_points(f"guest-{index % 8}", 1.5, external_event_id=f"check-{index}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(earn, range(160)))
    assert client.call_counts["earn_points"] == 160
    assert client.request_counts["earn_points"] == 160
    assert all(m["points"] == 30 for m in sandbox.state()["members"])
    assert sandbox.stats()["requests"]["earn_points"] == 160


def test_rate_limiter_spaces_calls() -> None:
    limiter = RateLimiter(50)
    started = time.monotonic()
    for _ in range(11):
        limiter.acquire()
    assert time.monotonic() - started >= 10 / 50


def test_rate_limiter_is_shared_by_threads() -> None:
    limiter = RateLimiter(40)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: limiter.acquire(), range(12)))
    assert time.monotonic() - started >= 11 / 40


def test_client_calls_are_throttled(sandbox: PassKitSandbox) -> None:
    with make_client(sandbox.url, requests_per_second=25) as passkit:
        started = time.monotonic()
        for _ in range(6):
            passkit.get_member_by_external_id("guest-1")
        assert time.monotonic() - started >= 5 / 25


_LIMITER_WORKER = """
import sys, time
from toast_passkit.passkit.ratelimit import FileRateLimiter
path, rate, count, start_at = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
limiter = FileRateLimiter(path, rate)
time.sleep(max(0.0, start_at - time.time()))
began = time.time()
stamps = []
for _ in range(count):
    limiter.acquire()
    stamps.append(time.time())
print(began, *stamps)
"""


def test_file_rate_limiter_is_shared_by_two_processes(tmp_path: Path) -> None:
    rate, per_process = 20.0, 5
    start_at = time.time() + 0.5  # both processes begin together, after their start-up
    args = [str(tmp_path / "passkit.rate"), str(rate), str(per_process), str(start_at)]
    env = {"PYTHONPATH": str(PLUGINS)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _LIMITER_WORKER, *args],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=20)[0].split() for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    began = min(float(out[0]) for out in outputs)
    stamps = sorted(float(stamp) for out in outputs for stamp in out[1:])
    assert len(stamps) == 2 * per_process
    # Alone, each process would finish in (5-1)/20 s; sharing, all 10 need (10-1)/20 s.
    assert stamps[-1] - began >= (2 * per_process - 1) / rate - 0.01


def test_make_limiter_picks_the_configured_kind(tmp_path: Path) -> None:
    assert make_limiter(None).acquire() == 0.0
    assert isinstance(make_limiter(5), RateLimiter)
    assert isinstance(make_limiter(5, tmp_path / "rate"), FileRateLimiter)
    with pytest.raises(ValueError):
        RateLimiter(0)


# ---------------------------------------------------------------------- hook


def test_hook_builds_a_client_from_the_airflow_connection(
    sandbox: PassKitSandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from toast_passkit.passkit.hook import PassKitHook

    host, port = sandbox.url.removeprefix("http://").split(":")
    connection = {
        "conn_type": "passkit",
        "host": host,
        "port": int(port),
        "schema": "http",
        "login": API_KEY,
        "password": API_SECRET,
        "extra": {
            "program_id": PROGRAM,
            "requests_per_second": "50",  # URI-style extras arrive as strings
            "timeout_seconds": 3,
            "max_attempts": 2,
            "rate_limit_file": str(tmp_path / "passkit.rate"),
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_PASSKIT_DEFAULT", json.dumps(connection))
    hook = PassKitHook()
    passkit = hook.get_client()
    assert hook.get_client() is passkit
    assert passkit.base_url == sandbox.url
    assert passkit.program_id == PROGRAM
    assert passkit.timeout == (5.0, 3.0)
    assert passkit.max_attempts == 2
    assert isinstance(passkit.limiter, FileRateLimiter)
    assert passkit.limiter.requests_per_second == 50
    member_id = passkit.enrol_member({"externalId": "guest-9", "tierId": "silver"})
    assert passkit.get_member_by_external_id("guest-9")["id"] == member_id  # type: ignore[index]
    hook.close()


@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        ("api.pub2.passkit.io", "https", None, "https://api.pub2.passkit.io"),
        ("api.pub1.passkit.io", None, None, "https://api.pub1.passkit.io"),
        ("https://api.pub2.passkit.io/", None, None, "https://api.pub2.passkit.io"),
        ("127.0.0.1", "http", 8765, "http://127.0.0.1:8765"),
        ("http://127.0.0.1:8765", None, 8765, "http://127.0.0.1:8765"),
    ],
)
def test_hook_base_url(host: str, schema: str | None, port: int | None, expected: str) -> None:
    from toast_passkit.passkit.hook import PassKitHook

    assert PassKitHook.base_url(host, schema, port) == expected
