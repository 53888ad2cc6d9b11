"""Registry of every ``rpt`` table: what Power BI reads and what is exported as Parquet.

Each producing package declares its tables in its own ``tables.py``; this
module only collects them, so the Power BI model, the Parquet export and the
warehouse DDL all see the same list.
"""

from __future__ import annotations

from salesbi.forecasting.tables import TABLES as FORECAST_TABLES
from salesbi.prediction.tables import TABLES as PREDICTION_TABLES
from salesbi.reports.data_quality import DATA_QUALITY
from salesbi.reports.tables import TABLES as REPORT_TABLES
from salesbi.schema import Table
from salesbi.segmentation.tables import TABLES as SEGMENT_TABLES


def rpt_tables() -> tuple[Table, ...]:
    """Return every table of the ``rpt`` schema, report tables first."""
    tables = REPORT_TABLES + SEGMENT_TABLES + PREDICTION_TABLES + FORECAST_TABLES + (DATA_QUALITY,)
    return tuple(t for t in tables if t.schema == "rpt")


def rpt_table(name: str) -> Table:
    """Return the ``rpt`` table called ``name``; KeyError lists the known names."""
    for t in rpt_tables():
        if t.name == name:
            return t
    raise KeyError(f"unknown rpt table {name!r}; known: {', '.join(t.name for t in rpt_tables())}")


def ml_tables() -> tuple[Table, ...]:
    """Return the model-specific tables of the ``ml`` schema declared by the model packages."""
    tables = SEGMENT_TABLES + PREDICTION_TABLES + FORECAST_TABLES
    return tuple(t for t in tables if t.schema == "ml")
