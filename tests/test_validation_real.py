"""Real datasets: clean classicmodels and Northwind have no rejects; a dirty classicmodels copy
quarantines exactly the injected rows and their dependants."""

from __future__ import annotations

import importlib.util
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(
        importlib.util.find_spec("salesbi.reading.reader") is None,
        reason="salesbi.reading.reader not landed yet",
    ),
]
TODAY = date(2025, 6, 1)


def _validate(folder: Path, profile: str, run_id: str):  # type: ignore[no-untyped-def]
    from salesbi.reading.reader import read_source
    from salesbi.validation.validate import validate_staged

    return validate_staged(read_source(folder, profile).tables, run_id=run_id, today=TODAY)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["classicmodels", "northwind"])
def test_clean_dataset_has_zero_rejects(datasets_dir: Path, name: str) -> None:
    out = _validate(datasets_dir / name, name, "clean")
    assert len(out.rejected_rows) == 0, out.rejected_rows.head(10).to_string()
    for table, c in out.counts.items():
        assert c.rejected == 0 and c.read == c.loaded, table


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)


@pytest.mark.slow
def test_dirty_classicmodels_quarantines_exactly_the_injected_rows(
    classicmodels_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "classicmodels"
    shutil.copytree(classicmodels_dir, folder)
    orders = _csv(folder / "orders.csv")
    lines = _csv(folder / "orderdetails.csv")
    customers = _csv(folder / "customers.csv")

    # 1. an order for an unknown customer; 2. an order in 2099 (also shipped before it was ordered)
    orders.loc[orders["orderNumber"] == "10100", "customerNumber"] = "99999"
    orders.loc[orders["orderNumber"] == "10102", "orderDate"] = "2099-01-01"
    # 3. a 300-character customer name (VARCHAR(255)): rejects the customer, its orders and their lines
    customers.loc[customers["customerNumber"] == "103", "customerName"] = "N" * 300
    cascaded_orders = set(orders.loc[orders["customerNumber"] == "103", "orderNumber"])
    bad_orders = {"10100", "10102"} | cascaded_orders
    # 4. a negative quantity on a line of an order that is otherwise fine
    victim = lines.index[~lines["orderNumber"].isin(bad_orders)][0]
    lines.loc[victim, "quantityOrdered"] = "-5"
    victim_key = (
        f"order_id={lines.loc[victim, 'orderNumber']}|line_number={lines.loc[victim, 'orderLineNumber']}"
    )
    for frame, file in ((orders, "orders.csv"), (lines, "orderdetails.csv"), (customers, "customers.csv")):
        frame.to_csv(folder / file, sep=";", index=False)

    out = _validate(folder, "classicmodels", "dirty")
    rej = out.rejected_rows

    def keys(table: str, rule: str) -> set[str]:
        return set(rej.loc[(rej["table_name"] == table) & (rej["rule"] == rule), "natural_key"])

    assert keys("customers", "text_too_long") == {"customer_id=103"}
    assert keys("orders", "foreign_key") == {"order_id=10100"}
    assert keys("orders", "order_date_in_future") == {"order_id=10102"}
    assert keys("orders", "shipped_before_ordered") == {"order_id=10102"}
    assert keys("orders", "parent_rejected") == {f"order_id={o}" for o in cascaded_orders}
    assert keys("order_items", "quantity_not_positive") == {victim_key}
    expected_lines = lines[lines["orderNumber"].isin(bad_orders)]
    assert keys("order_items", "parent_rejected") == {
        f"order_id={o}|line_number={n}"
        for o, n in zip(expected_lines["orderNumber"], expected_lines["orderLineNumber"], strict=True)
    }
    assert set(rej["rule"]) == {
        "text_too_long",
        "foreign_key",
        "order_date_in_future",
        "shipped_before_ordered",
        "parent_rejected",
        "quantity_not_positive",
    }
    counts = {n: (c.read, c.loaded, c.rejected) for n, c in out.counts.items()}
    assert counts["customers"] == (122, 121, 1)
    assert counts["orders"] == (326, 326 - len(bad_orders), len(bad_orders))
    assert counts["order_items"] == (2996, 2996 - len(expected_lines) - 1, len(expected_lines) + 1)
    for n in ("offices", "employees", "product_lines", "products"):
        assert counts[n][2] == 0
    for c in out.counts.values():
        assert c.read == c.loaded + c.rejected
