"""Shared fixtures: where the real datasets are, strict mode, small generated companies."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SALESBI_SHARED", PROJECT_ROOT.parent / "shared"))
DATASETS = SHARED / "datasets"
STRICT = os.environ.get("SALESBI_STRICT") == "1"


#: markers of tests whose resource no CI machine can have: under SALESBI_STRICT=1 they still skip
#: (with their reason) instead of failing. Only SQL Server: no engine runs on these machines.
SKIPPABLE_IN_STRICT = ("sqlserver",)


def need(condition: bool, reason: str, request: pytest.FixtureRequest | None = None) -> None:
    """Skip the calling test when ``condition`` is false; under SALESBI_STRICT=1, fail instead.

    Pass ``request`` from a test marked with one of :data:`SKIPPABLE_IN_STRICT` to let it skip
    even under strict mode (the skip reason is reported by ``-ra``).
    """
    if condition:
        return
    optional = request is not None and any(
        request.node.get_closest_marker(m) is not None for m in SKIPPABLE_IN_STRICT
    )
    if STRICT and not optional:
        pytest.fail(f"SALESBI_STRICT=1 and a required resource is missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """Return ``../shared/datasets`` (skips, or fails under strict mode, when absent)."""
    need(DATASETS.is_dir(), f"real datasets not found at {DATASETS}")
    return DATASETS


@pytest.fixture(scope="session")
def classicmodels_dir(datasets_dir: Path) -> Path:
    """Return the classicmodels CSV folder."""
    return datasets_dir / "classicmodels"


@pytest.fixture(scope="session")
def northwind_dir(datasets_dir: Path) -> Path:
    """Return the Northwind CSV folder."""
    return datasets_dir / "northwind"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Return ``../shared`` (skips, or fails under strict mode, when absent)."""
    need(SHARED.is_dir(), f"../shared not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def pg_url() -> str:
    """Return the PostgreSQL URL for integration tests (SALESBI_TEST_PG_URL)."""
    url = os.environ.get("SALESBI_TEST_PG_URL", "")
    need(bool(url), "SALESBI_TEST_PG_URL is not set (run .ci/run, or start PostgreSQL and export it)")
    return url


@pytest.fixture(scope="session")
def sample_company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a folder with a small generated company (canonical CSVs + ground truth), one per session."""
    from salesbi.generate import generate_company

    folder = tmp_path_factory.mktemp("sample_company")
    generate_company(folder, order_lines=20_000, seed=7)
    return folder


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """One temporary Prefect API (ephemeral server, SQLite) for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def drop_pg_schemas(url: str) -> None:
    """Drop the warehouse's schemas (and everything in them) from the PostgreSQL database at ``url``."""
    import sqlalchemy as sa

    from salesbi.warehouse.engine import SCHEMAS

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for schema in SCHEMAS:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


@pytest.fixture
def pg_warehouse(pg_url: str) -> Iterator[str]:
    """Return the URL of an empty PostgreSQL warehouse (its schemas dropped before and after)."""
    drop_pg_schemas(pg_url)
    yield pg_url
    drop_pg_schemas(pg_url)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.integration, pytest.mark.postgres])]
)
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Return the URL of an empty warehouse, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'warehouse.db'}"
        return
    yield request.getfixturevalue("pg_warehouse")
