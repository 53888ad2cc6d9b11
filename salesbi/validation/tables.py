"""The quarantine table ``audit.rejected_rows``: one row per rejected (or warned) record and reason."""

from __future__ import annotations

from salesbi.schema import Column, Table

REJECTED_ROWS = Table(
    name="rejected_rows",
    schema="audit",
    description=(
        "Rows that broke a validation rule: one row per record and reason. severity 'reject' rows did not "
        "reach core; severity 'warn' rows were loaded and are listed for follow-up."
    ),
    key=("run_id", "reject_id"),
    columns=(
        Column("run_id", "id", required=True, description="the run that read the row"),
        Column("reject_id", "int", required=True, description="1, 2, ... within the run"),
        Column("table_name", "text", required=True, length=64, description="canonical table"),
        Column("source_file", "text", length=400, description="file the record came from"),
        Column("source_line", "int", description="physical 1-based line where the record starts"),
        Column("column_name", "text", length=64, description="offending column; null for row rules"),
        Column("rule", "text", required=True, length=64, description="rule id, see docs/validation.md"),
        Column("severity", "text", required=True, length=16, description="reject or warn"),
        Column("value", "long_text", description="offending value as text"),
        Column("natural_key", "text", length=400, description="e.g. order_id=10100|line_number=3"),
        Column("message", "long_text", description="what is wrong and what to do"),
        Column(
            "raw_line",
            "long_text",
            description="the whole physical source line(s) of the record, re-read at load time",
        ),
    ),
)

REJECTED_ROW_COLUMNS: tuple[str, ...] = tuple(REJECTED_ROWS.column_names)
