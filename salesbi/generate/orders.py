"""Order headers for the whole window: who orders on which day, how many lines, status and dates.

All order-level arrays fit in memory even for 10 million lines (about 2 million orders × a few
bytes each); only the order lines are produced block by block (:mod:`salesbi.generate.lines`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salesbi.contract import ORDER_STATUSES
from salesbi.generate.calendar import Calendar, DayWeights
from salesbi.generate.dimensions import Clientele

BASE_FLOOR = 0.3  # the active base divides the intensity, floored at this share of its maximum
MAX_EXTRA_LINES = 19  # at most 20 lines per order
# status probabilities for an order that is not still waiting to ship
STATUS_SHARES: dict[str, float] = {"cancelled": 0.04, "returned": 0.008, "disputed": 0.004, "on_hold": 0.005}
NO_EMPLOYEE_SHARE = 0.05  # orders whose employee_id is left empty (fall back to the customer's rep)
HOUSE_ORDER_NO_EMPLOYEE = 0.5  # orders of customers without a rep: share with no employee either
STATUS_INDEX = {s: i for i, s in enumerate(ORDER_STATUSES)}


@dataclass(frozen=True)
class OrderPlan:
    """Every order of the company, sorted by day then customer; index = order number − 1."""

    customer: np.ndarray  # int32 index into customers
    day: np.ndarray  # int32 day index in the window
    lines: np.ndarray  # int32 order lines per order (sum = order_lines)
    status: np.ndarray  # int8 index into ORDER_STATUSES
    ship_lag: np.ndarray  # int16 days to shipping, -1 = not shipped
    required_lag: np.ndarray  # int16 days to the required date
    employee: np.ndarray  # int32 index into Staff.rep_ids, -1 = empty
    scale: float  # orders per year per unit of relative rate (calibration result)
    expected_orders: np.ndarray  # float64 per customer

    @property
    def count(self) -> int:
        """Return the number of orders."""
        return len(self.customer)


def _expected_with_minimum(lam: np.ndarray, least: np.ndarray) -> float:
    """Return the expected total of Poisson(lam) counts where ``least`` periods are raised to ≥ 1."""
    return float(np.where(least, lam + np.exp(-lam), lam).sum())


def calibrate(period_mass: np.ndarray, least: np.ndarray, target_orders: float) -> float:
    """Return the scale s so that Σ E[count] with Poisson(s · mass) (raised to ≥1 where required) ≈ target."""
    if _expected_with_minimum(np.zeros_like(period_mass), least) >= target_orders:
        return 0.0
    lo, hi = 0.0, 1.0
    while _expected_with_minimum(hi * period_mass, least) < target_orders:
        hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _expected_with_minimum(mid * period_mass, least) < target_orders:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def exact_line_counts(rng: np.random.Generator, lines: np.ndarray, target: int) -> np.ndarray:
    """Return a keep-mask over orders after adjusting ``lines`` in place so kept orders sum to ``target``.

    Surplus lines are taken one at a time from random orders with more than one line; if every
    order has one line, random orders are dropped. Missing lines are added to random orders.
    """
    keep = np.ones(len(lines), dtype=bool)
    diff = target - int(lines.sum())
    if diff > 0:
        np.add.at(lines, rng.integers(0, len(lines), size=diff), 1)
    while diff < 0:
        eligible = np.flatnonzero(lines > 1)
        if len(eligible) == 0:
            drop = rng.choice(np.flatnonzero(keep), size=-diff, replace=False)
            keep[drop] = False
            lines[drop] = 0
            break
        take = rng.choice(eligible, size=min(-diff, len(eligible)), replace=False)
        lines[take] -= 1
        diff += len(take)
    return keep


def active_base(clients: Clientele, days: int) -> np.ndarray:
    """Return Σ relative rate × period rate of the customers active on each day of the window."""
    act = clients.activity
    w = (clients.relative_rate[:, None] * act.period_rate).ravel()
    diff = np.zeros(days + 1)
    np.add.at(diff, act.period_start.ravel(), w)
    np.add.at(diff, act.period_end.ravel(), -w)
    return np.cumsum(diff)[:days]


def customer_day_weights(calendar: Calendar, clients: Clientele) -> DayWeights:
    """Return the per-customer day weights: the company intensity ÷ the active customer base.

    The base is floored at BASE_FLOOR × its maximum so a thin start or end never blows up a
    single customer's rate; with the floor inactive, expected total orders per day ∝ intensity.
    """
    base = active_base(clients, calendar.days)
    base = np.maximum(base, BASE_FLOOR * max(float(base.max()), 1e-12))
    weight = calendar.intensity / base
    return DayWeights(weight / weight.mean())


def plan_orders(
    rng: np.random.Generator, calendar: Calendar, clients: Clientele, reps: int, order_lines: int
) -> OrderPlan:
    """Return every order header: days from the personas and calendar, exactly ``order_lines`` lines."""
    act = clients.activity
    weights = customer_day_weights(calendar, clients)
    mass = weights.mass(act.period_start, act.period_end) * act.period_rate / 365.25
    mass = mass * clients.relative_rate[:, None]
    mean_lines = float((mass.sum(axis=1) * (1.0 + clients.extra_lines)).sum() / max(mass.sum(), 1e-12))
    scale = calibrate(mass, act.at_least_one, order_lines / mean_lines)
    lam = scale * mass
    counts = rng.poisson(lam)
    counts = np.where(act.at_least_one, np.maximum(counts, 1), counts)

    flat = counts.ravel()
    period = np.repeat(np.arange(flat.size), flat)
    customer = (period // 3).astype("int32")
    a = act.period_start.ravel()[period]
    b = act.period_end.ravel()[period]
    day = weights.sample_days(rng, a, b)
    order = np.lexsort((customer, day))
    customer, day = customer[order], day[order]

    extra = np.minimum(rng.poisson(clients.extra_lines[customer]), MAX_EXTRA_LINES)
    lines = (1 + extra).astype("int32")
    keep = exact_line_counts(rng, lines, order_lines)
    customer, day, lines = customer[keep], day[keep], lines[keep]
    n = len(customer)

    status = _statuses(rng, n)
    ship_lag = (1 + np.minimum(rng.poisson(2.0, size=n), 13)).astype("int16")
    required_lag = (7 + rng.integers(0, 15, size=n)).astype("int16")
    unshipped = (day.astype("int64") + ship_lag) > calendar.days - 1
    in_transit = unshipped & np.isin(status, [STATUS_INDEX[s] for s in ("shipped", "returned", "disputed")])
    status[in_transit] = STATUS_INDEX["placed"]
    shipped = np.isin(status, [STATUS_INDEX[s] for s in ("shipped", "returned", "disputed")])
    ship_lag = np.where(shipped, ship_lag, -1).astype("int16")

    employee = _employees(rng, clients, customer, reps)
    return OrderPlan(
        customer=customer,
        day=day,
        lines=lines,
        status=status,
        ship_lag=ship_lag,
        required_lag=required_lag,
        employee=employee,
        scale=scale,
        expected_orders=lam.sum(axis=1),
    )


def _statuses(rng: np.random.Generator, n: int) -> np.ndarray:
    """Return a status index per order: shipped, or cancelled/returned/disputed/on_hold at their shares."""
    names = ["shipped", *STATUS_SHARES]
    shares = np.array([1.0 - sum(STATUS_SHARES.values()), *STATUS_SHARES.values()])
    codes = np.array([STATUS_INDEX[s] for s in names], dtype="int8")
    return codes[rng.choice(len(names), size=n, p=shares)]


def _employees(rng: np.random.Generator, clients: Clientele, customer: np.ndarray, reps: int) -> np.ndarray:
    """Return the credited rep per order: the customer's rep, sometimes empty; house orders get any rep."""
    n = len(customer)
    rep = clients.rep_index[customer].astype("int32")
    u = rng.random(n)
    any_rep = rng.integers(0, max(reps, 1), size=n).astype("int32")
    house = rep < 0
    rep = np.where(house & (u >= HOUSE_ORDER_NO_EMPLOYEE), any_rep, rep)
    rep = np.where(~house & (u < NO_EMPLOYEE_SHARE), -1, rep)
    return rep.astype("int32")
