"""Where Toast export files come from: Toast's SFTP server, a local folder, or our raw archive.

All three present the same layout, `<root>/<location_id>/<YYYYMMDD>/<File>.csv`, and the same
small interface, so the ingest does not care which one it reads.
"""

from __future__ import annotations

import json
import logging
import posixpath
import stat
from datetime import date
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)
TOAST_EXPORTS_CONN_ID = "toast_exports"


class SourceError(RuntimeError):
    """The export source can't be read (missing folder, unreachable server)."""


def day_folder(business_date: date) -> str:
    return business_date.strftime("%Y%m%d")


class ExportSource(Protocol):
    """A tree of Toast export folders."""

    uri: str

    def list_locations(self) -> list[str]: ...

    def list_files(self, location_id: str, business_date: date) -> list[str]: ...

    def read(self, location_id: str, business_date: date, file_name: str) -> bytes: ...

    def close(self) -> None: ...


class LocalFolderSource:
    """Exports downloaded by hand (or synced) into a local folder."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.uri = f"file://{self.root.resolve()}"

    def list_locations(self) -> list[str]:
        if not self.root.is_dir():
            raise SourceError(f"export folder {self.root} does not exist")
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def list_files(self, location_id: str, business_date: date) -> list[str]:
        folder = self.root / location_id / day_folder(business_date)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_file())

    def read(self, location_id: str, business_date: date, file_name: str) -> bytes:
        return (self.root / location_id / day_folder(business_date) / file_name).read_bytes()

    def close(self) -> None:
        """Nothing to release."""


class SFTPSource:
    """Toast's nightly export server, through Airflow's SFTP hook (one login, all locations)."""

    def __init__(self, hook: Any, remote_root: str = ".") -> None:
        self.hook = hook
        self.remote_root = remote_root.rstrip("/") or "/"
        conn = hook.get_connection(hook.ssh_conn_id)
        self.uri = f"sftp://{conn.host}:{conn.port or 22}{posixpath.join('/', remote_root)}"

    def _sftp(self) -> Any:
        return self.hook.get_conn()

    def list_locations(self) -> list[str]:
        try:
            entries = self._sftp().listdir_attr(self.remote_root)
        except OSError as exc:
            raise SourceError(f"{self.uri}: cannot list export root ({exc})") from exc
        return sorted(e.filename for e in entries if stat.S_ISDIR(e.st_mode or 0))

    def list_files(self, location_id: str, business_date: date) -> list[str]:
        folder = posixpath.join(self.remote_root, location_id, day_folder(business_date))
        try:
            entries = self._sftp().listdir_attr(folder)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise SourceError(f"{self.uri}: cannot list {folder} ({exc})") from exc
        return sorted(e.filename for e in entries if stat.S_ISREG(e.st_mode or 0))

    def read(self, location_id: str, business_date: date, file_name: str) -> bytes:
        path = posixpath.join(self.remote_root, location_id, day_folder(business_date), file_name)
        with self._sftp().open(path, "rb") as handle:
            handle.prefetch()
            return handle.read()

    def close(self) -> None:
        self.hook.close_conn()


def source_from_connection(conn_id: str = TOAST_EXPORTS_CONN_ID) -> ExportSource:
    """The export source an Airflow connection describes.

    - conn_type `sftp`: Toast's SFTP server; extra `remote_root` (default: the login's home).
    - conn_type `fs`: a local folder; extra `path`.
    """
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson
    if conn.conn_type == "sftp":
        from airflow.providers.sftp.hooks.sftp import SFTPHook

        return SFTPSource(SFTPHook(ssh_conn_id=conn_id), remote_root=extra.get("remote_root", "."))
    if conn.conn_type in {"fs", "file", "local"}:
        path = extra.get("path") or conn.host
        if not path:
            raise SourceError(f"connection {conn_id!r}: a local export folder needs extra.path")
        return LocalFolderSource(path)
    raise SourceError(f"connection {conn_id!r}: unsupported conn_type {conn.conn_type!r} "
                      "(sftp or fs)")


def parse_location_list(value: str | None) -> list[str] | None:
    """Location ids configured as a JSON list or a comma-separated string; None when unset."""
    if not value or not value.strip():
        return None
    text = value.strip()
    items = json.loads(text) if text.startswith("[") else text.split(",")
    return [str(i).strip() for i in items if str(i).strip()]
