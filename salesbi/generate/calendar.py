"""The company's daily order intensity: trend × weekly × yearly seasonality, and day sampling.

The intensity is the *expected shape of the company's total daily orders*. Customers come and
go (personas), so :mod:`salesbi.generate.orders` divides it by the active customer base before
spreading each customer's orders over their active days; the total then follows the intensity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

# Monday .. Sunday: weekdays are busy, weekends quiet (shops order from the wholesaler at work).
WEEKLY_WEIGHTS: tuple[float, ...] = (1.15, 1.25, 1.25, 1.2, 1.05, 0.6, 0.5)
ANNUAL_GROWTH = 0.12  # the intensity grows 12 % a year (exponential trend)
YEARLY_AMPLITUDE = 0.30  # 1 + A·cos(2π (day_of_year − peak) / 365.25)
YEARLY_PEAK_DAY = 335  # early December: a Q4 peak


class DayWeights:
    """Non-negative weights per day of the window, with their running sum for sampling."""

    def __init__(self, weight: np.ndarray) -> None:
        self.weight = weight
        self.cumulative = np.concatenate(([0.0], np.cumsum(weight)))

    def mass(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Return the summed weight over days ``[a, b)`` (element-wise; 0 where b <= a)."""
        cum = self.cumulative
        return np.where(b > a, cum[np.maximum(b, a)] - cum[a], 0.0)

    def sample_days(self, rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Return one day index per pair, drawn in ``[a, b)`` (b > a) with probability ∝ the weight."""
        cum = self.cumulative
        lo, hi = cum[a], cum[b]
        u = lo + rng.random(len(a)) * (hi - lo)
        day = np.searchsorted(cum, u, side="right") - 1
        return np.clip(day, a, b - 1).astype("int32")


@dataclass(frozen=True)
class Calendar:
    """The generation window and its normalised daily intensity (mean 1 over the window)."""

    start: date
    days: int
    weekly: tuple[float, ...] = WEEKLY_WEIGHTS
    annual_growth: float = ANNUAL_GROWTH
    yearly_amplitude: float = YEARLY_AMPLITUDE
    yearly_peak_day: int = YEARLY_PEAK_DAY
    intensity: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        day = np.arange(self.days, dtype="float64")
        weekday = (self.start.weekday() + np.arange(self.days)) % 7
        weekly = np.asarray(self.weekly, dtype="float64")
        weekly = weekly / weekly.mean()
        doy = _day_of_year(self.start, self.days)
        yearly = 1.0 + self.yearly_amplitude * np.cos(2.0 * math.pi * (doy - self.yearly_peak_day) / 365.25)
        trend = np.exp(math.log1p(self.annual_growth) * day / 365.25)
        g = trend * weekly[weekday] * yearly
        g = g / g.mean()
        object.__setattr__(self, "intensity", g)

    @property
    def end(self) -> date:
        """Return the last day of the window (inclusive)."""
        return self.start + timedelta(days=self.days - 1)

    def weights(self) -> DayWeights:
        """Return the intensity as :class:`DayWeights` (for sampling days)."""
        return DayWeights(self.intensity)

    def description(self) -> dict[str, object]:
        """Return the seasonality and trend parameters as JSON-ready values (for meta.json)."""
        names = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        weekly = np.asarray(self.weekly) / np.mean(self.weekly)
        return {
            "trend": {
                "kind": "exponential",
                "annual_growth": self.annual_growth,
                "formula": "exp(log(1 + annual_growth) * day / 365.25)",
            },
            "weekly": {
                "kind": "day-of-week multipliers (mean 1)",
                "multipliers": {n: round(float(w), 6) for n, w in zip(names, weekly, strict=True)},
            },
            "yearly": {
                "kind": "cosine",
                "amplitude": self.yearly_amplitude,
                "peak_day_of_year": self.yearly_peak_day,
                "formula": "1 + amplitude * cos(2 pi (day_of_year - peak_day_of_year) / 365.25)",
            },
            "intensity": "trend * weekly * yearly, normalised to mean 1 over the window: the expected "
            "shape of the company's total daily order count (customers' own rates are this divided by "
            "the active customer base, so churn and new customers do not bend it)",
        }


def _day_of_year(start: date, days: int) -> np.ndarray:
    """Return the day of year (1..366) of each day in the window, as floats."""
    ordinals = start.toordinal() + np.arange(days)
    last = (start + timedelta(days=days - 1)).year
    jan1 = np.array([date(y, 1, 1).toordinal() for y in range(start.year, last + 2)])
    idx = np.searchsorted(jan1, ordinals, side="right") - 1
    return (ordinals - jan1[idx] + 1).astype("float64")
