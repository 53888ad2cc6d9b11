"""The faster paths of issue 18 give the same outputs as the code they replaced.

Each test keeps the replaced implementation as a reference and compares on a generated company.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salesbi.forecasting.series import OTHER, build_panel, build_series, country_code


def _old_series_frame(
    fact: pd.DataFrame,
    customers: pd.DataFrame,
    product_lines: pd.DataFrame,
    offices: pd.DataFrame,
    top_countries: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-row implementation of ``_series_frame`` before issue 18 (the reference)."""
    f = fact[["order_date", "net_sales", "customer_id", "product_line_id", "office_id"]].copy()
    f["net_sales"] = f["net_sales"].astype("float64").fillna(0.0)
    cust = customers[["customer_id", "country"]].drop_duplicates("customer_id")
    f = f.merge(cust, on="customer_id", how="left")
    f["country"] = f["country"].astype("string").fillna("Unknown")
    by_country = f.groupby("country")["net_sales"].sum().sort_values(ascending=False, kind="stable")
    top = list(by_country.index[: max(0, top_countries)])
    f["country_group"] = f["country"].where(f["country"].isin(top), OTHER)
    pl_names = dict(
        zip(
            product_lines["product_line_id"].astype("string"),
            product_lines["name"].astype("string"),
            strict=True,
        )
    )
    off = offices[["office_id", "city", "country"]].astype("string")
    office_city = dict(zip(off["office_id"], off["city"], strict=True))
    office_country = dict(zip(off["office_id"], off["country"], strict=True))
    share = by_country / by_country.sum() if by_country.sum() > 0 else by_country
    home = country_code(share.index[0]) if len(share) and float(share.iloc[0]) >= 0.5 else None
    parts = [f.assign(series_id="total", series_level="total", series_name="All sales", code=home)]
    pl = f[f["product_line_id"].notna()]
    parts.append(
        pl.assign(
            series_id="product_line:" + pl["product_line_id"].astype(str),
            series_level="product_line",
            series_name=pl["product_line_id"].map(lambda x: pl_names.get(x) or str(x)),
            code=home,
        )
    )
    cg = f["country_group"].astype(str)
    parts.append(
        f.assign(
            series_id="country:" + cg,
            series_level="country",
            series_name=cg,
            code=cg.map(lambda c: None if c == OTHER else country_code(c)),
        )
    )
    of = f[f["office_id"].notna()]
    parts.append(
        of.assign(
            series_id="office:" + of["office_id"].astype(str),
            series_level="office",
            series_name=of["office_id"].map(lambda x: office_city.get(x) or str(x)),
            code=of["office_id"].map(lambda x: country_code(office_country.get(x))),
        )
    )
    long = pd.concat(parts, ignore_index=True)
    meta = (
        long.groupby("series_id", sort=False)
        .agg(
            series_level=("series_level", "first"),
            series_name=("series_name", "first"),
            country_code=("code", "first"),
        )
        .reset_index()
    )
    level_order = {"total": 0, "product_line": 1, "country": 2, "office": 3}
    meta["_o"] = meta["series_level"].map(level_order)
    meta = meta.sort_values(["_o", "series_id"], kind="stable").drop(columns="_o").reset_index(drop=True)
    meta["series_name"] = meta["series_name"].astype(str)
    meta["country_code"] = meta["country_code"].astype(object).where(meta["country_code"].notna(), None)
    return long[["series_id", "order_date", "net_sales"]], meta


@pytest.fixture(scope="module")
def company_core(sample_company: Path) -> dict[str, pd.DataFrame]:
    """Return the core frames and the order-line fact of the session's generated company."""
    from salesbi.reading.reader import core_frames, read_source
    from salesbi.reports.fact import build_fact_order_lines

    core = core_frames(read_source(sample_company, "canonical"))
    return {**core, "fact": build_fact_order_lines(core)}


@pytest.mark.parametrize(("frequency", "top", "week"), [("W", 5, 0), ("M", 2, 6), ("D", 0, 0)])
def test_build_series_equals_the_per_row_implementation(
    company_core: dict[str, pd.DataFrame], frequency: str, top: int, week: int
) -> None:
    c = company_core
    new = build_series(c["fact"], c["customers"], c["product_lines"], c["offices"], frequency, top, week)
    long, meta = _old_series_frame(c["fact"], c["customers"], c["product_lines"], c["offices"], top)
    old = build_panel(long, meta, frequency, week_start=week)
    pd.testing.assert_frame_equal(new.meta, old.meta)
    assert new.dates.equals(old.dates)
    np.testing.assert_array_equal(new.values, old.values)  # bit for bit, not approximately
    # a real check, not two copies of one mistake: product lines and countries sum to the total,
    # offices to the lines that have one (the generator leaves some customers without a sales rep)
    assert new.n_series > 4 and new.meta["country_code"].notna().any()
    for level in ("product_line", "country"):
        rows = (new.meta["series_level"] == level).to_numpy()
        np.testing.assert_allclose(new.values[rows].sum(axis=0), new.values[0])
    offices = (new.meta["series_level"] == "office").to_numpy()
    assert (new.values[offices].sum(axis=0) <= new.values[0] + 1e-6).all()
