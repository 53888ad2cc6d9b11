"""Features of the global LightGBM model: one row per (series, origin, step ahead).

Multi-step strategy: **direct**.  A row describes the series as known at its origin ``t``
(lags, rolling means, year-on-year growth — read only from periods ``<= t``) plus what is
known in advance about the target period ``t + h`` (calendar, holidays, ``h`` itself), and
its target is the sales of ``t + h``.  One model serves every step, so there is no recursion
(forecasts are never fed back as inputs: no compounding of errors, and a single fit covers the
whole horizon), and "no feature reads past the origin" is a property of one function that a
test checks by altering the data after the origin.

Targets and sales features are divided by the series' scale at the origin (its recent mean),
so one model learns shapes across series of very different sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from salesbi.forecasting.series import SEASON, YEAR

#: recent lags (0 = the origin period itself) per frequency
LAGS = {"D": (0, 1, 2, 3, 4, 5, 6, 13), "W": (0, 1, 2, 3, 7), "M": (0, 1, 2, 5)}
#: rolling-mean windows per frequency
WINDOWS = {"D": (7, 28, 91), "W": (4, 13, 26), "M": (3, 6, 12)}
#: periods averaged for the scale of a series at an origin
SCALE_WINDOW = {"D": 28, "W": 8, "M": 6}
#: periods before the first origin a training row may use (so a scale exists)
MIN_HISTORY = {"D": 28, "W": 8, "M": 3}


@dataclass
class FeatureContext:
    """Everything the feature builder reads: the values, the calendar and the series' identities."""

    frequency: str
    values: np.ndarray  # (n_series, n_periods) observed sales
    calendar: pd.DatetimeIndex  # period starts, extended past the data by the horizon
    holidays: np.ndarray  # (n_series, len(calendar)) holiday days in the period; NaN = country unknown
    series_code: np.ndarray  # (n_series,) int code of the series (categorical)
    level_code: np.ndarray  # (n_series,) int code of the level (categorical)


def _padded(values: np.ndarray, pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return values left-padded with NaN, and cumulative sums / counts of the observed values."""
    n = values.shape[0]
    padded = np.concatenate([np.full((n, pad), np.nan), values], axis=1)
    filled = np.nan_to_num(padded, nan=0.0)
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(filled, axis=1)], axis=1)
    ccount = np.concatenate([np.zeros((n, 1)), np.cumsum(~np.isnan(padded), axis=1)], axis=1)
    return padded, csum, ccount


def series_scale(values: np.ndarray, rows: np.ndarray, origins: np.ndarray, frequency: str) -> np.ndarray:
    """Return each (series, origin)'s scale: mean sales of its last periods up to the origin.

    At least half the mean of all history up to the origin (a sporadic series with a quiet
    recent spell must not get a tiny scale that blows up its scaled targets), then 1.0, so it
    is never zero.
    """
    w = SCALE_WINDOW[frequency]
    csum = np.concatenate([np.zeros((values.shape[0], 1)), np.cumsum(values, axis=1)], axis=1)
    end = origins + 1
    start = np.maximum(0, end - w)
    recent = (csum[rows, end] - csum[rows, start]) / np.maximum(1, end - start)
    overall = csum[rows, end] / np.maximum(1, end)
    scale = np.maximum(recent, 0.5 * overall)
    return np.where(scale > 0, scale, 1.0)


def build_features(
    ctx: FeatureContext, rows: np.ndarray, origins: np.ndarray, steps: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """Return (feature frame, scale) for target periods ``origins + steps`` of series ``rows``.

    Only ``ctx.values[row, :origin + 1]`` is read for each row: changing a value after the
    origin cannot change that row's features.
    """
    f = ctx.frequency
    m, year = SEASON[f], YEAR[f]
    rows = np.asarray(rows, dtype=np.int64)
    origins = np.asarray(origins, dtype=np.int64)
    steps = np.asarray(steps, dtype=np.int64)
    # history reads only indices <= origin: for every lookup below, idx <= origins
    pad = year * 2 + max(WINDOWS[f]) + 8
    padded, csum, ccount = _padded(ctx.values, pad)
    o = origins + pad  # origin position in padded coordinates
    scale = series_scale(ctx.values, rows, origins, f)

    def at(idx: np.ndarray) -> np.ndarray:
        assert np.all(idx <= o), "feature reads past its origin"
        return padded[rows, idx] / scale

    def mean_to(end: np.ndarray, window: int) -> np.ndarray:
        """Mean of the window ending at padded index ``end`` (inclusive), over observed periods."""
        assert np.all(end <= o)
        s = csum[rows, end + 1] - csum[rows, end + 1 - window]
        c = ccount[rows, end + 1] - ccount[rows, end + 1 - window]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 0, s / np.maximum(c, 1), np.nan) / scale

    cols: dict[str, np.ndarray] = {"step": steps.astype("float64")}
    for lag in LAGS[f]:
        cols[f"lag_{lag}"] = at(o - lag)
    # the latest period at the target's seasonal phase (same weekday / week / month) known at the origin
    back = m * np.ceil(steps / m).astype(np.int64)
    cols["seasonal_lag_1"] = at(o + steps - back)
    cols["seasonal_lag_2"] = at(o + steps - back - m)
    if f == "D":
        cols["seasonal_mean_4"] = np.nanmean(
            np.stack([at(o + steps - back - k * m) for k in range(4)]), axis=0
        )
    # the target period one year earlier, and the mean around it (trend × yearly season)
    back_y = year * np.ceil(steps / year).astype(np.int64)
    cols["year_lag"] = at(o + steps - back_y)
    half = {"D": 3, "W": 1, "M": 0}[f]
    cols["year_lag_mean"] = mean_to(np.minimum(o + steps - back_y + half, o), 2 * half + 1)
    for w in WINDOWS[f]:
        cols[f"mean_{w}"] = mean_to(o, w)
    wide = WINDOWS[f][-1]
    last_year = mean_to(o - year, wide)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["yoy_growth"] = np.where(last_year > 0, cols[f"mean_{wide}"] / last_year, np.nan)
    cols["log_scale"] = np.log1p(scale)

    target = ctx.calendar[origins + steps]
    cols["month"] = target.month.to_numpy().astype("float64")
    if f == "D":
        cols["day_of_week"] = target.day_of_week.to_numpy().astype("float64")
        cols["day_of_month"] = target.day.to_numpy().astype("float64")
        cols["day_of_year"] = target.day_of_year.to_numpy().astype("float64")
    elif f == "W":
        cols["week_of_year"] = target.isocalendar().week.to_numpy().astype("float64")
    cols["holidays"] = ctx.holidays[rows, origins + steps]
    cols["series"] = ctx.series_code[rows].astype("int64")
    cols["level"] = ctx.level_code[rows].astype("int64")
    frame = pd.DataFrame(cols)
    return frame, scale


CATEGORICAL = ["series", "level"]


def holiday_matrix(country_codes: list[str | None], calendar: pd.DatetimeIndex, frequency: str) -> np.ndarray:
    """Return holidays per series and period (days that are public holidays; NaN when no country)."""
    import holidays as holidays_lib

    out = np.full((len(country_codes), len(calendar)), np.nan)
    if len(calendar) == 0:
        return out
    years = list(range(calendar.min().year, calendar.max().year + 2))
    per_code: dict[str, np.ndarray] = {}
    day_index = pd.date_range(calendar.min(), calendar.max() + pd.offsets.MonthEnd(1) + pd.Timedelta(days=7))
    for code in sorted({c for c in country_codes if c is not None}):
        try:
            hol = holidays_lib.country_holidays(code, years=years)
        except NotImplementedError:
            continue
        holiday_days = pd.DatetimeIndex([pd.Timestamp(d) for d in hol])
        flags = pd.Series(day_index.isin(holiday_days).astype("float64"), index=day_index)
        if frequency == "D":
            per_code[code] = flags.reindex(calendar).to_numpy()
        else:
            from salesbi.forecasting.series import period_start

            week_start = int(calendar[0].day_of_week)  # the calendar's weeks start on its first day
            grouped = flags.groupby(period_start(flags.index, frequency, week_start)).sum()
            per_code[code] = grouped.reindex(calendar).fillna(0.0).to_numpy()
    for i, maybe in enumerate(country_codes):
        if maybe is not None and maybe in per_code:
            out[i] = per_code[maybe]
    return out
