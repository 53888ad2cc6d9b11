"""Evaluate the model's DAX measures over a run's Parquet files with pbix-mcp's DAX engine.

pbix-mcp is a third-party engine, not Microsoft's: it serves the page previews and the tests,
whose disagreements with independent references are findings, not truths. It is optional:
:class:`DaxUnavailable` says when it is not installed.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from salesbi.errors import SalesBIError


class DaxUnavailable(SalesBIError):
    """pbix-mcp (the DAX evaluator) is not installed."""


def _dax_table(path: Path) -> dict[str, Any]:
    """Return a Parquet table as pbix-mcp rows; dates become ``datetime`` (DAX has only DateTime)."""
    frame = pd.read_parquet(path)
    dates = {c for c in frame.columns if str(frame[c].dtype).startswith(("datetime", "date32", "timestamp"))}
    rows = []
    for record in frame.astype(object).where(frame.notna(), None).itertuples(index=False):
        row = list(record)
        for i, c in enumerate(frame.columns):
            value = row[i]
            if c in dates and value is not None:
                row[i] = pd.Timestamp(value).to_pydatetime()
            elif type(value) is date:  # a date column read as objects
                row[i] = datetime(value.year, value.month, value.day)
        rows.append(row)
    return {"columns": list(frame.columns), "rows": rows}


class DaxModel:
    """The TMDL model in ``definition`` with the tables of ``parquet`` that exist there."""

    def __init__(self, parquet: Path, definition: Path) -> None:
        try:
            from pbix_mcp.dax.engine import evaluate_measures_batch
            from pbix_mcp.formats.tmdl_reader import parse_tmdl_folder
        except ImportError as exc:
            raise DaxUnavailable(
                "pbix-mcp is not installed: cannot evaluate the Power BI measures",
                hint="install the project's requirements.lock (make install)",
            ) from exc
        self._evaluate = evaluate_measures_batch
        model = parse_tmdl_folder(str(definition))
        keep = {t["name"] for t in model["tables"] if (parquet / f"{t['name']}.parquet").is_file()}
        self.tables = {name: _dax_table(parquet / f"{name}.parquet") for name in sorted(keep)}
        self.measures = {
            m["name"]: m["expression"] for t in model["tables"] if t["name"] in keep for m in t["measures"]
        }
        self.formats = {
            m["name"]: m.get("format_string") or ""
            for t in model["tables"]
            if t["name"] in keep
            for m in t["measures"]
        }
        self.homes = {
            m["name"]: t["name"] for t in model["tables"] if t["name"] in keep for m in t["measures"]
        }
        self.relationships = [
            {
                "FromTable": r["from_table"],
                "FromColumn": r["from_column"],
                "ToTable": r["to_table"],
                "ToColumn": r["to_column"],
                "IsActive": r["is_active"],
            }
            for r in model["relationships"]
            if r["from_table"] in keep and r["to_table"] in keep
        ]

    def values(self, table: str, column: str) -> list[Any]:
        """Return the distinct non-null values of ``table[column]``, sorted."""
        data = self.tables[table]
        at = data["columns"].index(column)
        return sorted(
            {row[at] for row in data["rows"] if row[at] is not None}, key=lambda v: (str(type(v)), v)
        )

    def evaluate(
        self,
        names: list[str],
        filters: dict[str, list[Any]],
        extra: dict[str, str] | None = None,
        group: dict[str, list[Any]] | None = None,
    ) -> dict[str, Any]:
        """Return ``measure -> value`` under slicer ``filters`` ``{'table.column': [values]}``.

        ``group`` is a visual's row (category value): a filter that ALLSELECTED removes, as in a
        visual; ``extra`` adds ad-hoc measures.
        """
        measures = {**self.measures, **(extra or {})}
        return dict(
            self._evaluate(
                names,
                self.tables,
                measures,
                {**filters, **(group or {})},
                "dim_date",
                "date",
                self.relationships,
                group_keys=set(group or {}),
                selected_filters=filters,
                measure_tables=self.homes,
            )
        )
