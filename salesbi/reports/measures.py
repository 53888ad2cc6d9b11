"""Shared measure helpers: ranking, cumulative-share tiers, growth, grouped sums with null profit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd


def safe_ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """Return numerator / denominator as float64, null where the denominator is 0 or null (never inf)."""
    num = numerator.astype("float64")
    den = denominator.astype("float64")
    out = num / den.where(den != 0)
    return out.where(np.isfinite(out))


def growth(current: pd.Series, base: pd.Series) -> pd.Series:
    """Return current / base − 1, null where the base is 0 or null."""
    return safe_ratio(current, base) - 1.0


def rank_desc(frame: pd.DataFrame, value: str, tie: str, by: str | None = None) -> pd.Series:
    """Return 1-based ranks by ``value`` descending, ties broken by ``tie`` ascending, within ``by``.

    Null values rank last.
    """
    order = frame.sort_values(
        ([by] if by else []) + [value, tie],
        ascending=([True] if by else []) + [False, True],
        na_position="last",
        kind="stable",
    )
    if by:
        ranks = order.groupby(by, sort=False, dropna=False).cumcount() + 1
    else:
        ranks = pd.Series(np.arange(1, len(order) + 1), index=order.index)
    return ranks.reindex(frame.index).astype("Int64")


def cumulative_shares(frame: pd.DataFrame, value: str, rank: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Return (share, cumulative share including the row, share held by the rows ranked above).

    Shares are of the positive total of ``value``; all null when the total is not positive.
    """
    values = frame[value].astype("float64").fillna(0.0)
    total = float(values.clip(lower=0).sum())
    order = frame[rank].astype("int64").to_numpy().argsort(kind="stable")
    sorted_values = values.to_numpy()[order].clip(min=0)
    cum = np.empty(len(frame))
    cum[order] = np.cumsum(sorted_values)
    if total <= 0:
        nulls = pd.Series(np.nan, index=frame.index)
        return nulls, nulls.copy(), nulls.copy()
    share = pd.Series(values.to_numpy() / total, index=frame.index)
    cum_share = pd.Series(cum / total, index=frame.index)
    before = pd.Series((cum - values.clip(lower=0).to_numpy()) / total, index=frame.index)
    return share, cum_share, before


def tier_by_share(
    share_before: pd.Series,
    value: pd.Series,
    cutoffs: Sequence[float],
    labels: Sequence[str],
    zero_label: str,
) -> pd.Series:
    """Return the tier of each row: the first label whose cumulative cutoff exceeds ``share_before``.

    ``labels`` has one more entry than ``cutoffs`` (the last is the remainder); rows whose
    ``value`` is not positive get ``zero_label``.  A tiny tolerance keeps float sums stable.
    """
    before = share_before.fillna(1.0).to_numpy()
    out = np.full(len(before), labels[-1], dtype=object)
    assigned = np.zeros(len(before), dtype=bool)
    bound = 0.0
    for cutoff, label in zip(cutoffs, labels[:-1], strict=True):
        bound += cutoff
        hit = (before < bound - 1e-12) & ~assigned
        out[hit] = label
        assigned |= hit
    out[~(value.astype("float64").fillna(0.0).to_numpy() > 0)] = zero_label
    return pd.Series(out, index=share_before.index, dtype="string")


def sum_with_unknown(frame: pd.DataFrame, keys: list[str], column: str) -> pd.Series:
    """Return the grouped sum of ``column``, null for groups where any value is null."""
    grouped = frame.groupby(keys, sort=False, observed=True)[column]
    total = grouped.sum(min_count=1)
    unknown = frame[column].isna().groupby([frame[k] for k in keys], sort=False, observed=True).sum()
    return total.where(unknown.reindex(total.index).fillna(0) == 0)


def add_months(day: date, months: int) -> date:
    """Return ``day`` moved by ``months`` calendar months (clamped to the month's last day)."""
    ts = pd.Timestamp(day) + pd.DateOffset(months=months)
    return ts.date()


def month_index(dates: pd.Series) -> pd.Series:
    """Return year × 12 + month − 1 for each date (consecutive integers for consecutive months)."""
    d = pd.DatetimeIndex(dates)
    return pd.Series(d.year * 12 + d.month - 1, index=dates.index, dtype="int64")


def month_start_of_index(index: np.ndarray) -> pd.DatetimeIndex:
    """Return the first day of each month numbered by :func:`month_index`."""
    years = index // 12
    months = index % 12 + 1
    return pd.to_datetime(pd.DataFrame({"year": years, "month": months, "day": 1})).astype("datetime64[s]")
