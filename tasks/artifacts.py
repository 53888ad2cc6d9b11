"""Prefect artifacts for every run: a markdown summary and small tables for the UI."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.logging import get_run_logger

from salesbi.pipeline import Execution
from salesbi.run_report import rejects_by_rule, render_run_markdown, table_rows
from salesbi.stage_results import Ingested


def publish_run_artifacts(run: Execution) -> None:
    """Publish the run summary (markdown) and tables: top customers, latest forecast, rejects by rule.

    The report tables (top customers, latest forecast) and the KPIs and insights
    of the summary come only from a run whose publish succeeded: anything else
    would show data nobody published. A failed run's summary says so and what was kept.
    """
    published = run.published
    frames = dict(published.frames) if published is not None else {}
    ingested = run.results.find(Ingested)
    rejected = ingested.rejected_rows if ingested is not None else None
    summary = run.summary.as_dict()
    create_markdown_artifact(
        render_run_markdown(summary, frames, rejected=rejected, published=published is not None),
        key="sales-run-summary",
        description=f"salesbi run {run.run_id}: {summary['status']}",
    )
    if ingested is not None:
        create_markdown_artifact(ingested.validation_summary, key="validation-summary")
    rules = rejects_by_rule(rejected)
    if rules:
        create_table_artifact(
            rules, key="rejected-rows-by-rule", description="quarantined rows per table and rule"
        )
    customers = frames.get("customer_summary")
    if customers is not None:
        rows = table_rows(
            customers.sort_values("sales_rank") if "sales_rank" in customers.columns else customers,
            ["sales_rank", "customer_name", "country", "net_sales", "orders", "loyalty_tier", "recency_days"],
            20,
        )
        create_table_artifact(rows, key="top-customers", description="top customers by net sales")
    forecast = frames.get("sales_forecast")
    if forecast is not None and "is_future" in forecast.columns:
        future = forecast[forecast["is_future"].astype(bool)]
        rows = table_rows(
            future,
            ["series_name", "date", "forecast", "lower_80", "upper_80", "lower_95", "upper_95", "model"],
            60,
        )
        create_table_artifact(rows, key="latest-forecast", description="forecast for the coming periods")
    get_run_logger().info("published artifacts for run %s", run.run_id)
