"""What the Power BI model declares beyond the tables: measures, extra relationships, sort orders.

Each declaration names the tables and columns it needs; :func:`salesbi.powerbi.model.plan_model`
emits it only when they exist. Measures are listed dependencies-first.
"""

from __future__ import annotations

from salesbi.powerbi.model import MeasureSpec, RelationshipSpec, RoleSpec, SortSpec
from salesbi.powerbi.tmdl import CURRENCY_FORMAT, DECIMAL_FORMAT, INTEGER_FORMAT, PERCENT_FORMAT, TEXT_FORMAT

F = "fact_order_lines"
FM = "sales_forecast_monthly"


def _m(name: str, table: str, expression: str, fmt: str, folder: str, description: str) -> MeasureSpec:
    return MeasureSpec(name, table, expression.strip("\n"), fmt, folder, description)


def _forecast_bound(side: str, level: str) -> MeasureSpec:
    """Return the measure ``Forecast <side> <level>``: one complete future month's interval bound."""
    column = f"{side.lower()}_{level}"
    return _m(
        f"Forecast {side} {level}",
        FM,
        f"""
VAR _series = [Forecast Series]
VAR _rows =
    CALCULATETABLE(
        {FM},
        KEEPFILTERS({FM}[series_id] = _series),
        KEEPFILTERS({FM}[is_future] = TRUE()),
        KEEPFILTERS({FM}[is_complete] = TRUE())
    )
RETURN
    IF(COUNTROWS(_rows) = 1, SUMX(_rows, {FM}[{column}]))
""",
        CURRENCY_FORMAT,
        "Forecast",
        f"{side} bound of the {level}% interval of one month's total (blank over several months).",
    )


MEASURES: tuple[MeasureSpec, ...] = (
    # --- Sales -------------------------------------------------------------
    _m(
        "Net Sales",
        F,
        f"SUM({F}[net_sales])",
        CURRENCY_FORMAT,
        "Sales",
        "Revenue after discounts, excluding cancelled orders.",
    ),
    _m(
        "Gross Sales",
        F,
        f"SUM({F}[revenue])",
        CURRENCY_FORMAT,
        "Sales",
        "Revenue after discounts, including cancelled orders.",
    ),
    _m(
        "Discounts",
        F,
        f"SUM({F}[discount_amount])",
        CURRENCY_FORMAT,
        "Sales",
        "Value given away as line discounts.",
    ),
    _m(
        "Units Sold",
        F,
        f"CALCULATE(SUM({F}[quantity]), KEEPFILTERS({F}[is_cancelled] = FALSE()))",
        INTEGER_FORMAT,
        "Sales",
        "Quantity ordered on non-cancelled orders.",
    ),
    _m(
        "Gross Profit",
        F,
        f"SUM({F}[net_profit])",
        CURRENCY_FORMAT,
        "Profit",
        "Net sales minus cost of goods, excluding cancelled orders; blank where cost is unknown.",
    ),
    _m(
        "Net Sales with Cost",
        F,
        f"CALCULATE([Net Sales], KEEPFILTERS(NOT ISBLANK({F}[cost])))",
        CURRENCY_FORMAT,
        "Profit",
        "Net sales of the lines whose product cost is known (the base of Margin %).",
    ),
    _m(
        "Margin %",
        F,
        "DIVIDE([Gross Profit], [Net Sales with Cost])",
        PERCENT_FORMAT,
        "Profit",
        "Gross profit as a share of the net sales of lines with a known cost.",
    ),
    # --- Orders ------------------------------------------------------------
    _m(
        "Orders Placed",
        F,
        f"DISTINCTCOUNT({F}[order_id])",
        INTEGER_FORMAT,
        "Orders",
        "Distinct orders placed, cancelled ones included.",
    ),
    _m(
        "Cancelled Orders",
        F,
        f"CALCULATE(DISTINCTCOUNT({F}[order_id]), KEEPFILTERS({F}[is_cancelled] = TRUE()))",
        INTEGER_FORMAT,
        "Orders",
        "Distinct orders that were cancelled.",
    ),
    _m(
        "Net Orders",
        F,
        "[Orders Placed] - [Cancelled Orders]",
        INTEGER_FORMAT,
        "Orders",
        "Distinct orders that were not cancelled.",
    ),
    _m(
        "Cancel Rate",
        F,
        "DIVIDE([Cancelled Orders], [Orders Placed])",
        PERCENT_FORMAT,
        "Orders",
        "Share of placed orders that were cancelled.",
    ),
    _m(
        "Average Order Value",
        F,
        "DIVIDE([Net Sales], [Net Orders])",
        CURRENCY_FORMAT,
        "Orders",
        "Net sales per non-cancelled order.",
    ),
    # --- Customers ---------------------------------------------------------
    _m(
        "Active Customers",
        F,
        f"CALCULATE(DISTINCTCOUNT({F}[customer_id]), KEEPFILTERS({F}[is_cancelled] = FALSE()))",
        INTEGER_FORMAT,
        "Customers",
        "Customers with at least one non-cancelled order in the period.",
    ),
    _m(
        "New Customers",
        F,
        f"""
VAR _periodStart = MIN(dim_date[date])
VAR _customers =
    CALCULATETABLE(VALUES({F}[customer_id]), KEEPFILTERS({F}[is_cancelled] = FALSE()))
VAR _firsts =
    ADDCOLUMNS(
        _customers,
        "@first", CALCULATE(MIN({F}[order_date]), REMOVEFILTERS(dim_date), {F}[is_cancelled] = FALSE())
    )
RETURN
    COUNTROWS(FILTER(_firsts, [@first] >= _periodStart))
""",
        INTEGER_FORMAT,
        "Customers",
        "Active customers whose first non-cancelled order falls in the period.",
    ),
    _m(
        "Customer Count",
        "dim_customer",
        "COUNTROWS(dim_customer)",
        INTEGER_FORMAT,
        "Customers",
        "Customers in the customer dimension.",
    ),
    # --- Time intelligence (needs the marked date table) ------------------
    _m(
        "Net Sales PY",
        F,
        "CALCULATE([Net Sales], SAMEPERIODLASTYEAR(dim_date[date]))",
        CURRENCY_FORMAT,
        "Time Intelligence",
        "Net sales in the same period one year earlier.",
    ),
    _m(
        "Net Sales PM",
        F,
        "CALCULATE([Net Sales], DATEADD(dim_date[date], -1, MONTH))",
        CURRENCY_FORMAT,
        "Time Intelligence",
        "Net sales in the period shifted one month back.",
    ),
    _m(
        "Data As Of",
        F,
        f"CALCULATE(MAX({F}[order_date]), REMOVEFILTERS())",
        "yyyy-mm-dd",
        "Time Intelligence",
        "Date of the last order in the data (all filters ignored).",
    ),
    _m(
        "First Order Date",
        F,
        f"CALCULATE(MIN({F}[order_date]), REMOVEFILTERS())",
        "yyyy-mm-dd",
        "Time Intelligence",
        "Date of the first order in the data (all filters ignored).",
    ),
    _m(
        "Sales YoY %",
        F,
        """
VAR _last = [Data As Of]
VAR _year = CALCULATE(MAX(dim_date[year]), KEEPFILTERS(dim_date[date] <= _last))
VAR _start = CALCULATE(MIN(dim_date[date]), KEEPFILTERS(dim_date[year] = _year))
VAR _end =
    CALCULATE(MAX(dim_date[date]), KEEPFILTERS(dim_date[year] = _year), KEEPFILTERS(dim_date[date] <= _last))
VAR _current = CALCULATE([Net Sales], DATESBETWEEN(dim_date[date], _start, _end))
VAR _previous = CALCULATE([Net Sales], DATESBETWEEN(dim_date[date], EDATE(_start, -12), EDATE(_end, -12)))
RETURN
    IF(EDATE(_start, -12) >= [First Order Date], DIVIDE(_current - _previous, _previous))
""",
        PERCENT_FORMAT,
        "Time Intelligence",
        "Growth of net sales in the latest year of the selection (up to the last order) against the "
        "same dates a year earlier; blank when that earlier period is not fully in the data.",
    ),
    _m(
        "YoY Period",
        F,
        """
VAR _last = [Data As Of]
VAR _year = CALCULATE(MAX(dim_date[year]), KEEPFILTERS(dim_date[date] <= _last))
VAR _start = CALCULATE(MIN(dim_date[date]), KEEPFILTERS(dim_date[year] = _year))
VAR _end =
    CALCULATE(MAX(dim_date[date]), KEEPFILTERS(dim_date[year] = _year), KEEPFILTERS(dim_date[date] <= _last))
RETURN
    FORMAT(_start, "yyyy-mm-dd") & " to " & FORMAT(_end, "yyyy-mm-dd") & " vs a year earlier"
""",
        TEXT_FORMAT,
        "Time Intelligence",
        "The period the Sales YoY % card compares (shown under the card).",
    ),
    _m(
        "Sales MoM %",
        F,
        """
VAR _last = [Data As Of]
VAR _lastComplete = IF(_last >= EOMONTH(_last, 0), _last, EOMONTH(_last, -1))
VAR _month = CALCULATE(MAX(dim_date[month_start]), KEEPFILTERS(dim_date[date] <= _lastComplete))
VAR _current = CALCULATE([Net Sales], DATESBETWEEN(dim_date[date], _month, EOMONTH(_month, 0)))
VAR _previous = CALCULATE([Net Sales], DATESBETWEEN(dim_date[date], EDATE(_month, -1), EOMONTH(_month, -1)))
RETURN
    IF(EDATE(_month, -1) >= [First Order Date], DIVIDE(_current - _previous, _previous))
""",
        PERCENT_FORMAT,
        "Time Intelligence",
        "Growth of net sales in the latest complete month of the selection against the month before; "
        "blank when either month is not complete in the data.",
    ),
    _m(
        "Net Sales YTD",
        F,
        "TOTALYTD([Net Sales], dim_date[date])",
        CURRENCY_FORMAT,
        "Time Intelligence",
        "Net sales from the start of the calendar year to the end of the period.",
    ),
    # --- Customer growth ledger -------------------------------------------
    _m(
        "Churned Customers",
        "customer_growth",
        "SUM(customer_growth[churned])",
        INTEGER_FORMAT,
        "Customer Growth",
        "Customers who became inactive in the period (see docs/reports.md).",
    ),
    _m(
        "Regained Customers",
        "customer_growth",
        "SUM(customer_growth[regained])",
        INTEGER_FORMAT,
        "Customer Growth",
        "Former customers who ordered again after a gap.",
    ),
    _m(
        "Retained Customers",
        "customer_growth",
        "SUM(customer_growth[retained])",
        INTEGER_FORMAT,
        "Customer Growth",
        "Customers who ordered again within the churn window.",
    ),
    _m(
        "New Customers (Ledger)",
        "customer_growth",
        "SUM(customer_growth[new])",
        INTEGER_FORMAT,
        "Customer Growth",
        "First-time customers, as counted by the growth ledger.",
    ),
    _m(
        "Quick Ratio",
        "customer_growth",
        """
VAR _gained = [New Customers (Ledger)] + [Regained Customers]
RETURN
    DIVIDE(_gained, [Churned Customers])
""",
        DECIMAL_FORMAT,
        "Customer Growth",
        "(New + regained) / churned customers; above 1 means the base is growing.",
    ),
    _m(
        "Loyalty Sales",
        "customer_summary",
        "SUM(customer_summary[net_sales])",
        CURRENCY_FORMAT,
        "Customers",
        "Net sales of the customers in the selected loyalty tiers (customer summary).",
    ),
    _m(
        "Orders in Band",
        "order_value_distribution",
        f"""
VAR _low = MIN(order_value_distribution[lower_bound])
VAR _high = MAX(order_value_distribution[upper_bound])
VAR _lines = CALCULATETABLE({F}, KEEPFILTERS({F}[is_cancelled] = FALSE()))
VAR _orders = GROUPBY(_lines, {F}[order_id], "@value", SUMX(CURRENTGROUP(), {F}[net_sales]))
RETURN
    COUNTROWS(FILTER(_orders, [@value] >= _low && (ISBLANK(_high) || [@value] < _high)))
""",
        INTEGER_FORMAT,
        "Orders",
        "Non-cancelled orders in the selection whose value (of the selected lines) falls in the band.",
    ),
    _m(
        "Last Order Date",
        F,
        f"CALCULATE(MAX({F}[order_date]), KEEPFILTERS({F}[is_cancelled] = FALSE()))",
        "yyyy-mm-dd",
        "Customers",
        "Date of the last non-cancelled order in the selection.",
    ),
    _m(
        "Sales Share",
        F,
        "DIVIDE([Net Sales], CALCULATE([Net Sales], ALLSELECTED(dim_geography)))",
        PERCENT_FORMAT,
        "Sales",
        "Share of the selection's net sales (e.g. a country's share of all selected countries).",
    ),
    _m(
        "ABC Class",
        F,
        """
VAR _sales = [Net Sales]
VAR _total = CALCULATE([Net Sales], ALLSELECTED(dim_product))
VAR _upTo =
    SUMX(
        FILTER(ALLSELECTED(dim_product[product_id]), CALCULATE([Net Sales]) >= _sales),
        CALCULATE([Net Sales])
    )
VAR _shareBefore = DIVIDE(_upTo - _sales, _total)
RETURN
    IF(
        NOT ISBLANK(_sales) && HASONEVALUE(dim_product[product_id]),
        IF(_shareBefore < 0.8, "A", IF(_shareBefore < 0.95, "B", "C"))
    )
""",
        TEXT_FORMAT,
        "Sales",
        "A: the top sellers that start within the first 80 % of the selection's net sales (ranked by net "
        "sales), B: within the next 15 %, C: the rest (as rpt.product_summary).",
    ),
    # --- Segments & predictions --------------------------------------------
    _m(
        "Segment Customers",
        "customer_segments",
        "COUNTROWS(customer_segments)",
        INTEGER_FORMAT,
        "Segments",
        "Customers in the selected segments.",
    ),
    _m(
        "Segment Sales",
        "customer_segments",
        "SUM(customer_segments[monetary])",
        CURRENCY_FORMAT,
        "Segments",
        "Historical net sales of the customers in the selected segments.",
    ),
    _m(
        "Predicted Sales",
        "customer_predictions",
        "SUM(customer_predictions[predicted_sales])",
        CURRENCY_FORMAT,
        "Predictions",
        "Predicted net sales over the prediction horizon.",
    ),
    _m(
        "Average Order Probability",
        "customer_predictions",
        "AVERAGE(customer_predictions[order_probability])",
        PERCENT_FORMAT,
        "Predictions",
        "Mean predicted probability that a customer orders within the horizon.",
    ),
    # --- Forecast (month grain: rpt.sales_forecast_monthly) ---------------
    _m(
        "Forecast Series",
        FM,
        """
VAR _country = ISFILTERED(dim_geography[country])
VAR _line = ISFILTERED(dim_product_line[product_line_name])
RETURN
    SWITCH(
        TRUE(),
        _country && _line, BLANK(),
        _country, IF(HASONEVALUE(dim_geography[country]), "country:" & VALUES(dim_geography[country])),
        _line,
            IF(
                HASONEVALUE(dim_product_line[product_line_id]),
                "product_line:" & VALUES(dim_product_line[product_line_id])
            ),
        "total"
    )
""",
        TEXT_FORMAT,
        "Forecast",
        "Which forecast series the selection shows: total, one country or one product line; blank when the "
        "selection has no forecast series of its own (several countries, or country and product line).",
    ),
    _m(
        "Forecast Sales",
        FM,
        f"""
VAR _series = [Forecast Series]
RETURN
    IF(
        NOT ISBLANK(_series),
        CALCULATE(
            SUM({FM}[forecast]),
            KEEPFILTERS({FM}[series_id] = _series),
            KEEPFILTERS({FM}[is_future] = TRUE()),
            KEEPFILTERS({FM}[is_complete] = TRUE())
        )
    )
""",
        CURRENCY_FORMAT,
        "Forecast",
        "Forecast net sales of the selected country or product line, else the whole company: complete "
        "future months only (a partial first or last month would read as a dip; see the forecast table).",
    ),
    *(_forecast_bound(side, level) for level in ("80", "95") for side in ("Lower", "Upper")),
    # --- Data quality (rpt.data_quality, from the run summary) ------------------------------------
    _m(
        "Rows Read",
        "data_quality",
        "SUM(data_quality[rows_read])",
        INTEGER_FORMAT,
        "Data Quality",
        "Source records read.",
    ),
    _m(
        "Rows Loaded",
        "data_quality",
        "SUM(data_quality[rows_loaded])",
        INTEGER_FORMAT,
        "Data Quality",
        "Source records loaded into the warehouse.",
    ),
    _m(
        "Rows Rejected",
        "data_quality",
        "SUM(data_quality[rows_rejected])",
        INTEGER_FORMAT,
        "Data Quality",
        "Source records rejected (see top_reject_reasons and audit.rejected_rows).",
    ),
    _m(
        "Rejected Share",
        "data_quality",
        "DIVIDE([Rows Rejected], [Rows Read])",
        PERCENT_FORMAT,
        "Data Quality",
        "Rejected records as a share of those read.",
    ),
    _m(
        "Last Refresh",
        "data_quality",
        "MAX(data_quality[generated_at])",
        "yyyy-mm-dd hh:nn",
        "Data Quality",
        "When the last run replaced the report tables (UTC).",
    ),
    _m(
        "Run Status",
        "data_quality",
        'SELECTEDVALUE(data_quality[run_status], "several runs")',
        TEXT_FORMAT,
        "Data Quality",
        "Status of the run that wrote the report tables: succeeded or succeeded_with_warnings.",
    ),
    _m(
        "Data Freshness",
        "data_quality",
        """
"Orders to " & FORMAT([Data As Of], "yyyy-mm-dd") & ", refreshed "
    & FORMAT(CALCULATE([Last Refresh], REMOVEFILTERS()), "yyyy-mm-dd hh:nn") & " UTC"
""",
        TEXT_FORMAT,
        "Data Quality",
        "Date of the last order in the data and when the report tables were last refreshed.",
    ),
)
RELATIONSHIPS: tuple[RelationshipSpec, ...] = (
    RelationshipSpec(F, "order_date", "dim_date", "date"),
    RelationshipSpec("sales_monthly", "month", "dim_date", "date"),
    RelationshipSpec("customer_growth", "month", "dim_date", "date"),
    RelationshipSpec("sales_forecast", "month_start", "dim_date", "date"),
    RelationshipSpec(FM, "month_start", "dim_date", "date"),
    RelationshipSpec("customer_summary", "customer_id", "dim_customer", "customer_id"),
    RelationshipSpec("customer_segments", "customer_id", "dim_customer", "customer_id"),
    RelationshipSpec("customer_predictions", "customer_id", "dim_customer", "customer_id"),
    RelationshipSpec("product_summary", "product_id", "dim_product", "product_id"),
    RelationshipSpec("product_line_summary", "product_line_id", "dim_product_line", "product_line_id"),
    RelationshipSpec("employee_performance", "employee_id", "dim_employee", "employee_id"),
)

SORTS: tuple[SortSpec, ...] = (
    SortSpec("dim_date", "month_name", "month"),
    SortSpec("dim_date", "month_short", "month"),
    SortSpec("dim_date", "year_month", "year_month_key"),
    SortSpec("dim_date", "year_month_label", "year_month_key"),
    SortSpec("dim_date", "quarter_label", "quarter"),
    SortSpec("dim_date", "day_name", "day_of_week"),
    SortSpec("dim_date", "day_short", "day_of_week"),
    SortSpec("order_value_distribution", "bin_label", "bin_number"),
    SortSpec("segment_summary", "segment", "segment_order"),
)


# --- Row-level security ---------------------------------------------------------------------
#: the signed-in user's employee row, by e-mail (Power BI Service: the UPN is the work e-mail).
#: A user who is no employee gets BLANK, and ``column = BLANK()`` would be true for rows whose
#: column is empty (customers without a rep): hence NOT ISBLANK and the strict ``==``.
def _mine(column: str, employee_column: str) -> str:
    return (
        f"VAR _me = LOOKUPVALUE({employee_column}, dim_employee[email], USERPRINCIPALNAME()) "
        f"RETURN NOT ISBLANK(_me) && {column} == _me"
    )


#: company-wide aggregates a restricted role must not see (they are not filtered by customer/office)
COMPANY_WIDE = (
    "sales_monthly",
    "customer_growth",
    "location_summary",
    "product_summary",
    "product_line_summary",
    "employee_performance",
    "segment_summary",
    "insights",
    "sales_forecast",
    "sales_forecast_monthly",
    "forecast_accuracy",
)
ROLES: tuple[RoleSpec, ...] = (
    RoleSpec(
        "Sales Rep",
        "A sales rep sees the customers they manage (dim_customer.sales_rep_id = their employee id, "
        "found by dim_employee.email = USERPRINCIPALNAME()) and their orders; company-wide tables "
        "are hidden.",
        (
            ("dim_customer", _mine("dim_customer[sales_rep_id]", "dim_employee[employee_id]")),
            *((t, "FALSE()") for t in COMPANY_WIDE),
        ),
    ),
    RoleSpec(
        "Office Manager",
        "An office manager sees their office (dim_employee.office_id of their e-mail): its orders and the "
        "customers of its reps; company-wide tables are hidden.",
        (
            ("dim_office", _mine("dim_office[office_id]", "dim_employee[office_id]")),
            ("dim_customer", _mine("dim_customer[office_id]", "dim_employee[office_id]")),
            *((t, "FALSE()") for t in COMPANY_WIDE),
        ),
    ),
)
