"""Definitions of the ``audit`` tables: one row per run, per-table counts of each run, publishes."""

from __future__ import annotations

from salesbi.schema import Column, Table

RUN_STATUSES = ("running", "succeeded", "succeeded_with_warnings", "failed", "crashed")

RUNS = Table(
    name="runs",
    schema="audit",
    description="One row per pipeline run: what ran, on what, and how it ended.",
    key=("run_id",),
    columns=(
        Column("run_id", "id", required=True),
        Column("flow", "text", required=True, length=64),
        Column("status", "text", required=True, length=32, allowed=RUN_STATUSES),
        Column("started_at", "datetime", required=True),
        Column("finished_at", "datetime"),
        Column("failed_step", "text", length=64),
        Column("error", "long_text"),
        Column("source", "long_text"),
        Column("profile", "text"),
        Column("warehouse", "long_text", description="URL with the password masked"),
        Column("summary_json", "long_text", description="the run_summary.json document"),
    ),
)

RUN_TABLES = Table(
    name="run_tables",
    schema="audit",
    description=(
        "Per run and table: rows read, loaded into core, rejected, left unchanged (identical to core in "
        "an incremental drop), and in core afterwards (read = loaded + rejected + unchanged)."
    ),
    key=("run_id", "table_name"),
    columns=(
        Column("run_id", "id", required=True),
        Column("table_name", "text", required=True, length=64),
        Column("read", "int", required=True),
        Column("loaded", "int", required=True),
        Column("rejected", "int", required=True),
        Column(
            "unchanged",
            "int",
            description="rows of the drop identical to core (not validated again); NULL for runs recorded "
            "before the column existed",
        ),
        Column("warehouse_rows", "int"),
    ),
)

PUBLISHES = Table(
    name="publishes",
    schema="audit",
    description=(
        "One row per publish of the report layer, written in the same transaction as the rpt tables: "
        "the proof an interrupted publish committed (salesbi.publish.recover reads it)."
    ),
    key=("publish_id",),
    columns=(
        Column("publish_id", "id", required=True, description="<run_id>:<random>, one per attempt"),
        Column("run_id", "id", required=True),
        Column("published_at", "datetime", required=True),
    ),
)

ROW_HASHES = Table(
    name="row_hashes",
    schema="audit",
    description=(
        "Per core table and key: a content hash of the row as last loaded into core, so a later full "
        "snapshot drop validates and loads only new and changed rows (salesbi.incremental)."
    ),
    key=("table_name", "row_key"),
    columns=(
        Column("table_name", "text", required=True, length=64),
        Column(
            "row_key",
            "text",
            required=True,
            length=200,
            description="the row's key values as text, joined by the unit separator (U+001F)",
        ),
        Column(
            "row_hash",
            "int",
            required=True,
            description="64-bit hash of the conformed values of the contract's columns (signed)",
        ),
        Column("run_id", "id", required=True, description="the run that loaded this version of the row"),
    ),
)

AUDIT_TABLES: tuple[Table, ...] = (RUNS, RUN_TABLES, PUBLISHES, ROW_HASHES)
