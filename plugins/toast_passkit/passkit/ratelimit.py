"""Request-rate limiters for PassKit calls: one per process, or shared by processes on a host.

PassKit publishes no rate limit, so the pipeline throttles itself. Both limiters hand out
evenly spaced time slots ("the next request may start at T"), which keeps the rate steady
without bursts: `acquire()` books the next free slot and sleeps until it arrives.

- `RateLimiter`: thread-safe, for one process (a thread pool sharing one client).
- `FileRateLimiter`: the next free slot lives in a small file guarded by `fcntl.flock`, so
  several Airflow worker processes on one host share one rate.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Protocol


class Limiter(Protocol):
    """Anything that can make the caller wait for its turn to send a request."""

    def acquire(self) -> float:
        """Block until the caller may send one request; return the seconds waited."""
        ...


def _interval(requests_per_second: float) -> float:
    if not requests_per_second > 0:
        raise ValueError(f"requests_per_second must be > 0, got {requests_per_second!r}")
    return 1.0 / float(requests_per_second)


class UnlimitedLimiter:
    """A limiter that never waits (local tools, or when another layer throttles)."""

    def acquire(self) -> float:
        """Return immediately."""
        return 0.0


class RateLimiter:
    """In-process limiter: at most `requests_per_second` slots per second, shared by threads."""

    def __init__(self, requests_per_second: float) -> None:
        self.requests_per_second = float(requests_per_second)
        self._interval = _interval(requests_per_second)
        self._lock = threading.Lock()
        self._next_slot = 0.0  # time.monotonic() value of the next free slot

    def acquire(self) -> float:
        """Book the next free slot and sleep until it arrives; return the seconds waited."""
        with self._lock:
            now = time.monotonic()
            # An idle limiter does not bank unused slots: a long pause must not allow a burst.
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        # Sleep outside the lock so other threads can book the following slots meanwhile.
        wait = slot - now
        if wait > 0:
            time.sleep(wait)
        return max(wait, 0.0)


class FileRateLimiter:
    """Cross-process limiter: the next free slot is stored in `path`, locked with flock.

    Every process (and thread) that uses the same file shares one rate. Wall-clock time is
    stored because the file outlives processes and reboots; a slot further ahead than
    `max_ahead_seconds` can only come from a clock jump or a stale file, and is reset.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        requests_per_second: float,
        *,
        max_ahead_seconds: float = 300.0,
    ) -> None:
        self.path = Path(path)
        self.requests_per_second = float(requests_per_second)
        self._interval = _interval(requests_per_second)
        self._max_ahead = max_ahead_seconds
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def acquire(self) -> float:
        """Book the next free slot in the shared file and sleep until it arrives."""
        # A fresh open file description per call: flock then also serialises threads of this
        # process (flock locks belong to the open file description, not to the process).
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                now = time.time()
                raw = os.pread(fd, 64, 0)
                try:
                    stored = float(raw.decode("ascii").strip() or 0.0)
                except (UnicodeDecodeError, ValueError):
                    stored = 0.0  # a corrupt file only costs one unthrottled slot
                if stored > now + self._max_ahead:
                    stored = now
                slot = max(now, stored)
                data = f"{slot + self._interval:.6f}\n".encode("ascii")
                os.pwrite(fd, data, 0)
                os.ftruncate(fd, len(data))
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        wait = slot - now
        if wait > 0:
            time.sleep(wait)
        return max(wait, 0.0)


def make_limiter(
    requests_per_second: float | None, rate_limit_file: str | os.PathLike[str] | None = None
) -> Limiter:
    """Build the limiter a configuration asks for: none, in-process, or file-shared."""
    if requests_per_second is None or requests_per_second <= 0:
        return UnlimitedLimiter()
    if rate_limit_file:
        return FileRateLimiter(rate_limit_file, requests_per_second)
    return RateLimiter(requests_per_second)
