"""Shared fixtures: warehouses on DuckDB and PostgreSQL, sample exports, an Airflow database."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from toast_passkit.warehouse import Warehouse

PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
ENGINES = ["duckdb", "postgresql"]
SAMPLE_START = date(2026, 11, 1)


def _pg_reachable() -> bool:
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def require_postgres() -> None:
    """Skip without PostgreSQL locally; in CI (CI=true) a missing PostgreSQL is a failure."""
    if _pg_reachable():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI and unreachable at {PG_URL}")
    pytest.skip("PostgreSQL unreachable (set TEST_PG_URL); runs in CI")


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(params=ENGINES)
def warehouse_conn(request, tmp_path) -> dict:
    """An Airflow connection (as JSON-able dict) to an empty warehouse on each engine."""
    if request.param == "duckdb":
        return {"conn_type": "duckdb", "host": str(tmp_path / "warehouse.duckdb")}
    schema = request.getfixturevalue("pg_schema")
    url = sa.make_url(PG_URL)
    return {"conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username,
            "schema": url.database, "extra": {"search_path": schema}}


@pytest.fixture
def warehouse(warehouse_conn) -> Iterator[Warehouse]:
    """A migrated warehouse on each engine."""
    wh = Warehouse.from_connection_fields(warehouse_conn)
    wh.migrate()
    yield wh
    wh.dispose()


@pytest.fixture(scope="session")
def sample_exports_ro(tmp_path_factory) -> Path:
    """A week of generated exports from 3 locations (shared: do not modify)."""
    from toast_passkit.toast.sample_data import generate_exports

    root = tmp_path_factory.mktemp("exports")
    generate_exports(root, locations=3, days=7, start=SAMPLE_START, seed=7)
    return root


@pytest.fixture
def sample_exports(sample_exports_ro, tmp_path) -> Path:
    """A private, modifiable copy of the sample exports."""
    target = tmp_path / "exports"
    shutil.copytree(sample_exports_ro, target)
    return target


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh Airflow metadata database (SQLite in the test Airflow home) with our pools."""
    from airflow.models.pool import Pool
    from airflow.utils import db

    db.resetdb()
    Pool.create_or_update_pool("warehouse", slots=1, description="warehouse writers",
                               include_deferred=False)
