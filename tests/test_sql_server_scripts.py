"""The checked-in T-SQL in sql_server/ is current and parses as T-SQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from salesbi import contract
from salesbi.warehouse.tsql import render_scripts, split_batches

SQL_DIR = Path(__file__).resolve().parents[1] / "sql_server"


def test_checked_in_scripts_are_current() -> None:
    expected = render_scripts()
    present = {p.name for p in SQL_DIR.glob("*.sql")}
    assert present == set(expected), "run `salesbi sql-server` to regenerate sql_server/"
    for name, text in expected.items():
        assert (SQL_DIR / name).read_text(encoding="utf-8") == text, (
            f"sql_server/{name} is stale: run `salesbi sql-server` and commit the result"
        )


@pytest.mark.parametrize("name", sorted(render_scripts()))
def test_every_batch_parses_as_tsql(name: str) -> None:
    text = (SQL_DIR / name).read_text(encoding="utf-8")
    batches = split_batches(text)
    assert batches
    for batch in batches:
        parsed = sqlglot.parse(batch, read="tsql", error_level=sqlglot.ErrorLevel.RAISE)
        assert parsed and all(p is not None for p in parsed)


def test_core_script_creates_the_seven_tables_with_their_columns() -> None:
    text = (SQL_DIR / "02_core.sql").read_text(encoding="utf-8")
    created: dict[str, list[str]] = {}
    for batch in split_batches(text):
        for statement in sqlglot.parse(batch, read="tsql"):
            assert statement is not None
            create = statement if isinstance(statement, exp.Create) else statement.find(exp.Create)
            if create is None or create.kind != "TABLE":
                continue
            schema = create.this
            table = schema.this
            created[f"{table.db}.{table.name}"] = [c.name for c in schema.find_all(exp.ColumnDef)]
    assert created == {f"core.{t.name}": t.column_names for t in contract.TABLES}


def test_roles_grant_read_on_rpt_only_to_powerbi() -> None:
    text = (SQL_DIR / "06_roles.sql").read_text(encoding="utf-8")
    grants = [line for line in text.splitlines() if line.startswith("GRANT")]
    assert "GRANT SELECT ON SCHEMA::[rpt] TO [salesbi_powerbi_reader];" in grants
    assert not any("powerbi" in g and "[rpt]" not in g for g in grants)
    assert not any(word in text for word in ("INSERT", "UPDATE", "DELETE", "ALTER ROLE [db_"))
