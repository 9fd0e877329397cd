"""Tests of the webhook event log: durable appends, and the reader with durable watermarks."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from toast_passkit.webhooks import eventlog
from toast_passkit.webhooks.eventlog import (
    EventLogWriter,
    JsonFileWatermarkStore,
    LogTruncatedError,
    WatermarkConflictError,
    WatermarkStore,
    commit,
    read_new_events,
)
from toast_passkit.webhooks.events import parse_logged_event

DAY = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NEXT_DAY = datetime(2025, 3, 2, 0, 0, 1, tzinfo=UTC)
DAY_FILE = "events-20250301.jsonl"


def delivery(body: str, received_at: datetime = DAY) -> dict[str, Any]:
    """A record as the receiver writes it."""
    return {
        "received_at": received_at.isoformat().replace("+00:00", "Z"),
        "method": "PUT",
        "headers": {"content-type": "application/json"},
        "body": body,
        "delivery_id": hashlib.sha256(body.encode()).hexdigest(),
    }


def install_body(pass_id: str, installed_at: str = "2025-03-01T11:59:00Z") -> str:
    return json.dumps(
        {
            "event": "PASS_EVENT_INSTALLED",
            "pass": {"id": pass_id, "protocol": 100, "metadata": {"lastInstalledAt": installed_at}},
        }
    )


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "log"


@pytest.fixture
def store(tmp_path: Path) -> JsonFileWatermarkStore:
    return JsonFileWatermarkStore(tmp_path / "state" / "watermarks.json")


def write(log_dir: Path, *bodies: str, at: datetime = DAY) -> None:
    writer = EventLogWriter(log_dir)
    try:
        for body in bodies:
            writer.append_event(delivery(body, at), at)
    finally:
        writer.close()


# --- writer -----------------------------------------------------------------------------------


def test_writer_appends_one_line_per_record_in_the_daily_file(log_dir: Path) -> None:
    writer = EventLogWriter(log_dir)
    assert writer.append_event(delivery('{"event": "A"}'), DAY) == DAY_FILE
    assert writer.append_event(delivery('{"event": "B\\nwith newline"}'), DAY) == DAY_FILE
    assert writer.append_event(delivery('{"event": "C"}'), NEXT_DAY) == "events-20250302.jsonl"
    assert writer.append_deadletter({"body": "x"}, DAY) == "deadletter-20250301.jsonl"
    writer.close()

    day_lines = (log_dir / DAY_FILE).read_bytes().split(b"\n")
    assert day_lines[-1] == b"" and len(day_lines) == 3
    assert [json.loads(line)["body"] for line in day_lines[:-1]] == [
        '{"event": "A"}',
        '{"event": "B\\nwith newline"}',
    ]
    assert (log_dir / "events-20250302.jsonl").exists()
    assert (log_dir / DAY_FILE).stat().st_mode & 0o777 == 0o600


def test_writer_needs_aware_timestamps(log_dir: Path) -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        EventLogWriter(log_dir).append_event({}, datetime(2025, 3, 1))


def test_concurrent_appends_share_fsyncs_and_lose_nothing(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = 0
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        nonlocal fsyncs
        fsyncs += 1
        real_fsync(fd)

    monkeypatch.setattr(eventlog.os, "fsync", counting_fsync)
    writer = EventLogWriter(log_dir)

    def worker(n: int) -> None:
        for i in range(50):
            writer.append_event(delivery(f'{{"event": "E", "n": "{n}-{i}"}}'), DAY)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()

    records = [json.loads(line) for line in (log_dir / DAY_FILE).read_text().splitlines()]
    assert len(records) == 400
    assert len({r["delivery_id"] for r in records}) == 400
    assert fsyncs <= 400 + 1  # never more than one per append (plus the close)


def _append_from_process(log_dir: str, worker: int, count: int) -> None:
    writer = EventLogWriter(log_dir)
    padding = "x" * 3000  # lines larger than a pipe buffer, to catch interleaving
    for i in range(count):
        writer.append_event(
            delivery(f'{{"event": "E", "w": {worker}, "i": {i}, "p": "{padding}"}}'), DAY
        )
    writer.close()


def test_several_processes_append_whole_lines(log_dir: Path, store: JsonFileWatermarkStore) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_from_process, args=(str(log_dir), w, 100)) for w in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    # A writer opening the file while another is mid-line sees no final newline and starts
    # with one: that may leave blank lines, which the reader skips; never a broken record.
    batch = read_new_events(log_dir, store)
    assert batch.corrupt_lines == [] and batch.incomplete_tails == {}
    records = [event.record for event in batch]
    assert len(records) == 400
    for worker in range(4):
        seen = [json.loads(r["body"])["i"] for r in records if json.loads(r["body"])["w"] == worker]
        assert seen == list(range(100))


def test_fragment_left_by_a_crashed_writer_cannot_swallow_the_next_line(
    log_dir: Path, store: JsonFileWatermarkStore
) -> None:
    log_dir.mkdir()
    (log_dir / DAY_FILE).write_bytes(b'{"received_at": "2025-03-01T11:00:00Z", "bo')
    write(log_dir, install_body("p1"))

    batch = read_new_events(log_dir, store)
    assert [json.loads(e.record["body"])["pass"]["id"] for e in batch] == ["p1"]
    assert len(batch.corrupt_lines) == 1
    assert batch.corrupt_lines[0].offset_start == 0


# --- reader -----------------------------------------------------------------------------------


def test_reader_yields_complete_lines_with_offsets(
    log_dir: Path, store: JsonFileWatermarkStore
) -> None:
    write(log_dir, install_body("p1"), install_body("p2"))
    write(log_dir, install_body("p3"), at=NEXT_DAY)

    batch = read_new_events(log_dir, store)
    assert [(e.file_name, e.offset_start) for e in batch][:2] == [
        (DAY_FILE, 0),
        (DAY_FILE, batch.events[0].offset_end),
    ]
    assert [e.file_name for e in batch] == [DAY_FILE, DAY_FILE, "events-20250302.jsonl"]
    content = (log_dir / DAY_FILE).read_bytes()
    for file_name, start, end, record in batch:
        if file_name == DAY_FILE:
            assert json.loads(content[start:end]) == record
    assert batch.end_offsets[DAY_FILE] == len(content)
    assert batch.start_offsets == {DAY_FILE: 0, "events-20250302.jsonl": 0}


def test_partial_last_line_is_not_consumed_until_completed(
    log_dir: Path, store: JsonFileWatermarkStore
) -> None:
    write(log_dir, install_body("p1"))
    complete = (log_dir / DAY_FILE).stat().st_size
    line = eventlog.encode_line(delivery(install_body("p2")))
    with (log_dir / DAY_FILE).open("ab") as handle:
        handle.write(line[:40])  # a writer caught mid-line

    first = read_new_events(log_dir, store)
    assert len(first) == 1
    assert first.end_offsets == {DAY_FILE: complete}
    assert first.incomplete_tails == {DAY_FILE: 40}
    commit(first, store)
    assert store.get(DAY_FILE) == complete

    assert len(read_new_events(log_dir, store)) == 0
    with (log_dir / DAY_FILE).open("ab") as handle:
        handle.write(line[40:])
    second = read_new_events(log_dir, store)
    assert [e.offset_start for e in second] == [complete]
    assert json.loads(second.events[0].record["body"])["pass"]["id"] == "p2"
    assert second.incomplete_tails == {}


def test_watermark_is_persisted_and_a_second_read_returns_nothing_new(
    log_dir: Path, tmp_path: Path
) -> None:
    write(log_dir, install_body("p1"), install_body("p2"))
    path = tmp_path / "state" / "watermarks.json"
    batch = read_new_events(log_dir, JsonFileWatermarkStore(path))
    assert len(batch) == 2
    commit(batch, JsonFileWatermarkStore(path))

    # A new store object (a new process) sees the committed offsets.
    reopened = JsonFileWatermarkStore(path)
    assert reopened.get(DAY_FILE) == (log_dir / DAY_FILE).stat().st_size
    again = read_new_events(log_dir, reopened)
    assert len(again) == 0 and again.end_offsets == {}
    commit(again, reopened)  # committing an empty batch is harmless

    write(log_dir, install_body("p3"))
    assert [
        json.loads(e.record["body"])["pass"]["id"] for e in read_new_events(log_dir, reopened)
    ] == ["p3"]


def test_crash_between_read_and_commit_reads_the_same_events_again(
    log_dir: Path, store: JsonFileWatermarkStore
) -> None:
    write(log_dir, install_body("p1"), install_body("p2"))
    first = read_new_events(log_dir, store)
    # ... the ingest task dies here, before commit ...
    second = read_new_events(log_dir, store)
    assert second.events == first.events
    assert second.end_offsets == first.end_offsets


def test_duplicate_deliveries_are_both_read_and_share_an_event_key(
    log_dir: Path, store: JsonFileWatermarkStore
) -> None:
    body = install_body("p1")
    # PassKit redelivers: once identical, once with a field changed but the same install time.
    altered = json.loads(body)
    altered["pass"]["metadata"]["status"] = 1
    write(log_dir, body, body, json.dumps(altered))

    batch = read_new_events(log_dir, store)
    assert len(batch) == 3
    events = [parse_logged_event(e.record) for e in batch]
    assert events[0].delivery_id == events[1].delivery_id != events[2].delivery_id
    assert len({e.event_key for e in events}) == 1


def test_max_events_bounds_a_batch_and_the_rest_comes_next(
    log_dir: Path, store: JsonFileWatermarkStore
) -> None:
    write(log_dir, *(install_body(f"p{i}") for i in range(5)))
    write(log_dir, install_body("q"), at=NEXT_DAY)
    seen: list[str] = []
    for _ in range(4):
        batch = read_new_events(log_dir, store, max_events=2)
        seen += [json.loads(e.record["body"])["pass"]["id"] for e in batch]
        commit(batch, store)
    assert seen == ["p0", "p1", "p2", "p3", "p4", "q"]
    with pytest.raises(ValueError):
        read_new_events(log_dir, store, max_events=0)


def test_corrupt_and_blank_lines_are_skipped_and_reported(
    log_dir: Path, store: JsonFileWatermarkStore
) -> None:
    write(log_dir, install_body("p1"))
    with (log_dir / DAY_FILE).open("ab") as handle:
        handle.write(b"\n[1, 2]\nnot json\n")
    write(log_dir, install_body("p2"))

    batch = read_new_events(log_dir, store)
    assert [json.loads(e.record["body"])["pass"]["id"] for e in batch] == ["p1", "p2"]
    assert [c.error for c in batch.corrupt_lines] == [
        "not a JSON object: list",
        "not JSON: JSONDecodeError",
    ]
    commit(batch, store)
    assert len(read_new_events(log_dir, store)) == 0


def test_only_events_files_are_read(log_dir: Path, store: JsonFileWatermarkStore) -> None:
    write(log_dir, install_body("p1"))
    EventLogWriter(log_dir).append_deadletter({"body": "x"}, DAY)
    (log_dir / "events-notes.txt").write_text("ignored\n")
    assert [e.file_name for e in read_new_events(log_dir, store)] == [DAY_FILE]
    assert len(read_new_events(log_dir / "missing", store)) == 0


def test_truncated_file_is_an_error(log_dir: Path, store: JsonFileWatermarkStore) -> None:
    write(log_dir, install_body("p1"))
    commit(read_new_events(log_dir, store), store)
    (log_dir / DAY_FILE).write_bytes(b"")
    with pytest.raises(LogTruncatedError, match=DAY_FILE):
        read_new_events(log_dir, store)


def test_commit_refuses_when_another_consumer_moved_the_watermark(
    log_dir: Path, store: JsonFileWatermarkStore
) -> None:
    write(log_dir, install_body("p1"))
    mine = read_new_events(log_dir, store)
    theirs = read_new_events(log_dir, store)
    commit(theirs, store)
    with pytest.raises(WatermarkConflictError, match=DAY_FILE):
        commit(mine, store)


# --- watermark store --------------------------------------------------------------------------


def test_json_store_is_a_watermark_store_with_atomic_replacement(
    store: JsonFileWatermarkStore,
) -> None:
    assert isinstance(store, WatermarkStore)
    assert store.get("events-20250301.jsonl") == 0
    store.set_many({"events-20250301.jsonl": 10, "events-20250302.jsonl": 5})
    store.set_many({"events-20250302.jsonl": 7})
    assert json.loads(store.path.read_text()) == {
        "version": 1,
        "offsets": {"events-20250301.jsonl": 10, "events-20250302.jsonl": 7},
    }
    assert [p.name for p in store.path.parent.iterdir()] == ["watermarks.json"]  # no temp left
    with pytest.raises(ValueError, match="non-negative"):
        store.set_many({"events-20250301.jsonl": -1})
    assert store.get("events-20250301.jsonl") == 10


class _DictStore:
    """What a warehouse-table implementation has to provide."""

    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}

    def get(self, file_name: str) -> int:
        return self.offsets.get(file_name, 0)

    def set_many(self, offsets: Any) -> None:
        self.offsets.update(offsets)


def test_reader_works_with_any_store_implementing_the_protocol(log_dir: Path) -> None:
    table = _DictStore()
    assert isinstance(table, WatermarkStore)
    write(log_dir, install_body("p1"))
    commit(read_new_events(log_dir, table), table)
    assert table.offsets == {DAY_FILE: (log_dir / DAY_FILE).stat().st_size}
