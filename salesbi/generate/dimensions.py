"""The small tables of the sample company: offices, employees, product lines, products, customers.

Each builder returns the canonical columns (as a pandas frame) plus the hidden attributes the
order generator and the ground truth need (rep performance, product weights, customer personas).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from salesbi.generate import personas as ps
from salesbi.generate import world

PRODUCT_TIERS: tuple[str, ...] = ("Sport", "Comp", "Pro", "Elite")
NO_REP_SHARE = 0.03  # customers without an assigned sales rep
NEVER_SOLD = 3  # products in the catalogue that nobody orders


@dataclass(frozen=True)
class Staff:
    """Employees and, for the sales reps among them, their territory and performance."""

    frame: pd.DataFrame
    rep_ids: np.ndarray  # object array of employee_id
    rep_territory: np.ndarray  # object array
    rep_factor: np.ndarray  # float64 performance factor (≈0.55–1.6)


@dataclass(frozen=True)
class Catalogue:
    """Product lines and products with the sampling weights behind them."""

    lines: pd.DataFrame
    products: pd.DataFrame
    line_popularity: np.ndarray  # per product line, sums to 1
    line_margin: np.ndarray
    line_quantity: np.ndarray  # mean units per line item
    product_line_index: np.ndarray  # per product (products sorted by line)
    product_weight: np.ndarray  # per product, 0 for never-sold products
    product_list_price: np.ndarray


@dataclass(frozen=True)
class Clientele:
    """Customers with persona, activity, rate and value (the hidden truth behind the orders)."""

    frame: pd.DataFrame
    activity: ps.Activity
    rep_index: np.ndarray  # index into Staff.rep_ids, -1 without a rep
    relative_rate: np.ndarray  # relative orders per year before calibration
    value_factor: np.ndarray
    favourite_line: np.ndarray  # index into product lines
    extra_lines: np.ndarray  # lines per order = 1 + Poisson(extra_lines)


def offices_frame() -> pd.DataFrame:
    """Return the offices table (fixed: eight offices in six countries)."""
    return pd.DataFrame(
        {
            "office_id": [o.office_id for o in world.OFFICES],
            "city": [o.city for o in world.OFFICES],
            "state": [o.state for o in world.OFFICES],
            "country": [o.country for o in world.OFFICES],
            "territory": [o.territory for o in world.OFFICES],
            "postal_code": [o.postal_code for o in world.OFFICES],
        }
    )


def reps_per_office(customers: int) -> int:
    """Return how many sales reps each office has: grows slowly with the customer base (2–12)."""
    return int(np.clip(round(np.sqrt(customers) / 6.0), 2, 12))


def build_staff(rng: np.random.Generator, customers: int, start: date) -> Staff:
    """Return the employees: a president, a VP of sales, a manager and sales reps per office."""
    offices = world.OFFICES
    per_office = reps_per_office(customers)
    n = 2 + len(offices) * (1 + per_office)
    pairs = rng.choice(len(world.FIRST_NAMES) * len(world.LAST_NAMES), size=n, replace=False)
    first = [world.FIRST_NAMES[i // len(world.LAST_NAMES)] for i in pairs]
    last = [world.LAST_NAMES[i % len(world.LAST_NAMES)] for i in pairs]
    ids = [f"E{i + 1:04d}" for i in range(n)]
    titles = ["President", "VP Sales"]
    office_of = [offices[0].office_id, offices[0].office_id]
    manager: list[str | None] = [None, ids[0]]
    rep_rows: list[int] = []
    rep_territory: list[str] = []
    k = 2
    for office in offices:
        manager_id = ids[k]
        titles.append(f"Sales Manager ({office.territory})")
        office_of.append(office.office_id)
        manager.append(ids[1])
        k += 1
        for _ in range(per_office):
            titles.append("Sales Rep")
            office_of.append(office.office_id)
            manager.append(manager_id)
            rep_rows.append(k)
            rep_territory.append(office.territory)
            k += 1
    hired_days_before = rng.integers(30, 3650, size=n)
    frame = pd.DataFrame(
        {
            "employee_id": ids,
            "first_name": first,
            "last_name": last,
            "job_title": titles,
            "office_id": office_of,
            "manager_id": manager,
            "email": [f"{f}.{s}@{world.COMPANY_DOMAIN}".lower() for f, s in zip(first, last, strict=True)],
            "hire_date": [start - timedelta(days=int(d)) for d in hired_days_before],
        }
    )
    factor = rng.permutation(np.geomspace(0.55, 1.6, len(rep_rows)))
    return Staff(
        frame=frame,
        rep_ids=np.asarray([ids[i] for i in rep_rows], dtype=object),
        rep_territory=np.asarray(rep_territory, dtype=object),
        rep_factor=factor,
    )


def build_catalogue(rng: np.random.Generator) -> Catalogue:
    """Return product lines and products: list prices, unit costs from each line's margin, weights."""
    lines = world.PRODUCT_LINES
    line_frame = pd.DataFrame(
        {
            "product_line_id": [pl.product_line_id for pl in lines],
            "name": [pl.name for pl in lines],
            "description": [pl.description for pl in lines],
        }
    )
    rows: list[dict[str, object]] = []
    line_index: list[int] = []
    for li, pl in enumerate(lines):
        words = world.PRODUCT_WORDS[pl.product_line_id]
        for i in range(pl.products):
            rows.append({"name": f"{words[i % len(words)]} {PRODUCT_TIERS[i // len(words)]}"})
            line_index.append(li)
    n = len(rows)
    idx = np.asarray(line_index)
    lo = np.array([lines[i].price_low for i in idx])
    hi = np.array([lines[i].price_high for i in idx])
    list_price = np.round(lo * (hi / lo) ** rng.random(n)) - 0.01
    list_price = np.maximum(list_price, 0.99)
    margin = np.array([lines[i].margin for i in idx])
    unit_cost = np.round(list_price * (1.0 - margin) * rng.normal(1.0, 0.03, size=n), 2)
    weight = rng.lognormal(0.0, 0.8, size=n)
    big_lines = np.flatnonzero(np.array([lines[i].products for i in idx]) >= 8)
    weight[rng.choice(big_lines, size=NEVER_SOLD, replace=False)] = 0.0
    products = pd.DataFrame(
        {
            "product_id": [f"P{i + 1:04d}" for i in range(n)],
            "product_name": [r["name"] for r in rows],
            "product_line_id": [lines[i].product_line_id for i in idx],
            "vendor": np.asarray(world.VENDORS, dtype=object)[rng.integers(0, len(world.VENDORS), size=n)],
            "unit_cost": unit_cost,
            "list_price": list_price,
            "quantity_in_stock": rng.integers(0, 5000, size=n),
        }
    )
    popularity = np.array([pl.popularity for pl in lines])
    return Catalogue(
        lines=line_frame,
        products=products,
        line_popularity=popularity / popularity.sum(),
        line_margin=np.array([pl.margin for pl in lines]),
        line_quantity=np.array([pl.quantity_mean for pl in lines]),
        product_line_index=idx,
        product_weight=weight,
        product_list_price=list_price,
    )


def customer_count(order_lines: int) -> int:
    """Return how many customers a company with ``order_lines`` lines has: one per 40 lines, at least 50."""
    return max(50, order_lines // 40)


def build_clientele(
    rng: np.random.Generator, customers: int, days: int, staff: Staff, catalogue: Catalogue
) -> Clientele:
    """Return the customers with persona, activity periods, assigned rep, rate and value factor."""
    persona = ps.assign_personas(rng, customers)
    activity = ps.activity_periods(rng, persona, days)
    cities = world.CITIES
    city_weight = np.array([c.weight for c in cities])
    city = rng.choice(len(cities), size=customers, p=city_weight / city_weight.sum())
    territory = np.asarray([c.territory for c in cities], dtype=object)[city]

    rep = np.full(customers, -1, dtype="int64")
    u = rng.random(customers)
    for t in sorted(set(staff.rep_territory.tolist())):
        reps = np.flatnonzero(staff.rep_territory == t)
        members = np.flatnonzero(territory == t)
        w = staff.rep_factor[reps]
        rep[members] = reps[rng.choice(len(reps), size=len(members), p=w / w.sum())]
    rep[u < NO_REP_SHARE] = -1
    rep_factor = np.where(rep >= 0, staff.rep_factor[np.maximum(rep, 0)], 1.0)

    value = np.asarray(ps.VALUE_FACTOR)[persona] * rng.lognormal(0.0, 0.25, size=customers)
    rate = np.asarray(ps.RELATIVE_RATE)[persona] * rep_factor * rng.lognormal(0.0, 0.25, size=customers)
    favourite = rng.choice(len(catalogue.line_popularity), size=customers, p=catalogue.line_popularity)
    extra = np.asarray(ps.EXTRA_LINES)[persona]

    prefix = np.asarray(world.SHOP_PREFIXES, dtype=object)[
        rng.integers(0, len(world.SHOP_PREFIXES), customers)
    ]
    core = np.asarray(world.SHOP_CORES, dtype=object)[rng.integers(0, len(world.SHOP_CORES), customers)]
    suffix = np.asarray(world.SHOP_SUFFIXES, dtype=object)[
        rng.integers(0, len(world.SHOP_SUFFIXES), customers)
    ]
    names = pd.Series(prefix + " " + core + " " + suffix)
    repeat = names.groupby(names).cumcount().to_numpy()
    names = names.where(repeat == 0, names + " " + (repeat + 1).astype(str))
    first = np.asarray(world.FIRST_NAMES, dtype=object)[rng.integers(0, len(world.FIRST_NAMES), customers)]
    last = np.asarray(world.LAST_NAMES, dtype=object)[rng.integers(0, len(world.LAST_NAMES), customers)]
    credit = np.round(value * rng.uniform(0.7, 1.3, size=customers) * 20_000, -2)
    credit = np.where(rng.random(customers) < 0.05, np.nan, credit)
    width = max(6, len(str(customers)))
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i + 1:0{width}d}" for i in range(customers)],
            "customer_name": names.to_numpy(),
            "contact_name": first + " " + last,
            "city": np.asarray([c.city for c in cities], dtype=object)[city],
            "state": np.asarray([c.state for c in cities], dtype=object)[city],
            "country": np.asarray([c.country for c in cities], dtype=object)[city],
            "postal_code": np.asarray([c.postal_code for c in cities], dtype=object)[city],
            "sales_rep_id": np.where(rep >= 0, staff.rep_ids[np.maximum(rep, 0)], None),
            "credit_limit": credit,
        }
    )
    return Clientele(
        frame=frame,
        activity=activity,
        rep_index=rep,
        relative_rate=rate,
        value_factor=value,
        favourite_line=favourite,
        extra_lines=extra,
    )
