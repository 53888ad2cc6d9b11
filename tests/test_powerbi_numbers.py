"""The measures' numbers: pbix-mcp's DAX engine over a real run's Parquet vs SQL on the warehouse.

A run (ingest + reports) on the generated sample and on classicmodels writes the ``rpt``
Parquet files Power BI reads; every sales measure is evaluated by a third-party DAX engine
with no filter and under each slicer's filter (country, product line, year), and compared
with the same number computed by SQL over the run's warehouse. A disagreement is a finding:
it names the measure, the filter and both values.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from salesbi.params import PipelineParams
from salesbi.pipeline import run_pipeline
from salesbi.powerbi.evaluate import DaxModel as _DaxModel
from salesbi.powerbi.evaluate import DaxUnavailable
from tests.conftest import need

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DEFINITION = Path(__file__).resolve().parents[1] / "powerbi" / "SalesBI.SemanticModel" / "definition"

# measure -> SQL over rpt.fact_order_lines (f) joined to the filtered dimension; {where} is the filter
REFERENCE_SQL = {
    "Net Sales": "SUM(f.net_sales)",
    "Gross Profit": "SUM(f.net_profit)",
    "Margin %": "SUM(f.net_profit) / SUM(CASE WHEN f.cost IS NOT NULL THEN f.net_sales END)",
    "Orders Placed": "COUNT(DISTINCT f.order_id)",
    "Cancelled Orders": "COUNT(DISTINCT CASE WHEN f.is_cancelled THEN f.order_id END)",
    "Net Orders": "COUNT(DISTINCT f.order_id) - COUNT(DISTINCT CASE WHEN f.is_cancelled THEN f.order_id END)",
    "Units Sold": "SUM(CASE WHEN NOT f.is_cancelled THEN f.quantity ELSE 0 END)",
    "Active Customers": "COUNT(DISTINCT CASE WHEN NOT f.is_cancelled THEN f.customer_id END)",
    "Discounts": "SUM(f.discount_amount)",
}


def _run(workdir: Path, source: Path, profile: str, steps: tuple[str, ...]) -> Path:
    run_pipeline(
        PipelineParams(
            source=source,
            profile=profile,
            warehouse_url=f"sqlite:///{workdir / 'var' / 'warehouse.db'}",
            out_dir=workdir / "out",
            steps=steps,  # type: ignore[arg-type]
        )
    )
    return workdir


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory, sample_company: Path) -> Path:
    """A run of every step but Power BI on the generated sample (all rpt tables the report reads)."""
    steps = ("ingest", "reports", "segments", "predictions", "forecast")
    return _run(tmp_path_factory.mktemp("numbers_sample"), sample_company, "canonical", steps)


@pytest.fixture(scope="module", params=["sample", "classicmodels"])
def run_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if request.param == "sample":
        return Path(request.getfixturevalue("sample_run"))
    workdir = tmp_path_factory.mktemp("numbers_classicmodels")
    return _run(workdir, request.getfixturevalue("classicmodels_dir"), "classicmodels", ("ingest", "reports"))


class DaxModel(_DaxModel):
    """The checked-in model's measures over a run's Parquet (pbix-mcp's DAX engine)."""

    def __init__(self, parquet: Path) -> None:
        try:
            super().__init__(parquet, DEFINITION)
        except DaxUnavailable as exc:  # the package is in requirements.lock
            need(False, str(exc))


@pytest.fixture(scope="module")
def dax(run_dir: Path) -> DaxModel:
    return DaxModel(run_dir / "out" / "powerbi" / "data")


@pytest.fixture(scope="module")
def warehouse(run_dir: Path) -> sa.Engine:
    from salesbi.warehouse.engine import create_engine

    return create_engine(f"sqlite:///{run_dir / 'var' / 'warehouse.db'}")


def _slicer_filters(engine: sa.Engine) -> dict[str, tuple[dict[str, list[Any]], str, str]]:
    """Return ``name -> (DAX filter, SQL join, SQL where)`` for no filter and each slicer."""
    with engine.connect() as conn:
        country = conn.exec_driver_sql(
            "SELECT g.country FROM rpt.fact_order_lines f JOIN rpt.dim_geography g "
            "ON g.geography_key = f.geography_key GROUP BY g.country ORDER BY SUM(f.net_sales) DESC"
        ).fetchone()[0]
        line = conn.exec_driver_sql(
            "SELECT p.product_line_name FROM rpt.fact_order_lines f JOIN rpt.dim_product_line p "
            "ON p.product_line_id = f.product_line_id GROUP BY 1 ORDER BY SUM(f.net_sales) DESC"
        ).fetchone()[0]
        year = int(
            conn.exec_driver_sql("SELECT MAX(substr(order_date, 1, 4)) FROM rpt.fact_order_lines").scalar()
        )
        days = [
            datetime.fromisoformat(str(r[0])[:10])
            for r in conn.exec_driver_sql(f"SELECT date FROM rpt.dim_date WHERE year = {year - 1}")
        ]
    return {
        "no filter": ({}, "", "1 = 1"),
        f"country {country}": (
            {"dim_geography.country": [country]},
            "JOIN rpt.dim_geography g ON g.geography_key = f.geography_key",
            f"g.country = '{country}'",
        ),
        f"product line {line}": (
            {"dim_product_line.product_line_name": [line]},
            "JOIN rpt.dim_product_line p ON p.product_line_id = f.product_line_id",
            f"p.product_line_name = '{line}'",
        ),
        f"year {year - 1}": ({"dim_date.date": days}, "", f"substr(f.order_date, 1, 4) = '{year - 1}'"),
    }


def test_every_sales_measure_matches_sql_without_and_under_each_slicer(
    dax: DaxModel, warehouse: sa.Engine
) -> None:
    names = list(REFERENCE_SQL)
    findings = []
    for label, (dax_filter, join, where) in _slicer_filters(warehouse).items():
        got = dax.evaluate(names, dax_filter)
        select = ", ".join(f"{sql} AS m{i}" for i, sql in enumerate(REFERENCE_SQL.values()))
        with warehouse.connect() as conn:
            row = conn.exec_driver_sql(
                f"SELECT {select} FROM rpt.fact_order_lines f {join} WHERE {where}"
            ).one()
        for name, expected in zip(names, row, strict=True):
            value = got.get(name)
            if (
                expected is None
                or value is None
                or abs(float(value) - float(expected)) > 1e-6 * max(1.0, abs(float(expected)))
            ):
                findings.append(f"[{name}] under {label}: DAX {value} vs SQL {expected}")
    assert findings == []


def test_yoy_compares_the_latest_year_with_the_same_dates_a_year_earlier(
    dax: DaxModel, warehouse: sa.Engine
) -> None:
    """Defect 4: without a filter the card compared all of the last year with every earlier year."""
    got = dax.evaluate(["Sales YoY %", "YoY Period", "Data As Of", "Net Sales"], {})
    with warehouse.connect() as conn:
        last = pd.Timestamp(conn.exec_driver_sql("SELECT MAX(order_date) FROM rpt.fact_order_lines").scalar())
        first = pd.Timestamp(
            conn.exec_driver_sql("SELECT MIN(order_date) FROM rpt.fact_order_lines").scalar()
        )

        def sales(start: pd.Timestamp, end: pd.Timestamp) -> float:
            return float(
                conn.exec_driver_sql(
                    "SELECT COALESCE(SUM(net_sales), 0) FROM rpt.fact_order_lines "
                    f"WHERE order_date >= '{start.date()}' AND order_date <= '{end.date()} 23:59:59'"
                ).scalar()
            )

        start = pd.Timestamp(last.year, 1, 1)
        current = sales(start, last)
        previous = sales(start - pd.DateOffset(years=1), last - pd.DateOffset(years=1))
        naive = sales(start, last) / sales(first, start - pd.Timedelta(days=1)) - 1
    assert pd.Timestamp(got["Data As Of"]).date() == last.date()
    assert f"{start.date()} to {last.date()} vs a year earlier" == got["YoY Period"]
    if start - pd.DateOffset(years=1) >= first:
        assert got["Sales YoY %"] == pytest.approx(current / previous - 1, rel=1e-9)
        assert abs(got["Sales YoY %"] - naive) > 1e-6, "the old card's all-history comparison"
    else:
        assert got["Sales YoY %"] is None, "no comparable year in the data: blank"


# --------------------------------------------------------------------------- every slicer moves every visual

SLICER_KINDS = {"date": "all dates", "country": "all countries", "product_line": "all product lines"}
MAX_CATEGORIES = 3


def _slicer_value(dax: DaxModel, table: str, column: str) -> list[Any]:
    """Return the slicer selection used for ``table[column]``: the value with the most net sales."""
    data = dax.tables[table]
    index = data["columns"].index(column)
    values = sorted({row[index] for row in data["rows"] if row[index] is not None})
    if table == "dim_date":  # a date range: the year before the last one with orders
        fact = dax.tables["fact_order_lines"]
        at = fact["columns"].index("order_date")
        last = max(row[at] for row in fact["rows"])
        return [d for d in values if d.year == last.year - 1]
    sales = {
        v: dax.evaluate(["Net Sales"], {f"{table}.{column}": [v]})["Net Sales"] or 0 for v in values[:12]
    }
    return [max(sales, key=lambda v: sales[v])]


def _fingerprint(dax: DaxModel, visual: Any, filters: dict[str, list[Any]]) -> Any:
    """Return what a visual shows under ``filters``: per category value, its measures (or its row count)."""
    columns = [f for f in visual.fields if not f.is_measure]
    measures = [f.name for f in visual.fields if f.is_measure]
    extra: dict[str, str] = {}
    if not measures:  # a table of a summary table's columns: the rows it lists
        home = columns[0].table
        extra = {"__rows": f"COUNTROWS({home})"}
        measures = ["__rows"]
    if not columns or columns[0].table == "dim_date":
        return dax.evaluate(measures, filters, extra)
    first = columns[0]
    key = f"{first.table}.{first.name}"
    data = dax.tables[first.table]
    index = data["columns"].index(first.name)
    values = sorted({row[index] for row in data["rows"] if row[index] is not None}, key=str)
    shown: dict[Any, Any] = {}
    for v in values:  # the first categories the unfiltered visual shows (non-blank), as a chart would
        if len(shown) == MAX_CATEGORIES:
            break
        if key in filters and v not in filters[key]:  # a slicer on the category's own column
            shown[v] = None
            continue
        got = dax.evaluate(measures, filters, extra, group={key: [v]})
        if any(x is not None for x in got.values()) or filters:
            shown[v] = got
    return shown


def test_every_slicer_changes_every_visual_or_the_title_says_it_does_not(sample_run: Path) -> None:
    """Defect 5: 16 slicer/visual pairs did not filter, with no sign of it on the page."""
    from salesbi.powerbi import plan_project

    dax = DaxModel(sample_run / "out" / "powerbi" / "data")
    _, report = plan_project()
    findings, checked = [], 0
    baseline: dict[str, Any] = {}
    for page in report.pages:
        slicers = [v for v in page.visuals if v.visual_type == "slicer"]
        visuals = [v for v in page.visuals if v.visual_type != "slicer"]
        for slicer in slicers:
            kind = slicer.key.removeprefix(f"{page.key}_slicer_")
            field = slicer.fields[0]
            selection = {f"{field.table}.{field.name}": _slicer_value(dax, field.table, field.name)}
            for visual in visuals:
                if visual.key not in baseline:
                    baseline[visual.key] = _fingerprint(dax, visual, {})
                before = baseline[visual.key]
                after = _fingerprint(dax, visual, selection)
                checked += 1
                if kind in visual.ignores:
                    if SLICER_KINDS[kind] not in visual.title:
                        findings.append(
                            f"{page.key}/{visual.key} ignores {kind} but its title does not say so"
                        )
                    if before != after:
                        findings.append(f"{page.key}/{visual.key} declares it ignores {kind} but changes")
                elif before == after:
                    findings.append(f"{page.key}/{visual.key}: the {kind} slicer does not change it")
    assert checked > 40
    assert findings == [], "\n".join(findings)


def test_order_value_bands_and_abc_classes_match_the_report_tables(sample_run: Path) -> None:
    """The measures that replaced precomputed summary visuals give the summary tables' numbers unfiltered."""
    data = sample_run / "out" / "powerbi" / "data"
    dax = DaxModel(data)
    bands = pd.read_parquet(data / "order_value_distribution.parquet")
    for band in bands.itertuples():
        got = dax.evaluate(
            ["Orders in Band"], {}, group={"order_value_distribution.bin_label": [band.bin_label]}
        )
        assert got["Orders in Band"] == band.orders, band.bin_label
    products = pd.read_parquet(data / "product_summary.parquet").sort_values("sales_rank")
    products = products[products["net_sales"] > 0]
    sample = pd.concat(
        [products.head(6), products.iloc[len(products) // 2 - 3 : len(products) // 2 + 3], products.tail(6)]
    )
    for p in sample.itertuples():
        got = dax.evaluate(["ABC Class"], {}, group={"dim_product.product_id": [p.product_id]})["ABC Class"]
        assert got == p.abc_class, (p.product_id, p.sales_rank, got, p.abc_class)


def test_data_quality_page_numbers_are_the_run_summary(sample_run: Path) -> None:
    """rpt.data_quality and its measures restate run_summary.json: read = loaded + rejected per table."""
    import json

    summary = json.loads((sample_run / "out" / "run_summary.json").read_text(encoding="utf-8"))
    dax = DaxModel(sample_run / "out" / "powerbi" / "data")
    tables = summary["tables"]
    got = dax.evaluate(["Rows Read", "Rows Loaded", "Rows Rejected", "Run Status", "Data Freshness"], {})
    assert got["Rows Read"] == sum(t["read"] for t in tables.values())
    assert got["Rows Loaded"] == sum(t["loaded"] for t in tables.values())
    assert got["Rows Rejected"] == sum(t["rejected"] for t in tables.values())
    assert got["Run Status"] in ("succeeded", "succeeded_with_warnings")
    assert got["Run Status"] == summary["status"]
    assert str(got["Data Freshness"]).startswith("Orders to ") and "refreshed" in got["Data Freshness"]
    for name, counts in tables.items():
        row = dax.evaluate(["Rows Read", "Rows Rejected"], {}, group={"data_quality.table_name": [name]})
        assert (row["Rows Read"], row["Rows Rejected"]) == (counts["read"], counts["rejected"]), name


def _role_measure(role: Any, email: str, expression: str) -> str:
    """Return ``expression`` under a role's row filters for the user ``email`` (RLS as CALCULATE filters)."""
    user = '"' + email.replace('"', '""') + '"'
    filters = [
        f"FILTER({table}, {dax_filter.replace('USERPRINCIPALNAME()', user)})"
        for table, dax_filter in role.filters
        if table in ("dim_customer", "dim_office")
    ]
    return f"CALCULATE({expression}, {', '.join(filters)})"


def test_row_level_security_roles_filter_to_the_users_customers_and_office(
    sample_run: Path,
) -> None:
    """Each role's filters, with USERPRINCIPALNAME() = a real employee's e-mail, give SQL's numbers."""
    from salesbi.powerbi import plan_project
    from salesbi.warehouse.engine import create_engine

    plan, _ = plan_project()
    roles = {r.name: r for r in plan.roles}
    dax = DaxModel(sample_run / "out" / "powerbi" / "data")
    engine = create_engine(f"sqlite:///{sample_run / 'var' / 'warehouse.db'}")
    with engine.connect() as conn:
        rep_email, rep_id, rep_sales, rep_customers = conn.exec_driver_sql(
            "SELECT e.email, e.employee_id, SUM(f.net_sales), COUNT(DISTINCT c.customer_id) "
            "FROM rpt.fact_order_lines f JOIN rpt.dim_customer c ON c.customer_id = f.customer_id "
            "JOIN rpt.dim_employee e ON e.employee_id = c.sales_rep_id "
            "GROUP BY e.email, e.employee_id ORDER BY SUM(f.net_sales) DESC"
        ).first()
        manager_email, _office, office_sales = conn.exec_driver_sql(
            "SELECT MIN(e.email), o.office_id, "
            "(SELECT SUM(f.net_sales) FROM rpt.fact_order_lines f JOIN rpt.dim_customer c "
            " ON c.customer_id = f.customer_id "
            " WHERE f.office_id = o.office_id AND c.office_id = o.office_id) "
            "FROM rpt.dim_office o JOIN rpt.dim_employee e ON e.office_id = o.office_id "
            "WHERE e.email IS NOT NULL GROUP BY o.office_id ORDER BY 3 DESC"
        ).first()
        total = conn.exec_driver_sql("SELECT SUM(net_sales) FROM rpt.fact_order_lines").scalar()
        rep_customers = conn.exec_driver_sql(
            f"SELECT COUNT(*) FROM rpt.dim_customer WHERE sales_rep_id = '{rep_id}'"
        ).scalar()
    engine.dispose()
    rep = roles["Sales Rep"]
    extra = {
        "__rep_sales": _role_measure(rep, rep_email, "[Net Sales]"),
        "__rep_customers": _role_measure(rep, rep_email, "COUNTROWS(dim_customer)"),
        "__nobody": _role_measure(rep, "nobody@example.com", "[Net Sales]"),
        "__manager_sales": _role_measure(roles["Office Manager"], manager_email, "[Net Sales]"),
    }
    got = dax.evaluate(list(extra), {}, extra)
    assert got["__rep_sales"] == pytest.approx(float(rep_sales), rel=1e-9)
    assert got["__rep_customers"] == rep_customers
    assert got["__nobody"] is None, "a user who is no employee sees nothing"
    assert got["__manager_sales"] == pytest.approx(float(office_sales), rel=1e-9)
    assert float(rep_sales) < float(total) and float(office_sales) < float(total)
    for role in roles.values():  # company-wide aggregates are hidden from both roles
        hidden = {t for t, f in role.filters if f == "FALSE()"}
        assert {"sales_monthly", "employee_performance", "location_summary"} <= hidden


def test_mom_compares_the_latest_complete_month_with_the_one_before(
    dax: DaxModel, warehouse: sa.Engine
) -> None:
    """MoM over complete months only: a month cut off by the last order date is not compared."""
    with warehouse.connect() as conn:
        last = pd.Timestamp(conn.exec_driver_sql("SELECT MAX(order_date) FROM rpt.fact_order_lines").scalar())
        month = last.to_period("M") if last == last + pd.offsets.MonthEnd(0) else last.to_period("M") - 1

        def sales(period: pd.Period) -> float:
            start, end = period.start_time.date(), period.end_time.date()
            return float(
                conn.exec_driver_sql(
                    "SELECT COALESCE(SUM(net_sales), 0) FROM rpt.fact_order_lines "
                    f"WHERE order_date >= '{start}' AND order_date <= '{end} 23:59:59'"
                ).scalar()
            )

        expected = sales(month) / sales(month - 1) - 1
    assert dax.evaluate(["Sales MoM %"], {})["Sales MoM %"] == pytest.approx(expected, rel=1e-9)


def test_page_preview_draws_the_overview_with_its_numbers(sample_run: Path, tmp_path: Path) -> None:
    """The PNG preview is drawn from the PBIR layout; its cards carry the evaluated numbers."""
    from PIL import Image

    from salesbi.powerbi import build_powerbi_project
    from salesbi.powerbi.preview import PageRenderer, format_value, read_page, render_previews

    data = sample_run / "out" / "powerbi" / "data"
    project = tmp_path / "powerbi"
    build_powerbi_project(project, parquet_folder=str(data))
    (png,) = render_previews(project, data, tmp_path / "preview", pages=("overview",))
    assert png.name == "01_overview.png"
    with Image.open(png) as image:
        assert image.size == (1280, 750)
        assert len(set(image.convert("L").getdata())) > 20, "not a blank page"
    page, visuals = read_page(project / "SalesBI.Report/definition/pages/overview")
    assert page["displayName"] == "Overview" and len(visuals) == 15  # 3 slicers, 8 cards, 4 charts
    card = next(v for v in visuals if v.roles.get("Values") == [("fact_order_lines", "Net Sales", True)])
    renderer = PageRenderer(DaxModel(data))
    cats, _, rows = renderer._categories(next(v for v in visuals if v.name == "overview_sales_trend"))
    assert len(cats) >= 12 and any(r["Forecast Sales"] is not None for r in rows)
    net = renderer.model.evaluate(["Net Sales"], {})["Net Sales"]
    from salesbi.warehouse.engine import create_engine

    engine = create_engine(f"sqlite:///{sample_run / 'var' / 'warehouse.db'}")
    with engine.connect() as conn:
        expected = conn.exec_driver_sql("SELECT SUM(net_sales) FROM rpt.fact_order_lines").scalar()
    engine.dispose()
    assert format_value(net, "$") == format_value(expected, "$") and card.title == "Net Sales"


def test_py_ytd_churn_quick_ratio_and_forecast_match_their_references(sample_run: Path) -> None:
    """Time intelligence against SQL; churn/quick ratio against rpt.customer_growth; the forecast
    measures against rpt.sales_forecast_monthly and the period forecasts of rpt.sales_forecast."""
    from salesbi.warehouse.engine import create_engine

    data = sample_run / "out" / "powerbi" / "data"
    dax = DaxModel(data)
    engine = create_engine(f"sqlite:///{sample_run / 'var' / 'warehouse.db'}")
    with engine.connect() as conn:
        last = pd.Timestamp(conn.exec_driver_sql("SELECT MAX(order_date) FROM rpt.fact_order_lines").scalar())

        def sales(start: str, end: str) -> float:
            return float(
                conn.exec_driver_sql(
                    "SELECT COALESCE(SUM(net_sales), 0) FROM rpt.fact_order_lines "
                    f"WHERE order_date >= '{start}' AND order_date <= '{end} 23:59:59'"
                ).scalar()
            )

        year = last.year - 1
        py = sales(f"{year - 1}-01-01", f"{year - 1}-12-31")
        ytd_june = sales(f"{year}-01-01", f"{year}-06-30")
        growth = pd.read_sql("SELECT * FROM rpt.customer_growth", conn)
    engine.dispose()
    in_year = {"dim_date.year": [year]}
    got = dax.evaluate(["Net Sales PY", "Churned Customers", "Quick Ratio"], in_year)
    assert got["Net Sales PY"] == pytest.approx(py, rel=1e-9)
    june = dax.evaluate(["Net Sales YTD"], {}, group={"dim_date.year_month": [f"{year}-06"]})
    assert june["Net Sales YTD"] == pytest.approx(ytd_june, rel=1e-9)
    rows = growth[pd.to_datetime(growth["month"]).dt.year == year]
    assert got["Churned Customers"] == rows["churned"].sum()
    assert got["Quick Ratio"] == pytest.approx(
        (rows["new"].sum() + rows["regained"].sum()) / rows["churned"].sum()
    )

    monthly = pd.read_parquet(data / "sales_forecast_monthly.parquet")
    periods = pd.read_parquet(data / "sales_forecast.parquet")
    total = monthly[(monthly["series_id"] == "total") & monthly["is_future"] & monthly["is_complete"]]
    assert len(total) >= 1, "the sample's horizon holds at least one complete month"
    assert dax.evaluate(["Forecast Sales"], {})["Forecast Sales"] == pytest.approx(total["forecast"].sum())
    for row in total.itertuples():
        got = dax.evaluate(
            ["Forecast Sales", "Forecast Lower 80", "Forecast Upper 95"],
            {},
            group={"dim_date.year_month": [row.year_month]},
        )
        assert got["Forecast Sales"] == pytest.approx(row.forecast)
        assert (got["Forecast Lower 80"], got["Forecast Upper 95"]) == pytest.approx(
            (row.lower_80, row.upper_95)
        )
        future = periods[(periods["series_id"] == "total") & periods["is_future"]]
        in_month = future[pd.to_datetime(future["date"]).dt.strftime("%Y-%m") == row.year_month]
        if (future["frequency"] == "D").all() or (future["frequency"] == "M").all():
            assert row.forecast == pytest.approx(in_month["forecast"].sum(), abs=0.05)
        # the month's interval is narrower than the summed period quantiles (issue 14, defect 3)
        assert row.upper_80 - row.lower_80 < in_month["upper_80"].sum() - in_month["lower_80"].sum()
    several = dax.evaluate(
        ["Forecast Lower 80"], {"dim_date.year": [int(pd.to_datetime(total["month_start"]).dt.year.max())]}
    )
    assert several["Forecast Lower 80"] is None or len(total) == 1
