"""Build every report table (star schema and analytic tables) from the canonical ``core`` frames."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Protocol

import pandas as pd

from salesbi.reports import dims, monthly, summaries
from salesbi.reports.context import FactLines, LinesCollector, ReportContext, context_of
from salesbi.reports.fact import FACT_BLOCK_LINES, fact_blocks
from salesbi.reports.line_blocks import OrderLineBlocks
from salesbi.reports.params import ReportParams

__all__ = ["FactSink", "ReportParams", "build_reports"]


def _joined(blocks: list[pd.DataFrame]) -> pd.DataFrame:
    """Return the fact's blocks as one frame (index 0..n-1)."""
    if len(blocks) == 1:
        return blocks[0]
    return pd.concat(blocks, ignore_index=True)


def _calendar_bounds(lines: FactLines, as_of: date) -> tuple[date, date]:
    """Return the first and last day that the calendar must cover (order, ship and as-of dates)."""
    dates = [pd.Timestamp(as_of) - pd.Timedelta(days=1)]
    for col in ("order_date", "shipped_date"):
        bounds = lines.date_bounds[col]
        if bounds is not None:
            dates += [bounds[0], bounds[1]]
    return min(dates).date(), max(dates).date()


class FactSink(Protocol):
    """Where :func:`build_reports` puts the fact's blocks instead of returning the fact as a frame."""

    def append(self, block: pd.DataFrame) -> None:
        """Take the fact's next block (whole orders, conformed); return nothing."""


#: builds ``sales_monthly``, ``customer_growth`` and ``order_value_distribution`` from the context
MonthlyBuilder = Callable[[ReportContext], dict[str, pd.DataFrame]]


def full_monthly_tables(ctx: ReportContext) -> dict[str, pd.DataFrame]:
    """Return ``sales_monthly``, ``customer_growth`` and ``order_value_distribution`` built in full."""
    return {
        "sales_monthly": monthly.build_sales_monthly(ctx),
        "customer_growth": monthly.build_customer_growth(ctx),
        "order_value_distribution": monthly.build_order_value_distribution(ctx),
    }


def build_reports(
    core: dict[str, pd.DataFrame],
    params: ReportParams | None = None,
    monthly_tables: MonthlyBuilder = full_monthly_tables,
    fact_sink: FactSink | None = None,
    block_lines: int | None = None,
    on_context: Callable[[ReportContext], None] | None = None,
    order_lines: OrderLineBlocks | None = None,
) -> dict[str, pd.DataFrame]:
    """Return every report table except ``insights``, keyed by its ``rpt`` name.

    Each frame has exactly its definition's columns (``salesbi.reports.tables``) and dtypes.
    ``insights`` is built afterwards by :func:`salesbi.reports.insights.build_insights`, which
    also reads the segmentation, prediction and forecast tables. ``monthly_tables`` builds the
    three monthly tables (a daily run splices them: :mod:`salesbi.incremental_reports`).

    The fact is built in blocks of whole orders of about ``block_lines`` lines
    (:data:`~salesbi.reports.fact.FACT_BLOCK_LINES` when None;
    :func:`salesbi.reports.fact.fact_blocks`); each block adds its sold lines to per-key partial sums
    and its orders to the per-order frame (:class:`~salesbi.reports.context.FactLines`), and is
    dropped: nothing per line is kept. With a ``fact_sink`` each block
    goes to it and ``fact_order_lines`` is not in the result (the fact is never whole in
    memory: the run's sink writes it to its Parquet file); without, the blocks are joined into
    the ``fact_order_lines`` frame (the same frame whatever ``block_lines``). ``on_context`` is
    called with the build's :class:`~salesbi.reports.context.ReportContext` (the run records the
    fact's order dates from it). ``order_lines``: core's order lines read in key order
    (:class:`~salesbi.reports.line_blocks.OrderLineBlocks`) when ``core`` has no ``order_items``
    frame (a long table is never read whole): the same blocks, the same tables.
    """
    params = params or ReportParams()
    blocks = fact_blocks(core, FACT_BLOCK_LINES if block_lines is None else block_lines, order_lines)
    collector = LinesCollector(blocks.rows)
    kept: list[pd.DataFrame] = []
    for block in blocks:
        collector.add(block)
        if fact_sink is None:
            kept.append(block)
        else:
            fact_sink.append(block)
        del block
    del blocks
    lines, orders = collector.finish()
    del collector
    ctx = context_of(core, lines, orders, params)
    if on_context is not None:
        on_context(ctx)
    first, last = _calendar_bounds(lines, ctx.as_of)
    fact = {} if fact_sink is not None else {"fact_order_lines": _joined(kept)}
    del kept
    return {
        "dim_date": dims.build_dim_date(first, last, params.fiscal_year_start_month),
        "dim_geography": dims.build_dim_geography(core["customers"]),
        "dim_office": dims.build_dim_office(core["offices"], core["employees"]),
        "dim_employee": dims.build_dim_employee(
            core["employees"], core["offices"], core["customers"], ctx.orders
        ),
        "dim_product_line": dims.build_dim_product_line(core["product_lines"], core["products"]),
        "dim_product": dims.build_dim_product(core["products"], core["product_lines"]),
        "dim_customer": dims.build_dim_customer(core["customers"], core["employees"]),
        **fact,
        "customer_summary": summaries.build_customer_summary(ctx),
        "location_summary": summaries.build_location_summary(ctx),
        "product_summary": summaries.build_product_summary(ctx),
        "product_line_summary": summaries.build_product_line_summary(ctx),
        "employee_performance": summaries.build_employee_performance(ctx),
        **monthly_tables(ctx),
    }
