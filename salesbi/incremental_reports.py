"""Daily runs: the monthly report tables recomputed for the affected months and spliced into the last run's.

Which report tables can be spliced, from their definitions (``salesbi.reports.monthly``):

* ``sales_monthly``: each month's order counts, units, sales and profit read only that month's
  orders (recomputed for the affected months from the fact); ``active_customers`` and
  ``new_customers`` depend on each customer's active months, so the changed customers' old
  contributions are subtracted and their new ones added (exact integer counts); ``orders``,
  ``margin``, ``avg_order_value``, ``existing_customers``, ``mom_growth``/``yoy_growth`` (the
  month before, the year before), ``sales_ytd`` (a running sum) and ``is_complete`` (the as-of
  date) are recomputed on the whole, small table.
* ``customer_growth``: new / retained / regained / churned per month depend on each customer's
  previous and next active month, which may lie outside the changed months; a customer's
  contributions depend on its own active months only, so the changed customers' old counts are
  subtracted and their new ones added; ``active``, the running ``customers_in_window``, the quick
  ratio and ``is_complete`` are recomputed on the whole table.
* Everything else is rebuilt in full: ``order_value_distribution`` (its bins come from the 99th
  percentile of every order), the summaries (ranks, shares and tiers over the whole history), the
  dimensions and the fact (not monthly).

Affected months = the months of the changed and new orders' new dates ∪ their old dates. The old
state of each changed order (customer, date, cancelled or not) is read from core before the load
(:func:`capture_changed_orders`, called by the ingest stage) and carried to the reports stage in
``Ingested.changed_orders``. A table is spliced only when the previous one is known to be the
full build of core as it was before this run's load (:func:`previous_tables`); anything unsure
falls back to a full rebuild, with the reason in the run summary (``outputs.report_tables``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from salesbi.reports import monthly
from salesbi.reports.context import ReportContext
from salesbi.reports.fact import CANCELLED_STATUSES
from salesbi.reports.measures import month_index
from salesbi.reports.tables import TABLES_BY_NAME

log = logging.getLogger(__name__)

#: the report tables that can be spliced month by month
SPLICEABLE: tuple[str, ...] = ("sales_monthly", "customer_growth")
#: built together with the spliceable ones by :func:`monthly_tables` (never spliced)
REBUILT_MONTHLY = {
    "order_value_distribution": "not monthly: its bins come from the 99th percentile of every order",
}
#: above this many changed orders their old state is not read (the tables are rebuilt in full)
MAX_CHANGED_ORDERS = 200_000
_CHUNK = 500  # order ids per IN (...) lookup (SQL Server allows 2,100 parameters per statement)
#: the run summary's record of the report tables (``outputs``)
SUMMARY_KEY = "report_tables"


@dataclass(frozen=True)
class ChangedOrders:
    """The orders an incremental ingest validated and loaded, and their state before the load.

    ``order_ids``: every order whose header or any line was validated in this run (new ones
    included). ``previous``: one row per such order that core held before the load, with the
    columns of :attr:`ReportContext.orders` that the monthly tables read (order_id,
    customer_id, order_date, is_cancelled), computed as the fact computes them. ``reason``: why
    the report tables cannot be spliced after this ingest (None when they can).
    """

    order_ids: frozenset[str] = frozenset()
    previous: pd.DataFrame = field(default_factory=lambda: _empty_previous())
    reason: str | None = None


def _empty_previous() -> pd.DataFrame:
    """Return an empty ``ChangedOrders.previous`` frame."""
    return pd.DataFrame(
        {
            "order_id": pd.Series(dtype="string"),
            "customer_id": pd.Series(dtype="string"),
            "order_date": pd.Series(dtype="datetime64[s]"),
            "is_cancelled": pd.Series(dtype="bool"),
        }
    )


def unsplicable(reason: str) -> ChangedOrders:
    """Return the ChangedOrders of an ingest after which every report table is rebuilt, saying why."""
    return ChangedOrders(reason=reason)


def _ids(values: pd.Series) -> set[str]:
    """Return the distinct non-null values of ``values`` as text."""
    return set(values.dropna().astype("string").astype(str))


def _order_ids(frame: Any) -> set[str]:
    """Return the distinct order ids of a table (a spilled table's read from its file a batch at a time)."""
    from salesbi.reading.spilled import SpilledFrame

    if not isinstance(frame, SpilledFrame):
        return _ids(frame["order_id"])
    out: set[str] = set()
    for block in frame.blocks(None, ["order_id"]):
        out |= _ids(block["order_id"])
    return out


def capture_changed_orders(engine: sa.Engine, metadata: sa.MetaData, changes: Any) -> ChangedOrders:
    """Return the orders that ``changes`` (a ``ChangeSet``) validates and loads, and their old state.

    Must be called before the load: it reads from core the orders (customer, date, status) and
    the first line of each (a return line is not a cancelled sale) of every order to validate.
    """
    if changes.mode == "full":
        return unsplicable("full ingest (a first load or ingest_mode=full): the changed orders are not known")
    products = changes.tables.get("products")
    if products is not None and products.rewrite:
        return unsplicable(
            f"{len(products.rewrite)} product(s) changed: costs of old months may have changed"
        )
    ids = _order_ids(changes.data.tables["orders"].frame)
    ids |= _order_ids(changes.data.tables["order_items"].frame)
    if len(ids) > MAX_CHANGED_ORDERS:
        return unsplicable(f"{len(ids):,} orders changed (more than {MAX_CHANGED_ORDERS:,})")
    return ChangedOrders(order_ids=frozenset(ids), previous=previous_orders(engine, metadata, sorted(ids)))


def previous_orders(engine: sa.Engine, metadata: sa.MetaData, order_ids: list[str]) -> pd.DataFrame:
    """Return, per order of ``order_ids`` that core holds with a line, what the monthly tables read.

    Columns order_id, customer_id, order_date, is_cancelled: the order is cancelled when its
    status is cancelled and its first line (lowest line_number) is not a return (negative
    quantity), as in :func:`salesbi.reports.context.order_frame`.
    """
    orders, items = metadata.tables["core.orders"], metadata.tables["core.order_items"]
    heads: list[Any] = []
    lines: list[Any] = []
    with engine.connect() as conn:
        for start in range(0, len(order_ids), _CHUNK):
            chunk = order_ids[start : start + _CHUNK]
            heads += conn.execute(
                sa.select(
                    orders.c.order_id, orders.c.customer_id, orders.c.order_date, orders.c.status
                ).where(orders.c.order_id.in_(chunk))
            ).all()
            lines += conn.execute(
                sa.select(items.c.order_id, items.c.line_number, items.c.quantity).where(
                    items.c.order_id.in_(chunk)
                )
            ).all()
    if not heads or not lines:
        return _empty_previous()
    head = pd.DataFrame(heads, columns=["order_id", "customer_id", "order_date", "status"])
    line = pd.DataFrame(lines, columns=["order_id", "line_number", "quantity"])
    first = line.sort_values(["order_id", "line_number"], kind="stable").drop_duplicates("order_id")
    head["order_id"] = head["order_id"].astype("string")
    first["order_id"] = first["order_id"].astype("string")
    out = head.merge(first[["order_id", "quantity"]], on="order_id", how="inner")
    returned = pd.to_numeric(out["quantity"]).fillna(0).to_numpy() < 0
    return pd.DataFrame(
        {
            "order_id": out["order_id"],
            "customer_id": out["customer_id"].astype("string"),
            "order_date": pd.to_datetime(out["order_date"]).astype("datetime64[s]"),
            "is_cancelled": out["status"].isin(CANCELLED_STATUSES).to_numpy(dtype=bool) & ~returned,
        }
    ).reset_index(drop=True)


def previous_tables(
    engine: sa.Engine, out_dir: Path, parquet_dir: Path, run_id: str, churn_months: int
) -> tuple[dict[str, pd.DataFrame], str | None]:
    """Return the last run's spliceable tables when they are the full build of core before this run's load.

    Returns (tables, None), or ({}, why not). Trusted only when the run just before this one in
    ``audit.runs`` (so nothing loaded core in between) succeeded, built the reports in this
    output folder (its run summary records them), published the Parquet that ``parquet_dir``
    holds, with the same churn window and the tables' current columns.
    """
    from salesbi.pipeline import previous_summary
    from salesbi.runlog import list_runs

    runs = list_runs(engine, last=2)
    if not runs or runs[0]["run_id"] != run_id:
        return {}, "another run of this warehouse started after this one"
    if len(runs) < 2:
        return {}, "first run"
    before = runs[1]
    if before["status"] not in ("succeeded", "succeeded_with_warnings"):
        return {}, f"the previous run {before['run_id']} ended {before['status']}"
    summary = previous_summary(out_dir)
    outputs = summary.get("outputs") or {}
    if summary.get("run_id") != before["run_id"] or outputs.get("published_by") != before["run_id"]:
        return {}, f"the previous run {before['run_id']} did not publish into {out_dir}"
    record = outputs.get(SUMMARY_KEY)
    if not isinstance(record, dict):
        return {}, f"the previous run {before['run_id']} did not build the report tables"
    if record.get("churn_months") != churn_months:
        return {}, f"churn_months changed ({record.get('churn_months')} → {churn_months})"
    tables: dict[str, pd.DataFrame] = {}
    for name in SPLICEABLE:
        path = parquet_dir / f"{name}.parquet"
        if not path.is_file():
            return {}, f"no previous {path.name}"
        frame = pd.read_parquet(path)
        if list(frame.columns) != TABLES_BY_NAME[name].column_names:
            return {}, f"the previous {name} has other columns (the table's definition changed)"
        tables[name] = frame
    return tables, None


@dataclass
class SpliceDecision:
    """What :func:`monthly_tables` did with each monthly table: spliced months, or rebuilt and why."""

    spliced: dict[str, list[str]] = field(default_factory=dict)
    rebuilt: dict[str, str] = field(default_factory=dict)
    churn_months: int | None = None
    #: wall and CPU seconds of the three monthly tables (spliced or built)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Return the JSON-able record for the run summary (``outputs.report_tables``)."""
        return {
            "spliced": self.spliced,
            "rebuilt": self.rebuilt,
            "churn_months": self.churn_months,
            "every other table": "rebuilt in full",
            "seconds": round(self.seconds, 4),
            "cpu_seconds": round(self.cpu_seconds, 4),
        }


def affected_months(ctx: ReportContext, changed: ChangedOrders) -> np.ndarray:
    """Return the sorted month indices of the changed orders' new dates (in ``ctx``) and old dates."""
    orders = ctx.orders
    now = orders["order_date"][orders["order_id"].isin(changed.order_ids).to_numpy(dtype=bool)]
    months = np.concatenate(
        [month_index(now).to_numpy(), month_index(changed.previous["order_date"]).to_numpy()]
    )
    return np.unique(months)


def _customer_delta(ctx: ReportContext, changed: ChangedOrders, months: np.ndarray) -> pd.DataFrame:
    """Return per month the changed customers' new counts minus their old ones (new, retained, … churned).

    Changed customers: the old and new customer of every changed order. Their old orders are
    their current orders other than the changed ones, plus the changed ones as they were.
    """
    orders = ctx.orders
    is_changed = orders["order_id"].isin(changed.order_ids).to_numpy(dtype=bool)
    customers = _ids(orders.loc[is_changed, "customer_id"]) | _ids(changed.previous["customer_id"])
    mine = orders["customer_id"].isin(customers).to_numpy(dtype=bool)
    cols = ["customer_id", "order_date", "is_cancelled"]
    now = orders.loc[mine, cols]
    before = pd.concat([orders.loc[mine & ~is_changed, cols], changed.previous[cols]], ignore_index=True)
    n = ctx.params.churn_months
    new = monthly.customer_counts(monthly.active_pairs(now), months, n)
    old = monthly.customer_counts(monthly.active_pairs(before), months, n)
    return new - old


def _months_of(frame: pd.DataFrame) -> np.ndarray:
    """Return the month index of each row of a monthly rpt table (its ``month`` column)."""
    return month_index(pd.Series(pd.to_datetime(frame["month"]))).to_numpy()


#: the month-local columns of ``sales_monthly`` (``monthly.month_sums``) and their dtypes as built
_SUMS = {
    "orders_placed": "int64",
    "orders_cancelled": "int64",
    "units": "float64",
    "net_sales": "float64",
    "gross_profit": "float64",
}


def _recent_counts(ctx: ReportContext, added: np.ndarray) -> pd.DataFrame:
    """Return the customer counts of months ``added`` (after the previous tables' last), over every customer.

    With N = churn_months: a customer is new, retained or regained in month m when it ordered in
    m (which one: its whole history says, read for those customers only); it churns in m when its
    order N months before has no successor up to m, which the orders from N months before the
    first added month on tell (the last months only, not every customer's history).
    """
    n = ctx.params.churn_months
    orders = ctx.orders[~ctx.orders["is_cancelled"].to_numpy(dtype=bool)]
    m = month_index(orders["order_date"]).to_numpy()
    recent = orders[m >= added[0] - n]
    churned = monthly.customer_counts(monthly.active_pairs(recent), added, n)["churned"]
    active = _ids(orders.loc[m >= added[0], "customer_id"])
    history = orders[orders["customer_id"].isin(active).to_numpy(dtype=bool)]
    counts = monthly.customer_counts(monthly.active_pairs(history), added, n)
    counts["churned"] = churned.to_numpy()
    return counts


def splice(
    ctx: ReportContext, changed: ChangedOrders, previous: Mapping[str, pd.DataFrame]
) -> tuple[dict[str, pd.DataFrame], str | None, list[str]]:
    """Return the spliced ``sales_monthly`` and ``customer_growth``, or ({}, why they cannot be, []).

    The third item: the months recomputed from their orders ('yyyy-mm').

    ``previous``: the full build of core before this run's load (:func:`previous_tables`). The
    months may run further than the previous tables' (a new month began): those months are
    computed whole; a range that starts elsewhere or ends earlier is rebuilt in full.
    """
    months = monthly.month_range(ctx)
    old = _months_of(previous["sales_monthly"])
    if not len(old) or not np.array_equal(old, _months_of(previous["customer_growth"])):
        return {}, "the previous monthly tables are empty or cover different months", []
    if len(months) < len(old) or not np.array_equal(months[: len(old)], old):
        return {}, "the range of order months changed (its first month, or its last moved back)", []
    added = months[len(old) :]
    n = ctx.params.churn_months

    # customers: the previous counts with the changed customers' old counts replaced by their new ones
    delta = _customer_delta(ctx, changed, old)
    growth_prev = previous["customer_growth"]
    counts = pd.DataFrame(
        {c: growth_prev[c].to_numpy(dtype="int64") + delta[c].to_numpy() for c in monthly.CUSTOMER_COUNTS}
    )
    if (counts.to_numpy() < 0).any():
        return {}, "the previous tables do not match core before this run (a count would be negative)", []
    if len(added):
        counts = pd.concat([counts, _recent_counts(ctx, added)], ignore_index=True)
    customer_growth = monthly.finish_customer_growth(months, counts, n, ctx.as_of)

    # the month-local sums: the affected months and the added ones recomputed from their orders
    sales_prev = previous["sales_monthly"]
    parts = pd.DataFrame(
        {
            c: np.concatenate(
                [
                    sales_prev[c].to_numpy(dtype=dtype, na_value=np.nan if dtype == "float64" else 0),
                    np.zeros(len(added), dtype=dtype),
                ]
            )
            for c, dtype in _SUMS.items()
        }
    )
    hit = np.isin(months, affected_months(ctx, changed))
    hit[len(old) :] = True
    if hit.any():
        wanted = months[hit]
        in_months = np.isin(month_index(ctx.orders["order_date"]).to_numpy(), wanted)
        fresh = monthly.month_sums(ctx.orders[in_months], wanted)
        rows = np.flatnonzero(hit)
        for c in _SUMS:
            values = parts[c].to_numpy(copy=True)
            values[rows] = fresh[c].to_numpy(dtype=_SUMS[c], na_value=np.nan if _SUMS[c] == "float64" else 0)
            parts[c] = values
    parts["active_customers"] = (counts["new"] + counts["retained"] + counts["regained"]).to_numpy()
    parts["new_customers"] = counts["new"].to_numpy()
    sales_monthly = monthly.finish_sales_monthly(months, parts, ctx.as_of)
    labels = [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in months[hit]]
    return {"sales_monthly": sales_monthly, "customer_growth": customer_growth}, None, labels


def monthly_tables(
    changed: ChangedOrders | None,
    previous: Callable[[], tuple[dict[str, pd.DataFrame], str | None]],
    decision: SpliceDecision,
) -> Callable[[ReportContext], dict[str, pd.DataFrame]]:
    """Return the builder of the monthly tables for :func:`salesbi.reports.build.build_reports`.

    The builder splices ``sales_monthly`` and ``customer_growth`` when ``changed`` says which
    orders changed and ``previous()`` returns the last run's tables (else builds them in full),
    builds ``order_value_distribution`` in full, and records what it did in ``decision``.
    """

    def build(ctx: ReportContext) -> dict[str, pd.DataFrame]:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return build_or_splice(ctx)
        finally:
            decision.seconds = time.perf_counter() - wall
            decision.cpu_seconds = time.thread_time() - cpu

    def build_or_splice(ctx: ReportContext) -> dict[str, pd.DataFrame]:
        decision.churn_months = ctx.params.churn_months
        decision.rebuilt.update(REBUILT_MONTHLY)
        out = {"order_value_distribution": monthly.build_order_value_distribution(ctx)}
        if changed is None:
            reason: str | None = "no incremental ingest in this run"
        else:
            reason = changed.reason
            if reason is None:
                tables, reason = previous()
                if reason is None:
                    spliced, reason, labels = splice(ctx, changed, tables)
                    if reason is None:
                        for name in SPLICEABLE:
                            decision.spliced[name] = labels
                        log.info("monthly report tables spliced: months %s recomputed", ", ".join(labels))
                        return {**spliced, **out}
        for name in SPLICEABLE:
            decision.rebuilt[name] = str(reason)
        log.info("monthly report tables built in full: %s", reason)
        return {
            "sales_monthly": monthly.build_sales_monthly(ctx),
            "customer_growth": monthly.build_customer_growth(ctx),
            **out,
        }

    return build
