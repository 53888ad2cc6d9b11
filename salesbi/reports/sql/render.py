"""Push-down statements as SQL text per dialect, for a DBA (``python -m salesbi.reports.sql.render mssql``).

Prints every statement of :func:`salesbi.reports.sql.selects.all_selects` with its constants
inline, each preceded by ``-- <name>``; ``--churn-months N`` as in the run's parameter.
"""

from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, postgresql, sqlite

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


def render(dialect: str, churn_months: int = 2) -> dict[str, str]:
    """Return every push-down statement compiled for ``dialect`` with literals inline, by name."""
    d = dialect_named(dialect)
    return {
        name: str(select.compile(dialect=d, compile_kwargs={"literal_binds": True}))
        for name, select in all_selects(warehouse_metadata(), churn_months=churn_months).items()
    }


def main(argv: list[str] | None = None) -> None:
    """Print the statements for the dialect named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dialect", choices=("postgresql", "mssql"))
    parser.add_argument("--churn-months", type=int, default=2)
    args = parser.parse_args(argv)
    for name, sql in render(args.dialect, args.churn_months).items():
        sys.stdout.write(f"-- {name}\n{sql};\n\n")


if __name__ == "__main__":
    main()
