"""The report pages as data: which visuals each page shows and which model fields they bind.

A visual is emitted only when every field it binds exists in the model plan;
a page is emitted when at least one of its non-slicer visuals is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """A model field bound by a visual: a column or a measure of ``table``."""

    table: str
    name: str
    is_measure: bool = False

    @property
    def query_ref(self) -> str:
        """Return ``table.name`` as used in PBIR ``queryRef``."""
        return f"{self.table}.{self.name}"


@dataclass(frozen=True)
class VisualSpec:
    """A visual: type, title, fields per data role, optional sort and slicer mode."""

    key: str
    visual_type: str
    title: str
    roles: tuple[tuple[str, tuple[Field, ...]], ...]
    sort: Field | None = None
    sort_descending: bool = True
    slicer_mode: str | None = None  # 'Between' (date range) or 'Dropdown'
    wide: bool = False
    alt_text: str = ""  # screen-reader text; derived from the title and fields when empty
    # slicers of the page this visual does not respond to ('date', 'country', 'product_line');
    # its title must say so ("all dates", "all countries", "all product lines")
    ignores: tuple[str, ...] = ()

    @property
    def fields(self) -> list[Field]:
        """Return every field the visual binds, in role order."""
        out = [f for _, fs in self.roles for f in fs]
        if self.sort is not None and self.sort not in out:
            out.append(self.sort)
        return out


@dataclass(frozen=True)
class PageSpec:
    """A report page: stable name, title, the question it answers, and its visuals.

    ``kind`` 'drillthrough' pages open from any visual showing ``binding`` (right click →
    Drill through); 'tooltip' pages replace the default tooltip of visuals showing ``binding``.
    """

    key: str
    display_name: str
    question: str
    visuals: tuple[VisualSpec, ...]
    kind: str = "normal"  # 'normal', 'drillthrough' or 'tooltip'
    binding: Field | None = None


def col(table: str, name: str) -> Field:
    """Return a column field."""
    return Field(table, name)


def meas(table: str, name: str) -> Field:
    """Return a measure field."""
    return Field(table, name, is_measure=True)


F = "fact_order_lines"


def _cards(page: str, *measures: tuple[str, str]) -> tuple[VisualSpec, ...]:
    return tuple(
        VisualSpec(f"{page}_card_{i}", "card", name, (("Values", (meas(table, name),)),))
        for i, (table, name) in enumerate(measures)
    )


def _slicers(
    page: str, *, date: bool = True, country: Field | None = None, product_line: bool = False
) -> tuple[VisualSpec, ...]:
    out: list[VisualSpec] = []
    if date:
        out.append(
            VisualSpec(
                f"{page}_slicer_date",
                "slicer",
                "Order date",
                (("Values", (col("dim_date", "date"),)),),
                slicer_mode="Between",
            )
        )
    if country is not None:
        out.append(
            VisualSpec(
                f"{page}_slicer_country",
                "slicer",
                "Country",
                (("Values", (country,)),),
                slicer_mode="Dropdown",
            )
        )
    if product_line:
        out.append(
            VisualSpec(
                f"{page}_slicer_product_line",
                "slicer",
                "Product line",
                (("Values", (col("dim_product_line", "product_line_name"),)),),
                slicer_mode="Dropdown",
            )
        )
    return tuple(out)


MONTH = col("dim_date", "year_month_label")
GEO_COUNTRY = col("dim_geography", "country")


def _table(
    key: str,
    title: str,
    table: str,
    columns: tuple[str, ...],
    sort: str | None = None,
    descending: bool = False,
    wide: bool = False,
    ignores: tuple[str, ...] = (),
) -> VisualSpec:
    return VisualSpec(
        key,
        "tableEx",
        title,
        (("Values", tuple(col(table, c) for c in columns)),),
        sort=col(table, sort) if sort else None,
        sort_descending=descending,
        wide=wide,
        ignores=ignores,
    )


PAGES: tuple[PageSpec, ...] = (
    PageSpec(
        "overview",
        "Overview",
        "How are we doing? Net sales, profit, margin and orders, the monthly trend with the forecast, "
        "and how many orders were cancelled.",
        _slicers("overview", country=GEO_COUNTRY, product_line=True)
        + _cards(
            "overview",
            (F, "Net Sales"),
            (F, "Gross Profit"),
            (F, "Margin %"),
            (F, "Net Orders"),
            (F, "Average Order Value"),
            (F, "Sales YoY %"),
        )
        + (
            VisualSpec(
                "overview_card_yoy_period",
                "card",
                "Period of Sales YoY % (same for all countries and all product lines)",
                (("Values", (meas(F, "YoY Period"),)),),
                ignores=("country", "product_line"),
            ),
            VisualSpec(
                "overview_card_as_of",
                "card",
                "Data as of and last refresh (all dates, all countries, all product lines)",
                (("Values", (meas("data_quality", "Data Freshness"),)),),
                ignores=("date", "country", "product_line"),
            ),
        )
        + (
            VisualSpec(
                "overview_sales_trend",
                "lineChart",
                "Monthly net sales and forecast (80% interval)",
                (
                    ("Category", (MONTH,)),
                    (
                        "Y",
                        (
                            meas(F, "Net Sales"),
                            meas("sales_forecast_monthly", "Forecast Sales"),
                            meas("sales_forecast_monthly", "Forecast Lower 80"),
                            meas("sales_forecast_monthly", "Forecast Upper 80"),
                        ),
                    ),
                ),
                sort=MONTH,
                sort_descending=False,
                wide=True,
            ),
            VisualSpec(
                "overview_orders",
                "clusteredColumnChart",
                "Orders placed vs cancelled by month",
                (("Category", (MONTH,)), ("Y", (meas(F, "Orders Placed"), meas(F, "Cancelled Orders")))),
                sort=MONTH,
                sort_descending=False,
            ),
            VisualSpec(
                "overview_mom",
                "lineChart",
                "Sales growth: month on month and year on year",
                (("Category", (MONTH,)), ("Y", (meas(F, "Sales MoM %"), meas(F, "Sales YoY %")))),
                sort=MONTH,
                sort_descending=False,
            ),
            VisualSpec(
                "overview_order_values",
                "clusteredColumnChart",
                "Orders by order value band",
                (
                    ("Category", (col("order_value_distribution", "bin_label"),)),
                    ("Y", (meas("order_value_distribution", "Orders in Band"),)),
                ),
                sort=col("order_value_distribution", "bin_label"),
                sort_descending=False,
            ),
        ),
    ),
    PageSpec(
        "customers",
        "Customers & Loyalty",
        "Who are our best customers, which loyalty tier are they in, and is the customer base growing "
        "(new, retained, regained, churned)?",
        _slicers("customers", country=col("dim_customer", "country"))
        + _cards("customers", (F, "Active Customers"), (F, "New Customers"))
        + (
            VisualSpec(
                "customers_card_churned",
                "card",
                "Churned customers (all countries)",
                (("Values", (meas("customer_growth", "Churned Customers"),)),),
                ignores=("country",),
            ),
            VisualSpec(
                "customers_card_quick_ratio",
                "card",
                "Quick ratio (all countries)",
                (("Values", (meas("customer_growth", "Quick Ratio"),)),),
                ignores=("country",),
            ),
            VisualSpec(
                "customers_top",
                "tableEx",
                "Top customers by net sales in the selection",
                (
                    ("Values", (col("dim_customer", "customer_name"), col("dim_customer", "country"))),
                    (
                        "Values",
                        (
                            meas(F, "Net Sales"),
                            meas(F, "Net Orders"),
                            meas(F, "Margin %"),
                            meas(F, "Last Order Date"),
                        ),
                    ),
                ),
                sort=meas(F, "Net Sales"),
            ),
            VisualSpec(
                "customers_tiers",
                "donutChart",
                "Lifetime net sales by loyalty tier (all dates)",
                (
                    ("Category", (col("customer_summary", "loyalty_tier"),)),
                    ("Y", (meas("customer_summary", "Loyalty Sales"),)),
                ),
                ignores=("date",),
            ),
            VisualSpec(
                "customers_ledger",
                "clusteredColumnChart",
                "Customer growth ledger by month (all countries)",
                (
                    ("Category", (MONTH,)),
                    (
                        "Y",
                        (
                            meas("customer_growth", "New Customers (Ledger)"),
                            meas("customer_growth", "Regained Customers"),
                            meas("customer_growth", "Churned Customers"),
                        ),
                    ),
                ),
                sort=MONTH,
                sort_descending=False,
                wide=True,
                ignores=("country",),
            ),
        ),
    ),
    PageSpec(
        "locations",
        "Locations",
        "Where do sales come from: which countries, cities and offices sell most, at what margin, "
        "and how fast they grow?",
        (
            *_slicers("locations"),
            VisualSpec(
                "locations_map",
                "azureMap",
                "Net sales by country",
                (("Category", (col("dim_geography", "country"),)), ("Size", (meas(F, "Net Sales"),))),
            ),
            VisualSpec(
                "locations_countries",
                "clusteredBarChart",
                "Countries ranked by net sales (drill down to cities)",
                (
                    ("Category", (col("dim_geography", "country"), col("dim_geography", "city"))),
                    ("Y", (meas(F, "Net Sales"),)),
                ),
                sort=meas(F, "Net Sales"),
            ),
            VisualSpec(
                "locations_offices",
                "clusteredBarChart",
                "Offices ranked by net sales",
                (("Category", (col("dim_office", "office_name"),)), ("Y", (meas(F, "Net Sales"),))),
                sort=meas(F, "Net Sales"),
            ),
            VisualSpec(
                "locations_table",
                "tableEx",
                "Countries: sales, share, margin, customers, growth",
                (
                    ("Values", (col("dim_geography", "country"),)),
                    (
                        "Values",
                        (
                            meas(F, "Net Sales"),
                            meas(F, "Sales Share"),
                            meas(F, "Gross Profit"),
                            meas(F, "Margin %"),
                            meas(F, "Active Customers"),
                            meas(F, "Net Orders"),
                            meas(F, "Sales YoY %"),
                        ),
                    ),
                ),
                sort=meas(F, "Net Sales"),
                wide=True,
            ),
        ),
    ),
    PageSpec(
        "products",
        "Products",
        "Which products and product lines sell, which earn margin, and which few products make most "
        "of the sales (ABC)?",
        (
            *_slicers("products", country=GEO_COUNTRY, product_line=True),
            VisualSpec(
                "products_scatter",
                "scatterChart",
                "Products: net sales vs margin",
                (
                    ("Category", (col("dim_product", "product_name"),)),
                    ("X", (meas(F, "Net Sales"),)),
                    ("Y", (meas(F, "Margin %"),)),
                    ("Size", (meas(F, "Units Sold"),)),
                ),
            ),
            VisualSpec(
                "products_lines",
                "clusteredBarChart",
                "Product lines by net sales",
                (
                    ("Category", (col("dim_product_line", "product_line_name"),)),
                    ("Y", (meas(F, "Net Sales"), meas(F, "Gross Profit"))),
                ),
                sort=meas(F, "Net Sales"),
            ),
            VisualSpec(
                "products_abc",
                "tableEx",
                "Products with ABC class in the selection",
                (
                    ("Values", (col("dim_product", "product_name"), col("dim_product", "product_line_name"))),
                    (
                        "Values",
                        (
                            meas(F, "Net Sales"),
                            meas(F, "Gross Profit"),
                            meas(F, "Margin %"),
                            meas(F, "Units Sold"),
                            meas(F, "ABC Class"),
                        ),
                    ),
                ),
                sort=meas(F, "Net Sales"),
                wide=True,
            ),
        ),
    ),
    PageSpec(
        "employees",
        "Employees",
        "Which sales reps and offices bring in the most, and which reward tier has each rep earned?",
        (
            *_slicers("employees", country=col("dim_office", "country")),
            VisualSpec(
                "employees_leaderboard",
                "tableEx",
                "Sales rep leaderboard in the selection",
                (
                    ("Values", (col("dim_employee", "employee_name"), col("dim_employee", "office_name"))),
                    (
                        "Values",
                        (
                            meas(F, "Net Sales"),
                            meas(F, "Net Orders"),
                            meas(F, "Active Customers"),
                            meas(F, "Margin %"),
                        ),
                    ),
                ),
                sort=meas(F, "Net Sales"),
                wide=True,
            ),
            _table(
                "employees_rewards",
                "Reward tiers, whole history (all dates, all countries)",
                "employee_performance",
                ("rank_overall", "employee_name", "office_name", "net_sales", "reward_tier"),
                sort="rank_overall",
                ignores=("date", "country"),
            ),
            VisualSpec(
                "employees_reps",
                "clusteredBarChart",
                "Net sales by sales rep",
                (("Category", (col("dim_employee", "employee_name"),)), ("Y", (meas(F, "Net Sales"),))),
                sort=meas(F, "Net Sales"),
            ),
            VisualSpec(
                "employees_offices",
                "clusteredColumnChart",
                "Net sales by office",
                (("Category", (col("dim_office", "office_name"),)), ("Y", (meas(F, "Net Sales"),))),
                sort=meas(F, "Net Sales"),
            ),
        ),
    ),
    PageSpec(
        "segments",
        "Segments",
        "Which customer segments do we have, how big and valuable is each, and what should we do "
        "with each customer next?",
        _slicers("segments", date=False, country=col("dim_customer", "country"))
        + _cards(
            "segments",
            ("customer_segments", "Segment Customers"),
            ("customer_segments", "Segment Sales"),
            ("customer_predictions", "Predicted Sales"),
        )
        + (
            VisualSpec(
                "segments_sizes",
                "donutChart",
                "Customers by segment",
                (
                    ("Category", (col("customer_segments", "segment"),)),
                    ("Y", (meas("customer_segments", "Segment Customers"),)),
                ),
            ),
            VisualSpec(
                "segments_value",
                "clusteredBarChart",
                "Historical sales by segment",
                (
                    ("Category", (col("customer_segments", "segment"),)),
                    ("Y", (meas("customer_segments", "Segment Sales"),)),
                ),
                sort=meas("customer_segments", "Segment Sales"),
            ),
            _table(
                "segments_summary",
                "Segment summary (all countries)",
                "segment_summary",
                (
                    "segment",
                    "customers",
                    "customer_share",
                    "net_sales",
                    "sales_share",
                    "avg_recency_days",
                    "recommended_action",
                ),
                sort="segment_order",
                wide=True,
                ignores=("country",),
            ),
            _table(
                "segments_actions",
                "Actions per customer",
                "customer_segments",
                (
                    "action_priority",
                    "customer_name",
                    "segment",
                    "value_tier",
                    "risk",
                    "action",
                    "sales_rep_name",
                ),
                sort="action_priority",
                wide=True,
            ),
        ),
    ),
    PageSpec(
        "forecast",
        "Forecast",
        "What will we sell in the coming months, how sure are we (80% and 95% intervals), and how "
        "accurate were past forecasts?",
        (
            VisualSpec(
                "forecast_chart",
                "lineChart",
                "Actual vs forecast net sales with intervals",
                (
                    ("Category", (MONTH,)),
                    (
                        "Y",
                        (
                            meas(F, "Net Sales"),
                            meas("sales_forecast_monthly", "Forecast Sales"),
                            meas("sales_forecast_monthly", "Forecast Lower 80"),
                            meas("sales_forecast_monthly", "Forecast Upper 80"),
                            meas("sales_forecast_monthly", "Forecast Lower 95"),
                            meas("sales_forecast_monthly", "Forecast Upper 95"),
                        ),
                    ),
                ),
                sort=MONTH,
                sort_descending=False,
                wide=True,
            ),
            _table(
                "forecast_table",
                "Forecast by month and series (month totals; intervals of the month)",
                "sales_forecast_monthly",
                (
                    "series_name",
                    "year_month",
                    "is_future",
                    "is_complete",
                    "actual",
                    "forecast",
                    "lower_80",
                    "upper_80",
                    "lower_95",
                    "upper_95",
                ),
                sort="year_month",
            ),
            _table(
                "forecast_accuracy",
                "Forecast accuracy (backtest)",
                "forecast_accuracy",
                ("series_name", "model", "wape", "mase", "bias", "coverage_80", "coverage_95", "is_champion"),
                sort="wape",
            ),
        ),
    ),
    PageSpec(
        "data_quality",
        "Data quality",
        "Can we trust these numbers? What the last run read, loaded and rejected per table, why rows were "
        "rejected, the run's status and when the data was refreshed.",
        (
            *_cards(
                "data_quality",
                ("data_quality", "Run Status"),
                ("data_quality", "Last Refresh"),
                ("data_quality", "Rows Read"),
                ("data_quality", "Rows Rejected"),
                ("data_quality", "Rejected Share"),
            ),
            VisualSpec(
                "data_quality_rejected",
                "clusteredBarChart",
                "Rejected rows by table",
                (
                    ("Category", (col("data_quality", "table_name"),)),
                    ("Y", (meas("data_quality", "Rows Rejected"),)),
                ),
                sort=meas("data_quality", "Rows Rejected"),
            ),
            _table(
                "data_quality_tables",
                "Rows per table and top reject reasons",
                "data_quality",
                (
                    "table_name",
                    "rows_read",
                    "rows_loaded",
                    "rows_rejected",
                    "rejected_share",
                    "top_reject_reasons",
                ),
                sort="table_name",
            ),
        ),
    ),
    PageSpec(
        "insights",
        "Insights",
        "What should management do? Ranked findings with the numbers behind them and a recommended action.",
        (
            _table(
                "insights_table",
                "Insights and recommended actions",
                "insights",
                ("rank", "topic", "finding", "action", "metric_name", "metric_value"),
                sort="rank",
                wide=True,
            ),
        ),
    ),
)


def _drillthrough(key: str, name: str, question: str, field: Field, table: VisualSpec) -> PageSpec:
    cards = _cards(
        key, (F, "Net Sales"), (F, "Gross Profit"), (F, "Margin %"), (F, "Net Orders"), (F, "Last Order Date")
    )
    trend = VisualSpec(
        f"{key}_trend",
        "lineChart",
        "Monthly net sales",
        (("Category", (MONTH,)), ("Y", (meas(F, "Net Sales"), meas(F, "Gross Profit")))),
        sort=MONTH,
        sort_descending=False,
    )
    return PageSpec(key, name, question, (*cards, trend, table), kind="drillthrough", binding=field)


def _ranked(key: str, title: str, category: Field) -> VisualSpec:
    return VisualSpec(
        key,
        "clusteredBarChart",
        title,
        (("Category", (category,)), ("Y", (meas(F, "Net Sales"),))),
        sort=meas(F, "Net Sales"),
    )


DETAIL_PAGES: tuple[PageSpec, ...] = (
    _drillthrough(
        "customer_detail",
        "Customer detail",
        "What has this customer bought, when, and at what margin?",
        col("dim_customer", "customer_name"),
        _ranked(
            "customer_detail_products", "Products bought by net sales", col("dim_product", "product_name")
        ),
    ),
    _drillthrough(
        "product_detail",
        "Product detail",
        "Who buys this product, how is it selling, and at what margin?",
        col("dim_product", "product_name"),
        _ranked(
            "product_detail_customers",
            "Customers buying it by net sales",
            col("dim_customer", "customer_name"),
        ),
    ),
    _drillthrough(
        "rep_detail",
        "Sales rep detail",
        "How is this sales rep doing, and with which customers?",
        col("dim_employee", "employee_name"),
        _ranked("rep_detail_customers", "Customers by net sales", col("dim_customer", "customer_name")),
    ),
    PageSpec(
        "month_tooltip",
        "Month tooltip",
        "The month at a glance (shown when hovering a month on any chart).",
        _cards("month_tooltip", (F, "Net Sales"), (F, "Net Orders"), (F, "Margin %"), (F, "Sales MoM %")),
        kind="tooltip",
        binding=MONTH,
    ),
)


#: every page of the report: the question pages, then drillthrough and tooltip pages
ALL_PAGES: tuple[PageSpec, ...] = (*PAGES, *DETAIL_PAGES)
