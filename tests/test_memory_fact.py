"""Issue 18 memory: the fact table is built without transient copies and equals the old builder's.

The reference is the builder as it was before the change (kept below, verbatim but for its name):
the new one must give the same frame, value for value and dtype for dtype, on the generator, on
edge cases the generator does not make (unknown customer, order without employee, product without
cost, returns on a cancelled order, an order line of an unknown order) and on the real samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salesbi.reading.reader import core_frames, read_source
from salesbi.reports.fact import (
    CANCELLED_STATUSES,
    FACT_ORDER_LINES,
    _positions,
    _take,
    _text,
    build_fact_order_lines,
    geography_key,
)
from salesbi.types import conform


def _old_build_fact_order_lines(core: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The builder before issue 18's memory change (the reference)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    items = core["order_items"]
    orders, customers = core["orders"], core["customers"]
    products, employees = core["products"], core["employees"]
    order_ids = _text(items["order_id"])
    order_row = _positions(order_ids, orders, "order_id", "orders")
    item_row = np.flatnonzero(order_row >= 0)
    by_order_and_line = pc.sort_indices(
        pa.table(
            {
                "o": order_ids.take(item_row),
                "l": pa.array(items["line_number"], from_pandas=True).take(item_row),
            }
        ),
        sort_keys=[("o", "ascending"), ("l", "ascending")],
    ).to_numpy()
    item_row = item_row[by_order_and_line]
    order_row = order_row[item_row]
    f = pd.DataFrame(
        {
            c: _take(items[c], item_row)
            for c in ("order_id", "line_number", "product_id", "quantity", "unit_price", "discount")
        }
    )
    for c in ("customer_id", "employee_id", "order_date", "shipped_date", "status"):
        f[c] = _take(orders[c], order_row)
    customer_row = _positions(_text(f["customer_id"]), customers, "customer_id", "customers")
    for c in ("sales_rep_id", "country", "city"):
        f[c] = _take(customers[c], customer_row)
    product_row = _positions(_text(f["product_id"]), products, "product_id", "products")
    for c in ("product_line_id", "unit_cost"):
        f[c] = _take(products[c], product_row)
    f["employee_id"] = f["employee_id"].fillna(f["sales_rep_id"])
    f["office_id"] = _take(
        employees["office_id"], _positions(_text(f["employee_id"]), employees, "employee_id", "employees")
    )
    qty = f["quantity"].astype("float64")
    price = f["unit_price"].astype("float64")
    discount = f["discount"].astype("float64").fillna(0.0)
    gross = qty * price
    f["discount"] = discount
    f["revenue"] = (gross * (1.0 - discount)).round(2)
    f["discount_amount"] = (gross * discount).round(2)
    f["cost"] = (qty * f["unit_cost"].astype("float64")).round(2)
    f["gross_profit"] = (f["revenue"] - f["cost"]).round(2)
    returned = qty.to_numpy(dtype="float64", na_value=0.0) < 0
    cancelled = f["status"].isin(CANCELLED_STATUSES).to_numpy(dtype=bool) & ~returned
    f["is_cancelled"] = cancelled
    f["net_sales"] = np.where(cancelled, 0.0, f["revenue"])
    f["net_profit"] = np.where(cancelled, 0.0, f["gross_profit"])
    f.loc[f["gross_profit"].isna(), "net_profit"] = np.nan
    f["geography_key"] = geography_key(f["country"], f["city"])
    return f[FACT_ORDER_LINES.column_names]


@pytest.fixture(scope="module")
def generated_core(sample_company: Path) -> dict[str, pd.DataFrame]:
    """Return the core frames of the session's generated company."""
    return core_frames(read_source(sample_company, "canonical"))


def _edge_cases(core: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Return ``core`` with the cases the generator does not make, on its first orders and products."""
    out = {name: frame.copy() for name, frame in core.items()}
    orders, items, products = out["orders"], out["order_items"], out["products"]
    customers = out["customers"]
    orders.loc[0, "employee_id"] = pd.NA  # credited to the customer's sales rep
    orders.loc[1, "customer_id"] = "NO-SUCH-CUSTOMER"  # no rep, no geography
    orders.loc[2, "status"] = "cancelled"
    first_of_2 = items.index[items["order_id"] == orders.loc[2, "order_id"]][0]
    items.loc[first_of_2, "quantity"] = -3  # a return on a cancelled order
    items.loc[items.index[:50:7], "discount"] = np.nan
    products.loc[0, "unit_cost"] = np.nan  # no cost: unknown profit, also when cancelled
    customers.loc[0, ["country", "city"]] = pd.NA
    customers.loc[1, "city"] = pd.NA
    lost = items.iloc[:2].copy()
    lost["order_id"] = "NO-SUCH-ORDER"  # left out of the fact
    out["order_items"] = pd.concat([items, lost], ignore_index=True)
    return out


def test_the_fact_equals_the_old_builders_on_the_generator(generated_core: dict[str, pd.DataFrame]) -> None:
    new = build_fact_order_lines(generated_core)
    pd.testing.assert_frame_equal(new, _old_build_fact_order_lines(generated_core))
    assert len(new) == len(generated_core["order_items"]) and new["is_cancelled"].any()


def test_the_fact_equals_the_old_builders_on_edge_cases(generated_core: dict[str, pd.DataFrame]) -> None:
    core = _edge_cases(generated_core)
    new = build_fact_order_lines(core)
    old = _old_build_fact_order_lines(core)
    pd.testing.assert_frame_equal(new, old)
    # the edge cases are really there
    assert (new["geography_key"] == "|").any()
    assert new["net_profit"].isna().any() and (new["quantity"] < 0).any()
    assert len(new) == len(core["order_items"]) - 2


@pytest.mark.realdata
@pytest.mark.parametrize("profile", ["classicmodels", "northwind"])
def test_the_fact_equals_the_old_builders_on_the_real_samples(datasets_dir: Path, profile: str) -> None:
    core = core_frames(read_source(datasets_dir / profile, profile))
    pd.testing.assert_frame_equal(build_fact_order_lines(core), _old_build_fact_order_lines(core))


def test_conform_copies_no_column_that_already_has_its_dtype(generated_core: dict[str, pd.DataFrame]) -> None:
    fact = build_fact_order_lines(generated_core)
    conformed = conform(fact, FACT_ORDER_LINES)
    pd.testing.assert_frame_equal(conformed, conform(fact.copy(), FACT_ORDER_LINES))
    for column in ("revenue", "net_sales", "order_date"):
        assert np.shares_memory(conformed[column].to_numpy(), fact[column].to_numpy())
    conformed.loc[0, "revenue"] = -1.0  # copy-on-write: the fact is not changed through it
    assert fact.loc[0, "revenue"] != -1.0
