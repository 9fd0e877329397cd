"""Airflow hook that builds a PassKitClient from an Airflow connection.

Connection fields (e.g. `AIRFLOW_CONN_PASSKIT_DEFAULT` as JSON):

- host (+ schema as the URL scheme, default https, + optional port), or a full base URL in
  host: `https://api.pub2.passkit.io`, `http://127.0.0.1:8765` for the sandbox;
- login = API key, password = API secret;
- extras: `program_id`, `requests_per_second` (default 10; 0 = unthrottled),
  `timeout_seconds` (read timeout, default 30), `connect_timeout_seconds` (default 5),
  `max_attempts` (default 5), `max_retry_seconds` (default 60), `pool_size` (default 8),
  `rate_limit_file` (optional: a FileRateLimiter shared by every process on the host).

URI-style connections deliver extras as strings, so numbers are converted here.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from toast_passkit.passkit.client import PassKitClient
from toast_passkit.passkit.ratelimit import make_limiter


def _number(extras: dict[str, Any], name: str, default: float) -> float:
    value = extras.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"PassKit connection extra {name!r} must be a number: {value!r}") from exc


class PassKitHook(BaseHook):
    """Owns the `passkit` connection and hands out one PassKitClient per hook instance."""

    conn_name_attr = "passkit_conn_id"
    default_conn_name = "passkit_default"
    conn_type = "passkit"
    hook_name = "PassKit"

    def __init__(self, passkit_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.passkit_conn_id = passkit_conn_id
        self._client: PassKitClient | None = None

    @staticmethod
    def base_url(host: str | None, schema: str | None, port: int | None) -> str:
        """Base URL from connection fields; a host that already holds a URL wins."""
        if not host:
            raise ValueError("PassKit connection needs a host (e.g. api.pub2.passkit.io)")
        host = host.strip().rstrip("/")
        url = host if "://" in host else f"{(schema or 'https').lower()}://{host}"
        if port and url.count(":") < 2:  # no port in the URL yet (scheme's colon only)
            url = f"{url}:{port}"
        return url

    def get_client(self) -> PassKitClient:
        """The client for this hook's connection (built once, then reused)."""
        if self._client is None:
            conn = self.get_connection(self.passkit_conn_id)
            extras = conn.extra_dejson
            rate = _number(extras, "requests_per_second", 10.0)
            self._client = PassKitClient(
                self.base_url(conn.host, conn.schema, conn.port),
                conn.login or "",
                conn.password or "",
                program_id=extras.get("program_id") or None,
                limiter=make_limiter(rate, extras.get("rate_limit_file") or None),
                connect_timeout=_number(extras, "connect_timeout_seconds", 5.0),
                read_timeout=_number(extras, "timeout_seconds", 30.0),
                max_attempts=int(_number(extras, "max_attempts", 5)),
                max_retry_seconds=_number(extras, "max_retry_seconds", 60.0),
                pool_size=int(_number(extras, "pool_size", 8)),
            )
        return self._client

    def get_conn(self) -> PassKitClient:
        """Airflow's conventional accessor: same as get_client()."""
        return self.get_client()

    def close(self) -> None:
        """Close the client's connections (a later get_client() builds a new one)."""
        if self._client is not None:
            self._client.close()
            self._client = None
