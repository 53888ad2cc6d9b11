"""Definitions of the report-layer tables built by :mod:`salesbi.reports`."""

from __future__ import annotations

from salesbi.reports.fact import FACT_ORDER_LINES
from salesbi.schema import Table

TABLES: tuple[Table, ...] = (FACT_ORDER_LINES,)
