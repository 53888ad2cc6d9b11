"""Customer personas: who orders how often, how much, and when they are active.

Each customer gets one persona and up to three *activity periods* ``[a, b)`` (day indices in the
window) with a relative rate. Orders arrive as a Poisson process with intensity
``base_rate × period_rate × day weight`` inside those periods, where the day weight is the
company's intensity divided by the active customer base (:mod:`salesbi.generate.orders`).
All but new and occasional customers are accounts that exist when the window opens.

=========== ================================================================ ===== =====
persona     activity                                                          rate  value
=========== ================================================================ ===== =====
vip         from the start to the end, steady                                 20    3.0
loyal       from the start to the end, steady                                 10    1.2
new         active from 30–150 days before the end, steady                    12    1.0
fading      steady, from 35–55 % of the window at 45 % of the rate, from half
            way between then and the end at 15 %                              10    1.0
churned     steady until a churn date 35–75 % into the window (≥ 180 d before
            the end), nothing after                                           10    1.0
regained    steady, then a 150–300 day gap, back 60–200 days before the end   10    1.0
occasional  from a start in the first 60 % of the window to the end, rarely   1.5   0.4
=========== ================================================================ ===== =====

Rates are relative orders per year; the generator scales them so the company has the requested
number of order lines. Every customer orders at least once in their first period (and a regained
customer at least once after coming back), so each persona is visible in the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PERSONAS: tuple[str, ...] = ("vip", "loyal", "new", "fading", "churned", "regained", "occasional")
MIX: tuple[float, ...] = (0.05, 0.20, 0.10, 0.15, 0.15, 0.10, 0.25)
RELATIVE_RATE: tuple[float, ...] = (20.0, 10.0, 12.0, 10.0, 10.0, 10.0, 1.5)
VALUE_FACTOR: tuple[float, ...] = (3.0, 1.2, 1.0, 1.0, 1.0, 1.0, 0.4)
EXTRA_LINES: tuple[float, ...] = (5.0, 3.8, 3.5, 3.6, 3.6, 3.6, 2.0)  # lines per order = 1 + Poisson(x)
FADING_RATES: tuple[float, float] = (0.45, 0.15)
CHURN_QUIET_DAYS = 180  # a churned customer's last order is at least this long before the end
NO_NULL = -1  # "no date" marker in the day-index arrays


@dataclass(frozen=True)
class Activity:
    """Per-customer persona, activity periods and the life-cycle dates (day indices, -1 = none)."""

    persona: np.ndarray  # int8 index into PERSONAS
    period_start: np.ndarray  # (customers, 3) int64
    period_end: np.ndarray  # (customers, 3) int64, exclusive
    period_rate: np.ndarray  # (customers, 3) float64
    at_least_one: np.ndarray  # (customers, 3) bool: the period gets at least one order
    active_from: np.ndarray
    fade_start: np.ndarray
    churn_day: np.ndarray
    gap_start: np.ndarray
    regain_day: np.ndarray


def assign_personas(rng: np.random.Generator, customers: int) -> np.ndarray:
    """Return a persona index per customer: the mix, rounded, with every persona present when possible."""
    mix = np.asarray(MIX)
    counts = np.floor(mix * customers).astype(int)
    counts[np.argsort(-(mix * customers - counts), kind="stable")[: customers - counts.sum()]] += 1
    persona = np.repeat(np.arange(len(PERSONAS), dtype="int8"), counts)
    return rng.permutation(persona)


def activity_periods(rng: np.random.Generator, persona: np.ndarray, days: int) -> Activity:
    """Return each customer's activity periods for a window of ``days`` days."""
    n = len(persona)
    u = rng.random((n, 6))
    a = np.zeros((n, 3), dtype="int64")
    b = np.zeros((n, 3), dtype="int64")
    r = np.zeros((n, 3), dtype="float64")
    least = np.zeros((n, 3), dtype=bool)
    none = np.full(n, NO_NULL, dtype="int64")
    fade_start, churn_day, gap_start, regain_day = none.copy(), none.copy(), none.copy(), none.copy()

    def frac(x: np.ndarray) -> np.ndarray:
        return np.floor(x * days).astype("int64")

    p = {name: persona == i for i, name in enumerate(PERSONAS)}
    # accounts that exist when the window opens; occasional buyers trickle in over the first 60 %
    since = np.zeros(n, dtype="int64")
    since = np.where(p["occasional"], frac(u[:, 0] * 0.6), since)
    new_from = np.maximum(0, days - (30 + np.floor(u[:, 1] * 120)).astype("int64"))
    since = np.where(p["new"], new_from, since)

    # one steady period to the end: vip, loyal, new, occasional
    steady = p["vip"] | p["loyal"] | p["new"] | p["occasional"]
    a[steady, 0], b[steady, 0], r[steady, 0] = since[steady], days, 1.0

    # fading: full rate, then FADING_RATES[0] from fade_start, FADING_RATES[1] from half-way to the end
    f = p["fading"]
    fs = np.maximum(since + 30, frac(0.35 + 0.2 * u[:, 2]))
    fm = fs + (days - fs) // 2
    a[f, 0], b[f, 0], r[f, 0] = since[f], fs[f], 1.0
    a[f, 1], b[f, 1], r[f, 1] = fs[f], fm[f], FADING_RATES[0]
    a[f, 2], b[f, 2], r[f, 2] = fm[f], days, FADING_RATES[1]
    fade_start[f] = fs[f]

    # churned: active until the churn day, then silent
    c = p["churned"]
    churn = np.minimum(frac(0.35 + 0.4 * u[:, 3]), days - CHURN_QUIET_DAYS)
    churn = np.maximum(churn, since + 1)
    a[c, 0], b[c, 0], r[c, 0] = since[c], churn[c], 1.0
    churn_day[c] = churn[c]

    # regained: active, a gap of 150–300 days, back 60–200 days before the end
    g = p["regained"]
    back = np.maximum(1, days - (60 + np.floor(u[:, 4] * 140)).astype("int64"))
    gap_begin = np.maximum(since + 1, back - (150 + np.floor(u[:, 5] * 150)).astype("int64"))
    a[g, 0], b[g, 0], r[g, 0] = since[g], gap_begin[g], 1.0
    a[g, 1], b[g, 1], r[g, 1] = back[g], days, 1.0
    least[g, 1] = True
    gap_start[g], regain_day[g] = gap_begin[g], back[g]

    a = np.clip(a, 0, days)
    b = np.clip(b, a, days)
    least[:, 0] = True
    least &= b > a
    return Activity(
        persona=persona,
        period_start=a,
        period_end=b,
        period_rate=r,
        at_least_one=least,
        active_from=np.clip(since, 0, days - 1),
        fade_start=fade_start,
        churn_day=churn_day,
        gap_start=gap_start,
        regain_day=regain_day,
    )
