"""Reports on real-export shapes: state/region level, returns netted off, thin data and no sales reps."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from salesbi.completeness import Threshold, assess
from salesbi.reports.build import ReportParams, build_reports
from salesbi.reports.insights import build_insights, champion_words, render_insights_markdown
from salesbi.runlog import TableCounts
from tests.reports_helpers import make_core

ORDERS = [
    ("1", "C1", "2023-03-01", "shipped", [("P1", 10, 10.0, 0.0)]),  # 100, New York (NY)
    ("2", "C3", "2023-03-02", "shipped", [("P1", 30, 10.0, 0.0)]),  # 300, Paris (IDF)
    ("3", "C5", "2023-03-03", "shipped", [("P2", 10, 5.0, 0.0)]),  # 50, Paris (no state)
    ("4", "C4", "2023-03-04", "cancelled", [("P1", 2, 10.0, 0.0)]),  # cancelled: 0
    ("C2", "C3", "2023-03-05", "cancelled", [("P1", -10, 10.0, 0.0)]),  # credit note: −100
]


def _core() -> dict[str, pd.DataFrame]:
    core = make_core(ORDERS)
    core["customers"]["state"] = pd.Series(["NY", "NY", "IDF", "IDF", None], dtype="string")
    return core


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return build_reports(_core(), ReportParams(as_of=date(2023, 4, 1)))


def test_location_summary_has_a_state_level(frames: dict[str, pd.DataFrame]) -> None:
    loc = frames["location_summary"]
    assert list(dict.fromkeys(loc["level"])) == ["country", "state", "city", "office"]
    states = loc[loc["level"] == "state"].set_index("location_key")
    # C3's 300 less its 100 return; C5 (no state) is left out of the state level only
    assert states["net_sales"].to_dict() == {"France|IDF": 200.0, "USA|NY": 100.0}
    assert states.loc["France|IDF", "location_name"] == "IDF, France"
    assert states.loc["France|IDF", "country"] == "France"
    countries = loc[loc["level"] == "country"].set_index("location_key")
    assert countries.loc["France", "net_sales"] == 250.0


def test_returns_net_off_sales_and_are_reported(frames: dict[str, pd.DataFrame]) -> None:
    fact = frames["fact_order_lines"].set_index("order_id")
    assert fact.loc["C2", "net_sales"] == -100.0 and not bool(fact.loc["C2", "is_cancelled"])
    assert fact.loc["4", "net_sales"] == 0.0 and bool(fact.loc["4", "is_cancelled"])
    assert float(frames["fact_order_lines"]["net_sales"].sum()) == 350.0
    assert float(frames["sales_monthly"]["net_sales"].sum()) == 350.0
    ins = build_insights(frames, ReportParams(as_of=date(2023, 4, 1))).set_index("insight_id")
    text = ins.loc["trend.returns", "finding"]
    assert "Gross sales were 450" in text and "took back 100 (22.2%)" in text and "net sales of 350" in text
    top_state = ins.loc["locations.top_state", "finding"]
    assert top_state.startswith("The top state or region is IDF, France: 200")


def test_one_time_buyers_are_named_and_never_frequent(frames: dict[str, pd.DataFrame]) -> None:
    ins = build_insights(frames, ReportParams(as_of=date(2023, 4, 1))).set_index("insight_id")
    # C1 and C5 ordered once; C3 placed one order and one credit note (two documents)
    assert ins.loc["segments.one_time_buyers", "finding"].startswith("2 of the 3 buying customers")
    assert "one-time buyers" in ins.loc["segments.one_time_buyers", "finding"]
    assert champion_words(1.0) == "recent, high-spending one-time buyers"
    assert "frequent" not in champion_words(1.0)
    assert champion_words(3.25).startswith("recent, frequent")


def test_without_sales_reps_actions_name_the_account_owner() -> None:
    core = _core()
    core["employees"] = core["employees"].iloc[0:0]
    core["offices"] = core["offices"].iloc[0:0]
    core["customers"]["sales_rep_id"] = pd.Series([None] * 5, dtype="string")
    frames = build_reports(core, ReportParams(as_of=date(2023, 8, 1)))
    counts = {name: TableCounts(read=len(f), loaded=len(f), rejected=0) for name, f in core.items()}
    completeness = assess(
        counts,
        pd.DataFrame(),
        {n: Threshold() for n in core},
        {"employees": "no reps", "offices": "no offices"},
    )
    tables = {**frames, "run_completeness": completeness.frame()}
    md = render_insights_markdown(build_insights(tables, ReportParams(as_of=date(2023, 8, 1))))
    sections = [s.split("\n", 1)[0] for s in md.split("\n## ")[1:]]
    assert sections[0] == "Data completeness"
    assert "## Employees" in md and "There is no sales-rep or office data" in md
    assert "sales reps call" not in md and "their sales reps" not in md


def test_run_summary_markdown_states_completeness_before_figures() -> None:
    from salesbi.run_report import render_run_markdown

    counts = {
        "customers": TableCounts(read=10, loaded=10, rejected=0),
        "order_items": TableCounts(read=200, loaded=190, rejected=10),
    }
    rejected = pd.DataFrame(
        {
            "table_name": ["order_items"] * 10,
            "column_name": ["order_id"] * 10,
            "rule": ["foreign_key"] * 10,
            "source_file": ["lines.csv"] * 10,
            "source_line": list(range(2, 12)),
            "value": ["X"] * 10,
        }
    )
    result = assess(counts, rejected, {"order_items": Threshold(warn=0.02, fail=0.2)}, {"offices": "none"})
    assert result.tables["order_items"].level == "warn" and result.level == "warn"
    assert result.tables["order_items"].reasons[0].text() == "foreign_key on order_id: 10 rows"
    summary = {
        "run_id": "r1",
        "status": "succeeded_with_warnings",
        "tables": {},
        "completeness": result.as_dict(),
        "warnings": [{"step": "ingest", "kind": "completeness", "what": "order_items: 190 of 200"}],
        "outputs": {},
    }
    md = render_run_markdown(summary, {})
    assert "**Completeness: warn**" in md
    assert "| order_items | 5.00% | warn | foreign_key on order_id: 10 |" in md
    assert "| offices |  | absent | not in this source (none) |" in md
    assert "- ingest (completeness): order_items: 190 of 200" in md


def test_completeness_limits_defaults_profile_table_and_cli() -> None:
    from salesbi.completeness import DEFAULT_FAIL, DEFAULT_WARN, resolve_thresholds
    from salesbi.reading.profile import parse_profile

    assert resolve_thresholds(None)["orders"] == Threshold(DEFAULT_WARN, DEFAULT_FAIL) == Threshold(0.02, 0.2)
    profile = parse_profile(
        "completeness: {warn: 0.05}\ntables:\n  order_items: {completeness: {fail: 0.5}}\n"
    )
    limits = resolve_thresholds(profile)
    assert limits["orders"] == Threshold(0.05, 0.2)
    assert limits["order_items"] == Threshold(0.05, 0.5)
    cli = resolve_thresholds(profile, warn=0.01, fail=0.9)
    assert cli["order_items"] == cli["customers"] == Threshold(0.01, 0.9)
    # a warn limit above the fail limit is capped by it
    assert resolve_thresholds(profile, fail=0.03)["orders"] == Threshold(0.03, 0.03)


def test_headline_figures_from_the_customer_summary_equal_the_facts(sample_company: Path) -> None:
    """A warehouse-built run holds no fact: its headline comes from customer_summary, and agrees."""
    from salesbi.reading.reader import core_frames, read_source
    from salesbi.run_report import headline_kpis

    built = build_reports(core_frames(read_source(sample_company, "canonical")))
    from_fact = headline_kpis(built)
    from_customers = headline_kpis({"customer_summary": built["customer_summary"]})
    fact = built["fact_order_lines"]
    live = fact[~fact["is_cancelled"].astype(bool)]
    assert from_fact["orders"] == live["order_id"].nunique() > 100
    for key in ("orders", "cancelled_orders", "customers"):
        assert from_customers[key] == from_fact[key], key
    for key in ("net_sales", "gross_profit"):
        assert abs(from_customers[key] - from_fact[key]) <= 0.01, key
    assert from_customers["first_order"] == str(live["order_date"].min().date())
    assert from_customers["last_order"] == str(live["order_date"].max().date())
    assert headline_kpis({}) == {}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("reports_in", "backend"),
    [
        ("python", "sqlite"),
        ("warehouse", "sqlite"),
        pytest.param("warehouse", "postgresql", marks=pytest.mark.postgres),
    ],
)
def test_headline_dates_are_the_facts_when_first_and_last_orders_are_cancelled(
    tmp_path: Path, reports_in: str, backend: str, request: pytest.FixtureRequest
) -> None:
    """A run that spilled the fact or left it in the warehouse (SQLite, PostgreSQL): the headline
    is the fact's, its dates those of all orders (the first and last are cancelled)."""
    from salesbi.generate import generate_company
    from salesbi.params import PipelineParams
    from salesbi.pipeline import run_pipeline
    from salesbi.run_report import headline_kpis, render_run_markdown

    if backend == "postgresql":
        url = request.getfixturevalue("pg_warehouse")
    else:
        url = f"sqlite:///{tmp_path / 'wh.db'}"
    source = tmp_path / "company"
    generate_company(source, order_lines=2_000, seed=7)
    orders = pd.read_csv(source / "orders.csv", dtype=str, keep_default_na=False)
    dates = pd.to_datetime(orders["order_date"])
    edges = dates.eq(dates.min()) | dates.eq(dates.max())
    orders.loc[edges, "status"] = "cancelled"  # the first and the last day's orders
    orders.loc[edges, "shipped_date"] = ""
    orders.to_csv(source / "orders.csv", index=False)
    params = PipelineParams(
        source=source,
        profile="canonical",
        warehouse_url=url,
        out_dir=tmp_path / "out",
        steps=("ingest", "reports"),  # type: ignore[arg-type]
        reports_in=reports_in,  # type: ignore[arg-type]
    )
    summary = run_pipeline(params)
    assert summary.status in ("succeeded", "succeeded_with_warnings")
    parquet = Path(summary.outputs["parquet"])
    fact = pd.read_parquet(parquet / "fact_order_lines.parquet")
    customers = pd.read_parquet(parquet / "customer_summary.parquet")
    live = fact[~fact["is_cancelled"].astype(bool)]
    # the edges are cancelled: the live orders' dates differ from the fact's
    assert live["order_date"].min() > fact["order_date"].min()
    assert live["order_date"].max() < fact["order_date"].max()
    # what the Prefect run summary shows (tasks.artifacts: the published frames hold no fact)
    markdown = render_run_markdown(summary.as_dict(), {"customer_summary": customers})
    assert f"- first order: {dates.min().date()}\n" in markdown
    assert f"- last order: {dates.max().date()}\n" in markdown
    from_fact = headline_kpis({"fact_order_lines": fact})
    headline = headline_kpis({"customer_summary": customers}, summary.as_dict()["kpis"])
    assert from_fact["first_order"] == str(dates.min().date())
    assert from_fact["last_order"] == str(dates.max().date())
    assert from_fact["cancelled_orders"] >= 2
    for key in ("orders", "cancelled_orders", "customers", "first_order", "last_order"):
        assert headline[key] == from_fact[key], key
    for key in ("net_sales", "gross_profit"):
        assert abs(headline[key] - from_fact[key]) <= 0.01, key
