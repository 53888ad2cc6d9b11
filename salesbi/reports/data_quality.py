"""``rpt.data_quality``: what the run read, loaded and rejected per table, for the report's data-quality page.

Built from the run summary (``RunSummary.tables``, ``warnings``) and the rejected rows of the
validation outcome, at publish time: ``generated_at`` is when the report tables were replaced
(the last refresh; named like the other run-specific columns so reruns compare equal without it),
``run_status`` the run's status as of then (``succeeded`` or ``succeeded_with_warnings``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from salesbi.schema import Column, Table
from salesbi.types import conform

TOP_REASONS = 3

DATA_QUALITY = Table(
    name="data_quality",
    schema="rpt",
    description=(
        "One row per source table of the last run: rows read, loaded and rejected, the rejected share, "
        "the most frequent reject reasons, and the run's status, warnings and refresh time."
    ),
    key=("table_name",),
    columns=(
        Column("table_name", "text", required=True, length=64, description="canonical table"),
        Column("rows_read", "int", required=True, description="physical records read from the source"),
        Column("rows_loaded", "int", required=True, description="records loaded into core"),
        Column(
            "rows_rejected", "int", required=True, description="records quarantined in audit.rejected_rows"
        ),
        Column("rejected_share", "fraction", description="rows_rejected / rows_read"),
        Column("warehouse_rows", "int", description="rows of the core table after the run"),
        Column("top_reject_reasons", "long_text", description="e.g. 'not_null (12); foreign_key (3)'"),
        Column("run_id", "id", required=True),
        Column(
            "run_status", "text", required=True, length=32, description="succeeded or succeeded_with_warnings"
        ),
        Column("run_warnings", "int", required=True, description="warnings of the run (all steps)"),
        Column("warning_notes", "long_text", description="'step: what' of each run warning"),
        Column(
            "generated_at", "datetime", required=True, description="UTC time the rpt tables were replaced"
        ),
    ),
)


def _top_reasons(rejected: pd.DataFrame | None) -> dict[str, str]:
    """Return ``table -> 'rule (n); rule (n)'`` of the most frequent reject rules per table."""
    if rejected is None or rejected.empty:
        return {}
    rows = rejected
    if "severity" in rows.columns:
        rows = rows[rows["severity"].astype("string") == "reject"]
    counts = rows.groupby(["table_name", "rule"]).size().rename("n").reset_index()
    counts = counts.sort_values(["table_name", "n", "rule"], ascending=[True, False, True])
    return {
        str(table): "; ".join(f"{r.rule} ({r.n})" for r in group.head(TOP_REASONS).itertuples())
        for table, group in counts.groupby("table_name")
    }


def build_data_quality(summary: Any, rejected: pd.DataFrame | None, generated_at: datetime) -> pd.DataFrame:
    """Return ``rpt.data_quality`` for a run: one row per table of ``summary.tables``.

    ``summary`` is the run's :class:`salesbi.runlog.RunSummary`; ``rejected`` its rejected rows
    (``audit.rejected_rows`` columns) or None.
    """
    reasons = _top_reasons(rejected)
    notes = "; ".join(f"{w.get('step', '')}: {w.get('what', '')}" for w in summary.warnings) or None
    rows = []
    for name, counts in sorted(summary.tables.items()):
        rows.append(
            {
                "table_name": name,
                "rows_read": counts.read,
                "rows_loaded": counts.loaded,
                "rows_rejected": counts.rejected,
                "rejected_share": counts.rejected / counts.read if counts.read else None,
                "warehouse_rows": counts.warehouse_rows,
                "top_reject_reasons": reasons.get(name),
                "run_id": summary.run_id,
                "run_status": summary.final_status(),
                "run_warnings": len(summary.warnings),
                "warning_notes": notes,
                "generated_at": generated_at,
            }
        )
    frame = pd.DataFrame(rows, columns=DATA_QUALITY.column_names)
    return conform(frame, DATA_QUALITY)
