"""HTTP client for PassKit's REST API: JWT auth, throttling, safe retries and typed errors.

One `PassKitClient` holds one `requests.Session` (connection pool sized for a thread pool)
and may be shared by threads. Every request takes a slot from a rate limiter first.

Retries depend on whether repeating a call is safe:

- Idempotent calls (reads, update, set points, tier, expiry, delete, lists) are retried with
  exponential back-off and jitter on 5xx, 408, 429 (honouring Retry-After) and network errors.
- Non-idempotent calls (enrol, earn, burn, issue and redeem coupon) are repeated only when the
  request certainly was not applied: connection never established, 408, 429 or 503 (PassKit
  documents 503 as "back off and repeat"). A timeout, a dropped connection or another 5xx
  after the request may have been sent raises `PassKitOutcomeUnknown`: the caller must look
  the result up (member, member events by externalEventId, coupon) before trying again.

Logs carry method, path template, status and elapsed time: never bodies (person data),
never the JWT or the API secret.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import jwt
import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from toast_passkit.passkit.ratelimit import Limiter, RateLimiter, UnlimitedLimiter

log = logging.getLogger(__name__)

#: Public client operations; the sandbox counts requests under the same names.
OPERATIONS: tuple[str, ...] = (
    "enrol_member",
    "get_member",
    "get_member_by_external_id",
    "update_member",
    "earn_points",
    "burn_points",
    "set_points",
    "change_tier",
    "update_expiry",
    "delete_member",
    "list_members",
    "list_member_events",
    "issue_coupon",
    "get_coupon_by_external_id",
    "redeem_coupon",
    "void_coupon",
)

_BODY_EXCERPT = 2000
# Statuses that mean the server did not act on the request, so any call may be repeated.
_NOT_APPLIED_STATUSES = frozenset({408, 429, 503})


class PassKitError(Exception):
    """A PassKit call failed. Carries what is needed to diagnose it, never credentials.

    Attributes: operation, method, path (with ids), path_template, status (None for network
    errors),
    code and message (parsed from a JSON error body when there is one), body (raw, truncated),
    retry_after (seconds, when the server said so), attempts (HTTP requests sent).
    """

    def __init__(
        self,
        reason: str,
        *,
        operation: str,
        method: str,
        path: str,
        path_template: str | None = None,
        status: int | None = None,
        code: Any = None,
        message: str | None = None,
        body: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.reason = reason
        self.operation = operation
        self.method = method
        self.path = path
        self.path_template = path_template or path
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        self.retry_after = retry_after
        self.attempts = 1
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"PassKit {self.operation} ({self.method} {self.path})"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code is not None:
            parts.append(f"code {self.code}")
        parts.append(self.reason if self.message is None else f"{self.reason}: {self.message}")
        return ", ".join(parts)

    def __str__(self) -> str:
        # Recomputed so that `attempts`, set after retries, shows up.
        text = self._describe()
        return text if self.attempts <= 1 else f"{text} (after {self.attempts} attempts)"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor: rebuild from attributes so errors survive pickling
        # (process pools, Airflow XCom of exception info).
        return (_restore_error, (type(self), dict(self.__dict__)))


def _restore_error(cls: type[PassKitError], state: dict[str, Any]) -> PassKitError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error._describe())
    return error


class PassKitClientError(PassKitError):
    """A 4xx answer other than 408/429: the request is wrong and repeating it will not help."""


class PassKitAuthError(PassKitClientError):
    """401 or 403: wrong API key/secret, expired token or missing permission."""


class PassKitNotFound(PassKitClientError):
    """404: the member, coupon or route does not exist."""


class PassKitConflict(PassKitClientError):
    """409: the record already exists (e.g. duplicate externalId)."""


class PassKitUnavailable(PassKitError):
    """PassKit could not be reached or asked to back off, and retries were exhausted.

    For a non-idempotent call this is only raised when the request was certainly not applied.
    """


class PassKitOutcomeUnknown(PassKitError):
    """A non-idempotent call may or may not have been applied (timeout, dropped connection or
    5xx after sending). The client did not repeat it: look the result up before retrying."""


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def format_timestamp(value: datetime) -> str:
    """RFC 3339 UTC timestamp as PassKit (protobuf JSON) expects, e.g. 2026-05-01T04:00:00Z."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("PassKit timestamps must be time-zone aware datetimes")
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z").replace(".000Z", "Z")


def _points(value: float | int | Decimal, field: str = "points") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"{field} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{field} must be finite, got {value!r}")
    return number


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _failed_before_sending(exc: BaseException) -> bool:
    """True when a requests ConnectionError happened while connecting, before any byte left.

    requests wraps urllib3 errors in `args[0]`, `MaxRetryError.reason` or exception chaining;
    a connect-phase error (refused, DNS, connect timeout) is the only proof of "not sent".
    """
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectTimeoutError):
            return True
        linked = [getattr(current, "reason", None), current.__cause__, current.__context__]
        linked.extend(current.args)
        stack.extend(item for item in linked if isinstance(item, BaseException))
    return False


def _error_fields(text: str) -> tuple[Any, str | None]:
    """Parse `{"code", "message", "details"}` (or `{"error": {...}}`) defensively."""
    try:
        data = json.loads(text)
    except ValueError:
        return None, None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        data = data["error"]
    if not isinstance(data, dict):
        return None, None
    message = data.get("message", data.get("error"))
    return data.get("code"), None if message is None else str(message)[:500]


class PassKitClient:
    """Thread-safe client for the PassKit members and single-use coupons REST API.

    `program_id` is the default program for member calls (each call can override it).
    Retry budget: at most `max_attempts` requests and `max_retry_seconds` of back-off per call.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str,
        *,
        program_id: str | None = None,
        requests_per_second: float | None = 10.0,
        limiter: Limiter | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 5,
        max_retry_seconds: float = 60.0,
        backoff_initial: float = 0.25,
        backoff_max: float = 8.0,
        pool_size: int = 8,
        token_ttl_seconds: int = 300,
        user_agent: str = "toast-passkit-pipeline",
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"PassKit base URL must be http(s)://host[:port], got {base_url!r}")
        if not api_key or not api_secret:
            raise ValueError("PassKit API key and secret are required")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.program_id = program_id
        self.timeout = (float(connect_timeout), float(read_timeout))
        self.max_attempts = int(max_attempts)
        self.max_retry_seconds = float(max_retry_seconds)
        self._backoff = wait_exponential_jitter(
            initial=backoff_initial, max=backoff_max, jitter=backoff_initial
        )
        if limiter is None:
            limiter = RateLimiter(requests_per_second) if requests_per_second else None
        self.limiter: Limiter = limiter or UnlimitedLimiter()

        self._api_key = api_key
        self._api_secret = api_secret
        self._token_ttl = int(token_ttl_seconds)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()

        self._session = requests.Session()
        # Retries are ours (they depend on idempotency), so urllib3 must not retry anything.
        # pool_block: threads beyond the pool wait for a connection instead of opening
        # throw-away ones.
        adapter = HTTPAdapter(
            pool_connections=1, pool_maxsize=pool_size, max_retries=0, pool_block=True
        )
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers.update(
            {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": user_agent,
            }
        )

        self._counter_lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._requests: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"PassKitClient(base_url={self.base_url!r}, program_id={self.program_id!r})"

    def __enter__(self) -> PassKitClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    # ------------------------------------------------------------------ counters

    @property
    def call_counts(self) -> dict[str, int]:
        """Client method calls per operation (one per public method invocation)."""
        with self._counter_lock:
            return dict(self._calls)

    @property
    def request_counts(self) -> dict[str, int]:
        """HTTP requests sent per operation, retries included."""
        with self._counter_lock:
            return dict(self._requests)

    def reset_counters(self) -> None:
        """Zero both counters (benchmarks measure one phase at a time)."""
        with self._counter_lock:
            self._calls.clear()
            self._requests.clear()

    # ------------------------------------------------------------------ auth

    def _authorization(self) -> str:
        """A cached HS256 JWT, re-signed when less than a fifth of its lifetime is left."""
        with self._token_lock:
            now = time.time()
            if self._token is None or now >= self._token_expires - self._token_ttl / 5:
                # iat slightly in the past: a server clock a few seconds behind ours must not
                # see a token issued "in the future".
                claims = {
                    "uid": self._api_key,
                    "iat": int(now) - 10,
                    "exp": int(now) + self._token_ttl,
                }
                self._token = jwt.encode(claims, self._api_secret, algorithm="HS256")
                self._token_expires = now + self._token_ttl
            return self._token

    # ------------------------------------------------------------------ transport

    def _call(
        self,
        operation: str,
        method: str,
        template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool,
        none_on_404: bool = False,
        ndjson: bool = False,
    ) -> Any:
        with self._counter_lock:
            self._calls[operation] += 1
        quoted = {k: quote(str(v), safe="") for k, v in (path_params or {}).items()}
        path = template.format(**quoted)
        data = None
        if body is not None:
            data = json.dumps(
                body, default=_json_default, allow_nan=False, separators=(",", ":")
            ).encode("utf-8")
        retrying = Retrying(
            retry=retry_if_exception_type(PassKitUnavailable),
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(self.max_retry_seconds),
            wait=self._wait,
            before_sleep=self._log_retry,
            reraise=True,
        )
        attempt = 0

        def send() -> Any:
            nonlocal attempt
            attempt += 1
            return self._attempt(
                operation, method, template, path, data, idempotent, none_on_404, ndjson, attempt
            )

        try:
            return retrying(send)
        except PassKitError as exc:
            exc.attempts = attempt
            raise

    def _wait(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return float(self._backoff(retry_state))

    @staticmethod
    def _log_retry(retry_state: RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        # The server's message is left out: it could echo request data.
        log.warning(
            "PassKit %s %s %s: %s (status %s, code %s); retry %d in %.2fs",
            getattr(exc, "operation", "?"),
            getattr(exc, "method", "?"),
            getattr(exc, "path_template", "?"),
            getattr(exc, "reason", exc),
            getattr(exc, "status", None),
            getattr(exc, "code", None),
            retry_state.attempt_number,
            retry_state.upcoming_sleep,
        )

    def _attempt(
        self,
        operation: str,
        method: str,
        template: str,
        path: str,
        data: bytes | None,
        idempotent: bool,
        none_on_404: bool,
        ndjson: bool,
        attempt: int,
    ) -> Any:
        def error(cls: type[PassKitError], reason: str, **kw: Any) -> PassKitError:
            return cls(
                reason, operation=operation, method=method, path=path, path_template=template, **kw
            )

        self.limiter.acquire()
        headers = {"Authorization": self._authorization()}
        with self._counter_lock:
            self._requests[operation] += 1
        started = time.monotonic()
        status: int | str = "error"
        try:
            try:
                with self._session.request(
                    method,
                    self.base_url + path,
                    data=data,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=ndjson,
                ) as response:
                    status = response.status_code
                    if 200 <= status < 300:
                        if ndjson:
                            return self._read_ndjson(response, error)
                        return self._read_json(response, error)
                    if status == 404 and none_on_404:
                        return None
                    raise self._status_error(response, error, idempotent)
            except requests.exceptions.ConnectTimeout as exc:
                raise error(PassKitUnavailable, f"connect timeout: {exc}") from exc
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                # ReadTimeout is a Timeout but not a ConnectionError; both reach here.
                if isinstance(exc, requests.exceptions.ConnectionError) and (
                    _failed_before_sending(exc)
                ):
                    raise error(PassKitUnavailable, f"connection failed: {exc}") from exc
                timed_out = isinstance(exc, requests.exceptions.Timeout)
                kind = "read timeout" if timed_out else "connection dropped"
                if idempotent:
                    raise error(PassKitUnavailable, kind) from exc
                raise error(PassKitOutcomeUnknown, f"{kind} after sending; not repeated") from exc
            except requests.exceptions.RequestException as exc:
                raise error(PassKitError, f"request failed: {exc}") from exc
        finally:
            log.debug(
                "PassKit %s %s -> %s in %.0f ms (attempt %d)",
                method,
                template,
                status,
                (time.monotonic() - started) * 1000,
                attempt,
            )

    @staticmethod
    def _status_error(
        response: requests.Response, error: Callable[..., PassKitError], idempotent: bool
    ) -> PassKitError:
        """The exception for a non-2xx answer: its class decides whether it is retried."""
        status = response.status_code
        text = response.text[:_BODY_EXCERPT]
        code, message = _error_fields(text)
        fields: dict[str, Any] = {"status": status, "code": code, "message": message, "body": text}
        if status in _NOT_APPLIED_STATUSES:
            retry_after = _parse_retry_after(response.headers.get("Retry-After"))
            return error(PassKitUnavailable, "asked to back off", retry_after=retry_after, **fields)
        if status >= 500:
            if idempotent:
                return error(PassKitUnavailable, "server error", **fields)
            return error(
                PassKitOutcomeUnknown, "server error after sending; not repeated", **fields
            )
        if status in (401, 403):
            return error(PassKitAuthError, "not authorised", **fields)
        if status == 404:
            return error(PassKitNotFound, "not found", **fields)
        if status == 409:
            return error(PassKitConflict, "conflict", **fields)
        if 400 <= status < 500:
            return error(PassKitClientError, "rejected", **fields)
        return error(PassKitError, "unexpected status", **fields)

    @staticmethod
    def _read_json(response: requests.Response, error: Callable[..., PassKitError]) -> Any:
        if not response.content.strip():
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise error(
                PassKitError,
                "response is not JSON",
                status=response.status_code,
                body=response.text[:_BODY_EXCERPT],
            ) from exc

    @staticmethod
    def _read_ndjson(
        response: requests.Response, error: Callable[..., PassKitError]
    ) -> list[dict[str, Any]]:
        """Newline-delimited JSON: one `{"result": X}` (or a bare X) per line."""
        items: list[dict[str, Any]] = []
        for line in response.iter_lines():
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise error(
                    PassKitError,
                    "stream line is not JSON",
                    status=response.status_code,
                    body=line[:_BODY_EXCERPT].decode("utf-8", "replace"),
                ) from exc
            if isinstance(item, dict) and "error" in item and "result" not in item:
                # A streamed gRPC error arrives with HTTP 200 already sent.
                code, message = _error_fields(json.dumps(item))
                cls = PassKitUnavailable if code in (8, 14) else PassKitError
                raise error(cls, "error in stream", status=200, code=code, message=message)
            if isinstance(item, dict) and isinstance(item.get("result"), dict):
                item = item["result"]
            items.append(item)
        return items

    # ------------------------------------------------------------------ helpers

    def _program(self, program_id: str | None) -> str:
        program = program_id or self.program_id
        if not program:
            raise ValueError("program_id is required (no default program configured)")
        return program

    def _with_program(self, record: Mapping[str, Any]) -> dict[str, Any]:
        body = dict(record)
        if "programId" not in body and "id" not in body and self.program_id:
            body["programId"] = self.program_id
        return body

    @staticmethod
    def _event_details(
        external_event_id: str | None, event_details: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        details = dict(event_details or {})
        if external_event_id is not None:
            details["externalEventId"] = external_event_id
        return details or None

    # ------------------------------------------------------------------ members

    def enrol_member(self, member: Mapping[str, Any]) -> str:
        """Enrol a member (POST /members/member); return PassKit's member id.

        Not idempotent: on PassKitOutcomeUnknown (or any failure) look the member up with
        `get_member_by_external_id` before enrolling again. Duplicate externalId raises a
        PassKitClientError (409 in the sandbox; PassKit may answer 400).
        """
        result = self._call(
            "enrol_member",
            "POST",
            "/members/member",
            body=self._with_program(member),
            idempotent=False,
        )
        return str(result["id"])

    def get_member(self, member_id: str) -> dict[str, Any]:
        """Member by PassKit id (GET /members/member/id/{id}); PassKitNotFound when absent."""
        return self._call(
            "get_member",
            "GET",
            "/members/member/id/{id}",
            path_params={"id": member_id},
            idempotent=True,
        )

    def get_member_by_external_id(
        self, external_id: str, *, program_id: str | None = None
    ) -> dict[str, Any] | None:
        """Member by our externalId within the program, or None when absent (404)."""
        return self._call(
            "get_member_by_external_id",
            "GET",
            "/members/member/externalId/{programId}/{externalId}",
            path_params={"programId": self._program(program_id), "externalId": external_id},
            idempotent=True,
            none_on_404=True,
        )

    def update_member(self, member: Mapping[str, Any]) -> str:
        """PATCH-style update (PUT /members/member) by `id` or `externalId`+`programId`.

        Empty and zero values are ignored by PassKit: use set_points / update_expiry for those.
        """
        result = self._call(
            "update_member",
            "PUT",
            "/members/member",
            body=self._with_program(member),
            idempotent=True,
        )
        return str(result.get("id", member.get("id", "")))

    def _points_change(
        self,
        operation: str,
        external_id: str,
        points: float | int | Decimal,
        *,
        external_event_id: str,
        tier_points: int | None,
        tier_id: str | None,
        event_details: Mapping[str, Any] | None,
        program_id: str | None,
    ) -> dict[str, Any]:
        if not external_event_id:
            raise ValueError("external_event_id is required: it is how an outcome is reconciled")
        body: dict[str, Any] = {
            "externalId": external_id,
            "programId": self._program(program_id),
            "points": _points(points),
            "eventDetails": self._event_details(external_event_id, event_details),
        }
        if tier_points is not None:
            body["tierPoints"] = int(tier_points)
        if tier_id is not None:
            body["tierId"] = tier_id
        verb = operation.split("_")[0]
        return self._call(
            operation, "PUT", f"/members/member/points/{verb}", body=body, idempotent=False
        )

    def earn_points(
        self,
        external_id: str,
        points: float | int | Decimal,
        *,
        external_event_id: str,
        tier_points: int | None = None,
        tier_id: str | None = None,
        event_details: Mapping[str, Any] | None = None,
        program_id: str | None = None,
    ) -> dict[str, Any]:
        """Add points; return new balances `{id, externalId, programId, points, ...}`.

        Not idempotent. On PassKitOutcomeUnknown, `find_member_event(member_id,
        external_event_id)` tells whether it was applied.
        """
        return self._points_change(
            "earn_points",
            external_id,
            points,
            external_event_id=external_event_id,
            tier_points=tier_points,
            tier_id=tier_id,
            event_details=event_details,
            program_id=program_id,
        )

    def burn_points(
        self,
        external_id: str,
        points: float | int | Decimal,
        *,
        external_event_id: str,
        tier_points: int | None = None,
        tier_id: str | None = None,
        event_details: Mapping[str, Any] | None = None,
        program_id: str | None = None,
    ) -> dict[str, Any]:
        """Remove points; return new balances. Not idempotent (see earn_points)."""
        return self._points_change(
            "burn_points",
            external_id,
            points,
            external_event_id=external_event_id,
            tier_points=tier_points,
            tier_id=tier_id,
            event_details=event_details,
            program_id=program_id,
        )

    def set_points(
        self,
        external_id: str,
        points: float | int | Decimal,
        *,
        tier_points: int | None = None,
        reset_points: bool = False,
        reset_tier_points: bool = False,
        external_event_id: str | None = None,
        event_details: Mapping[str, Any] | None = None,
        program_id: str | None = None,
    ) -> dict[str, Any]:
        """Overwrite balances (idempotent); return new balances.

        Setting 0 needs `resetPoints`: it is sent automatically when `points` is 0, because
        PATCH semantics would otherwise silently ignore the zero.
        """
        value = _points(points)
        body: dict[str, Any] = {
            "externalId": external_id,
            "programId": self._program(program_id),
            "points": value,
        }
        if reset_points or value == 0:
            body["resetPoints"] = True
        if tier_points is not None:
            body["tierPoints"] = int(tier_points)
            if tier_points == 0:
                reset_tier_points = True
        if reset_tier_points:
            body["resetTierPoints"] = True
        details = self._event_details(external_event_id, event_details)
        if details:
            body["eventDetails"] = details
        return self._call(
            "set_points", "PUT", "/members/member/points/set", body=body, idempotent=True
        )

    def change_tier(
        self,
        external_id: str,
        tier_id: str,
        *,
        external_event_id: str | None = None,
        event_details: Mapping[str, Any] | None = None,
        program_id: str | None = None,
    ) -> dict[str, Any]:
        """Move a member to `tier_id` (PUT /members/member/tier); return the member event."""
        body: dict[str, Any] = {
            "externalMemberId": external_id,
            "programId": self._program(program_id),
            "tierId": tier_id,
        }
        details = self._event_details(external_event_id, event_details)
        if details:
            body["eventDetails"] = details
        return self._call("change_tier", "PUT", "/members/member/tier", body=body, idempotent=True)

    def update_expiry(
        self,
        external_id: str,
        expiry_date: datetime | str,
        *,
        program_id: str | None = None,
    ) -> dict[str, Any]:
        """Set the pass expiry: a past date greys the pass out (soft revoke), a future one
        reactivates it. `expiry_date` is an aware datetime or an RFC 3339 string."""
        when = format_timestamp(expiry_date) if isinstance(expiry_date, datetime) else expiry_date
        body = {
            "externalId": external_id,
            "programId": self._program(program_id),
            "expiryDate": when,
        }
        return self._call(
            "update_expiry", "PUT", "/members/member/updateExpiry", body=body, idempotent=True
        )

    def delete_member(self, external_id: str, *, program_id: str | None = None) -> bool:
        """Hard revoke (DELETE /members/member with a JSON body).

        Returns False when the member was already absent (404): a retry after an ambiguous
        first attempt then still ends well.
        """
        body = {"externalId": external_id, "programId": self._program(program_id)}
        result = self._call(
            "delete_member",
            "DELETE",
            "/members/member",
            body=body,
            idempotent=True,
            none_on_404=True,
        )
        return result is not None

    def list_members(
        self,
        program_id: str | None = None,
        *,
        limit: int = -1,
        offset: int = 0,
        order_by: str | None = None,
        order_asc: bool | None = None,
        filter_groups: Iterable[Mapping[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Members of a program (POST /members/member/list/{programId}); limit -1 = all."""
        filters: dict[str, Any] = {"limit": limit, "offset": offset}
        if order_by is not None:
            filters["orderBy"] = order_by
        if order_asc is not None:
            filters["orderAsc"] = order_asc
        if filter_groups is not None:
            filters["filterGroups"] = [dict(group) for group in filter_groups]
        return self._call(
            "list_members",
            "POST",
            "/members/member/list/{programId}",
            path_params={"programId": self._program(program_id)},
            body={"filters": filters},
            idempotent=True,
            ndjson=True,
        )

    def list_member_events(self, member_id: str, *, limit: int = -1) -> list[dict[str, Any]]:
        """A member's events (POST /members/member/list/events/{id}), by PassKit member id."""
        return self._call(
            "list_member_events",
            "POST",
            "/members/member/list/events/{id}",
            path_params={"id": member_id},
            body={"filters": {"limit": limit}},
            idempotent=True,
            ndjson=True,
        )

    def find_member_event(self, member_id: str, external_event_id: str) -> dict[str, Any] | None:
        """The member event recorded with `eventDetails.externalEventId`, or None.

        This is how an earn/burn that ended in PassKitOutcomeUnknown is reconciled.
        """
        for event in self.list_member_events(member_id):
            details = event.get("eventDetails") or {}
            if external_event_id in (details.get("externalEventId"), event.get("externalId")):
                return event
        return None

    # ------------------------------------------------------------------ coupons

    def issue_coupon(self, coupon: Mapping[str, Any]) -> str:
        """Issue a single-use coupon (needs campaignId and offerId); return its id.

        Not idempotent: on failure look it up with get_coupon_by_external_id.
        """
        result = self._call(
            "issue_coupon",
            "POST",
            "/coupon/singleUse/coupon",
            body=dict(coupon),
            idempotent=False,
        )
        return str(result["id"])

    def get_coupon_by_external_id(
        self, campaign_id: str, external_id: str
    ) -> dict[str, Any] | None:
        """Coupon by externalId within a campaign, or None when absent (404)."""
        return self._call(
            "get_coupon_by_external_id",
            "GET",
            "/coupon/singleUse/coupon/externalId/{campaignId}/{externalId}",
            path_params={"campaignId": campaign_id, "externalId": external_id},
            idempotent=True,
            none_on_404=True,
        )

    def redeem_coupon(self, campaign_id: str, external_id: str) -> dict[str, Any]:
        """Mark a coupon redeemed. Treated as non-idempotent: a repeat would be refused."""
        body = {"campaignId": campaign_id, "externalId": external_id}
        return self._call(
            "redeem_coupon",
            "PUT",
            "/coupon/singleUse/coupon/redeem",
            body=body,
            idempotent=False,
        )

    def void_coupon(self, campaign_id: str, external_id: str) -> bool:
        """Void a coupon (irreversible). Returns False when it did not exist (404)."""
        body = {"campaignId": campaign_id, "externalId": external_id}
        result = self._call(
            "void_coupon",
            "DELETE",
            "/coupon/singleUse/coupon",
            body=body,
            idempotent=True,
            none_on_404=True,
        )
        return result is not None
