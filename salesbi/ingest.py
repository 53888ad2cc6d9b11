"""Ingestion: read a source through its profile, validate, stage, and upsert into ``core``.

Order of events, so that bad input never half-changes the warehouse:

1. read every file through the profile — structural faults raise here, before
   any connection is opened;
2. validate the typed frames (row faults are quarantined, table-level faults raise);
3. in ONE transaction: replace ``staging``, upsert accepted rows into ``core``
   in dependency order (only rows whose values changed are rewritten), and
   append the quarantined rows to ``audit.rejected_rows``.

A run killed before step 3 commits leaves ``core`` exactly as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from salesbi import contract
from salesbi.reading.reader import SourceData, read_source
from salesbi.reading.spilled import SpilledFrame, SpilledRows, SpillPolicy
from salesbi.rejects import KEEP_RUNS, ensure_raw_line_column, prune_rejects, with_raw_lines
from salesbi.runlog import TableCounts, widen_run_status
from salesbi.schema import RUN_ID, STATUS, Table
from salesbi.validation.gxcontext import import_in_background
from salesbi.validation.limits import storable
from salesbi.validation.validate import ValidationOutcome, validate_staged
from salesbi.warehouse.audit_tables import RUN_TABLES
from salesbi.warehouse.ddl import add_missing_column, warehouse_metadata
from salesbi.warehouse.engine import ensure_schemas
from salesbi.warehouse.load import (
    bulk_insert,
    constraints_after_rows,
    count_rows,
    delete_all,
    upsert_statement,
)

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (step label, done, total)

# a first load of more rows than this into an empty core table builds its secondary indexes after
REBUILD_INDEXES_ABOVE = 10_000
#: rows of a table hashed, validated by GX and staged at a time (``PipelineParams.ingest_block_rows``)
BLOCK_ROWS = 500_000


#: SQLite page cache per attached schema during the load, KiB (the connection's own is 128 MiB each):
#: the load writes staging, core and the row hashes once, and every schema's cache filled to its
#: limit held ~190 MB more at 1M lines; capped, the load costs ~3 % more CPU (docs/scaling.md, issue 18)
LOAD_CACHE_KIB = 16_384


@contextmanager
def small_page_cache(conn: sa.Connection, kib: int | None = None) -> Iterator[None]:
    """Within the block, cap SQLite's page cache of every attached schema at ``kib`` KiB (no-op elsewhere).

    ``kib`` defaults to :data:`LOAD_CACHE_KIB`.

    The previous sizes are restored on exit, so the reports and publish steps keep theirs.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    schemas = [str(r[1]) for r in conn.exec_driver_sql("PRAGMA database_list").fetchall()]
    before = {s: conn.exec_driver_sql(f'PRAGMA "{s}".cache_size').scalar_one() for s in schemas}
    for schema in schemas:
        conn.exec_driver_sql(f'PRAGMA "{schema}".cache_size=-{int(kib or LOAD_CACHE_KIB)}')
    try:
        yield
    finally:
        for schema, size in before.items():
            conn.exec_driver_sql(f'PRAGMA "{schema}".cache_size={int(size)}')


@dataclass
class LoadResult:
    """What the load step did: per-table counts (read/loaded/rejected/warehouse_rows)."""

    counts: dict[str, TableCounts]
    rejected_rows: int


def prepare_warehouse(engine: Engine) -> sa.MetaData:
    """Create the schemas and every missing table; return the warehouse metadata."""
    ensure_schemas(engine)
    md = warehouse_metadata()
    md.create_all(engine, checkfirst=True)
    ensure_raw_line_column(engine)
    add_missing_column(engine, RUN_TABLES, "unchanged")  # audit.run_tables created before incremental ingest
    widen_run_status(engine)  # warehouses created before succeeded_with_warnings existed
    return md


def read_step(source: Path, profile: str | Path, spill: SpillPolicy | None = None) -> SourceData:
    """Return the source's seven tables read through ``profile`` (raises StructuralError/ProfileError).

    ``spill``: long tables are written to disk block by block as they are read (see
    :mod:`salesbi.reading.spilled`).
    """
    import_in_background()  # overlaps GX's import with the read; validation needs it next
    data = read_source(Path(source), profile, spill=spill)
    for note in data.notes:
        log.info("note: %s", note)
    for name, t in data.tables.items():
        log.info("read %s: %d rows from %s", name, t.read, ", ".join(str(f) for f in t.files) or "derived")
    return data


def core_keys(engine: Engine, metadata: sa.MetaData) -> dict[str, pd.DataFrame]:
    """Return, per parent table, the key columns of the rows already in ``core``."""
    out: dict[str, pd.DataFrame] = {}
    parents = {parent for t in contract.TABLES for _, parent, _ in t.foreign_keys}
    with engine.connect() as conn:
        for name in sorted(parents):
            spec = contract.table(name)
            table = metadata.tables[f"core.{name}"]
            rows = conn.execute(sa.select(*(table.c[k] for k in spec.key))).fetchall()
            out[name] = pd.DataFrame(rows, columns=list(spec.key), dtype="string")
    return out


def validate_step(
    data: SourceData,
    *,
    run_id: str,
    previous_counts: Mapping[str, int] | None = None,
    known_keys: Mapping[str, pd.DataFrame] | None = None,
    config: Any = None,
    block_rows: int | None = BLOCK_ROWS,
) -> ValidationOutcome:
    """Return the validation outcome: accepted rows, quarantined rows, warnings and counts.

    Tables the profile declares absent or ``allow_empty`` may have no rows (rule zero_rows).
    ``orders`` and ``order_items`` longer than ``block_rows`` are checked by GX in blocks (same outcome,
    bounded memory).
    """
    allowed = frozenset(getattr(data, "allow_empty", frozenset()))
    if allowed:
        from salesbi.validation.config import load_config

        base = config or load_config()
        config = base.with_changes(allow_empty=base.allow_empty | allowed)
    return validate_staged(
        data.tables,
        run_id=run_id,
        config=config,
        previous_counts=previous_counts,
        known_keys=known_keys,
        block_rows=block_rows,
    )


def _staging_frame(
    frame: pd.DataFrame, rejected: np.ndarray, run_id: str, spec: Table, rows: slice | None = None
) -> pd.DataFrame:
    """Return the staging rows of ``frame`` (only positions ``rows`` when given) with run id and status.

    ``rejected`` masks the rows of the whole ``frame`` that validation rejected.
    """
    if rows is not None:
        frame, rejected = frame.iloc[rows], rejected[rows]
    # a rejected value the database would refuse must not abort the load (it is kept in the audit)
    out = storable(frame, spec, rejected) if rejected.any() else frame.copy(deep=False)  # copy-on-write
    # the run id and the status as categoricals: one byte per row, not a string per row (the load
    # writes their text; issue 18 memory)
    out[RUN_ID] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), categories=[run_id])
    out[STATUS] = pd.Categorical.from_codes(
        np.where(rejected, 1, 0).astype(np.int8), categories=["accepted", "rejected"]
    )
    return out


def load_step(
    engine: Engine,
    metadata: sa.MetaData,
    data: SourceData,
    outcome: ValidationOutcome,
    *,
    run_id: str,
    progress: Progress | None = None,
    keep_rejects_runs: int = KEEP_RUNS,
    after_load: Callable[[sa.Connection], None] | None = None,
    block_rows: int | None = BLOCK_ROWS,
) -> LoadResult:
    """Replace staging, upsert accepted rows into core and store rejects — all in one transaction.

    Staging is written ``block_rows`` rows at a time (the storable copy of a block with rejects
    and its run id/status columns exist for one block at a time; a spilled table is read from its
    file a block at a time, :mod:`salesbi.reading.spilled`); the upsert into core is one
    statement per table over all of staging, inside the same transaction.

    Each rejected row keeps its whole raw source line; only the rejects of the newest
    ``keep_rejects_runs`` runs are kept. ``after_load`` runs in the same transaction once core
    is upserted (e.g. :func:`salesbi.incremental.hash_writer` storing the rows' content hashes).
    Returns the per-table counts.
    """
    counts: dict[str, TableCounts] = {}
    total = len(contract.TABLES)
    with engine.begin() as conn, small_page_cache(conn):
        for i, spec in enumerate(contract.TABLES):
            name = spec.name
            staged = data.tables[name]
            accepted = outcome.accepted[name]
            staging = metadata.tables[f"staging.{name}"]
            core = metadata.tables[f"core.{name}"]
            delete_all(conn, staging)
            if isinstance(staged.frame, SpilledFrame):  # staged from its file a block at a time
                assert isinstance(accepted, SpilledRows)
                for block in staged.frame.blocks(block_rows):
                    start = int(block.index[0])
                    rejected = np.zeros(len(block), dtype=bool)
                    rejected[accepted.rejected_in(start, start + len(block))] = True
                    bulk_insert(conn, staging, _staging_frame(block, rejected, run_id, spec))
                    del block
            else:
                assert isinstance(accepted, pd.DataFrame)
                rows = len(staged.frame)
                rejected = ~staged.frame.index.isin(accepted.index)
                step = block_rows if block_rows and rows > block_rows else max(rows, 1)
                for start in range(0, rows, step):
                    part = slice(start, start + step) if step < rows else None
                    bulk_insert(conn, staging, _staging_frame(staged.frame, rejected, run_id, spec, part))
            # first load into an empty table: build its secondary indexes (and, on PostgreSQL and SQL
            # Server, check its foreign keys) once, after the rows: one sort / one set-wise check beats
            # a B-tree insert and a trigger per row (order_items on PostgreSQL: 3x faster)
            first_bulk_load = len(accepted) > REBUILD_INDEXES_ABOVE and count_rows(conn, core) == 0
            with constraints_after_rows(conn, core, enabled=first_bulk_load):
                conn.execute(
                    upsert_statement(
                        conn.dialect,
                        core,
                        staging,
                        spec.key,
                        where=staging.c[STATUS] == "accepted",
                    )
                )
            oc = outcome.counts[name]
            counts[name] = TableCounts(
                read=oc.read,
                loaded=oc.loaded,
                rejected=oc.rejected,
                warehouse_rows=count_rows(conn, core),
                lines=oc.lines,
                skipped=oc.skipped,
                unchanged=oc.unchanged,
            )
            log.info(
                "loaded %s: read %d, loaded %d, rejected %d, unchanged %d, now %d rows in core",
                name,
                oc.read,
                oc.loaded,
                oc.rejected,
                oc.unchanged,
                counts[name].warehouse_rows,
            )
            if progress:
                progress("load", i + 1, total)
        if after_load is not None:
            after_load(conn)
        rejected = with_raw_lines(outcome.rejected_rows, data.source)
        if len(rejected):
            bulk_insert(conn, metadata.tables["audit.rejected_rows"], rejected)
        prune_rejects(conn, metadata, keep_rejects_runs)
        warnings = outcome.warnings
        if len(warnings):
            bulk_insert(conn, metadata.tables["audit.rejected_rows"], warnings)
    for name, c in counts.items():
        c.check(name)
    return LoadResult(counts=counts, rejected_rows=len(outcome.rejected_rows))
