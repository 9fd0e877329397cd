"""Loyalty test fixtures (builders live in tests/loyalty/loyalty_builders.py).

Tests run on both engines (DuckDB in a temp file; PostgreSQL in a schema of its own, skipped
locally when unreachable and a failure when CI=true), like the shared `warehouse` fixture of
tests/conftest.py. Creating and migrating a warehouse per test is most of a short test's cost,
so here each test module migrates its warehouses once per engine and every test gets one
emptied of all rows (`warehouse`); `fresh_warehouse` makes more of them, also emptied.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from tests.conftest import ENGINES, PG_URL, require_postgres
from tests.loyalty.loyalty_builders import Toast, empty_warehouse
from toast_passkit.warehouse import Warehouse


class WarehousePool:
    """Migrated warehouses on one engine for one test module, handed out emptied."""

    def __init__(self, engine: str, directory) -> None:
        self.engine, self.directory = engine, directory
        self.made: list[tuple[Warehouse, str | None]] = []
        self.free: list[Warehouse] = []
        self._admin = sa.create_engine(PG_URL) if engine == "postgresql" else None

    def _new(self) -> Warehouse:
        if self.engine == "duckdb":
            wh = Warehouse.from_url(f"duckdb:///{self.directory / uuid.uuid4().hex}.duckdb")
            schema = None
        else:
            assert self._admin is not None
            schema = f"t_{uuid.uuid4().hex[:12]}"
            with self._admin.begin() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            url = sa.make_url(PG_URL).set(query={"options": f"-csearch_path={schema}"})
            wh = Warehouse.from_url(url.render_as_string(hide_password=False))
        self.made.append((wh, schema))
        wh.migrate()
        return wh

    def take(self) -> Warehouse:
        """An empty migrated warehouse (a used one, emptied, when one was given back)."""
        if self.free:
            wh = self.free.pop()
            empty_warehouse(wh)
            return wh
        return self._new()

    def give_back(self, warehouses: list[Warehouse]) -> None:
        self.free.extend(warehouses)

    def close(self) -> None:
        for wh, schema in self.made:
            wh.dispose()
            if schema and self._admin is not None:
                with self._admin.begin() as conn:
                    conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        if self._admin is not None:
            self._admin.dispose()


@pytest.fixture(scope="module", params=ENGINES)
def warehouse_pool(request, tmp_path_factory) -> Iterator[WarehousePool]:
    """The module's migrated warehouses on each engine."""
    if request.param == "postgresql":
        require_postgres()
    pool = WarehousePool(request.param, tmp_path_factory.mktemp("loyalty"))
    yield pool
    pool.close()


@pytest.fixture
def fresh_warehouse(warehouse_pool: WarehousePool) -> Iterator[Callable[[], Warehouse]]:
    """Factory of empty, migrated warehouses on the test's engine (given back afterwards)."""
    taken: list[Warehouse] = []

    def make() -> Warehouse:
        taken.append(warehouse_pool.take())
        return taken[-1]

    yield make
    warehouse_pool.give_back(taken)


@pytest.fixture
def warehouse(fresh_warehouse: Callable[[], Warehouse]) -> Warehouse:
    """An empty, migrated warehouse on each engine (overrides tests/conftest.py's)."""
    return fresh_warehouse()


@pytest.fixture
def toast(warehouse: Warehouse) -> Toast:
    """A builder of staged Toast rows in the test's warehouse."""
    return Toast(warehouse)
