"""The generated sample company: layout, integrity and the realism the ground truth promises.

Every check reads the written CSVs back with pandas (independently of the generator's arrays),
on the session's 20,000-line company (seed 7, ``sample_company`` fixture).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salesbi import contract
from salesbi.reading import reader

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SHIPPED_LIKE = {"shipped", "returned", "disputed"}


def read(folder: Path, name: str) -> pd.DataFrame:
    """Read one canonical CSV as text (empty = null), parsing the contract's date columns."""
    frame = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False, na_values=[""])
    for col in contract.table(name).columns:
        if col.spec.date_only:
            frame[col.name] = pd.to_datetime(frame[col.name], format="%Y-%m-%d")
        elif col.spec.family == "number":
            frame[col.name] = pd.to_numeric(frame[col.name])
    return frame


@pytest.fixture(scope="module")
def company(sample_company: Path) -> dict[str, pd.DataFrame]:
    return {t.name: read(sample_company, t.name) for t in contract.TABLES}


@pytest.fixture(scope="module")
def truth(sample_company: Path) -> pd.DataFrame:
    frame = pd.read_csv(sample_company / "ground_truth" / "customers.csv", dtype=str, keep_default_na=False)
    frame = frame.replace("", np.nan)
    for col in ("active_from", "fade_start", "churn_date", "gap_start", "regain_date"):
        frame[col] = pd.to_datetime(frame[col])
    return frame


@pytest.fixture(scope="module")
def net_orders(company: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Orders with their net sales (0 when cancelled)."""
    items = company["order_items"]
    net = (items["quantity"] * items["unit_price"] * (1 - items["discount"])).groupby(items["order_id"]).sum()
    orders = company["orders"].copy()
    orders["net"] = orders["order_id"].map(net).where(orders["status"] != "cancelled", 0.0)
    return orders


# ------------------------------------------------------------------ layout and integrity


def test_every_file_has_the_contract_header_and_iso_dates(sample_company: Path) -> None:
    for t in contract.TABLES:
        raw = (sample_company / f"{t.name}.csv").read_bytes()
        text = raw.decode("utf-8")
        assert not text.startswith("\ufeff")
        lines = text.split("\n")
        assert lines[0] == ",".join(t.column_names)
        assert lines[-1] == ""  # ends with a newline
        sample = pd.read_csv(sample_company / f"{t.name}.csv", dtype=str, keep_default_na=False, nrows=500)
        for col in t.columns:
            if col.spec.date_only:
                values = sample[col.name][sample[col.name] != ""]
                assert values.str.match(ISO_DATE).all(), (t.name, col.name)


def test_exact_line_count_and_sizes(company: dict[str, pd.DataFrame], sample_company: Path) -> None:
    assert len(company["order_items"]) == 20_000
    assert len(company["customers"]) == 500  # max(50, 20000 // 40)
    lines_per_order = len(company["order_items"]) / len(company["orders"])
    assert 4.0 <= lines_per_order <= 6.0
    meta = json.loads((sample_company / "ground_truth" / "meta.json").read_text())
    assert meta["rows"]["order_items"] == 20_000
    assert meta["rows"]["orders"] == len(company["orders"])


def test_keys_unique_and_required_columns_filled(company: dict[str, pd.DataFrame]) -> None:
    for t in contract.TABLES:
        frame = company[t.name]
        assert not frame.duplicated(list(t.key)).any(), t.name
        for col in t.required_columns:
            assert frame[col].notna().all(), (t.name, col)


def test_every_foreign_key_resolves(company: dict[str, pd.DataFrame]) -> None:
    checked = 0
    for t in contract.TABLES:
        for col, parent, parent_col in t.foreign_keys:
            values = company[t.name][col].dropna()
            assert values.isin(company[parent][parent_col]).all(), (t.name, col)
            checked += 1
    assert checked == 8  # hand count of the contract's references


def test_statuses_and_dates(company: dict[str, pd.DataFrame]) -> None:
    orders = company["orders"]
    assert set(orders["status"]) <= set(contract.ORDER_STATUSES)
    shares = orders["status"].value_counts(normalize=True)
    assert 0.03 <= shares["cancelled"] <= 0.05
    for status in ("on_hold", "disputed", "returned", "placed"):
        assert 0 < shares.get(status, 0) < 0.02, status
    shipped = orders["shipped_date"].notna()
    assert (orders.loc[shipped, "shipped_date"] >= orders.loc[shipped, "order_date"]).all()
    assert set(orders.loc[shipped, "status"]) == SHIPPED_LIKE
    assert orders.loc[orders["status"] == "shipped", "shipped_date"].notna().all()
    assert (orders["required_date"] > orders["order_date"]).all()
    assert orders["order_date"].max() <= pd.Timestamp("2025-12-31")
    assert orders["shipped_date"].max() <= pd.Timestamp("2025-12-31")
    assert orders["order_date"].min() >= pd.Timestamp("2023-01-01")


def test_discounts_prices_and_margins(company: dict[str, pd.DataFrame], sample_company: Path) -> None:
    items, products = company["order_items"], company["products"]
    assert set(items["discount"].round(4)) == {0.0, 0.05, 0.1, 0.15}
    assert 0.6 <= (items["discount"] == 0).mean() <= 0.85
    joined = items.merge(products, on="product_id")
    ratio = joined["unit_price"] / joined["list_price"]
    assert ratio.between(0.94, 1.0 + 1e-9).all()
    realised = 1 - products["unit_cost"] / products["list_price"]
    per_line = realised.groupby(products["product_line_id"]).mean()
    lines_truth = pd.read_csv(
        sample_company / "ground_truth" / "product_lines.csv", dtype={"product_line_id": str}
    )
    nominal = lines_truth.set_index("product_line_id")["margin"]
    assert len(per_line) == 7
    assert (per_line - nominal[per_line.index]).abs().max() < 0.03
    assert per_line.max() - per_line.min() > 0.3  # clearly different margins


def test_some_products_never_sold(company: dict[str, pd.DataFrame], sample_company: Path) -> None:
    sold = set(company["order_items"]["product_id"])
    unsold = set(company["products"]["product_id"]) - sold
    products_truth = pd.read_csv(sample_company / "ground_truth" / "products.csv", dtype={"product_id": str})
    declared = set(products_truth.loc[products_truth["never_sold"], "product_id"])
    assert len(declared) == 3
    assert declared <= unsold


def test_offices_countries_reps_and_fallbacks(company: dict[str, pd.DataFrame]) -> None:
    offices, customers, orders = company["offices"], company["customers"], company["orders"]
    assert len(offices) >= 6 and offices["country"].nunique() >= 5
    assert customers["country"].nunique() >= 12 and customers["city"].nunique() >= 12
    employees = company["employees"]
    assert employees["manager_id"].isna().sum() == 1  # the president
    assert (employees["job_title"] == "Sales Rep").sum() >= 16
    no_rep = customers["sales_rep_id"].isna().mean()
    assert 0.005 < no_rep < 0.08
    no_employee = orders["employee_id"].isna().mean()
    assert 0.03 < no_employee < 0.09


def test_rep_performance_shows_in_orders(company: dict[str, pd.DataFrame], sample_company: Path) -> None:
    orders = company["orders"].merge(company["customers"][["customer_id", "sales_rep_id"]], on="customer_id")
    credited = orders["employee_id"].fillna(orders["sales_rep_id"]).value_counts()
    reps = pd.read_csv(sample_company / "ground_truth" / "employees.csv", dtype=str, keep_default_na=False)
    reps["performance_factor"] = reps["performance_factor"].astype(float)
    reps["orders"] = reps["employee_id"].map(credited).fillna(0)
    assert reps["performance_factor"].max() / reps["performance_factor"].min() > 2.5
    assert reps["performance_factor"].corr(reps["orders"], method="spearman") > 0.5
    top = reps.nlargest(5, "performance_factor")["orders"].mean()
    bottom = reps.nsmallest(5, "performance_factor")["orders"].mean()
    assert top > 2.5 * bottom


# ------------------------------------------------------------------ personas and seasonality


def test_ground_truth_covers_every_customer(truth: pd.DataFrame, company: dict[str, pd.DataFrame]) -> None:
    assert set(truth["customer_id"]) == set(company["customers"]["customer_id"])
    counts = truth["persona"].value_counts()
    assert set(counts.index) == {"vip", "loyal", "new", "fading", "churned", "regained", "occasional"}
    assert counts["vip"] == 25 and counts["occasional"] == 125  # 5 % and 25 % of 500
    assert set(company["orders"]["customer_id"]) == set(truth["customer_id"])  # everyone orders


def test_churned_customers_stop_at_their_churn_date(truth: pd.DataFrame, net_orders: pd.DataFrame) -> None:
    churned = truth[truth["persona"] == "churned"].set_index("customer_id")["churn_date"]
    assert churned.notna().all()
    assert (churned <= pd.Timestamp("2025-12-31") - pd.Timedelta(days=180)).all()
    mine = net_orders[net_orders["customer_id"].isin(churned.index)]
    assert len(mine) > 0
    assert (mine["order_date"] < mine["customer_id"].map(churned)).all()


def test_new_customers_first_order_is_recent(truth: pd.DataFrame, net_orders: pd.DataFrame) -> None:
    new = truth[truth["persona"] == "new"].set_index("customer_id")["active_from"]
    first = net_orders.groupby("customer_id")["order_date"].min()[new.index]
    assert (first >= new).all()
    assert (first >= pd.Timestamp("2025-12-31") - pd.Timedelta(days=150)).all()
    others = truth.loc[truth["persona"].isin(["vip", "loyal"]), "customer_id"]
    assert net_orders.groupby("customer_id")["order_date"].min()[others].median() < pd.Timestamp("2023-07-01")


def test_regained_customers_have_a_gap_then_return(truth: pd.DataFrame, net_orders: pd.DataFrame) -> None:
    regained = truth[truth["persona"] == "regained"].set_index("customer_id")
    mine = net_orders[net_orders["customer_id"].isin(regained.index)]
    gap_start = mine["customer_id"].map(regained["gap_start"])
    regain = mine["customer_id"].map(regained["regain_date"])
    assert ((regain - gap_start).dt.days >= 150).all()
    assert not ((mine["order_date"] >= gap_start) & (mine["order_date"] < regain)).any()
    back = mine[mine["order_date"] >= regain]["customer_id"].nunique()
    assert back == len(regained)


def test_fading_customers_order_less_later(truth: pd.DataFrame, net_orders: pd.DataFrame) -> None:
    fading = truth[truth["persona"] == "fading"].set_index("customer_id")["fade_start"]
    mine = net_orders[net_orders["customer_id"].isin(fading.index)]
    fade = mine["customer_id"].map(fading)
    before_days = (fade - pd.Timestamp("2023-01-01")).dt.days.groupby(mine["customer_id"]).first().sum()
    after_days = (pd.Timestamp("2025-12-31") - fade).dt.days.groupby(mine["customer_id"]).first().sum()
    rate_before = (mine["order_date"] < fade).sum() / before_days
    rate_after = (mine["order_date"] >= fade).sum() / after_days
    assert rate_after < 0.6 * rate_before


def test_vip_customers_are_worth_far_more_than_occasional(
    truth: pd.DataFrame, net_orders: pd.DataFrame
) -> None:
    per_customer = net_orders.groupby("customer_id")["net"].sum()
    persona = truth.set_index("customer_id")["persona"]
    mean = per_customer.groupby(persona[per_customer.index]).mean()
    assert mean["vip"] > 20 * mean["occasional"]
    assert mean["vip"] > 3 * mean["loyal"]
    assert mean["loyal"] > mean["occasional"]


def test_weekdays_are_busier_than_weekends(net_orders: pd.DataFrame) -> None:
    days = pd.date_range("2023-01-01", "2025-12-31", freq="D")
    per_day = net_orders.groupby("order_date").size().reindex(days, fill_value=0)
    weekend = per_day.index.day_of_week >= 5
    assert per_day[~weekend].mean() > 1.6 * per_day[weekend].mean()


def test_q4_is_the_peak_quarter_and_sales_grow(net_orders: pd.DataFrame) -> None:
    days = pd.date_range("2023-01-01", "2025-12-31", freq="D")
    per_day = net_orders.groupby("order_date").size().reindex(days, fill_value=0)
    by_quarter = per_day.groupby(per_day.index.quarter).mean()
    assert by_quarter[4] > 1.15 * per_day.mean()
    assert by_quarter.idxmax() == 4
    by_year = per_day.groupby(per_day.index.year).sum()
    assert by_year[2025] > by_year[2023]


def test_canonical_reader_reads_the_company_and_ignores_ground_truth(sample_company: Path) -> None:
    core = reader.core_frames(reader.read_source(sample_company, "canonical"))
    assert set(core) == {t.name for t in contract.TABLES}
    assert len(core["order_items"]) == 20_000
    assert core["orders"]["status"].isin(contract.ORDER_STATUSES).all()
    assert core["offices"]["territory"].notna().all()


def test_order_counts_follow_the_recorded_trend_and_weekly_pattern(
    net_orders: pd.DataFrame, sample_company: Path
) -> None:
    meta = json.loads((sample_company / "ground_truth" / "meta.json").read_text())
    growth = meta["trend"]["annual_growth"]
    per_year = net_orders.groupby(net_orders["order_date"].dt.year).size()
    # the intensity's 2025/2023 ratio is (1 + growth)^2 up to the seasonality, equal in both years
    assert abs(per_year[2025] / per_year[2023] / (1 + growth) ** 2 - 1) < 0.12  # measured +8 %
    m = meta["weekly"]["multipliers"]
    weekdays = [m[d] for d in ("monday", "tuesday", "wednesday", "thursday", "friday")]
    expected = np.mean(weekdays) / np.mean([m["saturday"], m["sunday"]])
    days = pd.date_range("2023-01-01", "2025-12-31", freq="D")
    per_day = net_orders.groupby("order_date").size().reindex(days, fill_value=0)
    weekend = per_day.index.day_of_week >= 5
    observed = per_day[~weekend].mean() / per_day[weekend].mean()
    assert abs(observed / expected - 1) < 0.15  # measured 2.15 vs 2.15
