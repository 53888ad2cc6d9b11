"""Publishing the report layer: every ``rpt`` table replaced in one transaction, then Parquet.

Readers (Power BI, the API) never see a half-written table: on PostgreSQL and
SQLite the replace is one transaction, so readers keep seeing the previous
version until it commits; on SQL Server the same transaction under
``READ_COMMITTED_SNAPSHOT`` (set by ``sql_server/00_database.sql``) gives the
same guarantee. A failure anywhere rolls back and the last good reports stay.

The Parquet folder is swapped the same way: written aside, then renamed into
place only after the warehouse commit succeeded.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from salesbi.modelrun import MODEL_RUNS, ModelRun
from salesbi.schema import Table
from salesbi.types import conform, to_arrow
from salesbi.warehouse.load import bulk_insert

log = logging.getLogger(__name__)


def _matches(conn: sa.Connection, table: sa.Table) -> bool:
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name, schema=table.schema):
        return False
    existing = [c["name"] for c in inspector.get_columns(table.name, schema=table.schema)]
    return existing == [c.name for c in table.columns]


def replace_tables(
    engine: Engine,
    metadata: sa.MetaData,
    frames: Mapping[str, pd.DataFrame],
    definitions: Sequence[Table],
) -> dict[str, int]:
    """Replace each defined table that has a frame, all in one transaction; return rows written per table.

    A table whose stored columns differ from its definition (the code was
    upgraded) is dropped and re-created inside the same transaction.
    """
    written: dict[str, int] = {}
    with engine.begin() as conn:
        for spec in definitions:
            if spec.name not in frames:
                continue
            table = metadata.tables[spec.qualified_name]
            if _matches(conn, table):
                conn.execute(table.delete())
            else:
                table.drop(conn, checkfirst=True)
                table.create(conn)
            frame = conform(frames[spec.name], spec)
            written[spec.name] = bulk_insert(conn, table, frame)
    return written


def record_model_runs(engine: Engine, metadata: sa.MetaData, run_id: str, runs: Sequence[ModelRun]) -> int:
    """Store one ``ml.model_runs`` row per model (replacing this run's earlier rows); return the count."""
    from salesbi.runlog import utcnow

    table = metadata.tables[MODEL_RUNS.qualified_name]
    created = utcnow()
    rows = pd.DataFrame([r.as_row(run_id, created) for r in runs], columns=MODEL_RUNS.column_names)
    with engine.begin() as conn:
        conn.execute(table.delete().where(table.c.run_id == run_id))
        if len(rows):
            bulk_insert(conn, table, conform(rows, MODEL_RUNS))
    return len(rows)


def stage_parquet(frames: Mapping[str, pd.DataFrame], definitions: Sequence[Table], folder: Path) -> Path:
    """Write the new Parquet set beside ``folder`` (``<folder>.new``) and return that staging folder.

    It starts as a copy of the current folder, so tables without a frame in
    this run keep their previous file. Nothing a reader sees changes yet.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(folder.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    if folder.exists():
        shutil.copytree(folder, staging)
    else:
        staging.mkdir()
    for spec in definitions:
        if spec.name in frames:
            tmp = staging / f"{spec.name}.parquet.tmp"
            pq.write_table(to_arrow(frames[spec.name], spec), tmp, compression="zstd")
            os.replace(tmp, staging / f"{spec.name}.parquet")
    return staging


def swap_in(staging: Path, folder: Path) -> Path:
    """Replace ``folder`` by ``staging`` with two renames; return ``folder``."""
    old = folder.with_name(folder.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        os.replace(folder, old)
    os.replace(staging, folder)
    if old.exists():
        shutil.rmtree(old)
    return folder


def export_parquet(frames: Mapping[str, pd.DataFrame], definitions: Sequence[Table], folder: Path) -> Path:
    """Write ``<folder>/<table>.parquet`` for every defined table with a frame, swapping the folder in.

    Tables without a frame in this run keep their previous file. Returns ``folder``.
    """
    return swap_in(stage_parquet(frames, definitions, folder), Path(folder))
