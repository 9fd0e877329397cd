"""The raw archive: every export file pulled, kept immutable and checksummed before parsing.

Toast deletes its exports after 7 days, so this archive is the system of record. Files are
content-addressed (`<root>/<location>/<YYYYMMDD>/<sha256>/<File>.csv`, read-only) and each
day folder has an append-only `MANIFEST.jsonl`; the latest entry per file name is the version
the ingest uses. The archive is itself an export source, so any day can be re-ingested
without Toast.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from toast_passkit.toast.sources import day_folder

MANIFEST = "MANIFEST.jsonl"


@dataclass(frozen=True)
class ArchivedFile:
    """One archived export file version."""

    location_id: str
    business_date: str     # ISO date
    file_name: str
    checksum_sha256: str
    size_bytes: int
    archive_path: str
    source_uri: str
    archived_at: str       # ISO timestamp, UTC


class RawArchive:
    """A local (or mounted) folder holding the immutable raw export files."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.uri = f"archive://{self.root.resolve()}"

    def _day(self, location_id: str, business_date: date) -> Path:
        return self.root / location_id / day_folder(business_date)

    def store(self, location_id: str, business_date: date, file_name: str, data: bytes,
              source_uri: str) -> ArchivedFile:
        """Archive `data` (no-op when this exact content is already the latest version)."""
        return self.store_day(location_id, business_date, {file_name: data},
                              source_uri)[file_name]

    def store_day(self, location_id: str, business_date: date, files: dict[str, bytes],
                  source_uri: str) -> dict[str, ArchivedFile]:
        """Archive a day's files: each new content is written and fsynced, then their manifest
        entries are appended and fsynced once (a file is durable before its entry is)."""
        day = self._day(location_id, business_date)
        latest = self.latest(location_id, business_date)
        out: dict[str, ArchivedFile] = {}
        new: list[ArchivedFile] = []
        for file_name, data in files.items():
            checksum = hashlib.sha256(data).hexdigest()
            known = latest.get(file_name)
            if known and known.checksum_sha256 == checksum:
                out[file_name] = known
                continue
            target = day / checksum / file_name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, 0o444)
                os.replace(tmp, target)
            out[file_name] = ArchivedFile(
                location_id=location_id, business_date=business_date.isoformat(),
                file_name=file_name, checksum_sha256=checksum, size_bytes=len(data),
                archive_path=str(target.relative_to(self.root)), source_uri=source_uri,
                archived_at=datetime.now(UTC).isoformat(),
            )
            new.append(out[file_name])
        if new:
            with open(day / MANIFEST, "a", encoding="utf-8") as manifest:
                manifest.write("".join(json.dumps(asdict(entry), sort_keys=True) + "\n"
                                       for entry in new))
                manifest.flush()
                os.fsync(manifest.fileno())
        return out

    def latest(self, location_id: str, business_date: date) -> dict[str, ArchivedFile]:
        """The latest archived version of each file of a day (by manifest order)."""
        path = self._day(location_id, business_date) / MANIFEST
        if not path.exists():
            return {}
        out: dict[str, ArchivedFile] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = ArchivedFile(**json.loads(line))
                out[entry.file_name] = entry
        return out

    def verify(self, entry: ArchivedFile) -> bytes:
        """Read an archived file back, checking its checksum."""
        data = (self.root / entry.archive_path).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.checksum_sha256:
            raise ValueError(f"archive corrupted: {entry.archive_path} does not match its "
                             f"checksum {entry.checksum_sha256}")
        return data

    # -- the archive as an export source ---------------------------------------------------
    def list_locations(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def list_files(self, location_id: str, business_date: date) -> list[str]:
        return sorted(self.latest(location_id, business_date))

    def read(self, location_id: str, business_date: date, file_name: str) -> bytes:
        return self.verify(self.latest(location_id, business_date)[file_name])

    def close(self) -> None:
        """Nothing to release."""
