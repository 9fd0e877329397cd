"""Tests of the PassKit webhook receiver app, its settings and its Airflow plugin."""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from toast_passkit.webhooks import eventlog
from toast_passkit.webhooks.receiver import (
    ReceiverConfigError,
    ReceiverSettings,
    create_app,
    create_app_from_env,
    main,
    sign,
)

TOKEN = "test-token-not-a-secret-0123"
SECRET = "test-signing-secret-throwaway"
EVENTS = f"/{TOKEN}/events"
INSTALLED = {
    "event": "PASS_EVENT_INSTALLED",
    "pass": {
        "id": "5u5EO18473CDVG0Vw0VgPV",
        "classId": "24hmYozRggBJTtPt0Y2e3X",
        "protocol": 100,
        "externalId": "M-000123",
        "personDetails": {"displayName": "Jane Guest", "emailAddress": "jane@example.com"},
        "metaData": {"status": 1, "lastInstalledAt": "2025-03-01T10:00:00Z"},
        "recordData": {"members.member.points": "100.000000"},
    },
}


def make_client(tmp_path: Path, **overrides: Any) -> TestClient:
    settings = ReceiverSettings(token=TOKEN, log_dir=tmp_path / "log", **overrides)
    return TestClient(create_app(settings))


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode("utf-8")


def log_files(tmp_path: Path) -> dict[str, str]:
    log_dir = tmp_path / "log"
    return {p.name: p.read_text("utf-8") for p in sorted(log_dir.glob("*.jsonl"))}


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/wrong-token-wrong-token/events",
        f"/{TOKEN[:-1]}/events",
        "/events",
        "http://testserver//events",
        f"/x/{TOKEN}/events",
    ],
)
def test_wrong_or_missing_token_is_401_and_nothing_logged(tmp_path: Path, path: str) -> None:
    client = make_client(tmp_path)
    response = client.post(path, content=body_of(INSTALLED))
    assert response.status_code == 401
    assert log_files(tmp_path) == {}


def test_malformed_body_with_wrong_token_is_not_dead_lettered(tmp_path: Path) -> None:
    response = make_client(tmp_path).post("/nope-nope-nope-nope/events", content=b"not json")
    assert response.status_code == 401
    assert log_files(tmp_path) == {}


@pytest.mark.parametrize(
    "signature",
    [None, "", "deadbeef", sign("another-secret-entirely", body_of(INSTALLED))],
)
def test_bad_or_missing_signature_is_401_when_secret_configured(
    tmp_path: Path, signature: str | None
) -> None:
    client = make_client(tmp_path, signing_secret=SECRET)
    headers = {} if signature is None else {"x-passkit-signature": signature}
    response = client.post(EVENTS, content=body_of(INSTALLED), headers=headers)
    assert response.status_code == 401
    assert log_files(tmp_path) == {}


@pytest.mark.parametrize("prefix", ["", "sha256=", "SHA256="])
def test_good_signature_is_accepted(tmp_path: Path, prefix: str) -> None:
    client = make_client(tmp_path, signing_secret=SECRET)
    body = body_of(INSTALLED)
    signature = prefix + sign(SECRET, body).upper()
    response = client.post(EVENTS, content=body, headers={"x-passkit-signature": signature})
    assert response.status_code == 202
    assert response.json()["accepted"] is True


def test_signature_covers_the_exact_body(tmp_path: Path) -> None:
    client = make_client(tmp_path, signing_secret=SECRET)
    body = body_of(INSTALLED)
    signature = sign(SECRET, body)
    response = client.post(EVENTS, content=body + b" ", headers={"x-passkit-signature": signature})
    assert response.status_code == 401


def test_health_needs_the_token(tmp_path: Path) -> None:
    client = make_client(tmp_path)
    assert client.get(f"/{TOKEN}/health").json() == {"status": "ok"}
    assert client.get("/wrong-token-wrong-token/health").status_code == 401
    assert client.get("/health").status_code == 401


# --- accepted deliveries ----------------------------------------------------------------------


def test_accepted_event_is_on_disk_and_synced_when_the_response_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced_sizes: list[int] = []
    real_fsync = os.fsync

    def spy_fsync(fd: int) -> None:
        real_fsync(fd)
        synced_sizes.append(os.fstat(fd).st_size)

    monkeypatch.setattr(eventlog.os, "fsync", spy_fsync)
    client = make_client(tmp_path)
    body = body_of(INSTALLED)
    response = client.put(
        EVENTS,
        content=body,
        headers={
            "content-type": "application/json",
            "x-request-id": "req-1",
            "authorization": "Bearer must-not-be-kept",
            "cookie": "session=must-not-be-kept",
        },
    )

    assert response.status_code == 202
    assert response.json() == {"accepted": True, "delivery_id": hashlib.sha256(body).hexdigest()}
    files = log_files(tmp_path)
    (name,) = files
    assert name.startswith("events-") and name.endswith(".jsonl")
    (record,) = lines(files[name])
    assert record["body"] == body.decode()
    assert record["method"] == "PUT"
    assert record["delivery_id"] == hashlib.sha256(body).hexdigest()
    assert record["received_at"].endswith("Z")
    assert record["headers"]["x-request-id"] == "req-1"
    assert record["headers"]["content-type"] == "application/json"
    assert "authorization" not in record["headers"] and "cookie" not in record["headers"]
    # The file was fsync'ed with the whole line in it before the 202 was produced.
    assert (tmp_path / "log" / name).stat().st_size in synced_sizes
    assert (tmp_path / "log" / name).stat().st_mode & 0o777 == 0o600


def test_post_put_and_delete_are_all_accepted(tmp_path: Path) -> None:
    client = make_client(tmp_path)
    for method in ("POST", "PUT", "DELETE"):
        payload = {**INSTALLED, "seq": method}
        response = client.request(method, EVENTS, content=body_of(payload))
        assert response.status_code == 202, method
    (text,) = log_files(tmp_path).values()
    assert [r["method"] for r in lines(text)] == ["POST", "PUT", "DELETE"]


def test_numeric_event_is_accepted(tmp_path: Path) -> None:
    response = make_client(tmp_path).post(EVENTS, content=b'{"event": 2, "pass": {}}')
    assert response.status_code == 202


def test_get_on_events_is_not_allowed(tmp_path: Path) -> None:
    assert make_client(tmp_path).get(EVENTS).status_code == 405


# --- malformed deliveries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason_start"),
    [
        (b"{not json", "body is not JSON"),
        (b"", "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b'{"pass": {"id": "x"}}', "no 'event' field"),
        (b'{"event": null}', "no 'event' field"),
        (b'{"event": {"name": "x"}}', "no 'event' field"),
        (b'{"event": "  "}', "empty 'event' field"),
        (b"[" * 100_000, "body is not JSON"),
    ],
)
def test_malformed_body_is_400_and_dead_lettered(
    tmp_path: Path, body: bytes, reason_start: str
) -> None:
    response = make_client(tmp_path).post(EVENTS, content=body)
    assert response.status_code == 400
    assert response.json()["accepted"] is False
    files = log_files(tmp_path)
    (name,) = files
    assert name.startswith("deadletter-")
    (record,) = lines(files[name])
    assert record["body"] == body.decode()
    assert record["reason"].startswith(reason_start)
    assert record["delivery_id"] == hashlib.sha256(body).hexdigest()


def test_non_utf8_body_is_dead_lettered_in_base64(tmp_path: Path) -> None:
    response = make_client(tmp_path).post(EVENTS, content=b'{"event": "\xff"}')
    assert response.status_code == 400
    (text,) = log_files(tmp_path).values()
    (record,) = lines(text)
    assert record["reason"] == "body is not UTF-8"
    assert "body" not in record and record["body_base64"]


# --- size cap ---------------------------------------------------------------------------------


def test_body_over_cap_is_413_by_content_length(tmp_path: Path) -> None:
    client = make_client(tmp_path, max_body_bytes=1024)
    payload = {**INSTALLED, "padding": "x" * 2000}
    response = client.post(EVENTS, content=body_of(payload))
    assert response.status_code == 413
    assert log_files(tmp_path) == {}


def test_body_over_cap_is_413_when_streamed_without_length(tmp_path: Path) -> None:
    client = make_client(tmp_path, max_body_bytes=1024)

    def chunks() -> Any:
        yield b'{"event": "PASS_EVENT_INSTALLED", "padding": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}'

    response = client.post(EVENTS, content=chunks())
    assert response.status_code == 413
    assert log_files(tmp_path) == {}


def test_body_at_cap_is_accepted(tmp_path: Path) -> None:
    body = body_of({"event": "PASS_EVENT_INSTALLED", "padding": ""})
    body = body_of({"event": "PASS_EVENT_INSTALLED", "padding": "x" * (1024 - len(body))})
    assert len(body) == 1024
    assert make_client(tmp_path, max_body_bytes=1024).post(EVENTS, content=body).status_code == 202


# --- server log hygiene -----------------------------------------------------------------------


def test_server_log_has_ids_but_no_personal_details_or_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(tmp_path)
    client.post(EVENTS, content=body_of(INSTALLED))
    client.post(EVENTS, content=b'{"personDetails": {"emailAddress": "jane@example.com"}}')
    client.post("/wrong-token-wrong-token/events", content=body_of(INSTALLED))
    # Only the server's records: the test client (httpx) logs the URLs it calls.
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("toast_passkit"))
    assert "PASS_EVENT_INSTALLED" in text and "M-000123" in text and "status=202" in text
    for secret_or_pii in ("jane@example.com", "Jane", TOKEN, "wrong-token-wrong-token"):
        assert secret_or_pii not in text


def test_token_is_redacted_from_the_path_seen_by_outer_access_loggers(tmp_path: Path) -> None:
    seen_paths: list[str] = []
    outer = FastAPI()

    class AccessLog:
        """Like Airflow's HttpAccessLogMiddleware: reads the path once the app has returned."""

        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await self.app(scope, receive, send)
            if scope["type"] == "http":
                seen_paths.append(scope["path"])

    outer.add_middleware(AccessLog)
    settings = ReceiverSettings(token=TOKEN, log_dir=tmp_path / "log")
    outer.mount("/passkit-webhooks", create_app(settings))
    response = TestClient(outer).post(f"/passkit-webhooks{EVENTS}", content=body_of(INSTALLED))
    assert response.status_code == 202
    assert seen_paths == ["/passkit-webhooks/***/events"]


# --- settings and entry point -----------------------------------------------------------------


def test_missing_token_refuses_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PASSKIT_WEBHOOK_TOKEN", raising=False)
    monkeypatch.setenv("PASSKIT_WEBHOOK_LOG_DIR", str(tmp_path / "log"))
    with pytest.raises(ReceiverConfigError, match="PASSKIT_WEBHOOK_TOKEN is not set"):
        create_app_from_env()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PASSKIT_WEBHOOK_TOKEN": "short"}, "at least 16"),
        ({"PASSKIT_WEBHOOK_TOKEN": "has/a/slash/in/it/xxxx"}, "URL-safe"),
        ({"PASSKIT_WEBHOOK_TOKEN": TOKEN, "PASSKIT_WEBHOOK_MAX_BODY_BYTES": "big"}, "integer"),
        ({"PASSKIT_WEBHOOK_TOKEN": TOKEN, "PASSKIT_WEBHOOK_MAX_BODY_BYTES": "0"}, "positive"),
    ],
)
def test_invalid_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ReceiverConfigError, match=message):
        ReceiverSettings.from_env(env)


def test_settings_from_env_defaults_and_repr_hides_secrets() -> None:
    settings = ReceiverSettings.from_env(
        {"PASSKIT_WEBHOOK_TOKEN": TOKEN, "PASSKIT_WEBHOOK_SIGNING_SECRET": SECRET}
    )
    assert settings.max_body_bytes == 256 * 1024
    assert settings.log_dir == Path("var/webhooks").absolute()
    assert settings.signing_secret == SECRET
    assert TOKEN not in repr(settings) and SECRET not in repr(settings)


def test_main_exits_with_a_clear_error_without_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("PASSKIT_WEBHOOK_TOKEN", raising=False)
    assert main(["--log-dir", str(tmp_path / "log")]) == 2
    assert "PASSKIT_WEBHOOK_TOKEN is not set" in capsys.readouterr().err


# --- Airflow plugin ---------------------------------------------------------------------------


def _import_plugin_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    # Importing airflow creates its home if none is configured; keep that out of ~/airflow.
    monkeypatch.setenv("AIRFLOW_HOME", os.environ.get("AIRFLOW_HOME", str(tmp_path / "airflow")))
    monkeypatch.delitem(sys.modules, "passkit_webhooks_plugin", raising=False)
    return importlib.import_module("passkit_webhooks_plugin")


def test_airflow_plugin_exposes_the_app_under_a_valid_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASSKIT_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("PASSKIT_WEBHOOK_LOG_DIR", str(tmp_path / "log"))
    module = _import_plugin_module(monkeypatch, tmp_path)
    from airflow.plugins_manager import AirflowPlugin

    plugin = module.PassKitWebhooksPlugin
    assert issubclass(plugin, AirflowPlugin)
    (entry,) = plugin.fastapi_apps
    assert isinstance(entry["app"], FastAPI)
    assert entry["name"] == "PassKit webhooks"
    prefix = entry["url_prefix"]
    assert prefix == "/passkit-webhooks"
    reserved = ("/api/v2", "/ui", "/execution", "/auth", "/pluginsv2")
    assert prefix.startswith("/") and not prefix.startswith(reserved)
    client = TestClient(entry["app"])
    assert client.post(EVENTS, content=body_of(INSTALLED)).status_code == 202


def test_airflow_plugin_serves_nothing_without_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PASSKIT_WEBHOOK_TOKEN", raising=False)
    monkeypatch.setenv("PASSKIT_WEBHOOK_LOG_DIR", str(tmp_path / "log"))
    module = _import_plugin_module(monkeypatch, tmp_path)
    assert module.PassKitWebhooksPlugin.fastapi_apps == []
    assert "PASSKIT_WEBHOOK_TOKEN is not set" in caplog.text
