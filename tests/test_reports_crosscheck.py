"""Key report figures on classicmodels and Northwind, recomputed independently with SQL (sqlite3)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from salesbi.reports.build import build_reports
from salesbi.reports.insights import build_insights, render_insights_markdown


def load(folder: Path, profile: str) -> dict[str, pd.DataFrame]:
    """Return the core frames of a real dataset."""
    from salesbi.reading.reader import core_frames, read_source

    return core_frames(read_source(folder, profile))


def to_sqlite(core: dict[str, pd.DataFrame]) -> sqlite3.Connection:
    """Return an in-memory database holding the core frames (dates as ISO text)."""
    con = sqlite3.connect(":memory:")
    for name, frame in core.items():
        f = frame.copy()
        for c in f.columns:
            if str(f[c].dtype).startswith("datetime"):
                f[c] = f[c].dt.strftime("%Y-%m-%d")
            elif str(f[c].dtype) in ("string", "str") or str(f[c].dtype) in ("Int64", "boolean"):
                f[c] = f[c].astype(object).where(f[c].notna(), None)
        f.to_sql(name, con, index=False)
    return con


LINE = "i.quantity * i.unit_price * (1 - coalesce(i.discount, 0))"
SOLD = "FROM order_items i JOIN orders o ON o.order_id = i.order_id WHERE o.status <> 'cancelled'"


@pytest.fixture(scope="module")
def classic(
    classicmodels_dir: Path,
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], sqlite3.Connection]:
    core = load(classicmodels_dir, "classicmodels")
    return core, build_reports(core), to_sqlite(core)


def test_classicmodels_counts_and_total(classic) -> None:  # type: ignore[no-untyped-def]
    core, out, con = classic
    assert len(core["orders"]) == 326 and len(out["fact_order_lines"]) == 2996
    (total,) = con.execute(f"SELECT sum({LINE}) {SOLD}").fetchone()
    (everything,) = con.execute(f"SELECT sum({LINE}) FROM order_items i").fetchone()
    assert everything == pytest.approx(9604190.61, abs=0.005)  # the published total of all order lines
    assert out["fact_order_lines"]["net_sales"].sum() == pytest.approx(total, abs=0.01)
    assert out["sales_monthly"]["net_sales"].sum() == pytest.approx(total, abs=0.01)
    assert out["customer_summary"]["net_sales"].sum() == pytest.approx(total, abs=0.01)
    assert out["sales_monthly"]["orders_cancelled"].sum() == 6


def test_classicmodels_top_customers(classic) -> None:  # type: ignore[no-untyped-def]
    _, out, con = classic
    rows = con.execute(
        f"SELECT o.customer_id, sum({LINE}) s {SOLD} "
        "GROUP BY o.customer_id ORDER BY s DESC, o.customer_id LIMIT 10"
    ).fetchall()
    top = out["customer_summary"].sort_values("sales_rank").head(10)
    assert top["customer_id"].tolist() == [r[0] for r in rows]
    assert top["net_sales"].tolist() == pytest.approx([r[1] for r in rows], abs=0.01)
    assert top.iloc[0]["customer_name"] == "Euro+ Shopping Channel"


def test_classicmodels_top_country_office_and_rep(classic) -> None:  # type: ignore[no-untyped-def]
    _, out, con = classic
    sold_by_customer = SOLD.replace("WHERE", "JOIN customers c ON c.customer_id = o.customer_id WHERE")
    country, c_sales = con.execute(
        f"SELECT c.country, sum({LINE}) s {sold_by_customer} GROUP BY c.country ORDER BY s DESC LIMIT 1"
    ).fetchone()
    credited = (
        "FROM order_items i JOIN orders o ON o.order_id = i.order_id "
        "JOIN customers c ON c.customer_id = o.customer_id "
        "JOIN employees e ON e.employee_id = coalesce(o.employee_id, c.sales_rep_id) "
        "WHERE o.status <> 'cancelled'"
    )
    office, o_sales = con.execute(
        f"SELECT e.office_id, sum({LINE}) s {credited} GROUP BY e.office_id ORDER BY s DESC LIMIT 1"
    ).fetchone()
    rep, r_sales = con.execute(
        f"SELECT e.employee_id, sum({LINE}) s {credited} GROUP BY e.employee_id ORDER BY s DESC LIMIT 1"
    ).fetchone()
    loc = out["location_summary"]
    top_country = loc[(loc["level"] == "country") & (loc["sales_rank"] == 1)].iloc[0]
    assert (top_country["location_key"], top_country["net_sales"]) == (
        country,
        pytest.approx(c_sales, abs=0.01),
    )
    assert country == "USA"
    top_office = loc[(loc["level"] == "office") & (loc["sales_rank"] == 1)].iloc[0]
    assert (top_office["office_id"], top_office["net_sales"]) == (office, pytest.approx(o_sales, abs=0.01))
    ep = out["employee_performance"]
    top_rep = ep[ep["rank_overall"] == 1].iloc[0]
    assert (top_rep["employee_id"], top_rep["net_sales"]) == (rep, pytest.approx(r_sales, abs=0.01))
    assert top_rep["employee_name"] == "Gerard Hernandez"


def test_classicmodels_product_margins(classic) -> None:  # type: ignore[no-untyped-def]
    _, out, con = classic
    sold_by_product = SOLD.replace("WHERE", "JOIN products p ON p.product_id = i.product_id WHERE")
    rows = con.execute(
        f"SELECT p.product_line_id, sum({LINE}), sum(i.quantity * p.unit_cost) "
        f"{sold_by_product} GROUP BY p.product_line_id"
    ).fetchall()
    pls = out["product_line_summary"].set_index("product_line_id")
    for line, sales, cost in rows:
        assert pls.loc[line, "margin"] == pytest.approx((sales - cost) / sales, abs=1e-6), line
    ps = out["product_summary"].set_index("product_id")
    product, sales, cost = con.execute(
        f"SELECT i.product_id, sum({LINE}) s, sum(i.quantity * p.unit_cost) "
        f"{SOLD.replace('WHERE', 'JOIN products p ON p.product_id = i.product_id WHERE')}"
        " GROUP BY i.product_id ORDER BY s DESC LIMIT 1"
    ).fetchone()
    assert ps.loc[product, "sales_rank"] == 1
    assert ps.loc[product, "gross_profit"] == pytest.approx(sales - cost, abs=0.01)


def test_classicmodels_insights_read_well(classic) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = classic
    ins = build_insights(out)
    assert ins["rank"].tolist() == list(range(1, len(ins) + 1))
    assert {"customers", "locations", "products", "employees", "trend"} <= set(ins["topic"])
    top = ins.set_index("insight_id").loc["customers.top_share"]
    share = out["customer_summary"].head(10)["net_sales"].sum() / out["customer_summary"]["net_sales"].sum()
    assert top["metric_value"] == pytest.approx(share)
    assert f"{100 * share:.1f}%" in top["finding"]
    md = render_insights_markdown(ins, title="ClassicModels")
    assert md.startswith("# ClassicModels") and "USA is the largest market" in md
    assert build_insights(out).equals(ins)  # deterministic


def test_northwind_net_sales_with_discount(northwind_dir: Path) -> None:
    core = load(northwind_dir, "northwind")
    out = build_reports(core)
    con = to_sqlite(core)
    (total,) = con.execute(f"SELECT sum({LINE}) {SOLD}").fetchone()
    (discount,) = con.execute(f"SELECT sum(i.quantity * i.unit_price * i.discount) {SOLD}").fetchone()
    fact = out["fact_order_lines"]
    # lines are rounded to cents one by one: allow half a cent per line
    assert fact["net_sales"].sum() == pytest.approx(total, abs=0.005 * len(fact))
    assert total == pytest.approx(1265793.04, abs=0.01)  # the well-known Northwind sales total
    assert fact["discount_amount"].sum() == pytest.approx(discount, abs=0.005 * len(fact))
    cs = out["customer_summary"]
    (top_customer,) = con.execute(
        f"SELECT o.customer_id {SOLD} GROUP BY o.customer_id ORDER BY sum({LINE}) DESC LIMIT 1"
    ).fetchone()
    assert cs.iloc[0]["customer_id"] == top_customer
    assert cs["gross_profit"].isna().all() and cs["margin"].isna().all()
    ins = build_insights(out)
    assert "data.no_cost" in set(ins["insight_id"])
