"""Issue 18's "identical outputs": day 2 processed incrementally publishes what a full rebuild of day 2 does.

Three ``salesbi run``s on SQLite over a generated company: day 1 into an empty warehouse (models
fitted and stored), day 2 (the generator's next-day snapshot drop) into that warehouse with the
defaults (snapshot ingest, stored models; drift threshold raised so every model is reused), and
day 2 into a fresh warehouse with ``ingest_mode=full, refit=always``. The published ``rpt`` tables
(the Parquet export) are compared:

- every report table built from the data is equal (frame equality);
- the model tables differ only as the models do: the incremental run scored day 2 with the day-1
  models, the full rebuild refitted them. What is data in them (the customers, their RFM
  features, the forecast's history and dates) is equal; what is model is the day-1 model's
  output on day 2 (checked against scoring it directly) and the forecast's backtest is day 1's.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from salesbi.generate import generate_company
from salesbi.generate.nextday import next_day_drop
from salesbi.incremental_reports import REBUILT_MONTHLY, SPLICEABLE, capture_changed_orders
from salesbi.params import PipelineParams
from salesbi.pipeline import run_pipeline
from salesbi.reports.tables import REPORT_TABLE_NAMES

STEPS = ("ingest", "reports", "segments", "predictions", "forecast")
#: tables whose content is the data (build_reports): equal whichever way day 2 was processed
REPORT_TABLES = REPORT_TABLE_NAMES


def _run(source: Path, work: Path, **kw: Any) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    kw.setdefault("steps", STEPS)
    params = PipelineParams(
        source=source, warehouse_url=f"sqlite:///{work / 'wh.db'}", out_dir=work / "out", **kw
    )
    run_pipeline(params)
    doc: dict[str, Any] = json.loads((work / "out" / "run_summary.json").read_text(encoding="utf-8"))
    return doc


def _table(work: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(work / "out" / "powerbi" / "data" / f"{name}.parquet")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("day2_outputs")
    generate_company(root / "day1", order_lines=3_000, seed=11)
    next_day_drop(root / "day1", root / "day2", kind="snapshot", seed=5)
    day1 = _run(root / "day1", root / "incremental")
    day1_tables = {n: _table(root / "incremental", n) for n in ("forecast_accuracy", "sales_forecast")}
    # every model reused: a 3,000-line company's prediction error moves by more than the default 25 %
    # from one day to the next (the drift rule is tested in test_incremental_models.py)
    incremental = _run(root / "day2", root / "incremental", model_drift_threshold=100.0)
    full = _run(root / "day2", root / "full", ingest_mode="full", refit="always")
    return {
        "root": root,
        "day1": day1,
        "day1_tables": day1_tables,
        "incremental": incremental,
        "full": full,
    }


@pytest.mark.slow
def test_day2_incremental_run_reused_the_models_and_loaded_only_the_changes(runs: dict[str, Any]) -> None:
    inc, full = runs["incremental"], runs["full"]
    assert inc["status"] == full["status"] == "succeeded"
    decisions = inc["outputs"]["model_decisions"]
    assert {s: d["action"] for s, d in decisions.items()} == {
        "segments": "reuse",
        "predictions": "reuse",
        "forecast": "reuse",
    }
    assert "extended by" in decisions["forecast"]["reason"]
    assert {d["action"] for d in full["outputs"]["model_decisions"].values()} == {"refit"}
    # the monthly report tables were spliced for the affected months (the full rebuild rebuilt them)
    assert set(inc["outputs"]["report_tables"]["spliced"]) == {"sales_monthly", "customer_growth"}
    assert set(full["outputs"]["report_tables"]["rebuilt"]) >= {"sales_monthly", "customer_growth"}
    loaded = sum(t["loaded"] for t in inc["tables"].values())
    assert 0 < loaded < sum(t["loaded"] for t in full["tables"].values()) / 10


@pytest.mark.slow
@pytest.mark.parametrize("name", REPORT_TABLES)
def test_day2_report_tables_equal_a_full_rebuild(runs: dict[str, Any], name: str) -> None:
    root = runs["root"]
    incremental, full = _table(root / "incremental", name), _table(root / "full", name)
    assert len(full) > 0
    pd.testing.assert_frame_equal(incremental, full)


@pytest.mark.slow
def test_day2_model_tables_differ_only_as_the_models_do(runs: dict[str, Any]) -> None:
    root = runs["root"]
    inc, full = root / "incremental", root / "full"
    # segments: the same customers and RFM features (data); segments from day 1's edges and clusters
    data_columns = ["customer_id", "as_of_date", "recency_days", "frequency", "monetary", "tenure_days"]
    s_inc, s_full = _table(inc, "customer_segments"), _table(full, "customer_segments")
    pd.testing.assert_frame_equal(s_inc[data_columns], s_full[data_columns])
    # predictions: the same customers and windows; the incremental ones carry day 1's model version
    p_inc, p_full = _table(inc, "customer_predictions"), _table(full, "customer_predictions")
    pd.testing.assert_frame_equal(
        p_inc[["customer_id", "as_of_date", "window_end", "last_window_sales"]],
        p_full[["customer_id", "as_of_date", "window_end", "last_window_sales"]],
    )
    day1_version = runs["day1"]["outputs"]["models"]["customer_sales"].rsplit("/", 1)[-1]
    assert (p_inc["model_version"] == day1_version).all()
    assert (p_full["model_version"] != day1_version).all()
    # forecast: the same history (actuals) and future dates; the backtest is day 1's, stated as such
    f_inc, f_full = _table(inc, "sales_forecast"), _table(full, "sales_forecast")
    key = ["series_id", "date", "is_future", "actual"]
    pd.testing.assert_frame_equal(f_inc[key], f_full[key])
    a_inc, a_day1 = _table(inc, "forecast_accuracy"), runs["day1_tables"]["forecast_accuracy"]
    assert a_inc["note"].str.contains("stored backtest of forecast model").all()
    scores = ["series_id", "model", "wape", "mase", "bias", "coverage_80", "coverage_95", "is_champion"]
    pd.testing.assert_frame_equal(a_inc[scores], a_day1[scores])
    bt_day1 = runs["day1_tables"]["sales_forecast"]
    bt_columns = ["series_id", "date", "forecast", "lower_80", "upper_95", "model"]
    pd.testing.assert_frame_equal(
        f_inc.loc[f_inc["is_backtest"], bt_columns].reset_index(drop=True),
        bt_day1.loc[bt_day1["is_backtest"], bt_columns].reset_index(drop=True),
    )


# --- the monthly tables spliced into the last run's (salesbi.incremental_reports), ingest + reports only

REPORT_STEPS = ("ingest", "reports")


def _reports_run(source: Path, work: Path, **kw: Any) -> dict[str, Any]:
    kw.setdefault("steps", REPORT_STEPS)
    return _run(source, work, **kw)


def _edit_drop(folder: Path) -> dict[str, str]:
    """Edit a day-2 snapshot drop in place: orders moved between months, cancelled, into the new month.

    Returns what was done to which order (the ids are day 1's).
    """
    orders = pd.read_csv(folder / "orders.csv", dtype=str, keep_default_na=False)
    items = pd.read_csv(folder / "order_items.csv", dtype=str, keep_default_na=False)
    dates = pd.to_datetime(orders["order_date"])
    last_old = dates[orders["status"] != "placed"].max()  # day 2's new orders are placed, dated day 2
    first_month = dates.min().to_period("M")
    open_ = orders["status"].isin(["shipped", "disputed", "on_hold"])
    # an old order of the second month moves 5 months later; one of month 10 moves to month 3
    m2 = orders.index[open_ & (dates.dt.to_period("M") == first_month + 1)][0]
    m10 = orders.index[open_ & (dates.dt.to_period("M") == first_month + 9)][0]
    old_to_new = orders.index[open_ & (dates.dt.to_period("M") == first_month + 4)][0]
    cancelled = orders.index[open_ & (dates.dt.to_period("M") == first_month + 6)][0]

    def move(row: Any, to: pd.Timestamp) -> None:  # the order's other dates move with it (date rules)
        shift = to - dates[row]
        for col in ("order_date", "required_date", "shipped_date"):
            if orders.loc[row, col]:
                orders.loc[row, col] = (pd.Timestamp(orders.loc[row, col]) + shift).date().isoformat()

    move(m2, dates[m2] + pd.DateOffset(months=5))
    move(m10, dates[m10] - pd.DateOffset(months=7))
    # an old order moves into the month of day 2 (after the last month of day 1), not shipped yet
    move(old_to_new, last_old + pd.Timedelta(days=1))
    orders.loc[old_to_new, ["shipped_date", "status"]] = ["", "placed"]
    orders.loc[cancelled, "status"] = "cancelled"
    # a line of another old order changes quantity
    relined = orders.loc[orders.index[open_][5], "order_id"]
    first_line = items.index[items["order_id"] == relined][0]
    items.loc[first_line, "quantity"] = str(int(items.loc[first_line, "quantity"]) + 3)
    orders.to_csv(folder / "orders.csv", index=False, lineterminator="\n")
    items.to_csv(folder / "order_items.csv", index=False, lineterminator="\n")
    ids = orders["order_id"]
    return {
        "moved later": ids[m2],
        "moved earlier": ids[m10],
        "moved into the new month": ids[old_to_new],
        "cancelled": ids[cancelled],
        "line changed": relined,
    }


@pytest.fixture(scope="module")
def spliced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("day2_spliced")
    generate_company(root / "day1", order_lines=3_000, seed=13)
    next_day_drop(root / "day1", root / "day2", kind="snapshot", seed=3)
    next_day_drop(root / "day1", root / "day2_new", kind="new_only", seed=3)
    edits = _edit_drop(root / "day2")
    day1 = _reports_run(root / "day1", root / "base")
    for name in ("inc", "ingest_only", "churn", "no_parquet", "new_only"):
        shutil.copytree(root / "base", root / name)
    incremental = _reports_run(root / "day2", root / "inc")
    full = _reports_run(root / "day2", root / "full", ingest_mode="full")
    return {"root": root, "edits": edits, "day1": day1, "incremental": incremental, "full": full}


@pytest.mark.slow
def test_day2_monthly_tables_spliced_for_the_affected_months(spliced: dict[str, Any]) -> None:
    day1, inc, full = spliced["day1"], spliced["incremental"], spliced["full"]
    assert day1["outputs"]["report_tables"]["rebuilt"]["sales_monthly"].startswith("full ingest")
    record = inc["outputs"]["report_tables"]
    assert set(record["spliced"]) == {"sales_monthly", "customer_growth"}
    # every edit was accepted: both runs hold the same day 2
    assert {t["rejected"] for doc in (inc, full) for t in doc["tables"].values()} == {0}
    assert record["rebuilt"] == {"order_value_distribution": REBUILT_MONTHLY["order_value_distribution"]}
    months = record["spliced"]["sales_monthly"]
    assert len(months) < len(_table(spliced["root"] / "full", "sales_monthly")) / 2
    # the old and new month of every moved order, the cancelled order's, the new month
    day1_orders = pd.read_csv(spliced["root"] / "day1" / "orders.csv", dtype=str).set_index("order_id")
    day2_orders = pd.read_csv(spliced["root"] / "day2" / "orders.csv", dtype=str).set_index("order_id")
    for what, order in spliced["edits"].items():
        for side in (day1_orders, day2_orders):
            assert side.loc[order, "order_date"][:7] in months, (what, order)
    assert "full ingest" in full["outputs"]["report_tables"]["rebuilt"]["sales_monthly"]


@pytest.mark.slow
@pytest.mark.parametrize("name", REPORT_TABLES)
def test_day2_spliced_report_tables_equal_a_full_rebuild(spliced: dict[str, Any], name: str) -> None:
    root = spliced["root"]
    incremental, full = _table(root / "inc", name), _table(root / "full", name)
    assert len(full) > 0
    pd.testing.assert_frame_equal(incremental, full, check_exact=True)


@pytest.mark.slow
def test_day2_changed_orders_move_the_monthly_figures(spliced: dict[str, Any]) -> None:
    # the splice changed what day 1 had: a stale table would fail the equality above
    root = spliced["root"]
    for name in SPLICEABLE:
        day1 = _table(root / "base", name)
        day2 = _table(root / "inc", name).iloc[: len(day1)]
        assert not day2.drop(columns="is_complete").equals(day1.drop(columns="is_complete"))


def _rebuilt_reason(doc: dict[str, Any]) -> str:
    record = doc["outputs"]["report_tables"]
    assert record["spliced"] == {}
    reason: str = record["rebuilt"]["sales_monthly"]
    assert record["rebuilt"]["customer_growth"] == reason
    return reason


@pytest.mark.slow
def test_splice_falls_back_when_the_previous_run_did_not_publish(spliced: dict[str, Any]) -> None:
    # an ingest-only run loads day 2 into core: the last published tables are day 1's, core is day 2's
    root = spliced["root"]
    _run(root / "day2", root / "ingest_only", steps=("ingest",))
    doc = _reports_run(root / "day2", root / "ingest_only")
    assert "did not publish" in _rebuilt_reason(doc)
    for name in SPLICEABLE:
        pd.testing.assert_frame_equal(_table(root / "ingest_only", name), _table(root / "full", name))


@pytest.mark.slow
def test_splice_falls_back_when_churn_months_changed(spliced: dict[str, Any]) -> None:
    root = spliced["root"]
    doc = _reports_run(root / "day2", root / "churn", churn_months=3)
    assert "churn_months changed (2 → 3)" in _rebuilt_reason(doc)
    growth = _table(root / "churn", "customer_growth")
    assert (growth["churn_months"] == 3).all()


@pytest.mark.slow
def test_splice_falls_back_without_the_previous_parquet(spliced: dict[str, Any]) -> None:
    root = spliced["root"]
    (root / "no_parquet" / "out" / "powerbi" / "data" / "customer_growth.parquet").unlink()
    doc = _reports_run(root / "day2", root / "no_parquet")
    assert "no previous customer_growth.parquet" in _rebuilt_reason(doc)
    for name in SPLICEABLE:
        pd.testing.assert_frame_equal(_table(root / "no_parquet", name), _table(root / "full", name))


def test_a_changed_product_or_a_full_load_is_not_spliced() -> None:
    # ChangeSet stand-ins: what capture_changed_orders reads before touching the warehouse
    @dataclass
    class T:
        rewrite: frozenset[str]

    @dataclass
    class C:
        mode: str
        tables: dict[str, T]

    full = capture_changed_orders(None, None, C("full", {}))  # type: ignore[arg-type]
    assert full.reason is not None and full.reason.startswith("full ingest")
    product = capture_changed_orders(None, None, C("snapshot", {"products": T(frozenset({"P1"}))}))  # type: ignore[arg-type]
    assert product.reason == "1 product(s) changed: costs of old months may have changed"


@pytest.mark.slow
def test_a_new_only_drop_splices_too(spliced: dict[str, Any]) -> None:
    # a drop of the day's new orders only (ingest mode new_only): the new month is added to the tables
    root = spliced["root"]
    doc = _reports_run(root / "day2_new", root / "new_only")
    assert doc["outputs"]["ingest_changes"]["mode"] == "new_only"
    assert set(doc["outputs"]["report_tables"]["spliced"]) == {"sales_monthly", "customer_growth"}
    # the full rebuild of the same core: the report step alone into another output folder
    params = PipelineParams(
        source=root / "day2_new",
        warehouse_url=f"sqlite:///{root / 'new_only' / 'wh.db'}",
        out_dir=root / "new_only" / "rebuilt",
        steps=("reports",),
    )
    run_pipeline(params)
    rebuilt = json.loads((params.out_dir / "run_summary.json").read_text(encoding="utf-8"))
    assert (
        rebuilt["outputs"]["report_tables"]["rebuilt"]["sales_monthly"] == "no incremental ingest in this run"
    )
    for name in REPORT_TABLES:
        spliced_table = _table(root / "new_only", name)
        full = pd.read_parquet(params.parquet_dir / f"{name}.parquet")
        pd.testing.assert_frame_equal(spliced_table, full, check_exact=True)


@pytest.mark.slow
def test_a_run_after_a_push_down_run_rebuilds_the_monthly_tables_in_full(spliced: dict[str, Any]) -> None:
    # day 1 with the report tables built inside the SQLite warehouse: its run records no monthly
    # build to splice into, so day 2 (pandas, incremental ingest) builds them in full, equal to the
    # full rebuild; day 3 in the warehouse again equals it too (to the push-down's 1e-9)
    root = spliced["root"]
    day1 = _reports_run(root / "day1", root / "after_push", reports_in="warehouse")
    assert "report_tables" not in day1["outputs"] and "reports_built_in" in day1["outputs"]
    doc = _reports_run(root / "day2", root / "after_push")
    assert "did not build the report tables" in _rebuilt_reason(doc)
    for name in REPORT_TABLES:
        pd.testing.assert_frame_equal(_table(root / "after_push", name), _table(root / "full", name))
    again = _reports_run(root / "day2", root / "after_push", reports_in="warehouse")
    assert again["status"] in ("succeeded", "succeeded_with_warnings")
    for name in REPORT_TABLES:
        pd.testing.assert_frame_equal(
            _table(root / "after_push", name), _table(root / "full", name), check_exact=False, rtol=1e-9
        )
