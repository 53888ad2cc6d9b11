"""``rpt.insights``: ranked, template-driven plain-English findings with their numbers and actions.

Every finding comes from a fixed template filled with figures from the report tables (and the
segmentation, prediction and forecast tables when present), so the same data always give the
same text.  ``render_insights_markdown`` turns the table into ``<out>/insights.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from salesbi.reports.measures import add_months
from salesbi.reports.params import ReportParams
from salesbi.reports.tables import INSIGHTS
from salesbi.types import conform

QUESTIONS: dict[str, str] = {
    "completeness": "How complete is the data behind these figures?",
    "trend": "How is the business moving month by month?",
    "customers": "Which top customers should join the loyalty program?",
    "locations": "Which locations sell most, and where should we invest?",
    "products": "Which products sell most and earn most?",
    "employees": "Which employees worked hardest (reward program)?",
    "segments": "Which customer groups need what attention?",
    "forecast": "What do we expect next?",
    "data": "What should you know about the data behind these figures?",
}
TOPIC_TITLES: dict[str, str] = {
    "completeness": "Data completeness",
    "trend": "Trend",
    "customers": "Customers",
    "locations": "Locations",
    "products": "Products",
    "employees": "Employees",
    "segments": "Segments",
    "forecast": "Forecast",
    "data": "Data",
}


@dataclass
class Finding:
    """One insight before ranking: ``priority`` orders findings (lower first), ties by ``insight_id``."""

    insight_id: str
    topic: str
    priority: int
    finding: str
    action: str | None
    metric_name: str
    metric_value: float | None
    metric_format: str
    details: dict[str, Any] = field(default_factory=dict)


def money(value: float | None) -> str:
    """Return an amount as '1,234,567' (no currency: sources do not state one)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.0f}"


def pct(value: float | None, digits: int = 1) -> str:
    """Return a fraction as a percentage, e.g. 0.382 → '38.2%'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.{digits}f}%"


def signed_pct(value: float) -> str:
    """Return a growth fraction as 'up 12.3%' or 'down 4.0%'."""
    return f"up {pct(value)}" if value >= 0 else f"down {pct(-value)}"


def names_list(names: list[str], limit: int = 5) -> str:
    """Return 'A, B and C' (at most ``limit`` names, then 'and N more')."""
    names = [str(n) for n in names]
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _num(value: Any) -> float | None:
    """Return ``value`` as a float, or None when null."""
    if value is None or value is pd.NA:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _clean(details: dict[str, Any]) -> dict[str, Any]:
    """Return ``details`` with JSON-safe values (nulls for NaN, rounded floats, dates as text)."""
    out: dict[str, Any] = {}
    for k, v in details.items():
        if isinstance(v, list):
            out[k] = [_clean({"v": x})["v"] for x in v]
        elif isinstance(v, (date, pd.Timestamp)):
            out[k] = pd.Timestamp(v).date().isoformat()
        elif isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, (int, np.integer)):
            out[k] = int(v)
        elif isinstance(v, (float, np.floating)) or v is pd.NA or v is None:
            n = _num(v)
            out[k] = None if n is None else round(n, 6)
        else:
            out[k] = str(v)
    return out


def _as_of(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> date:
    """Return the as-of date: the parameter, else customer_summary's, else the day after the last order."""
    if params.as_of is not None:
        return params.as_of
    cs = tables.get("customer_summary")
    if cs is not None and len(cs):
        return pd.Timestamp(cs["as_of_date"].iloc[0]).date()
    fact = tables.get("fact_order_lines")
    if fact is not None and len(fact):
        return pd.Timestamp(fact["order_date"].max()).date() + timedelta(days=1)
    return date(1970, 1, 1)


def _profit_known(tables: Mapping[str, pd.DataFrame]) -> bool:
    """Return whether product cost is known for the products that sold."""
    ps = tables.get("product_summary")
    if ps is None or not len(ps):
        return False
    sold = ps[ps["net_sales"] != 0]
    return bool(len(sold)) and bool(sold["gross_profit"].notna().all())


def trend_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return findings on the last complete month, the last three months and the customer ledger."""
    sm = tables.get("sales_monthly")
    if sm is None or not len(sm):
        return []
    out: list[Finding] = []
    complete = sm[sm["is_complete"].fillna(False).astype(bool)].reset_index(drop=True)
    by_month = {pd.Timestamp(m).date(): float(v) for m, v in zip(sm["month"], sm["net_sales"], strict=True)}
    n_complete = len(complete)
    if n_complete == 0:
        return out
    last = complete.iloc[-1]
    last_month = pd.Timestamp(last["month"]).date()
    label = pd.Timestamp(last_month).strftime("%B %Y")
    year_before = add_months(last_month, -12)
    if year_before in by_month and by_month[year_before] > 0:
        g = float(last["net_sales"]) / by_month[year_before] - 1
        out.append(
            Finding(
                "trend.last_month_yoy",
                "trend",
                10,
                f"{label} net sales were {money(last['net_sales'])}, {signed_pct(g)} on "
                f"{pd.Timestamp(year_before).strftime('%B %Y')} ({money(by_month[year_before])}), "
                f"from {int(last['orders'])} orders and {int(last['active_customers'])} active customers.",
                "Review what drove the change with the sales team before planning next month's targets."
                if g >= 0
                else "Find which customers and product lines fell short and plan win-back calls this month.",
                "last_month_yoy_growth",
                g,
                "percent",
                {
                    "month": last_month,
                    "net_sales": last["net_sales"],
                    "same_month_last_year": by_month[year_before],
                    "orders": last["orders"],
                },
            )
        )
    else:
        out.append(
            Finding(
                "trend.thin_history",
                "trend",
                10,
                f"There are only {n_complete} complete months of data (through {label}), so there is no "
                f"same month last year to compare with; {label} net sales were {money(last['net_sales'])}.",
                "Read month-over-month changes with care until a full year of history is loaded.",
                "complete_months",
                float(n_complete),
                "count",
                {"complete_months": n_complete, "month": last_month, "net_sales": last["net_sales"]},
            )
        )
    if n_complete >= 3:
        last3 = complete.iloc[-3:]
        months3 = [pd.Timestamp(m).date() for m in last3["month"]]
        cur = float(last3["net_sales"].sum())
        prior_months = [add_months(m, -12) for m in months3]
        period = f"{pd.Timestamp(months3[0]).strftime('%b %Y')}–{pd.Timestamp(months3[-1]).strftime('%b %Y')}"
        if all(m in by_month for m in prior_months) and sum(by_month[m] for m in prior_months) > 0:
            base = sum(by_month[m] for m in prior_months)
            g = cur / base - 1
            text = (
                f"The last three complete months ({period}) brought {money(cur)}, {signed_pct(g)} on the "
                f"same months a year earlier ({money(base)})."
            )
            name = "last_3_months_yoy_growth"
        else:
            before = [add_months(months3[0], -i) for i in (3, 2, 1)]
            if not all(m in by_month for m in before) or sum(by_month[m] for m in before) <= 0:
                return out + _ledger_findings(tables, params)
            base = sum(by_month[m] for m in before)
            g = cur / base - 1
            text = (
                f"The last three complete months ({period}) brought {money(cur)}, {signed_pct(g)} on the "
                f"three months before ({money(base)}); there is not enough history for a year-over-year "
                "comparison."
            )
            name = "last_3_months_growth"
        out.append(
            Finding(
                "trend.last_3_months",
                "trend",
                11,
                text,
                "Keep the current plan and push the growing lines."
                if g >= 0
                else (
                    "Treat the decline as a priority in the next sales meeting: check pipeline, pricing and "
                    "lapsed accounts."
                ),
                name,
                g,
                "percent",
                {"months": [m.isoformat() for m in months3], "net_sales": cur, "comparison_sales": base},
            )
        )
    return out + _ledger_findings(tables, params)


def _ledger_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return the customer-ledger finding over the last three complete months."""
    cg = tables.get("customer_growth")
    if cg is None or not len(cg):
        return []
    done = cg[cg["is_complete"].fillna(False).astype(bool)].tail(3)
    if not len(done):
        return []
    new, regained, churned = int(done["new"].sum()), int(done["regained"].sum()), int(done["churned"].sum())
    ratio = (new + regained) / churned if churned else None
    n = params.churn_months
    ratio_text = f"a quick ratio of {ratio:.2f}" if ratio is not None else "no churn"
    text = (
        f"Over the last {len(done)} complete months you gained {new} new and won back {regained} lapsed "
        f"customers while {churned} stopped ordering (no order for {n} months): {ratio_text}."
    )
    if new == 0 and (ratio is None or ratio >= 1):
        who = "for each sales channel" if no_rep_reason(tables) else "for each sales rep"
        action = f"No new customers in this period: set a prospecting target {who}."
    else:
        action = (
            "More customers are leaving than arriving: run a win-back campaign for customers silent for "
            f"{n}+ months."
            if ratio is not None and ratio < 1
            else (
                "The customer base is growing: keep onboarding new accounts and follow up after their "
                "first order."
            )
        )
    return [
        Finding(
            "trend.customer_ledger",
            "trend",
            12,
            text,
            action,
            "quick_ratio",
            ratio,
            "ratio",
            {"new": new, "regained": regained, "churned": churned, "months": len(done), "churn_months": n},
        )
    ]


def completeness_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return the run's completeness (read, loaded, rejected, top reasons) — ranked before any figure.

    Reads ``run_completeness`` (``salesbi.completeness.Completeness.frame()``), present when the run
    ingested; nothing otherwise.
    """
    rc = tables.get("run_completeness")
    if rc is None or not len(rc):
        return []
    out: list[Finding] = []
    present = rc[~rc["level"].isin(["absent"])]
    flagged = present[present["level"].isin(["warn", "fail"])]
    rejected = int(present["rows_rejected"].sum())
    read = int(present["rows_read"].sum())
    if not len(flagged):
        text = f"All {len(present)} tables of the source loaded in full: {read:,} rows read, " + (
            f"{rejected:,} rejected (each table under its warning limit)." if rejected else "none rejected."
        )
        out.append(
            Finding(
                "completeness.summary",
                "completeness",
                0,
                text,
                None,
                "rows_rejected",
                float(rejected),
                "count",
                {"rows_read": read, "rows_rejected": rejected},
            )
        )
    for i, row in enumerate(flagged.itertuples()):
        share = float(row.rejected_share)
        reasons = f" Top reasons: {row.top_reasons}." if row.top_reasons else ""
        limit = row.fail_above if row.level == "fail" else row.warn_above
        word = "fail" if row.level == "fail" else "warning"
        out.append(
            Finding(
                f"completeness.{row.table_name}",
                "completeness",
                1 + i,
                f"Only {int(row.rows_loaded):,} of {int(row.rows_read):,} {row.table_name} rows loaded: "
                f"{int(row.rows_rejected):,} ({pct(share, 2)}) were rejected, above the {word} limit of "
                f"{pct(float(limit), 0)}.{reasons} Every figure below covers only the loaded rows.",
                "Fix the rejected rows listed in validation.md (or get the complete extract), then re-run "
                "before acting on these figures.",
                "rejected_share",
                share,
                "percent",
                {"table": row.table_name, "read": int(row.rows_read), "rejected": int(row.rows_rejected)},
            )
        )
    absent = rc[rc["level"] == "absent"]
    if len(absent):
        names = names_list(absent["table_name"].tolist())
        why = "; ".join(f"{r.table_name}: {r.absent_reason}" for r in absent.itertuples())
        out.append(
            Finding(
                "completeness.absent_tables",
                "completeness",
                9,
                f"The source has no {names} data ({why}).",
                None,
                "absent_tables",
                float(len(absent)),
                "count",
                {"tables": absent["table_name"].tolist()},
            )
        )
    return out


def returns_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return gross sales, returns and net sales when the data has returns (credit-note lines).

    A return is a line with a negative quantity on a cancelled order (``status`` cancelled,
    ``is_cancelled`` false in the fact): it nets off sales.
    """
    fact = tables.get("fact_order_lines")
    if fact is None or not len(fact):
        return []
    kept = ~fact["is_cancelled"].astype(bool).to_numpy()
    is_return = kept & (fact["status"] == "cancelled").to_numpy(dtype=bool, na_value=False)
    if not is_return.any():
        return []
    sales = fact["net_sales"].to_numpy(dtype="float64", na_value=0.0)
    returns = -float(sales[is_return].sum())
    gross = float(sales[kept & ~is_return].sum())
    net = gross - returns
    share = returns / gross if gross else None
    return [
        Finding(
            "trend.returns",
            "trend",
            9,
            f"Gross sales were {money(gross)}; returns (credit notes) took back {money(returns)}"
            f"{f' ({pct(share)})' if share is not None else ''}, leaving net sales of {money(net)}. "
            "Every net figure in this report is after returns.",
            "Review the most returned products and customers before the next order round."
            if share is not None and share > 0.05
            else None,
            "returns",
            returns,
            "money",
            {"gross_sales": gross, "returns": returns, "net_sales": net},
        )
    ]


def no_rep_reason(tables: Mapping[str, pd.DataFrame]) -> str | None:
    """Return why there is no sales-rep data (None when orders are credited to reps)."""
    rc = tables.get("run_completeness")
    if rc is not None and len(rc):
        hit = rc[(rc["table_name"] == "employees") & (rc["level"] == "absent")]
        if len(hit):
            return f"the source has no sales reps ({hit['absent_reason'].iloc[0]})"
    de = tables.get("dim_employee")
    if de is not None and not len(de):
        return "the source has no employees"
    ep = tables.get("employee_performance")
    if ep is not None and (not len(ep) or float(ep["net_sales"].fillna(0).sum()) <= 0):
        return "no order is credited to a sales rep"
    return None


def _callers(tables: Mapping[str, pd.DataFrame]) -> str:
    """Return who calls customers in an action: 'their sales reps', or 'their account owners'."""
    return "their account owners" if no_rep_reason(tables) else "their sales reps"


def customer_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return findings on top customers, loyalty tiers and lapsed valuable customers."""
    cs = tables.get("customer_summary")
    if cs is None or not len(cs):
        return []
    out: list[Finding] = []
    buyers = cs[cs["net_sales"] > 0].sort_values("sales_rank", kind="stable")
    total = float(buyers["net_sales"].sum())
    if not len(buyers) or total <= 0:
        return out
    n = min(params.top_n, len(buyers))
    top = buyers.head(n)
    share = float(top["net_sales"].sum()) / total
    lapsed = top[top["recency_days"].fillna(0) >= params.lapsed_days]
    lapsed_names = lapsed["customer_name"].fillna(lapsed["customer_id"]).tolist()
    if len(lapsed):
        verb = "has" if len(lapsed) == 1 else "have"
        tail = (
            f"; {len(lapsed)} of them {verb} not ordered for {params.lapsed_days}+ days "
            f"({names_list(lapsed_names)})"
        )
        action = (
            f"Enrol the top {n} in the loyalty program, and have {_callers(tables)} call "
            f"{names_list(lapsed_names)} this week."
        )
    else:
        tail = f"; all of them ordered in the last {params.lapsed_days} days"
        action = f"Enrol the top {n} customers in the loyalty program and review their terms every quarter."
    out.append(
        Finding(
            "customers.top_share",
            "customers",
            20,
            f"Your top {n} customers bring {pct(share)} of net sales "
            f"({money(float(top['net_sales'].sum()))}){tail}.",
            action,
            "top_n_sales_share",
            share,
            "percent",
            {
                "top_n": n,
                "top_n_sales": float(top["net_sales"].sum()),
                "total_sales": total,
                "lapsed_top_customers": len(lapsed),
                "top_customers": top["customer_name"].fillna(top["customer_id"]).tolist(),
            },
        )
    )
    first = buyers.iloc[0]
    first_share = float(first["net_sales"]) / total
    if first_share >= 0.10:
        out.append(
            Finding(
                "customers.concentration",
                "customers",
                24,
                f"One customer, {first['customer_name']}, alone brings {pct(first_share)} of net sales "
                f"({money(first['net_sales'])}).",
                "Give this account a named senior contact and a retention plan; losing it would hit sales "
                "hard.",
                "largest_customer_share",
                first_share,
                "percent",
                {"customer_id": first["customer_id"], "net_sales": first["net_sales"]},
            )
        )
    tiers = buyers["loyalty_tier"].value_counts()
    plat = int(tiers.get("Platinum", 0))
    gold = int(tiers.get("Gold", 0))
    out.append(
        Finding(
            "customers.loyalty_tiers",
            "customers",
            22,
            f"{plat} Platinum customers ({pct(plat / len(buyers))} of the {len(buyers)} buying customers) "
            f"make the first {pct(params.platinum_share, 0)} of net sales; {gold} Gold customers the next "
            f"{pct(params.gold_share, 0)}.",
            "Offer Platinum customers the top loyalty benefits (account manager, best terms) and Gold "
            "customers a path to Platinum.",
            "platinum_customers",
            float(plat),
            "count",
            {
                "platinum": plat,
                "gold": gold,
                "silver": int(tiers.get("Silver", 0)),
                "bronze": int(tiers.get("Bronze", 0)),
            },
        )
    )
    valuable = buyers[buyers["loyalty_tier"].isin(["Platinum", "Gold"]) & buyers["is_lapsed"].fillna(False)]
    if len(valuable):
        lost_sales = float(valuable["sales_last_12m"].fillna(0).sum() if "sales_last_12m" in valuable else 0)
        out.append(
            Finding(
                "customers.lapsed_valuable",
                "customers",
                23,
                f"{len(valuable)} Platinum or Gold "
                f"{'customer has' if len(valuable) == 1 else 'customers have'} not ordered for "
                f"{params.lapsed_days}+ days "
                f"({names_list(valuable['customer_name'].fillna(valuable['customer_id']).tolist())}); they "
                f"bought {money(float(valuable['net_sales'].sum()))} in total.",
                f"Ask {_callers(tables)} for a call within two weeks and a tailored offer.",
                "lapsed_valuable_customers",
                float(len(valuable)),
                "count",
                {
                    "customers": len(valuable),
                    "their_sales": float(valuable["net_sales"].sum()),
                    "sales_last_12m": lost_sales,
                },
            )
        )
    return out


def _region_findings(ls: pd.DataFrame) -> list[Finding]:
    """Return the top state/region and the top city (levels ``state`` and ``city`` of location_summary)."""
    out: list[Finding] = []
    for level, noun, priority in (("state", "state or region", 33), ("city", "city", 34)):
        rows = ls[ls["level"] == level].sort_values("sales_rank", kind="stable")
        rows = rows[(rows["net_sales"] > 0) & ~rows["location_name"].astype("string").str.startswith("(")]
        if len(rows) < 2:
            continue  # one state (or city) only says nothing a country does not
        top = rows.iloc[0]
        out.append(
            Finding(
                f"locations.top_{level}",
                "locations",
                priority,
                f"The top {noun} is {top['location_name']}: {money(top['net_sales'])} "
                f"({pct(_num(top['sales_share']))} of the sales of customers with a {noun}) from "
                f"{int(top['customers'])} customers; next: "
                f"{names_list(rows.iloc[1:4]['location_name'].tolist())}.",
                f"Check coverage and delivery in {top['location_name']} before opening new {noun} markets.",
                f"top_{level}_share",
                _num(top["sales_share"]),
                "percent",
                {"location": top["location_name"], "net_sales": top["net_sales"], "level": level},
            )
        )
    return out


def location_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return findings on the top country, the top office and the fastest-growing country."""
    ls = tables.get("location_summary")
    if ls is None or not len(ls):
        return []
    out: list[Finding] = []
    countries = ls[ls["level"] == "country"].sort_values("sales_rank", kind="stable")
    if len(countries) and float(countries["net_sales"].sum()) > 0:
        top = countries.iloc[0]
        top3 = float(countries.head(3)["sales_share"].sum())
        margin = _num(top["margin"])
        margin_text = f" at a {pct(margin)} margin" if margin is not None else ""
        out.append(
            Finding(
                "locations.top_country",
                "locations",
                30,
                f"{top['location_name']} is the largest market: {money(top['net_sales'])} "
                f"({pct(_num(top['sales_share']))} of net sales){margin_text} from {int(top['customers'])} "
                f"customers; the top 3 countries ({names_list(countries.head(3)['location_name'].tolist())}) "
                f"bring {pct(top3)}.",
                f"Keep investing in {top['location_name']}; compare customers per country to find "
                "under-served markets.",
                "top_country_share",
                _num(top["sales_share"]),
                "percent",
                {
                    "country": top["location_name"],
                    "net_sales": top["net_sales"],
                    "customers": top["customers"],
                    "top3_share": top3,
                },
            )
        )
        grown = countries[(countries["sales_prior_12m"].fillna(0) > 0) & countries["yoy_growth"].notna()]
        big = grown[grown["sales_prior_12m"] >= 0.02 * float(countries["sales_prior_12m"].fillna(0).sum())]
        if len(big):
            best = big.sort_values(
                ["yoy_growth", "location_key"], ascending=[False, True], kind="stable"
            ).iloc[0]
            worst = big.sort_values(
                ["yoy_growth", "location_key"], ascending=[True, True], kind="stable"
            ).iloc[0]
            out.append(
                Finding(
                    "locations.growth",
                    "locations",
                    32,
                    f"Over the last 12 months {best['location_name']} grew most "
                    f"({signed_pct(float(best['yoy_growth']))}, {money(best['sales_last_12m'])} vs "
                    f"{money(best['sales_prior_12m'])}); {worst['location_name']} changed least "
                    f"({signed_pct(float(worst['yoy_growth']))}).",
                    f"Back the momentum in {best['location_name']} and review the pipeline in "
                    f"{worst['location_name']}.",
                    "best_country_yoy_growth",
                    float(best["yoy_growth"]),
                    "percent",
                    {
                        "best": best["location_name"],
                        "best_growth": best["yoy_growth"],
                        "worst": worst["location_name"],
                        "worst_growth": worst["yoy_growth"],
                    },
                )
            )
    out += _region_findings(ls)
    offices = ls[ls["level"] == "office"].sort_values("sales_rank", kind="stable")
    if len(offices) and float(offices["net_sales"].sum()) > 0:
        top = offices.iloc[0]
        out.append(
            Finding(
                "locations.top_office",
                "locations",
                31,
                f"The {top['location_name']} office sells most: {money(top['net_sales'])} "
                f"({pct(_num(top['sales_share']))} of net sales, {int(top['orders'])} orders).",
                f"Use the {top['location_name']} office's practices as the benchmark for the other offices.",
                "top_office_share",
                _num(top["sales_share"]),
                "percent",
                {
                    "office": top["location_name"],
                    "office_id": top["location_key"],
                    "net_sales": top["net_sales"],
                },
            )
        )
    return out


def product_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return findings on the top product line, ABC concentration and margins (or their absence)."""
    out: list[Finding] = []
    known = _profit_known(tables)
    pls = tables.get("product_line_summary")
    if pls is not None and len(pls) and float(pls["net_sales"].sum()) > 0:
        lines = pls.sort_values("sales_rank", kind="stable")
        top = lines.iloc[0]
        margin = _num(top["margin"])
        margin_text = (
            f" at a {pct(margin)} margin" if margin is not None else " (margin unknown: no product cost)"
        )
        out.append(
            Finding(
                "products.top_line",
                "products",
                40,
                f"{top['product_line_name']} is the top product line with {money(top['net_sales'])} "
                f"({pct(_num(top['sales_share']))} of net sales){margin_text}.",
                f"Protect stock and supplier terms for {top['product_line_name']}.",
                "top_line_share",
                _num(top["sales_share"]),
                "percent",
                {
                    "product_line": top["product_line_name"],
                    "net_sales": top["net_sales"],
                    "margin": top["margin"],
                },
            )
        )
        with_margin = lines[lines["margin"].notna() & (lines["net_sales"] > 0)]
        if known and len(with_margin) >= 2:
            hi = with_margin.sort_values(
                ["margin", "product_line_id"], ascending=[False, True], kind="stable"
            ).iloc[0]
            lo = with_margin.sort_values(
                ["margin", "product_line_id"], ascending=[True, True], kind="stable"
            ).iloc[0]
            out.append(
                Finding(
                    "products.margins",
                    "products",
                    42,
                    f"{hi['product_line_name']} earns the highest margin ({pct(_num(hi['margin']))}) and "
                    f"{lo['product_line_name']} the lowest ({pct(_num(lo['margin']))}).",
                    f"Promote {hi['product_line_name']}; review prices or supplier costs in "
                    f"{lo['product_line_name']}.",
                    "margin_spread",
                    float(hi["margin"]) - float(lo["margin"]),
                    "percent",
                    {
                        "highest": hi["product_line_name"],
                        "highest_margin": hi["margin"],
                        "lowest": lo["product_line_name"],
                        "lowest_margin": lo["margin"],
                    },
                )
            )
    ps = tables.get("product_summary")
    if ps is not None and len(ps) and float(ps["net_sales"].sum()) > 0:
        sold = ps[ps["net_sales"] > 0]
        a = sold[sold["abc_class"] == "A"]
        out.append(
            Finding(
                "products.abc",
                "products",
                41,
                f"{len(a)} of {len(sold)} products sold ({pct(len(a) / len(sold))}) make "
                f"{pct(params.abc_a_share, 0)} of net sales (class A); top seller: "
                f"{sold.sort_values('sales_rank').iloc[0]['product_name']}.",
                "Never run out of class A products; review class C products for discontinuation or bundling.",
                "class_a_products",
                float(len(a)),
                "count",
                {
                    "class_a": len(a),
                    "products_sold": len(sold),
                    "class_c": int((sold["abc_class"] == "C").sum()),
                },
            )
        )
        if known:
            best = sold[sold["profit_rank"].notna()].sort_values("profit_rank", kind="stable")
            if len(best):
                b = best.iloc[0]
                out.append(
                    Finding(
                        "products.top_profit",
                        "products",
                        43,
                        f"The most profitable product is {b['product_name']}: {money(b['gross_profit'])} "
                        f"gross profit on {money(b['net_sales'])} of sales ({pct(_num(b['margin']))} "
                        "margin).",
                        f"Feature {b['product_name']} in campaigns and keep it in stock.",
                        "top_product_profit",
                        _num(b["gross_profit"]),
                        "money",
                        {
                            "product_id": b["product_id"],
                            "gross_profit": b["gross_profit"],
                            "net_sales": b["net_sales"],
                        },
                    )
                )
    if ps is not None and len(ps) and not known:
        out.append(
            Finding(
                "data.no_cost",
                "data",
                90,
                "Profit and margins are shown as blank, not zero: the source data has no product cost, so "
                "profit cannot be computed.",
                "Add a unit cost per product to the source (the products file) to see profitability.",
                "products_without_cost",
                float(ps["cost"].isna().sum()),
                "count",
                {"products_without_cost": int(ps["cost"].isna().sum())},
            )
        )
    return out


def employee_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return findings on the top sales rep, the reward tiers and the fastest grower."""
    ep = tables.get("employee_performance")
    reason = no_rep_reason(tables)
    if reason and tables.get("fact_order_lines") is not None:
        return [
            Finding(
                "employees.no_reps",
                "employees",
                50,
                f"There is no sales-rep or office data: {reason}, so there is no employee ranking or "
                "reward tier; customer actions name the account owner instead.",
                None,
                "employees_with_sales",
                0.0,
                "count",
                {"reason": reason},
            )
        ]
    if ep is None or not len(ep) or float(ep["net_sales"].sum()) <= 0:
        return []
    reps = ep.sort_values("rank_overall", kind="stable")
    top = reps.iloc[0]
    gold = reps[reps["reward_tier"] == "Gold"]
    out = [
        Finding(
            "employees.top_rep",
            "employees",
            50,
            f"{top['employee_name']} ({top['office_name']}) is the top sales rep: {money(top['net_sales'])} "
            f"({pct(_num(top['sales_share']))} of net sales) from {int(top['orders'])} orders with "
            f"{int(top['customers_served'])} customers. Gold reward tier: "
            f"{names_list(gold['employee_name'].tolist())}.",
            f"Reward the Gold tier ({len(gold)} reps) and ask {top['employee_name']} to share what works.",
            "top_rep_share",
            _num(top["sales_share"]),
            "percent",
            {
                "employee_id": top["employee_id"],
                "net_sales": top["net_sales"],
                "gold_reps": gold["employee_name"].tolist(),
            },
        )
    ]
    grown = reps[reps["yoy_growth"].notna() & (reps["sales_prior_12m"].fillna(0) > 0)]
    if len(grown):
        g = grown.sort_values(["yoy_growth", "employee_id"], ascending=[False, True], kind="stable").iloc[0]
        out.append(
            Finding(
                "employees.growth",
                "employees",
                51,
                f"{g['employee_name']} grew sales most over the last 12 months: "
                f"{signed_pct(float(g['yoy_growth']))} ({money(g['sales_last_12m'])} vs "
                f"{money(g['sales_prior_12m'])}).",
                f"Recognise {g['employee_name']}'s growth in the reward program alongside total sales.",
                "best_rep_yoy_growth",
                float(g["yoy_growth"]),
                "percent",
                {
                    "employee_id": g["employee_id"],
                    "sales_last_12m": g["sales_last_12m"],
                    "sales_prior_12m": g["sales_prior_12m"],
                },
            )
        )
    return out


def champion_words(avg_frequency: float | None) -> str:
    """Return how Champions are described: never "frequent" when they ordered once on average."""
    if avg_frequency is None:
        return "recent, high-spending"
    if avg_frequency <= 1.0:
        return "recent, high-spending one-time buyers"
    return f"recent, frequent, high-spending: {avg_frequency:.1f} orders each on average"


def one_time_buyer_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return how many buying customers ordered exactly once (one-time buyers) and their sales share."""
    cs = tables.get("customer_summary")
    if cs is None or not len(cs) or "orders" not in cs.columns:
        return []
    buyers = cs[cs["orders"].fillna(0) > 0]
    once = buyers[buyers["orders"] == 1]
    if not len(buyers) or not len(once):
        return []
    total = float(buyers["net_sales"].sum())
    share = float(once["net_sales"].sum()) / total if total > 0 else None
    everyone = len(once) == len(buyers)
    text = (
        f"Every one of the {len(buyers)} buying customers ordered exactly once (one-time buyers): "
        "there is no repeat purchase yet to measure loyalty or frequency on."
        if everyone
        else f"{len(once)} of the {len(buyers)} buying customers ({pct(len(once) / len(buyers))}) are "
        f"one-time buyers (a single order)"
        + (f"; they made {pct(share)} of net sales." if share is not None else ".")
    )
    return [
        Finding(
            "segments.one_time_buyers",
            "segments",
            62,
            text,
            "Follow up one-time buyers after their first order with a second-purchase offer.",
            "one_time_buyers",
            float(len(once)),
            "count",
            {"one_time_buyers": len(once), "buyers": len(buyers), "sales_share": share},
        )
    ]


def segment_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return findings from ``segment_summary`` / ``customer_segments`` when they are present."""
    out: list[Finding] = []
    ss = tables.get("segment_summary")
    if ss is not None and len(ss) and {"segment", "customers", "sales_share"} <= set(ss.columns):
        risky = ss[ss["segment"].isin(["At Risk", "Can't Lose Them", "About to Sleep"])]
        champs = ss[ss["segment"] == "Champions"]
        if len(risky) and int(risky["customers"].sum()) > 0:
            n = int(risky["customers"].sum())
            share = float(risky["sales_share"].fillna(0).sum())
            out.append(
                Finding(
                    "segments.at_risk",
                    "segments",
                    60,
                    f"{n} customers are in the At Risk, Can't Lose Them or About to Sleep segments; they "
                    f"made {pct(share)} of net sales.",
                    "Work through the call list in customer_segments (highest action priority first).",
                    "at_risk_sales_share",
                    share,
                    "percent",
                    {"customers": n, "segments": risky["segment"].tolist()},
                )
            )
        if len(champs):
            c = champs.iloc[0]
            out.append(
                Finding(
                    "segments.champions",
                    "segments",
                    61,
                    f"{int(c['customers'])} Champions ({champion_words(_num(c.get('avg_frequency')))}) make "
                    f"{pct(_num(c['sales_share']))} of net sales.",
                    "Invite Champions to the loyalty program first and ask them for referrals.",
                    "champions_sales_share",
                    _num(c["sales_share"]),
                    "percent",
                    {"customers": c["customers"]},
                )
            )
    cp = tables.get("customer_predictions")
    if cp is not None and len(cp) and {"predicted_sales", "horizon_days"} <= set(cp.columns):
        expected = float(cp["predicted_sales"].fillna(0).sum())
        horizon = int(cp["horizon_days"].iloc[0])
        high = cp[cp["churn_risk"] == "high"] if "churn_risk" in cp.columns else cp.iloc[0:0]
        at_stake = (
            float(high["avg_window_sales"].fillna(0).sum()) if "avg_window_sales" in high.columns else 0.0
        )
        out.append(
            Finding(
                "forecast.customer_predictions",
                "forecast",
                70,
                f"Customers are expected to buy {money(expected)} in the next {horizon} days; {len(high)} "
                f"customers have a high churn risk (usually {money(at_stake)} per {horizon} days together).",
                f"Have {'account owners' if no_rep_reason(tables) else 'reps'} contact the high-risk "
                "customers listed in customer_predictions before the window ends.",
                "expected_customer_sales",
                expected,
                "money",
                {"horizon_days": horizon, "high_risk_customers": len(high), "at_stake": at_stake},
            )
        )
    return out


PERIOD_NOUNS: dict[str, str] = {"D": "day", "W": "week", "M": "month"}
YEAR_BACK: dict[str, pd.DateOffset] = {
    "D": pd.DateOffset(days=364),
    "W": pd.DateOffset(weeks=52),
    "M": pd.DateOffset(months=12),
}
MODEL_LABELS: dict[str, str] = {
    "lightgbm": "LightGBM",
    "seasonal_naive": "seasonal naive",
    "ets_damped": "damped ETS",
    "theta": "Theta",
}


def _period_label(day: pd.Timestamp, frequency: str) -> str:
    """Return a forecast period as text: 'June 2025', 'the week of 02 Jun 2025' or '02 Jun 2025'."""
    if frequency == "M":
        return f"{day:%B %Y}"
    if frequency == "W":
        return f"the week of {day:%d %b %Y}"
    return f"{day:%d %b %Y}"


def _model_label(model: Any) -> str:
    """Return a model name for prose, e.g. 'seasonal_naive' → 'seasonal naive'."""
    name = str(model)
    return MODEL_LABELS.get(name, name.replace("_", " "))


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    """Return a boolean column with nulls as False."""
    return frame[column].astype("boolean").fillna(False).astype(bool)


def _accuracy_text(tables: Mapping[str, pd.DataFrame], series_id: str, details: dict[str, Any]) -> str:
    """Return the champion's backtest WAPE vs seasonal naive for ``series_id`` (and fill ``details``)."""
    acc = tables.get("forecast_accuracy")
    needed = {"series_id", "model", "wape", "is_champion"}
    if acc is None or not len(acc) or not needed <= set(acc.columns):
        return ""
    rows = acc[acc["series_id"].astype("string") == series_id]
    champ = rows[_flag(rows, "is_champion")]
    if not len(champ):
        return ""
    c = champ.sort_values("model", kind="stable").iloc[0]
    wape = _num(c["wape"])
    details["model"] = c["model"]
    details["wape"] = wape
    if "coverage_80" in champ.columns:
        details["coverage_80"] = _num(c["coverage_80"])
    if "status" in champ.columns:
        details["model_status"] = c["status"]
    if wape is None:
        return ""
    text = f" The {_model_label(c['model'])} model is used: backtest WAPE {pct(wape)}"
    naive = rows[rows["model"].astype("string") == "seasonal_naive"]
    naive_wape = _num(naive["wape"].iloc[0]) if len(naive) else None
    details["seasonal_naive_wape"] = naive_wape
    if str(c["model"]) != "seasonal_naive" and naive_wape is not None:
        text += f" vs {pct(naive_wape)} for seasonal naive"
    return text + "."


def forecast_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return a finding from ``rpt.sales_forecast`` (and ``rpt.forecast_accuracy``) when present.

    Uses the total series: the next period's forecast with its 80 % interval, compared with the
    actual of the same period a year earlier (else the last actual period), the forecast summed over
    the horizon, and the champion model's backtest WAPE against seasonal naive.
    """
    sf = tables.get("sales_forecast")
    needed = {"series_level", "series_id", "date", "frequency", "actual", "forecast", "is_future"}
    if sf is None or not len(sf) or not needed <= set(sf.columns):
        return []
    total = sf[sf["series_level"].astype("string") == "total"].copy()
    total["date"] = pd.to_datetime(total["date"])
    total = total.sort_values("date", kind="stable")
    future_flag = _flag(total, "is_future")
    future = total[future_flag & total["forecast"].notna()]
    if not len(future):
        return []
    nxt = future.iloc[0]
    day = pd.Timestamp(nxt["date"])
    frequency = str(nxt["frequency"])
    noun = PERIOD_NOUNS.get(frequency, "period")
    value = float(nxt["forecast"])
    lower, upper = _num(nxt.get("lower_80")), _num(nxt.get("upper_80"))
    history = total[~future_flag & total["actual"].notna()]
    actuals = dict(zip(history["date"], history["actual"].astype(float), strict=True))
    details: dict[str, Any] = {
        "series_id": nxt["series_id"],
        "frequency": frequency,
        "date": day,
        "forecast": value,
        "lower_80": lower,
        "upper_80": upper,
    }
    label = _period_label(day, frequency)
    interval = (
        f" (80% interval {money(lower)} to {money(upper)})" if lower is not None and upper is not None else ""
    )
    text = f"Net sales for {label} are forecast at {money(value)}{interval}"
    year_ago = day - YEAR_BACK[frequency] if frequency in YEAR_BACK else None
    base_day: pd.Timestamp | None = None
    if year_ago is not None and actuals.get(year_ago, 0.0) > 0:
        base_day, comparison = year_ago, "same_period_last_year"
        base_text = _period_label(year_ago, frequency)
    elif len(history) and float(history["actual"].iloc[-1]) > 0:
        base_day, comparison = pd.Timestamp(history["date"].iloc[-1]), "last_actual"
        base_text = f"the last actual {noun}, {_period_label(base_day, frequency)}"
    if base_day is not None:
        base = actuals[base_day]
        growth = value / base - 1
        text += f", {signed_pct(growth)} on {base_text} ({money(base)})"
        details.update(
            {
                "comparison": comparison,
                "comparison_date": base_day,
                "comparison_actual": base,
                "growth": growth,
            }
        )
    text += "."
    horizon_total = float(future["forecast"].sum())
    details.update({"horizon_periods": len(future), "horizon_total": horizon_total})
    if len(future) > 1:
        last = pd.Timestamp(future["date"].iloc[-1])
        text += (
            f" Over the next {len(future)} {noun}s, to {_period_label(last, frequency)}, the forecast "
            f"totals {money(horizon_total)}."
        )
    text += _accuracy_text(tables, str(nxt["series_id"]), details)
    return [
        Finding(
            "forecast.sales",
            "forecast",
            71,
            text,
            "Use the forecast and its 80% range as the baseline for targets and stock planning; revisit "
            "when actuals arrive.",
            "next_period_forecast",
            value,
            "money",
            details,
        )
    ]


def data_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return plain statements about thin or partial data."""
    sm = tables.get("sales_monthly")
    out: list[Finding] = []
    if sm is not None and len(sm):
        complete = int(sm["is_complete"].fillna(False).astype(bool).sum())
        if complete < 13:
            out.append(
                Finding(
                    "data.thin_history",
                    "data",
                    91,
                    f"The data cover {complete} complete months; year-over-year growth needs at least 13, so "
                    "it is left blank rather than guessed.",
                    "Load older history if it exists.",
                    "complete_months",
                    float(complete),
                    "count",
                    {"complete_months": complete},
                )
            )
        if not bool(sm["is_complete"].iloc[-1]):
            last = pd.Timestamp(sm["month"].iloc[-1])
            out.append(
                Finding(
                    "data.partial_month",
                    "data",
                    92,
                    f"{last:%B %Y} is not complete yet; it is left out of the month comparisons.",
                    None,
                    "partial_month_sales",
                    _num(sm["net_sales"].iloc[-1]),
                    "money",
                    {"month": last.date(), "net_sales": sm["net_sales"].iloc[-1]},
                )
            )
    return out


def model_freshness_findings(tables: Mapping[str, pd.DataFrame], params: ReportParams) -> list[Finding]:
    """Return which model steps scored with a stored model this run, and how old it is.

    Reads ``run_model_freshness`` (``salesbi.incremental_models.freshness_frame``: one row per model
    step with action, reason, version and age), present when model steps ran; nothing otherwise.
    """
    mf = tables.get("run_model_freshness")
    if mf is None or not len(mf):
        return []
    reused = mf[mf["action"] == "reuse"]
    if not len(reused):
        return []
    reasons = mf["reason"] if "reason" in mf.columns else pd.Series(None, index=mf.index)
    parts = []
    for row, reason in zip(reused.itertuples(), reasons[reused.index], strict=True):
        part = f"{row.step} with model {row.version} ({float(row.age_days or 0):.1f} days old)"
        if row.step == "forecast" and reason:  # "stored model from <date> extended by N period(s)"
            part += f": {str(reason).split(': ', 1)[-1]}"
        parts.append(part)
    refit_rows = mf[mf["action"] == "refit"].sort_values("step")
    refitted = [str(s) for s in refit_rows["step"]]
    why = [f"{s} because {r}" if r else s for s, r in zip(refitted, reasons[refit_rows.index], strict=True)]
    text = "This run scored " + "; ".join(parts) + " — the stored models, not refitted"
    text += f" (refitted: {'; '.join(why)})." if refitted else "."
    oldest = float(pd.to_numeric(reused["age_days"], errors="coerce").fillna(0).max())
    return [
        Finding(
            "data.models_reused",
            "data",
            93,
            text,
            "The weekly retrain refits them; run it now if the business changed a lot this week.",
            "oldest_model_age_days",
            round(oldest, 2),
            "days",
            {"reused": reused.to_dict(orient="records"), "refitted": refitted},
        )
    ]


BUILDERS: tuple[Callable[[Mapping[str, pd.DataFrame], ReportParams], list[Finding]], ...] = (
    completeness_findings,
    returns_findings,
    trend_findings,
    customer_findings,
    location_findings,
    product_findings,
    employee_findings,
    segment_findings,
    one_time_buyer_findings,
    forecast_findings,
    data_findings,
    model_freshness_findings,
)


def build_insights(tables: Mapping[str, pd.DataFrame], params: ReportParams | None = None) -> pd.DataFrame:
    """Return ``rpt.insights``: findings from every available table, ranked (1 = read first).

    Findings whose source table is absent from ``tables`` are skipped.
    """
    params = params or ReportParams()
    as_of = _as_of(tables, params)
    findings = [f for build in BUILDERS for f in build(tables, params)]
    findings.sort(key=lambda f: (f.priority, f.insight_id))
    rows = [
        {
            "insight_id": f.insight_id,
            "rank": i + 1,
            "topic": f.topic,
            "question": QUESTIONS[f.topic],
            "finding": f.finding,
            "action": f.action,
            "metric_name": f.metric_name,
            "metric_value": f.metric_value,
            "metric_format": f.metric_format,
            "details": json.dumps(_clean(f.details), sort_keys=True),
            "as_of_date": pd.Timestamp(as_of),
        }
        for i, f in enumerate(findings)
    ]
    frame = pd.DataFrame(rows, columns=INSIGHTS.column_names)
    return conform(frame, INSIGHTS)


def render_insights_markdown(insights: pd.DataFrame, *, title: str = "Sales insights") -> str:
    """Return ``insights`` as a Markdown document: one section per topic, findings in rank order."""
    lines = [f"# {title}", ""]
    if not len(insights):
        return "\n".join([*lines, "No findings: there are no orders to report on.", ""])
    as_of = pd.Timestamp(insights["as_of_date"].iloc[0])
    returns = (
        " and are after returns (credit notes)" if (insights["insight_id"] == "trend.returns").any() else ""
    )
    lines += [
        f"_Figures as of {as_of:%d %B %Y} (data up to the day before). "
        f"Net sales exclude cancelled orders{returns}._",
        "",
    ]
    ordered = insights.sort_values("rank", kind="stable")
    topics = list(dict.fromkeys(ordered["topic"].tolist()))
    for topic in topics:
        lines += [f"## {TOPIC_TITLES.get(topic, topic.title())}", "", f"*{QUESTIONS.get(topic, '')}*", ""]
        for _, row in ordered[ordered["topic"] == topic].iterrows():
            lines.append(f"{int(row['rank'])}. {row['finding']}")
            if isinstance(row["action"], str) and row["action"]:
                lines.append(f"   - **Action:** {row['action']}")
        lines.append("")
    return "\n".join(lines)
