"""Shared fixtures: where the real datasets are, strict mode, small generated companies."""

from __future__ import annotations

import gc
import os
import sys
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


def worker_database(url: str, worker: str) -> str:
    """Return ``url`` with its database renamed for one pytest-xdist worker (``x`` → ``x_gw0``).

    Each worker of a parallel run (``pytest -n 2``) drops and fills the warehouse schemas, so two
    workers must never share one database.
    """
    from sqlalchemy.engine import make_url

    base = make_url(url)
    return base.set(database=f"{base.database}_{worker}").render_as_string(hide_password=False)


def ensure_database(admin_url: str, url: str) -> str | None:
    """Create the database of ``url`` through ``admin_url`` when it does not exist yet.

    Returns ``None`` when the database exists (or was created), else why it could not be created.
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).first()
            if exists is None:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        return f"cannot create the worker database {name!r} ({cause.__class__.__name__}: {cause})"
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def pg_url() -> str:
    """Return the PostgreSQL URL for integration tests (SALESBI_TEST_PG_URL).

    In a parallel run each pytest-xdist worker gets its own database, named after the one in
    SALESBI_TEST_PG_URL with the worker's id appended (``salesbi_test_gw0``), created on first use:
    the role needs CREATEDB (``.ci/run`` creates it as a superuser). A serial run uses the URL as is.
    """
    url = os.environ.get("SALESBI_TEST_PG_URL", "")
    need(bool(url), "SALESBI_TEST_PG_URL is not set (run .ci/run, or start PostgreSQL and export it)")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker:
        return url
    mine = worker_database(url, worker)
    problem = ensure_database(url, mine)
    need(problem is None, f"{problem}: GRANT CREATEDB to the role, or run the suite serially (-n 0)")
    return mine


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


#: a test that imported at least this many new modules (GX, Prefect, … are imported on first use)
#: makes the next freeze happen after it
NEW_MODULES_TO_FREEZE = 100

_frozen = {"modules": 0}


def _freeze_what_is_alive() -> None:
    """Collect the garbage, then move every object still alive out of later collections' reach."""
    gc.collect()
    gc.freeze()
    _frozen["modules"] = len(sys.modules)


#: seconds each of the slowest test modules took in a whole CI rehearsal (junit times, 2026-12-01,
#: `make test PYTEST_ARGS=--junitxml=…`): under pytest-xdist the slowest modules start first
#: (:func:`pytest_collection_modifyitems`). Stale figures only change the order, never the tests.
MODULE_SECONDS = {
    "test_fact_publish": 283,
    "test_real_exports": 280,
    "test_stream_ingest": 233,
    "test_ingest_blocks": 226,
    "test_core_line_blocks": 206,
    "test_pipeline": 183,
    "test_changes_spilled": 176,
    "test_fact_spill": 160,
    "test_incremental": 132,
    "test_rejects": 130,
    "test_prefect_e2e": 104,
    "test_incremental_outputs": 104,
    "test_publish": 94,
    "test_ingest": 92,
    "test_model_inputs": 86,
    "test_validation_keys": 83,
    "test_report_blocks": 79,
    "test_reports_sql": 69,
    "test_empty_core": 66,
    "test_powerbi_numbers": 56,
    "test_core_reuse": 54,
    "test_validation_corpus": 46,
    "test_order_grain": 43,
    "test_flows_dask": 37,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a pytest-xdist worker, put the test modules in the order they should start: slowest first.

    ``--dist loadscope`` hands each worker one module at a time, in collection order (the Makefile
    turns off xdist's own reordering, by number of tests): starting the longest modules first keeps
    one of them from being the last thing the whole run waits for. Modules without a figure follow
    in their collection order; the tests of a module keep theirs. A serial run keeps collection order.
    """
    if not hasattr(config, "workerinput"):
        return
    first_seen: dict[str, int] = {}
    for item in items:
        first_seen.setdefault(item.nodeid.split("::")[0], len(first_seen))

    def start(item: pytest.Item) -> tuple[int, int]:
        path = item.nodeid.split("::")[0]
        return -MODULE_SECONDS.get(Path(path).stem, 0), first_seen[path]

    items.sort(key=start)  # stable: a module's tests keep their order


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze the objects of everything imported by collection (see :func:`pytest_runtest_logfinish`)."""
    _freeze_what_is_alive()


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """After a test that imported a library, freeze what is alive again (``gc.freeze()``).

    Each pipeline stage ends with ``salesbi.memory.release_freed_memory()``, a full ``gc.collect()``
    that walks every object the collector tracks: in a test process that is every module the suite
    imported (GX, Prefect, pandas, …: 400,000 objects, about 0.3 s of CPU per collection, thousands
    of collections per suite). Frozen objects are left out of later collections (modules, classes and
    functions are never garbage; frozen objects freed by reference counting are still freed); what
    a test creates afterwards is collected as before. Freezing happens only when a test imported a
    library, between two tests, after a full collection, so little else than the library is frozen.
    """
    if len(sys.modules) - _frozen["modules"] >= NEW_MODULES_TO_FREEZE:
        _freeze_what_is_alive()
