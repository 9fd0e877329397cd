"""The warehouse: one SQLAlchemy engine over DuckDB (embedded) or PostgreSQL (production).

Every model and migration is a `.sql` file under `include/sql/`, written once in the SQL that
both engines accept, with values bound as `:name` parameters (SQLAlchemy turns them into each
driver's paramstyle). Bulk loads go through Arrow tables so decimals stay exact.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import SingletonThreadPool

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parents[2] / "include" / "sql"
WAREHOUSE_CONN_ID = "toast_warehouse"

_STATEMENT_SPLIT = re.compile(r";\s*(?:\n|$)")
_PG_SETTING = re.compile(r"^\s*--\s*postgresql:\s*SET\s+(\w+)\s*=\s*(\w+)\s*$",
                         re.MULTILINE | re.IGNORECASE)
# DuckDB folds its write-ahead log into the database file (a checkpoint) once the log passes
# this size, and when the last connection closes (a task's dispose()). Its default, 16 MB,
# makes every commit of a day's ingest or loyalty run a checkpoint that rewrites the tables'
# last row groups; at 256 MB a task's commits only append to the log and the task checkpoints
# once, at its end.
DUCKDB_CHECKPOINT_THRESHOLD = "256MB"
# DuckDB's own memory (its default is 80 % of the machine's RAM): beyond it, joins, sorts and
# windows spill to <warehouse>.tmp/ rather than grow a worker past its share.
DUCKDB_MEMORY_LIMIT = "1GB"


class WarehouseError(RuntimeError):
    """The warehouse connection or a model failed."""


def sql_path(name: str) -> Path:
    """Path of a SQL file under include/sql, e.g. `loyalty/010_guests.sql`."""
    path = SQL_DIR / name
    if not path.is_file():
        raise WarehouseError(f"SQL file not found: {path}")
    return path


def split_statements(sql: str) -> list[str]:
    """Split a SQL file into statements on `;` at line ends; comments-only chunks are dropped."""
    out = []
    for chunk in _STATEMENT_SPLIT.split(sql):
        body = "\n".join(
            line for line in chunk.splitlines() if not line.strip().startswith("--")
        ).strip()
        if body:
            out.append(chunk.strip())
    return out


class Warehouse:
    """A warehouse engine plus the few operations the pipeline needs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_url(cls, url: str) -> Warehouse:
        """Engine from a SQLAlchemy URL (`duckdb:////abs/file.duckdb`, `postgresql+psycopg2://...`)."""
        if url.startswith("duckdb"):
            # One pooled connection per engine; tasks dispose() the engine when done so the
            # DuckDB file lock is released for the next task (another process).
            return cls(sa.create_engine(url, poolclass=SingletonThreadPool, connect_args={
                "config": {"checkpoint_threshold": DUCKDB_CHECKPOINT_THRESHOLD,
                           "memory_limit": DUCKDB_MEMORY_LIMIT}}))
        return cls(sa.create_engine(url, pool_pre_ping=True))

    @classmethod
    def from_connection(cls, conn_id: str = WAREHOUSE_CONN_ID) -> Warehouse:
        """Engine from an Airflow connection: conn_type `duckdb` (host = file) or `postgres`."""
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        return cls.from_url(url_for_connection(
            conn.conn_type, conn.host, conn.port, conn.login, conn.password, conn.schema,
            search_path=conn.extra_dejson.get("search_path"),
        ))

    @classmethod
    def from_connection_fields(cls, conn: Mapping[str, Any]) -> Warehouse:
        """Engine from the fields of an Airflow connection given as a mapping (the JSON form
        of `AIRFLOW_CONN_TOAST_WAREHOUSE`): conn_type, host, port, login, password, schema,
        extra.search_path."""
        extra = conn.get("extra") or {}
        return cls.from_url(url_for_connection(
            conn["conn_type"], conn.get("host"), conn.get("port"), conn.get("login"),
            conn.get("password"), conn.get("schema"), search_path=extra.get("search_path")))

    @property
    def dialect(self) -> str:
        """`duckdb` or `postgresql`."""
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()

    # -- SQL ----------------------------------------------------------------------------
    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back on any error."""
        with self.engine.begin() as conn:
            yield conn

    def execute(self, conn: Connection, sql: str, params: Mapping[str, Any] | None = None,
                ) -> sa.CursorResult[Any]:
        return conn.execute(sa.text(sql), dict(params or {}))

    def run_file(self, conn: Connection, name: str,
                 params: Mapping[str, Any] | None = None) -> None:
        """Run every statement of a SQL file, binding only the parameters each one uses.

        A comment line `-- postgresql: SET <setting> = <value>` in a statement runs that
        statement alone with that setting on PostgreSQL (a planner setting for one statement,
        e.g. no nested loops where PostgreSQL's row estimates would make them quadratic); other
        engines ignore it."""
        for statement in split_statements(sql_path(name).read_text()):
            stmt = sa.text(statement)
            used = {k: v for k, v in (params or {}).items() if f":{k}" in statement}
            settings = _PG_SETTING.findall(statement) if self.dialect == "postgresql" else []
            before = [(setting, conn.exec_driver_sql(
                          "SELECT current_setting(%(name)s)", {"name": setting}).scalar())
                      for setting, _ in settings]
            for setting, value in settings:
                conn.exec_driver_sql(f"SET LOCAL {setting} = '{value}'")
            conn.execute(stmt, used)
            for setting, value in before:
                conn.exec_driver_sql(f"SET LOCAL {setting} = '{value}'")

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a query as dicts (small results: reports, tests)."""
        with self.engine.connect() as conn:
            result = conn.execute(sa.text(sql), dict(params or {}))
            return [dict(row._mapping) for row in result]

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), dict(params or {})).scalar()

    def migrate(self) -> None:
        """Create or update every table and view (idempotent): include/sql/schema/*.sql in order.

        `NNN_name.sql` runs on every engine; `NNN_name.<dialect>.sql` only on that engine.
        """
        files = sorted((SQL_DIR / "schema").glob("*.sql"),
                       key=lambda p: (p.name.split(".")[0], p.name.count(".")))
        with self.begin() as conn:
            for path in files:
                parts = path.name.split(".")
                if len(parts) == 3 and parts[1] != self.dialect:
                    continue
                for statement in split_statements(path.read_text()):
                    conn.execute(sa.text(statement))

    # -- bulk load ----------------------------------------------------------------------
    def insert_arrow(self, conn: Connection, table: str, data: pa.Table) -> int:
        """Append an Arrow table to `table` inside the caller's transaction (exact decimals)."""
        if data.num_rows == 0:
            return 0
        columns = ", ".join(data.column_names)
        if self.dialect == "duckdb":
            raw = conn.connection.driver_connection
            view = f"_incoming_{table}"
            raw.register(view, data)
            try:
                raw.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {view}")
            finally:
                raw.unregister(view)
        else:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            for row in zip(*(col.to_pylist() for col in data.columns), strict=True):
                writer.writerow(["\\N" if v is None else v for v in row])
            buffer.seek(0)
            cursor = conn.connection.driver_connection.cursor()
            cursor.copy_expert(
                f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer
            )
        return data.num_rows


def url_for_connection(conn_type: str, host: str | None, port: int | None, login: str | None,
                       password: str | None, schema: str | None,
                       search_path: str | None = None) -> str:
    """SQLAlchemy URL for an Airflow connection of type `duckdb` or `postgres`."""
    kind = (conn_type or "").lower()
    if kind == "duckdb":
        if not host:
            raise WarehouseError("duckdb warehouse connection needs host = the .duckdb file")
        return f"duckdb:///{Path(host).resolve()}"
    if kind in {"postgres", "postgresql"}:
        return sa.URL.create(
            "postgresql+psycopg2", username=login or None, password=password or None,
            host=host or "127.0.0.1", port=port or 5432, database=schema or "postgres",
            query={"options": f"-csearch_path={search_path}"} if search_path else {},
        ).render_as_string(hide_password=False)
    raise WarehouseError(f"unsupported warehouse conn_type {conn_type!r} (duckdb or postgres)")
