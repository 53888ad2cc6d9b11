"""Human-readable account of a run: the markdown summary and small tables published as artifacts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import pandas as pd


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def headline_kpis(
    frames: Mapping[str, pd.DataFrame], kpis: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return headline figures: net sales, gross profit, orders, cancelled orders, customers, date range.

    From the fact table when the run holds it, else from ``customer_summary`` (the fact spilled
    to Parquet, or left in the warehouse: the same figures) with the first and last order dates
    of the fact's lines (cancelled ones too) that the report step recorded in the run summary's
    ``kpis`` (:func:`record_order_dates`); without them, those of the customers' non-cancelled
    orders. Empty when neither table is there.
    """
    fact = frames.get("fact_order_lines")
    if fact is None or fact.empty:
        out = _headline_from_customers(frames.get("customer_summary"))
        if out and kpis and "first_order" in kpis and "last_order" in kpis:
            out["first_order"], out["last_order"] = kpis["first_order"], kpis["last_order"]
        return out
    live = fact[~fact["is_cancelled"].astype(bool)]
    profit = live["gross_profit"]
    return {
        "net_sales": round(float(live["net_sales"].sum()), 2),
        "gross_profit": round(float(profit.sum()), 2) if profit.notna().any() else None,
        "orders": int(live["order_id"].nunique()),
        "cancelled_orders": int(fact.loc[fact["is_cancelled"].astype(bool), "order_id"].nunique()),
        "customers": int(live["customer_id"].nunique()),
        "first_order": str(pd.Timestamp(fact["order_date"].min()).date()),
        "last_order": str(pd.Timestamp(fact["order_date"].max()).date()),
    }


def record_order_dates(kpis: dict[str, Any], first: date | None, last: date | None) -> None:
    """Record the first and last order date of the fact's lines (all orders, cancelled too) in ``kpis``.

    ``kpis`` is the run summary's (``RunSummary.kpis``); :func:`headline_kpis` reads them back
    when the run does not hold the fact. Nothing is recorded without lines.
    """
    if first is not None and last is not None:
        kpis["first_order"], kpis["last_order"] = str(first), str(last)


#: the ``customer_summary`` columns the headline figures are summed from
_HEADLINE_CUSTOMER_COLUMNS = {
    "orders",
    "cancelled_orders",
    "net_sales",
    "gross_profit",
    "first_order_date",
    "last_order_date",
}


def _headline_from_customers(customers: pd.DataFrame | None) -> dict[str, Any]:
    """Return the headline figures summed over ``customer_summary`` (one row per customer; {} without it)."""
    if customers is None or customers.empty or not set(customers.columns) >= _HEADLINE_CUSTOMER_COLUMNS:
        return {}
    buying = customers[customers["orders"].fillna(0) > 0]
    profit = customers["gross_profit"]
    first, last = buying["first_order_date"].min(), buying["last_order_date"].max()
    return {
        "net_sales": round(float(customers["net_sales"].sum()), 2),
        "gross_profit": round(float(profit.sum()), 2) if profit.notna().any() else None,
        "orders": int(customers["orders"].fillna(0).sum()),
        "cancelled_orders": int(customers["cancelled_orders"].fillna(0).sum()),
        "customers": len(buying),
        "first_order": None if pd.isna(first) else str(pd.Timestamp(first).date()),
        "last_order": None if pd.isna(last) else str(pd.Timestamp(last).date()),
    }


def rejects_by_rule(rejected: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Return rows of (table, rule, rows) counting quarantined records per table and rule."""
    if rejected is None or rejected.empty:
        return []
    counts = (
        rejected.groupby(["table_name", "rule"], sort=True).size().reset_index(name="rows")  # type: ignore[call-overload]
    )
    return [{"table": r.table_name, "rule": r.rule, "rows": int(r.rows)} for r in counts.itertuples()]


def completeness_markdown(summary: Mapping[str, Any]) -> list[str]:
    """Return the lines stating per-table completeness and the run's warnings (none when not measured)."""
    comp = summary.get("completeness") or {}
    tables = comp.get("tables") or {}
    lines: list[str] = []
    if tables:
        lines += [
            f"**Completeness: {comp.get('level', 'ok')}**",
            "",
            "| table | rejected share | level | top reasons |",
            "|---|---:|---|---|",
        ]
        for name, t in tables.items():
            share = t.get("share")
            reasons = "; ".join(
                f"{r['rule']}{' on ' + r['column'] if r.get('column') else ''}: {r['rows']:,}"
                for r in t.get("reasons") or []
            )
            if t.get("level") == "absent":
                reasons = f"not in this source ({t.get('absent')})"
            lines.append(
                f"| {name} | {'' if share is None else f'{share:.2%}'} | {t.get('level')} | {reasons} |"
            )
        lines.append("")
    warnings = summary.get("warnings") or []
    if warnings:
        lines += ["**Warnings**", ""]
        lines += [f"- {w.get('step')} ({w.get('kind')}): {w.get('what')}" for w in warnings]
        lines.append("")
    return lines


def render_run_markdown(
    summary: Mapping[str, Any],
    frames: Mapping[str, pd.DataFrame],
    *,
    rejected: pd.DataFrame | None = None,
    top_insights: int = 5,
    published: bool = True,
) -> str:
    """Return the run's markdown summary: status, rows per table, KPIs, top insights, output paths.

    With ``published`` false (the run published nothing) it says which run's
    outputs stay in place instead of showing KPIs and insights.
    """
    lines = [f"# salesbi run `{summary['run_id']}`: **{summary['status']}**", ""]
    if summary.get("status") == "failed":
        lines += [f"Failed in step **{summary.get('failed_step') or 'start'}**: {summary.get('error')}", ""]
    if not published:
        kept = (summary.get("outputs") or {}).get("published_by")
        lines += [
            "Nothing was published by this run: "
            + (
                f"the reports, Parquet and models of run `{kept}` stay in place (listed under Outputs)."
                if kept
                else "no earlier published outputs were found."
            ),
            "",
        ]
    tables = summary.get("tables") or {}
    if tables:
        lines += ["| table | read | loaded | rejected | in warehouse |", "|---|---:|---:|---:|---:|"]
        for name, c in tables.items():
            lines.append(
                f"| {name} | {_fmt(c['read'])} | {_fmt(c['loaded'])} | {_fmt(c['rejected'])} "
                f"| {_fmt(c['warehouse_rows'] or 0)} |"
            )
        lines.append("")
    rules = rejects_by_rule(rejected)
    if rules:
        lines += ["**Quarantined rows by rule**", "", "| table | rule | rows |", "|---|---|---:|"]
        lines += [f"| {r['table']} | {r['rule']} | {r['rows']:,} |" for r in rules]
        lines.append("")
    lines += completeness_markdown(summary)
    kpis = headline_kpis(frames, summary.get("kpis"))
    if kpis:
        lines += ["**Headline figures**", ""]
        lines += [f"- {k.replace('_', ' ')}: {_fmt(v)}" for k, v in kpis.items() if v is not None]
        lines.append("")
    insights = frames.get("insights")
    if insights is not None and not insights.empty:
        text_col = (
            "finding"
            if "finding" in insights.columns
            else insights.columns[min(2, len(insights.columns) - 1)]
        )
        lines += ["**Top insights**", ""]
        lines += [f"{i}. {t}" for i, t in enumerate(insights[text_col].head(top_insights).tolist(), start=1)]
        lines.append("")
    outputs = summary.get("outputs") or {}
    if outputs:
        lines += ["**Outputs**", ""]
        for key, value in outputs.items():
            if key == "model_decisions" and isinstance(value, dict):  # refit or stored model, and why
                for step, d in value.items():
                    lines.append(f"- {step}: {d.get('action')} ({d.get('reason')})")
                continue
            shown = f"{len(value)} tables" if isinstance(value, dict) else f"`{value}`"
            lines.append(f"- {key.replace('_', ' ')}: {shown}")
        lines.append("")
    timings = summary.get("timings") or {}
    if timings:
        lines.append("Timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return "\n".join(lines).rstrip() + "\n"


def table_rows(frame: pd.DataFrame | None, columns: list[str], limit: int) -> list[dict[str, Any]]:
    """Return up to ``limit`` rows of the named columns that exist, as JSON-friendly dicts."""
    if frame is None or frame.empty:
        return []
    present = [c for c in columns if c in frame.columns]
    head = frame[present].head(limit)
    return [{k: _json_value(v) for k, v in row.items()} for row in head.to_dict(orient="records")]


def _json_value(value: Any) -> Any:
    """Return ``value`` as JSON can hold it: None for missing, dates as YYYY-MM-DD."""
    if value is None or (not isinstance(value, (list, tuple, dict)) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
