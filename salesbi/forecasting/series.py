"""Sales series to forecast: total, per product line, per customer country (top N + Other), per office.

Every series is a row of one dense ``(n_series, n_periods)`` array over the same calendar of
period starts; a period without sales is a zero, never a gap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from salesbi.errors import ConfigurationError, SalesBIError
from salesbi.reports.fact import key_positions

FREQUENCY_NAMES = {"D": "daily", "W": "weekly", "M": "monthly"}
#: accepted spellings of a frequency → canonical code
FREQUENCY_ALIASES = {
    "D": "D",
    "DAY": "D",
    "DAILY": "D",
    "W": "W",
    "WEEK": "W",
    "WEEKLY": "W",
    "M": "M",
    "MS": "M",
    "ME": "M",
    "MONTH": "M",
    "MONTHLY": "M",
}
#: main seasonal period per frequency (a week of days, a year of weeks, a year of months)
SEASON = {"D": 7, "W": 52, "M": 12}
#: periods in a year per frequency (for the yearly seasonal lag)
YEAR = {"D": 364, "W": 52, "M": 12}
DEFAULT_HORIZON = {"D": 28, "W": 8, "M": 3}
#: fewest full periods a series needs to be forecast at all (below: a finer frequency, or skip)
MIN_PERIODS = {"D": 28, "W": 8, "M": 6}
#: week start days as the CLI spells them (index = pandas day_of_week, Monday = 0)
WEEKDAYS: tuple[str, ...] = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
OTHER = "Other"


@dataclass
class SeriesPanel:
    """Aligned series: ``values[i, t]`` is the net sales of series ``i`` in period ``dates[t]``."""

    frequency: str
    dates: pd.DatetimeIndex
    values: np.ndarray
    meta: pd.DataFrame  # series_id, series_level, series_name, country_code (None when unknown)

    @property
    def n_series(self) -> int:
        """Return the number of series."""
        return int(self.values.shape[0])

    @property
    def n_periods(self) -> int:
        """Return the number of periods."""
        return int(self.values.shape[1])


def normalize_frequency(frequency: str) -> str:
    """Return the canonical code ``D``, ``W`` or ``M`` of ``frequency``; ConfigurationError if unknown."""
    code = FREQUENCY_ALIASES.get(str(frequency).strip().upper())
    if code is None:
        raise ConfigurationError(
            f"unknown forecast frequency {frequency!r}",
            hint="use D (daily), W (weekly) or M (monthly), or leave it unset to choose from the data",
        )
    return code


def week_start_index(week_start: str | int) -> int:
    """Return the day index (Monday = 0 … Sunday = 6) of ``week_start`` ('MON'..'SUN' or 0..6)."""
    if isinstance(week_start, int) and 0 <= week_start <= 6:
        return week_start
    code = str(week_start).strip().upper()[:3]
    if code not in WEEKDAYS:
        raise ConfigurationError(
            f"unknown week start {week_start!r}", hint="use one of MON, TUE, WED, THU, FRI, SAT, SUN"
        )
    return WEEKDAYS.index(code)


def period_start(
    dates: pd.Series | pd.DatetimeIndex, frequency: str, week_start: int = 0
) -> pd.DatetimeIndex:
    """Return the first day of the period (day, week starting on ``week_start``, month) of each date.

    ``week_start`` is a day index, Monday = 0 (the default) … Sunday = 6.
    """
    idx = pd.DatetimeIndex(pd.to_datetime(dates)).normalize()
    if frequency == "D":
        return idx
    if frequency == "W":
        return idx - pd.to_timedelta((idx.day_of_week - week_start) % 7, unit="D")
    return idx.to_period("M").to_timestamp()


def period_range(start: pd.Timestamp, periods: int, frequency: str) -> pd.DatetimeIndex:
    """Return ``periods`` consecutive period starts from ``start``."""
    freq = {"D": "D", "W": "7D", "M": "MS"}[frequency]
    return pd.date_range(start, periods=periods, freq=freq)


def period_end(start: pd.Timestamp, frequency: str) -> pd.Timestamp:
    """Return the last day of the period beginning ``start``."""
    if frequency == "D":
        return start
    if frequency == "W":
        return start + pd.Timedelta(days=6)
    return start + pd.offsets.MonthEnd(0)


def choose_frequency(order_dates: pd.Series) -> str:
    """Return the frequency the orders support: ``D``, ``W`` or ``M`` (see :func:`frequency_choice`)."""
    return frequency_choice(order_dates)[0]


def frequency_choice(order_dates: pd.Series, week_start: int = 0) -> tuple[str, str]:
    """Return (frequency, reason): the finest frequency whose periods are dense and history long enough.

    A frequency is dense when its periods hold at least 5 orders on average and 90 % of its
    periods hold an order; it is long enough with 8 of its seasons (224 days for daily) or 60
    weeks for weekly.  So a shop with dozens of orders a day forecasts daily; classicmodels
    (326 orders in ~2.5 years, ~2.6 a week) forecasts monthly.  Thin history: when monthly
    would give fewer than ``MIN_PERIODS['M']`` months, the coarsest dense frequency with
    enough periods (weekly, else daily) is chosen instead; when none has, monthly is returned
    and the caller finds too few periods (the forecast step is then skipped).
    """
    days = pd.to_datetime(order_dates.dropna()).dt.normalize()
    if days.empty:
        raise SalesBIError("there are no orders to forecast", hint="load orders before the forecast step")
    span_days = int((days.max() - days.min()).days) + 1
    stats: dict[str, tuple[int, float, float]] = {}
    for code in ("D", "W"):
        n_periods = max(1, {"D": span_days, "W": span_days // 7}[code])
        covered = period_start(days, code, week_start).nunique() / n_periods
        stats[code] = (n_periods, len(days) / n_periods, covered)

    def dense(code: str) -> bool:
        return stats[code][1] >= 5 and stats[code][2] >= 0.9

    def described(code: str) -> str:
        n_periods, per_period, covered = stats[code]
        unit = {"D": "day", "W": "week"}[code]
        return f"{per_period:.1f} orders a {unit} on {covered:.0%} of {n_periods} {unit}s"

    for code, min_periods in (("D", 8 * 7 * 4), ("W", 60)):
        if stats[code][0] >= min_periods and dense(code):
            return code, f"{FREQUENCY_NAMES[code]}: {described(code)}"
    months = span_days // 30
    if months >= MIN_PERIODS["M"]:
        return "M", f"monthly: days and weeks too sparse or history too short ({described('W')})"
    for code in ("W", "D"):
        if stats[code][0] >= MIN_PERIODS[code] + 1 and dense(code):
            return code, f"{FREQUENCY_NAMES[code]}: only {months} months of history, {described(code)}"
    return "M", f"monthly: only {months} months of history and too sparse for weeks ({described('W')})"


def choose_frequency_of_totals(dates: pd.Series, values: pd.Series) -> str:
    """Return ``D``, ``W`` or ``M`` for a series already summed per date (one value per date).

    Order counts are unknown here, so a frequency is dense enough when at least 90 % of its
    periods hold sales and the span gives 8 of its seasons (as :func:`choose_frequency`).
    """
    days = pd.DatetimeIndex(pd.to_datetime(dates)).normalize()
    selling = days[np.asarray(values, dtype="float64") != 0]
    if selling.empty:
        raise SalesBIError("the history has no sales to forecast", hint="pass a series with sales")
    span_days = int((days.max() - days.min()).days) + 1
    for code, min_periods in (("D", 8 * 7 * 4), ("W", 60)):
        n_periods = max(1, {"D": span_days, "W": span_days // 7}[code])
        covered = period_start(pd.Series(selling), code).nunique() / n_periods
        if n_periods >= min_periods and covered >= 0.9:
            return code
    return "M"


def choose_horizon(frequency: str, n_periods: int, backtest_origins: int) -> int:
    """Return the default horizon: 28/14/7 days, 8/4/2 weeks or 3/2/1 months, shortened for short history.

    The longest option is kept when the backtest windows still leave 8 weeks of days, half a
    year of weeks or a year of months to train on before the first origin.
    """
    options = {"D": (28, 14, 7), "W": (8, 4, 2), "M": (3, 2, 1)}[frequency]
    for h in options:
        # keep at least two seasons (or a year) of training before the first backtest origin
        need = backtest_origins * h + {"D": 56, "W": 26, "M": 12}[frequency]
        if n_periods >= need:
            return h
    return options[-1]


def to_month_end(
    horizon: int, frequency: str, last_period: pd.Timestamp, n_periods: int, backtest_origins: int
) -> int:
    """Return a default daily ``horizon`` stretched so the forecast ends on a calendar month's last day.

    A 28-day horizon never covers a whole calendar month (but February), so the month-grain forecast
    that Power BI charts would hold only a partial month. The stretch is kept only while the backtest
    still leaves 8 weeks of days to train on (as :func:`choose_horizon` requires); weekly and monthly
    horizons are returned unchanged.
    """
    if frequency != "D":
        return horizon
    end = pd.Timestamp(last_period) + pd.Timedelta(days=horizon)
    stretched = horizon + int((end + pd.offsets.MonthEnd(0) - end).days)
    return stretched if n_periods >= backtest_origins * stretched + 56 else horizon


@lru_cache(maxsize=1)
def _country_codes() -> dict[str, str]:
    from holidays.registry import COUNTRIES

    codes: dict[str, str] = {}
    for key, names in COUNTRIES.items():
        class_name, alpha2, alpha3 = names[0], names[1], names[2]
        for spelling in (key, class_name, alpha2, alpha3, key.replace("_", " ")):
            codes[spelling.lower()] = alpha2
    extra = {
        "usa": "US",
        "us": "US",
        "united states": "US",
        "united states of america": "US",
        "uk": "GB",
        "united kingdom": "GB",
        "great britain": "GB",
        "england": "GB",
        "russia": "RU",
        "south korea": "KR",
        "korea": "KR",
    }
    codes.update(extra)
    return codes


def country_code(name: object) -> str | None:
    """Return the ISO alpha-2 code the ``holidays`` package knows for a country name, else None."""
    if name is None or (isinstance(name, float) and np.isnan(name)) or name is pd.NA:
        return None
    return _country_codes().get(str(name).strip().lower().replace("_", " ")) or _country_codes().get(
        str(name).strip().lower().replace(" ", "_")
    )


def _map_distinct(values: pd.Series, fn: Callable[[Any], Any]) -> pd.Series:
    """Return ``values.map(fn)`` (an object series) with ``fn`` called once per distinct value.

    The rows are factorised and ``fn``'s results taken by code: a million rows of a few
    dozen product lines, countries or offices cost a few dozen calls, not a million.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [fn(u) for u in uniques]
    mapped[-1] = np.nan  # the code -1 of a missing value (callers pass rows without nulls)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


#: the columns of day-aggregated forecast input (``salesbi.reports.sql.model_inputs``): per day,
#: customer country, product line and office, the sum of net sales and the number of orders
#: counted on the row (each order on exactly one of its rows)
DAY_COLUMNS: tuple[str, ...] = (
    "order_date",
    "country",
    "product_line_id",
    "office_id",
    "net_sales",
    "orders",
)


def order_dates(fact: pd.DataFrame) -> pd.Series:
    """Return one order_date per order of ``fact``: its order lines (one per distinct order_id; every
    row when there is no order_id), or day-aggregated rows (:data:`DAY_COLUMNS`: each date
    repeated by its row's ``orders``)."""
    if "orders" in fact.columns and "order_id" not in fact.columns:
        counts = fact["orders"].to_numpy(dtype="int64")
        dates = fact["order_date"].to_numpy()
        return pd.Series(np.repeat(dates, counts), name="order_date")
    orders = fact.drop_duplicates("order_id") if "order_id" in fact.columns else fact
    return orders["order_date"]


def series_lines(fact: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Return the fact's order_date, net_sales (nulls as 0), customer_id, product_line_id, office_id
    and the customer's country ("Unknown" when none), one row per line in the fact's order.

    Memory: the fact's columns are shared, not copied (copy-on-write; net_sales is copied only
    when it has nulls), and the country is looked up per line instead of merging (which copied
    every column): the copy and the merge held +445 MB at 3M lines, this +101 MB.
    """
    if "country" in fact.columns and "customer_id" not in fact.columns:  # aggregated per day (DAY_COLUMNS)
        f = fact[["order_date", "net_sales", "product_line_id", "office_id", "country"]].reset_index(
            drop=True
        )
        sales = f["net_sales"].astype("float64")
        f["net_sales"] = sales.fillna(0.0) if sales.hasnans else sales
        f["country"] = f["country"].astype("string").fillna("Unknown")
        return f
    f = fact[["order_date", "net_sales", "customer_id", "product_line_id", "office_id"]].reset_index(
        drop=True
    )
    sales = f["net_sales"].astype("float64")
    f["net_sales"] = sales.fillna(0.0) if sales.hasnans else sales
    cust = customers[["customer_id", "country"]].drop_duplicates("customer_id")
    # the customer's row per line (-1: unknown customer), then its country taken per line
    row = key_positions(f["customer_id"], cust, "customer_id", "customers")
    country = pd.api.extensions.take(cust["country"].astype("string").array, row, allow_fill=True)
    f["country"] = pd.Series(country, index=f.index).fillna("Unknown")
    return f


def _series_parts(
    fact: pd.DataFrame,
    customers: pd.DataFrame,
    product_lines: pd.DataFrame,
    offices: pd.DataFrame,
    top_countries: int,
) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[np.ndarray, np.ndarray]]]:
    """Return (rows: order_date, net_sales), (series meta) and per level (row positions, series rows).

    Levels come in the order total, product lines, countries, offices; each names the rows it
    sums (positions in ``rows``, in row order) and the meta row of the series each one feeds.
    Names and holiday codes are looked up once per distinct value, never per row.
    """
    f = series_lines(fact, customers)

    by_country = f.groupby("country")["net_sales"].sum().sort_values(ascending=False, kind="stable")
    top = list(by_country.index[: max(0, top_countries)])

    pl_names = dict(
        zip(
            product_lines["product_line_id"].astype("string"),
            product_lines["name"].astype("string"),
            strict=True,
        )
    )
    off = offices[["office_id", "city", "country"]].astype("string")
    office_city = dict(zip(off["office_id"], off["city"], strict=True))
    office_country = dict(zip(off["office_id"], off["country"], strict=True))

    # the company's home country (for holidays of total and product lines): a clear majority of sales
    share = by_country / by_country.sum() if by_country.sum() > 0 else by_country
    home = country_code(share.index[0]) if len(share) and float(share.iloc[0]) >= 0.5 else None

    # per level: the rows it sums, their key codes, and per distinct key (id, name, holiday code)
    everything = np.arange(len(f))
    levels: list[tuple[str, np.ndarray, np.ndarray, list[tuple[str, str, str | None]]]] = [
        ("total", everything, np.zeros(len(f), dtype="int64"), [("total", "All sales", home)])
    ]
    pl_rows = np.flatnonzero(f["product_line_id"].notna().to_numpy())
    codes, keys = pd.factorize(f["product_line_id"].to_numpy(dtype=object)[pl_rows])
    described = [(f"product_line:{k}", pl_names.get(k) or str(k), home) for k in keys]
    levels.append(("product_line", pl_rows, codes, described))
    country = f["country"].to_numpy(dtype=object)
    codes, keys = pd.factorize(country)
    groups = [str(k) if k in top else OTHER for k in keys]
    codes, group_keys = pd.factorize(np.asarray(groups, dtype=object)[codes])
    described = [(f"country:{g}", str(g), None if g == OTHER else country_code(g)) for g in group_keys]
    levels.append(("country", everything, codes, described))
    of_rows = np.flatnonzero(f["office_id"].notna().to_numpy())
    codes, keys = pd.factorize(f["office_id"].to_numpy(dtype=object)[of_rows])
    described = [
        (f"office:{k}", office_city.get(k) or str(k), country_code(office_country.get(k))) for k in keys
    ]
    levels.append(("office", of_rows, codes, described))

    level_order = {"total": 0, "product_line": 1, "country": 2, "office": 3}
    records = [
        (series_id, level, name, code)
        for level, _, _, keys_described in levels
        for series_id, name, code in keys_described
    ]
    meta = pd.DataFrame(records, columns=["series_id", "series_level", "series_name", "country_code"])
    meta = meta.astype({"series_id": str, "series_level": str})
    meta["_o"] = meta["series_level"].map(level_order)
    meta["_n"] = np.arange(len(meta))
    meta = meta.sort_values(["_o", "series_id"], kind="stable").reset_index(drop=True)
    position = np.empty(len(meta), dtype="int64")
    position[meta["_n"].to_numpy()] = np.arange(len(meta))
    meta = meta.drop(columns=["_o", "_n"])
    meta["series_name"] = meta["series_name"].astype(str)
    meta["country_code"] = meta["country_code"].astype(object).where(meta["country_code"].notna(), None)

    parts: list[tuple[np.ndarray, np.ndarray]] = []
    offset = 0
    for _, rows, codes, keys_described in levels:
        parts.append((rows, position[offset + codes]))
        offset += len(keys_described)
    return f[["order_date", "net_sales"]], meta, parts


def _calendar(
    dates: pd.Series, frequency: str, end: pd.Timestamp | None, week_start: int
) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """Return (period start of each date, calendar of full periods) — SalesBIError if none is full."""
    dates = pd.to_datetime(dates)
    last_day = pd.Timestamp(dates.max()).normalize() if end is None else pd.Timestamp(end).normalize()
    starts = period_start(dates, frequency, week_start)
    first, last = starts.min(), period_start(pd.DatetimeIndex([last_day]), frequency, week_start)[0]
    if period_end(last, frequency) > last_day:
        last = _previous(last, frequency)
    if last < first:
        raise SalesBIError(
            f"the orders cover less than one full {FREQUENCY_NAMES[frequency]} period",
            hint="choose a finer forecast frequency or load more history",
        )
    calendar = pd.date_range(first, last, freq={"D": "D", "W": "7D", "M": "MS"}[frequency])
    return starts, calendar


def build_panel(
    long: pd.DataFrame,
    meta: pd.DataFrame,
    frequency: str,
    end: pd.Timestamp | None = None,
    week_start: int = 0,
) -> SeriesPanel:
    """Return the panel of ``long`` rows (series_id, order_date, net_sales) summed per period.

    Missing periods are zeros.  A last period that the data do not cover to its end
    (``end`` = last order date) is dropped: half a month is not a month of low sales.
    """
    if long.empty:
        raise SalesBIError("there are no sales to forecast", hint="load orders before the forecast step")
    starts, calendar = _calendar(long["order_date"], frequency, end, week_start)
    first, last = calendar[0], calendar[-1]
    ids = list(meta["series_id"])
    row = pd.Series(np.arange(len(ids)), index=ids)
    col = pd.Series(np.arange(len(calendar)), index=calendar)
    keep = (starts >= first) & (starts <= last)
    r = row.reindex(long["series_id"][keep].to_numpy()).to_numpy()
    c = col.reindex(starts[keep]).to_numpy()
    values = np.zeros((len(ids), len(calendar)), dtype="float64")
    np.add.at(values, (r, c), long["net_sales"][keep].to_numpy(dtype="float64"))
    return SeriesPanel(frequency=frequency, dates=calendar, values=values, meta=meta.reset_index(drop=True))


def _previous(start: pd.Timestamp, frequency: str) -> pd.Timestamp:
    if frequency == "D":
        return start - pd.Timedelta(days=1)
    if frequency == "W":
        return start - pd.Timedelta(days=7)
    return (start - pd.offsets.MonthBegin(1)).normalize()


def build_series(
    fact: pd.DataFrame,
    customers: pd.DataFrame,
    product_lines: pd.DataFrame,
    offices: pd.DataFrame,
    frequency: str,
    top_countries: int = 5,
    week_start: int = 0,
) -> SeriesPanel:
    """Return the panel of every series: total, product lines, top countries + Other, offices.

    Weeks start on ``week_start`` (Monday = 0 … Sunday = 6).
    """
    rows, meta, parts = _series_parts(fact, customers, product_lines, offices, top_countries)
    if rows.empty:
        raise SalesBIError("there are no sales to forecast", hint="load orders before the forecast step")
    starts, calendar = _calendar(rows["order_date"], frequency, None, week_start)
    column = np.full(len(starts), -1, dtype="int64")
    in_calendar = np.asarray((starts >= calendar[0]) & (starts <= calendar[-1]))
    column[in_calendar] = pd.Index(calendar).get_indexer(starts[in_calendar])
    sales = rows["net_sales"].to_numpy(dtype="float64")
    values = np.zeros((len(meta), len(calendar)), dtype="float64")
    # level by level, each in row order: every cell sums its rows in the order build_panel would
    for positions, series_rows in parts:
        keep = in_calendar[positions]
        np.add.at(values, (series_rows[keep], column[positions][keep]), sales[positions][keep])
    return SeriesPanel(frequency=frequency, dates=calendar, values=values, meta=meta)
