"""A small, fast synthetic ``fact_order_lines`` with known customer personas (tests and benchmarks).

Not a company generator (that is :mod:`salesbi.generate`): it writes only what segmentation and
prediction read. Each persona has an activity period and an order rate:

=========== ====================================== =========== ==============
persona     active                                 mean gap    basket
=========== ====================================== =========== ==============
vip         whole span                             20 days     large
loyal       whole span                             35 days     medium
new         last 80 days                           25 days     medium
fading      whole span, rate halves; stops ~200 d   40 days     medium
churned     first 40 % of the span                 30 days     medium
regained    first 40 %, then again the last 100 d   30 days     medium
occasional  whole span                             200 days    small
=========== ====================================== =========== ==============
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

PERSONAS: tuple[str, ...] = ("vip", "loyal", "new", "fading", "churned", "regained", "occasional")
DEFAULT_MIX: dict[str, float] = {
    "vip": 0.05,
    "loyal": 0.2,
    "new": 0.1,
    "fading": 0.15,
    "churned": 0.2,
    "regained": 0.1,
    "occasional": 0.2,
}


def _periods(persona: str, span: int) -> list[tuple[int, int, float]]:
    """(start day, end day, mean gap) periods of activity, days counted from the data start."""
    if persona == "vip":
        return [(0, span, 20.0)]
    if persona == "loyal":
        return [(0, span, 35.0)]
    if persona == "new":
        return [(span - 80, span, 25.0)]
    if persona == "fading":
        return [(0, span // 2, 40.0), (span // 2, span - 200, 80.0)]
    if persona == "churned":
        return [(0, int(span * 0.4), 30.0)]
    if persona == "regained":
        return [(0, int(span * 0.4), 30.0), (span - 100, span, 30.0)]
    return [(0, span, 200.0)]


def synthetic_fact(
    customers: int = 500,
    *,
    seed: int = 0,
    end: date = date(2024, 12, 31),
    span_days: int = 1095,
    mix: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return ``(fact, customers, employees, truth)``: order lines, customer and rep frames, personas.

    ``truth`` has customer_id and persona. Deterministic for a given seed.
    """
    rng = np.random.default_rng(seed)
    mix = mix or DEFAULT_MIX
    names = list(mix)
    probs = np.array([mix[n] for n in names], dtype="float64")
    persona_idx = rng.choice(len(names), size=customers, p=probs / probs.sum())
    start = pd.Timestamp(end) - pd.Timedelta(days=span_days)
    basket = {"vip": 4000.0, "occasional": 400.0}
    cust_rows: list[np.ndarray] = []
    day_rows: list[np.ndarray] = []
    for p, persona in enumerate(names):
        members = np.flatnonzero(persona_idx == p)
        if not len(members):
            continue
        for a, b, gap in _periods(persona, span_days):
            counts = rng.poisson((b - a) / gap, size=len(members))
            if (a, b) == _periods(persona, span_days)[0][:2]:
                counts = np.maximum(counts, 1)
            owners = np.repeat(members, counts)
            cust_rows.append(owners)
            day_rows.append(rng.integers(a, max(a + 1, b), size=len(owners)))
    owner = np.concatenate(cust_rows)
    day = np.concatenate(day_rows)
    order = np.lexsort((day, owner))
    owner, day = owner[order], day[order]
    n_orders = len(owner)
    persona_of_order = np.asarray(names, dtype=object)[persona_idx[owner]]
    size = np.array([basket.get(str(x), 1200.0) for x in persona_of_order])
    value = size * rng.lognormal(0.0, 0.5, size=n_orders)
    cancelled = rng.random(n_orders) < 0.03
    lines_per = rng.integers(1, 4, size=n_orders)
    line_order = np.repeat(np.arange(n_orders), lines_per)
    line_number = np.concatenate([np.arange(1, k + 1) for k in lines_per]) if n_orders else np.array([], int)
    share = rng.dirichlet(np.ones(3), size=n_orders)
    line_value = np.round(value[line_order] * share[line_order, line_number - 1], 2)
    product_line = rng.integers(0, 7, size=len(line_order))
    reps = 10
    rep_of_customer = np.arange(customers) % reps
    fact = pd.DataFrame(
        {
            "order_id": pd.array([f"O{i:08d}" for i in line_order], dtype="string"),
            "line_number": line_number,
            "customer_id": pd.array([f"C{i:06d}" for i in owner[line_order]], dtype="string"),
            "product_id": pd.array([f"P{i}" for i in product_line], dtype="string"),
            "product_line_id": pd.array([f"L{i}" for i in product_line], dtype="string"),
            "employee_id": pd.array([f"E{i}" for i in rep_of_customer[owner[line_order]]], dtype="string"),
            "order_date": (start + pd.to_timedelta(day[line_order], unit="D")).astype("datetime64[s]"),
            "is_cancelled": cancelled[line_order],
            "quantity": 1,
            "unit_price": line_value,
            "discount": 0.0,
            "revenue": line_value,
            "net_sales": np.where(cancelled[line_order], 0.0, line_value),
        }
    )
    ids = [f"C{i:06d}" for i in range(customers)]
    customers_frame = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "customer_name": pd.array([f"Customer {i}" for i in range(customers)], dtype="string"),
            "country": pd.array(["Norway"] * customers, dtype="string"),
            "sales_rep_id": pd.array([f"E{i}" for i in rep_of_customer], dtype="string"),
        }
    )
    employees = pd.DataFrame(
        {
            "employee_id": pd.array([f"E{i}" for i in range(reps)], dtype="string"),
            "first_name": pd.array([f"Rep{i}" for i in range(reps)], dtype="string"),
            "last_name": pd.array(["Seller"] * reps, dtype="string"),
        }
    )
    truth = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "persona": np.asarray(names, dtype=object)[persona_idx],
        }
    )
    return fact, customers_frame, employees, truth
