"""PassKit webhook receiver: authenticates deliveries and appends them durably to the event log.

Routes (relative to where the app is mounted; ``/passkit-webhooks`` inside Airflow):

- ``POST|PUT|DELETE /{token}/events``: one delivery. 202 ``{"accepted": true, "delivery_id"}``
  once it is on disk (written and fsync'ed); 400 for a body that is not a JSON object with an
  ``event`` (kept in the dead-letter file); 401 for a wrong token or, when a signing secret is
  set, a wrong ``x-passkit-signature`` (nothing is kept); 413 for a body over the cap; 503 when
  the log cannot be written (PassKit retries).
- ``GET /{token}/health``: 200 while the log directory is writable, 503 otherwise (token
  only: a monitor has no body to sign).

Logs (server side) carry the event name, pass id, externalId, sizes, status and a prefix of
the delivery id; never the token, the body or a guest's details.

The app does nothing but record: parsing (``events.py``) and ingest run later from the log, so
a delivery is acknowledged fast and never lost to a downstream failure.

Settings come from the environment: ``PASSKIT_WEBHOOK_TOKEN`` (required), optional
``PASSKIT_WEBHOOK_SIGNING_SECRET``, ``PASSKIT_WEBHOOK_LOG_DIR`` (default ``var/webhooks``) and
``PASSKIT_WEBHOOK_MAX_BODY_BYTES`` (default 256 KiB). Standalone::

    PASSKIT_WEBHOOK_TOKEN=... python -m toast_passkit.webhooks.receiver \\
        --host 127.0.0.1 --port 8790 --log-dir var/webhooks
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from toast_passkit.webhooks.eventlog import EventLogWriter

# Named explicitly: under "python -m" this module is __main__.
log = logging.getLogger("toast_passkit.webhooks.receiver")

ENV_TOKEN = "PASSKIT_WEBHOOK_TOKEN"
ENV_SIGNING_SECRET = "PASSKIT_WEBHOOK_SIGNING_SECRET"
ENV_LOG_DIR = "PASSKIT_WEBHOOK_LOG_DIR"
ENV_MAX_BODY_BYTES = "PASSKIT_WEBHOOK_MAX_BODY_BYTES"
DEFAULT_LOG_DIR = "var/webhooks"
DEFAULT_MAX_BODY_BYTES = 256 * 1024
SIGNATURE_HEADER = "x-passkit-signature"
DELIVERY_METHODS = ["POST", "PUT", "DELETE"]  # PassKit picks the method per event type
MIN_TOKEN_LENGTH = 16

# Headers worth keeping with a delivery: enough to debug PassKit's (undocumented) signing and
# retries. Never Authorization or cookies.
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "user-agent",
        SIGNATURE_HEADER,
        "x-request-id",
        "x-forwarded-for",
    }
)
KEPT_HEADER_PREFIX = "x-passkit-"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~-]+$")  # URL-path safe without escaping
_LOGGABLE_RE = re.compile(r"[^A-Za-z0-9._:@-]")


class ReceiverConfigError(ValueError):
    """The receiver is misconfigured and must not start."""


@dataclass(frozen=True)
class ReceiverSettings:
    """What the receiver needs; secrets are kept out of repr()."""

    token: str = field(repr=False)
    log_dir: Path
    signing_secret: str | None = field(default=None, repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if not self.token:
            raise ReceiverConfigError(
                f"{ENV_TOKEN} is not set: refusing to serve PassKit webhooks without a secret "
                "token (generate one, e.g. python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        if len(self.token) < MIN_TOKEN_LENGTH or not _TOKEN_RE.match(self.token):
            raise ReceiverConfigError(
                f"{ENV_TOKEN} must be at least {MIN_TOKEN_LENGTH} URL-safe characters "
                "(letters, digits, '-', '_', '.', '~')"
            )
        if self.max_body_bytes < 1:
            raise ReceiverConfigError(
                f"{ENV_MAX_BODY_BYTES} must be a positive number of bytes, "
                f"got {self.max_body_bytes}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReceiverSettings:
        """Settings from ``PASSKIT_WEBHOOK_*`` variables (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        raw_cap = env.get(ENV_MAX_BODY_BYTES, "").strip()
        try:
            max_body_bytes = int(raw_cap) if raw_cap else DEFAULT_MAX_BODY_BYTES
        except ValueError:
            raise ReceiverConfigError(
                f"{ENV_MAX_BODY_BYTES} must be an integer, got {raw_cap!r}"
            ) from None
        return cls(
            token=env.get(ENV_TOKEN, "").strip(),
            log_dir=Path(env.get(ENV_LOG_DIR, "").strip() or DEFAULT_LOG_DIR).absolute(),
            signing_secret=env.get(ENV_SIGNING_SECRET, "").strip() or None,
            max_body_bytes=max_body_bytes,
        )


class _BodyTooLarge(Exception):
    pass


def create_app(settings: ReceiverSettings) -> FastAPI:
    """The receiver app writing to ``settings.log_dir`` (created if missing)."""
    writer = EventLogWriter(settings.log_dir)
    expected_token = settings.token.encode("utf-8")
    secret = settings.signing_secret.encode("utf-8") if settings.signing_secret else None
    cap = settings.max_body_bytes

    # No OpenAPI/docs: the routes embed a secret and nobody but PassKit should call them.
    app = FastAPI(title="PassKit webhooks", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_RedactPathToken)
    app.state.settings = settings
    app.state.event_log = writer

    def token_ok(token: str) -> bool:
        return hmac.compare_digest(token.encode("utf-8"), expected_token)

    # ":path" so that an empty or slash-containing token reaches the handler and gets a 401
    # like any wrong token (a plain "{token}" would answer 404 to "//events").
    @app.api_route("/{token:path}/events", methods=DELIVERY_METHODS)
    async def receive_event(token: str, request: Request) -> JSONResponse:
        method = request.method
        if not token_ok(token):
            log.warning("webhook rejected: method=%s status=401 reason=token", method)
            return _json(401, {"detail": "unauthorized"})
        try:
            body = await _read_capped(request, cap)
        except _BodyTooLarge:
            log.warning("webhook rejected: method=%s status=413 limit=%d", method, cap)
            return _json(413, {"detail": f"body larger than {cap} bytes"})
        if secret is not None and not _signature_ok(
            secret, body, request.headers.get(SIGNATURE_HEADER)
        ):
            log.warning(
                "webhook rejected: method=%s status=401 reason=signature bytes=%d",
                method,
                len(body),
            )
            return _json(401, {"detail": "unauthorized"})

        received_at = datetime.now(UTC)
        delivery_id = hashlib.sha256(body).hexdigest()
        record: dict[str, Any] = {
            "received_at": received_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "method": method,
            "headers": kept_headers(request.headers.items()),
        }
        payload, problem = _validate(body)
        if problem is not None:
            record.update(_body_fields(body), reason=problem, delivery_id=delivery_id)
            try:
                await run_in_threadpool(writer.append_deadletter, record, received_at)
            except OSError:
                log.exception("dead-letter write failed: delivery=%s", delivery_id[:16])
                return _json(503, {"detail": "could not record the delivery"})
            log.warning(
                "webhook dead-lettered: method=%s status=400 reason=%s bytes=%d delivery=%s",
                method,
                problem,
                len(body),
                delivery_id[:16],
            )
            return _json(400, {"accepted": False, "error": problem})

        record.update(body=body.decode("utf-8"), delivery_id=delivery_id)
        try:
            await run_in_threadpool(writer.append_event, record, received_at)
        except OSError:
            log.exception("event log write failed: delivery=%s", delivery_id[:16])
            return _json(503, {"detail": "could not record the delivery"})
        log.info(
            "webhook accepted: method=%s status=202 event=%s pass=%s external_id=%s bytes=%d "
            "delivery=%s",
            method,
            *_log_summary(payload),
            len(body),
            delivery_id[:16],
        )
        return _json(202, {"accepted": True, "delivery_id": delivery_id})

    @app.api_route("/events", methods=DELIVERY_METHODS)
    @app.get("/health")
    async def no_token() -> JSONResponse:
        log.warning("webhook rejected: status=401 reason=no token")
        return _json(401, {"detail": "unauthorized"})

    @app.get("/{token:path}/health")
    async def health(token: str) -> JSONResponse:
        if not token_ok(token):
            return _json(401, {"detail": "unauthorized"})
        writable = os.access(settings.log_dir, os.W_OK | os.X_OK)
        return _json(200 if writable else 503, {"status": "ok" if writable else "log not writable"})

    return app


def create_app_from_env() -> FastAPI:
    """App factory for uvicorn (``--factory``) and the Airflow plugin; raises when misconfigured."""
    return create_app(ReceiverSettings.from_env())


def kept_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The request headers worth logging with a delivery (lower-case names)."""
    kept: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in KEPT_HEADERS or lower.startswith(KEPT_HEADER_PREFIX):
            kept[lower] = value
    return kept


def sign(secret: str | bytes, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``body``: the expected ``x-passkit-signature`` (UNCONFIRMED scheme)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    presented = header.strip()
    if presented[:7].lower() == "sha256=":
        presented = presented[7:]
    return hmac.compare_digest(presented.lower().encode("utf-8"), sign(secret, body).encode())


async def _read_capped(request: Request, cap: int) -> bytes:
    """The body, refusing more than ``cap`` bytes whatever Content-Length claims."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > cap:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _validate(body: bytes) -> tuple[dict[str, Any], str | None]:
    """The payload, or a reason to dead-letter it (the reason never quotes the body)."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return {}, "body is not UTF-8"
    except (json.JSONDecodeError, RecursionError) as exc:
        return {}, f"body is not JSON ({type(exc).__name__})"
    if not isinstance(payload, dict):
        return {}, f"body is not a JSON object ({type(payload).__name__})"
    event = payload.get("event")
    if event is None or isinstance(event, bool) or not isinstance(event, str | int):
        return {}, "no 'event' field (string or number)"
    if isinstance(event, str) and not event.strip():
        return {}, "empty 'event' field"
    return payload, None


def _body_fields(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body).decode("ascii")}


def _log_summary(payload: Mapping[str, Any]) -> tuple[str, str, str]:
    """Event name, pass id and externalId for the server log: ids only, never person data."""
    pass_obj = payload.get("pass")
    pass_obj = pass_obj if isinstance(pass_obj, Mapping) else {}
    return (
        _loggable(payload.get("event")),
        _loggable(pass_obj.get("id")),
        _loggable(pass_obj.get("externalId")),
    )


def _loggable(value: Any) -> str:
    # Ids are short and plain; anything else is cut and stripped so it cannot forge log lines.
    if value is None or isinstance(value, bool) or not isinstance(value, str | int):
        return "-"
    return _LOGGABLE_RE.sub("?", str(value)[:64]) or "-"


def _json(status: int, content: Mapping[str, Any]) -> JSONResponse:
    return JSONResponse(status_code=status, content=dict(content))


class _RedactPathToken:
    """Replace the token segment of the request path once the response is sent.

    Access loggers (uvicorn's, Airflow api-server's HttpAccessLogMiddleware) read
    ``scope["path"]`` after the app returns, and a mounted app shares the scope dict with its
    parent, so this keeps the secret token out of their logs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                _redact_token_segment(scope)


def _redact_token_segment(scope: dict[str, Any] | Scope) -> None:
    root = scope.get("root_path", "") or ""
    path = scope.get("path", "")
    if not path.startswith(root):
        return
    rest = path[len(root) :]
    parts = rest.split("/", 2)  # "", token, remainder
    if len(parts) >= 2 and parts[1]:
        parts[1] = "***"
        scope["path"] = root + "/".join(parts)
        raw_root = root.encode("utf-8")
        scope["raw_path"] = raw_root + "/".join(parts).encode("utf-8")


def _uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging config plus this package's logger, so worker processes log too."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["toast_passkit"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def main(argv: Sequence[str] | None = None) -> int:
    """Run the receiver standalone with uvicorn; returns a process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m toast_passkit.webhooks.receiver",
        description="PassKit webhook receiver (token and secrets come from the environment).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--log-dir", help=f"event log directory (overrides {ENV_LOG_DIR})")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    args = parser.parse_args(argv)

    if args.log_dir:
        # Through the environment so that worker processes (--workers > 1) see it as well.
        os.environ[ENV_LOG_DIR] = str(Path(args.log_dir).absolute())
    try:
        settings = ReceiverSettings.from_env()
    except ReceiverConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "log_config": _uvicorn_log_config(args.log_level),
        # uvicorn's access log would print the path, i.e. the token; the app logs each request.
        "access_log": False,
    }
    if args.workers > 1:
        uvicorn.run(
            "toast_passkit.webhooks.receiver:create_app_from_env",
            factory=True,
            workers=args.workers,
            **common,
        )
    else:
        uvicorn.run(create_app(settings), **common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
