"""docs/contract.md is generated from salesbi/contract.py and must be current."""

from __future__ import annotations

from salesbi import contract
from salesbi.contract_doc import doc_path, render


def test_contract_doc_is_current() -> None:
    assert doc_path().read_text(encoding="utf-8") == render(), (
        "docs/contract.md is stale: run `python -m salesbi.contract_doc`"
    )


def test_contract_doc_names_every_column_and_rule() -> None:
    text = render()
    for table in contract.TABLES:
        assert f"## `{table.name}`" in text
        for column in table.columns:
            assert f"| `{column.name}` |" in text
    assert "NVARCHAR(64)" in text and "DECIMAL(18, 2)" in text
    assert "`quantity_not_positive`" in text and "→ `orders.order_id`" in text
