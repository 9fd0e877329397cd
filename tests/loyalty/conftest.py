"""Loyalty test fixtures (builders live in tests/loyalty/loyalty_builders.py).

Tests run on both engines through the shared `warehouse` fixture of tests/conftest.py (DuckDB
in a temp file; PostgreSQL in a schema of its own, skipped locally when unreachable and a
failure when CI=true).
"""

from __future__ import annotations

import pytest

from tests.loyalty.loyalty_builders import Toast
from toast_passkit.warehouse import Warehouse


@pytest.fixture
def toast(warehouse: Warehouse) -> Toast:
    """A builder of staged Toast rows in the test's warehouse."""
    return Toast(warehouse)


@pytest.fixture
def fresh_warehouse(warehouse: Warehouse, tmp_path):
    """Factory of more empty, migrated warehouses on the same engine as `warehouse`."""
    import uuid

    import sqlalchemy as sa

    made: list[tuple[Warehouse, str | None]] = []

    def make() -> Warehouse:
        if warehouse.dialect == "duckdb":
            wh = Warehouse.from_url(f"duckdb:///{tmp_path / uuid.uuid4().hex}.duckdb")
            made.append((wh, None))
        else:
            schema = f"t_{uuid.uuid4().hex[:12]}"
            with warehouse.engine.begin() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            url = warehouse.engine.url.set(query={"options": f"-csearch_path={schema}"})
            wh = Warehouse.from_url(url.render_as_string(hide_password=False))
            made.append((wh, schema))
        wh.migrate()
        return wh

    yield make
    for wh, schema in made:
        wh.dispose()
        if schema:
            with warehouse.engine.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
