"""Durable append-only log of PassKit webhook deliveries, and its reader with durable watermarks.

Layout of the log directory (one directory per receiver deployment)::

    events-YYYYMMDD.jsonl       accepted deliveries, one JSON object per line (UTC day)
    deadletter-YYYYMMDD.jsonl   malformed deliveries kept with the reason, for a person to read

Writing: every line is written with a single ``write()`` on a descriptor opened with
``O_APPEND``, so several receiver processes (uvicorn workers, api-server workers) can append to
the same file without interleaving, then the file is fsync'ed before the receiver answers 2xx.
Concurrent requests in one process share fsyncs ("group commit"): a request returns once an
fsync that started after its own write has completed.

Reading: :func:`read_new_events` returns the complete lines past each file's watermark (a byte
offset); a last line still being written (no trailing newline) is left for the next read.
:func:`commit` then persists the new offsets in a :class:`WatermarkStore`.

Delivery guarantee: at least once. A crash (or a failed task) between reading and committing
means the same events are read again, and PassKit itself redelivers, so **ingest must be
idempotent**: skip a delivery whose ``delivery_id`` (SHA-256 of the raw body) is already stored,
and de-duplicate logical events on ``PassEvent.event_key`` (see ``events.py``).
One consumer at a time per log directory (an Airflow task with ``max_active_runs=1``).

The files hold raw bodies, which include guests' personal details: they are created ``0600``
and their retention is the deployment's responsibility.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

log = logging.getLogger(__name__)

EVENTS_PREFIX = "events-"
DEADLETTER_PREFIX = "deadletter-"
_EVENTS_FILE_RE = re.compile(r"^events-\d{8}\.jsonl$")
_FILE_MODE = 0o600
_DIR_MODE = 0o700


class EventLogError(Exception):
    """Base class for event log errors."""


class LogTruncatedError(EventLogError):
    """A log file is shorter than its watermark: the append-only contract was broken."""

    def __init__(self, file_name: str, size: int, watermark: int) -> None:
        super().__init__(
            f"{file_name}: file is {size} bytes but its watermark is {watermark}; "
            "log files must never be truncated or rewritten"
        )
        self.file_name = file_name
        self.size = size
        self.watermark = watermark


class WatermarkConflictError(EventLogError):
    """The stored watermark moved since the batch was read: another consumer is running."""

    def __init__(self, file_name: str, expected: int, found: int) -> None:
        super().__init__(
            f"{file_name}: watermark is {found}, expected {expected} (value when the batch was "
            "read); refusing to commit, only one consumer may read a log directory"
        )
        self.file_name = file_name
        self.expected = expected
        self.found = found


def log_file_name(prefix: str, at: datetime) -> str:
    """Name of the daily file for ``prefix`` holding records received at ``at`` (UTC day)."""
    if at.tzinfo is None:
        raise ValueError(f"timestamp must be time-zone aware: {at!r}")
    return f"{prefix}{at.astimezone(UTC):%Y%m%d}.jsonl"


def encode_line(record: Mapping[str, Any]) -> bytes:
    """One record as one JSON line; JSON escapes newlines in strings, so a record is one line."""
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _OpenFile:
    name: str
    fd: int
    # Set when the file may end with a fragment (a crashed writer, a failed write): the next
    # line starts with "\n" so the fragment stays a line of its own and cannot swallow it.
    needs_newline: bool = False
    written: int = 0
    synced: int = 0
    sync_lock: threading.Lock = field(default_factory=threading.Lock)


class EventLogWriter:
    """Appends records to the daily files of a log directory, durably (write + fsync).

    Thread-safe; one instance per process and directory. Several processes may append to the
    same directory at once.
    """

    def __init__(self, log_dir: Path | str) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._open: dict[str, _OpenFile] = {}  # by prefix: the file currently appended to

    def append_event(self, record: Mapping[str, Any], received_at: datetime) -> str:
        """Append an accepted delivery durably; returns the file name it went to."""
        return self._append(EVENTS_PREFIX, record, received_at)

    def append_deadletter(self, record: Mapping[str, Any], received_at: datetime) -> str:
        """Append a rejected (malformed) delivery durably; returns the file name."""
        return self._append(DEADLETTER_PREFIX, record, received_at)

    def close(self) -> None:
        """Sync and close the open files."""
        with self._lock:
            for handle in self._open.values():
                self._retire(handle)
            self._open.clear()

    def _append(self, prefix: str, record: Mapping[str, Any], received_at: datetime) -> str:
        line = encode_line(record)
        name = log_file_name(prefix, received_at)
        with self._lock:
            handle = self._handle(prefix, name)
            data = b"\n" + line if handle.needs_newline else line
            try:
                _write_all(handle.fd, data)
            except OSError:
                handle.needs_newline = True
                raise
            handle.needs_newline = False
            handle.written += 1
            sequence = handle.written
        self._sync(handle, sequence)
        return name

    def _handle(self, prefix: str, name: str) -> _OpenFile:
        """The open file for ``name``, rolling over from the previous day's file (lock held)."""
        current = self._open.get(prefix)
        if current is not None and current.name == name:
            return current
        if current is not None:
            self._retire(current)
        path = self.log_dir / name
        created = not path.exists()
        # O_RDWR only so the last byte can be checked; O_APPEND makes every write an append.
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE)
        handle = _OpenFile(name=name, fd=fd, needs_newline=_ends_without_newline(fd))
        if created:
            # The new file's directory entry must be durable too, or a crash loses the file.
            _fsync_dir(self.log_dir)
        self._open[prefix] = handle
        return handle

    @staticmethod
    def _sync(handle: _OpenFile, sequence: int) -> None:
        """Fsync unless a later fsync already covered write number ``sequence``."""
        with handle.sync_lock:
            if handle.synced >= sequence:
                return
            # Every write counted so far is in the page cache; this fsync makes them all durable.
            target = handle.written
            os.fsync(handle.fd)
            handle.synced = target

    @staticmethod
    def _retire(handle: _OpenFile) -> None:
        # Under sync_lock so a request still waiting to fsync this file finds it already synced
        # instead of using a closed (or reused) descriptor.
        with handle.sync_lock:
            os.fsync(handle.fd)
            handle.synced = handle.written
            os.close(handle.fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _ends_without_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Watermarks
# --------------------------------------------------------------------------------------------


@runtime_checkable
class WatermarkStore(Protocol):
    """Durable per-file byte offsets: how far each log file has been ingested.

    ``get`` returns 0 for a file never committed. ``set_many`` must be atomic (all offsets or
    none) and durable when it returns; a warehouse implementation upserts the rows in one
    transaction, ideally the same transaction that stores the ingested events.
    """

    def get(self, file_name: str) -> int: ...

    def set_many(self, offsets: Mapping[str, int]) -> None: ...


class JsonFileWatermarkStore:
    """Watermarks in a small JSON file, replaced atomically (write temp, fsync, rename)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def get(self, file_name: str) -> int:
        return self._load().get(file_name, 0)

    def set_many(self, offsets: Mapping[str, int]) -> None:
        for name, offset in offsets.items():
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise ValueError(f"{name}: watermark must be a non-negative int, got {offset!r}")
        merged = {**self._load(), **offsets}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        content = json.dumps({"version": 1, "offsets": dict(sorted(merged.items()))}, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)

    def _load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        offsets = data.get("offsets") if isinstance(data, dict) else None
        if not isinstance(offsets, dict):
            raise EventLogError(f"{self.path}: not a watermark file (no 'offsets' object)")
        return {str(name): int(offset) for name, offset in offsets.items()}


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


class LoggedEvent(NamedTuple):
    """One complete line of an events file: where it is, and the record it holds."""

    file_name: str
    offset_start: int
    offset_end: int
    record: dict[str, Any]


@dataclass(frozen=True)
class CorruptLine:
    """A complete line that is not a JSON object (e.g. the fragment of a failed write).

    It is skipped (its offset is committed with the batch) so one bad line cannot stall
    ingest; the caller must report it. The content is not kept: it may hold personal data.
    """

    file_name: str
    offset_start: int
    offset_end: int
    error: str


@dataclass
class EventBatch:
    """Events read past the watermarks, and the offsets to commit once they are ingested."""

    events: list[LoggedEvent]
    start_offsets: dict[str, int]
    end_offsets: dict[str, int]
    corrupt_lines: list[CorruptLine] = field(default_factory=list)
    # Bytes after the last newline, per file: a line being written, or a crashed writer's
    # fragment if the file is from an earlier day and the number never goes away.
    incomplete_tails: dict[str, int] = field(default_factory=dict)

    def __iter__(self) -> Iterator[LoggedEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)


def events_files(log_dir: Path | str) -> list[str]:
    """Names of the events files in ``log_dir``, oldest day first."""
    directory = Path(log_dir)
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if _EVENTS_FILE_RE.match(p.name))


def read_new_events(
    log_dir: Path | str,
    watermark_store: WatermarkStore,
    *,
    max_events: int | None = None,
) -> EventBatch:
    """Read the complete lines past each events file's watermark, oldest file first.

    Nothing is persisted: call :func:`commit` after the events are stored. ``max_events``
    bounds the batch; the rest is read next time.
    """
    if max_events is not None and max_events < 1:
        raise ValueError(f"max_events must be at least 1, got {max_events}")
    directory = Path(log_dir)
    batch = EventBatch(events=[], start_offsets={}, end_offsets={})
    for name in events_files(directory):
        if max_events is not None and len(batch.events) >= max_events:
            break
        start = watermark_store.get(name)
        path = directory / name
        size = path.stat().st_size
        if size < start:
            raise LogTruncatedError(name, size, start)
        if size == start:
            continue
        remaining = None if max_events is None else max_events - len(batch.events)
        end = _read_file(path, name, start, remaining, batch)
        if end != start:
            batch.start_offsets[name] = start
            batch.end_offsets[name] = end
    for line in batch.corrupt_lines:
        log.warning(
            "corrupt event log line skipped: file=%s offset=%d length=%d error=%s",
            line.file_name,
            line.offset_start,
            line.offset_end - line.offset_start,
            line.error,
        )
    return batch


def _read_file(path: Path, name: str, start: int, limit: int | None, batch: EventBatch) -> int:
    """Append the complete lines of one file from ``start``; returns the offset reached."""
    offset = start
    taken = 0
    with path.open("rb") as handle:
        handle.seek(start)
        while limit is None or taken < limit:
            line = handle.readline()
            if not line:
                break
            if not line.endswith(b"\n"):
                # Still being written (or a dead fragment): not consumed, offset not advanced.
                batch.incomplete_tails[name] = len(line)
                break
            end = offset + len(line)
            if line.strip():
                record = _decode(line)
                if isinstance(record, dict):
                    batch.events.append(LoggedEvent(name, offset, end, record))
                    taken += 1
                else:
                    batch.corrupt_lines.append(CorruptLine(name, offset, end, record))
            offset = end
    return offset


def _decode(line: bytes) -> dict[str, Any] | str:
    """The record on a line, or a description of why it is not one."""
    try:
        value = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        return f"not JSON: {type(exc).__name__}"
    if not isinstance(value, dict):
        return f"not a JSON object: {type(value).__name__}"
    return value


def commit(batch: EventBatch, watermark_store: WatermarkStore) -> None:
    """Persist the batch's end offsets, once its events are stored (idempotently).

    Refuses (WatermarkConflictError) when a watermark moved since the batch was read, which
    means two consumers are reading the same directory. The check is a safety net, not a lock.
    """
    for name, expected in batch.start_offsets.items():
        found = watermark_store.get(name)
        if found != expected:
            raise WatermarkConflictError(name, expected, found)
    if batch.end_offsets:
        watermark_store.set_many(batch.end_offsets)
