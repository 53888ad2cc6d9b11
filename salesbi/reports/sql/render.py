"""Push-down statements as SQL text per dialect, for a DBA (``python -m salesbi.reports.sql.render mssql``).

Prints every statement of :func:`all_statements` with its constants inline, each preceded by
``-- <name>``; ``--churn-months N`` and ``--as-of YYYY-MM-DD`` as the run's parameters (the
as-of date and the 12-month windows are constants of the summaries; the order value bins'
edges, here an example, come from the percentile statement at run time).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, postgresql, sqlite
from sqlalchemy.sql import Select

from salesbi.reports.params import ReportParams
from salesbi.reports.sql import summaries
from salesbi.reports.sql.selects import all_selects
from salesbi.warehouse.ddl import warehouse_metadata


def dialect_named(name: str) -> sa.Dialect:
    """Return the SQLAlchemy dialect ``postgresql``, ``mssql`` (SQL Server 2022) or ``sqlite``."""
    if name == "mssql":
        d = mssql.dialect()
        d.server_version_info = (16, 0)  # type: ignore[assignment]
        return d
    if name == "postgresql":
        return postgresql.dialect()  # type: ignore[no-any-return]
    if name == "sqlite":
        return sqlite.dialect()  # type: ignore[no-any-return]
    raise ValueError(f"unknown dialect {name!r}: use postgresql, mssql or sqlite")


def all_statements(
    metadata: sa.MetaData, *, churn_months: int = 2, as_of: date | None = None
) -> dict[str, Select[Any]]:
    """Return every statement of a push-down build, keyed by table (or step) name.

    ``as_of``: the report date (default: today); the summaries' windows assume the history
    covers the prior 12 months. The bins statement uses example edges (0, 100, … 1,000).
    """
    day = as_of or date.today()
    params = ReportParams(churn_months=churn_months, as_of=day)
    windows = summaries.Windows.of(day, date(1900, 1, 1))
    out = all_selects(metadata, churn_months=churn_months)
    out["fact.bounds"] = summaries.fact_bounds_select(metadata)
    out["customer_summary"] = summaries.customer_summary_select(metadata, params, windows)
    out["location_summary"] = summaries.location_summary_select(metadata, windows)
    out["product_summary"] = summaries.product_summary_select(metadata, params, windows)
    out["product_line_summary"] = summaries.product_line_summary_select(metadata, params, windows)
    out["employee_performance"] = summaries.employee_performance_select(metadata, params, windows)
    out["order_value.stats"] = summaries.order_value_stats_select(metadata, windows)
    out["order_value.bins"] = summaries.order_value_bins_select(metadata, windows, 0.0, 100.0, 10)
    return out


def render(dialect: str, churn_months: int = 2, as_of: date | None = None) -> dict[str, str]:
    """Return every push-down statement compiled for ``dialect`` with literals inline, by name."""
    d = dialect_named(dialect)
    statements = all_statements(warehouse_metadata(), churn_months=churn_months, as_of=as_of)
    return {
        name: str(select.compile(dialect=d, compile_kwargs={"literal_binds": True}))
        for name, select in statements.items()
    }


def main(argv: list[str] | None = None) -> None:
    """Print the statements for the dialect named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dialect", choices=("postgresql", "mssql", "sqlite"))
    parser.add_argument("--churn-months", type=int, default=2)
    parser.add_argument("--as-of", type=date.fromisoformat, default=None, help="report date (default today)")
    args = parser.parse_args(argv)
    for name, sql in render(args.dialect, args.churn_months, args.as_of).items():
        sys.stdout.write(f"-- {name}\n{sql};\n\n")


if __name__ == "__main__":
    main()
