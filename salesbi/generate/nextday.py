"""A second day's drop of a generated company: the same snapshot with some rows changed and some new.

``next_day_drop`` reads a drop written by :func:`salesbi.generate.generate_company` (or by an
earlier ``next_day_drop``) and writes the next day's:

* ``kind="snapshot"``: every file again, with ``changed_orders`` orders given a new status (and a
  shipped date), ``changed_customers`` customers a new credit limit, one new customer, and
  ``new_orders`` orders (with their lines) dated the day after the last order;
* ``kind="new_only"``: the dimension files in full (with the same changes and the new customer),
  but ``orders.csv``/``order_items.csv`` holding only the new orders and their lines.

Deterministic: the same inputs and seed give byte-identical files. The text of unchanged rows is
copied as it was read, so a content hash sees them as unchanged.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from salesbi import contract

DropKind = Literal["snapshot", "new_only"]


@dataclass(frozen=True)
class NextDay:
    """What a day-2 drop holds: its folder, day, and the keys changed or added per table."""

    out: Path
    day: date
    changed: dict[str, list[str]] = field(default_factory=dict)
    added: dict[str, list[str]] = field(default_factory=dict)


def _read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)


def _write(folder: Path, name: str, frame: pd.DataFrame) -> None:
    frame.to_csv(folder / f"{name}.csv", index=False, lineterminator="\n")


def _next_id(ids: pd.Series, offset: int) -> str:
    """Return the id ``offset`` places after the largest of ``ids`` (prefix and zero padding kept)."""
    last = ids.max()
    digits = len(last) - len(last.rstrip("0123456789"))
    prefix, number = last[: len(last) - digits], int(last[len(last) - digits :])
    return f"{prefix}{number + offset:0{digits}d}"


def next_day_drop(
    day1: Path,
    out: Path,
    *,
    kind: DropKind = "snapshot",
    changed_orders: int = 20,
    changed_customers: int = 5,
    new_orders: int = 30,
    seed: int = 1,
) -> NextDay:
    """Write the next day's drop of the company in ``day1`` into ``out``; return what it changed."""
    day1, out = Path(day1), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.Generator(np.random.PCG64(seed))
    frames = {t.name: _read(day1, t.name) for t in contract.TABLES}
    orders, items, customers = frames["orders"], frames["order_items"], frames["customers"]
    day = date.fromisoformat(orders["order_date"].max()) + timedelta(days=1)

    # changed customers: a new credit limit
    picked = rng.choice(len(customers), size=min(changed_customers, len(customers)), replace=False)
    customers = customers.copy()
    limits = pd.to_numeric(customers.loc[customers.index[picked], "credit_limit"], errors="coerce").fillna(0)
    customers.loc[customers.index[picked], "credit_limit"] = (limits + 1000).astype(int).astype(str)
    # one new customer (the new orders reference it: a parent new in the same drop)
    template = customers.iloc[0].copy()
    new_customer = _next_id(customers["customer_id"], 1)
    template["customer_id"] = new_customer
    template["customer_name"] = "Day Two Cycles Ltd"
    customers = pd.concat([customers, template.to_frame().T], ignore_index=True)

    # changed orders: the newest orders still open are shipped, others change status
    orders = orders.copy()
    open_orders = orders[orders["status"] != "cancelled"]  # a cancelled order may carry returns
    recent = open_orders.sort_values("order_date", kind="stable").tail(max(changed_orders * 3, 1))
    chosen = recent.sample(n=min(changed_orders, len(recent)), random_state=seed).index
    orders.loc[chosen, "status"] = np.where(orders.loc[chosen, "status"] == "shipped", "disputed", "shipped")
    orders.loc[chosen, "shipped_date"] = day.isoformat()

    # new orders: copies of recent orders (customer, lines) dated ``day``, the first few for the new customer
    sources = orders.loc[rng.choice(recent.index.to_numpy(), size=new_orders, replace=True)]
    new = sources.copy().reset_index(drop=True)
    new_ids = [_next_id(orders["order_id"], i + 1) for i in range(len(new))]
    old_ids = sources["order_id"].tolist()
    new["order_id"] = new_ids
    new["order_date"] = day.isoformat()
    new["required_date"] = (day + timedelta(days=10)).isoformat()
    new["shipped_date"] = ""
    new["status"] = "placed"
    new.loc[new.index[:2], "customer_id"] = new_customer
    lines = []
    for old, fresh in zip(old_ids, new_ids, strict=True):
        part = items[items["order_id"] == old].copy()
        part["order_id"] = fresh
        part = part[~part["quantity"].str.startswith("-")]  # a placed order carries no returns
        lines.append(part)
    new_items = pd.concat(lines, ignore_index=True)

    frames["customers"] = customers
    if kind == "snapshot":
        frames["orders"] = pd.concat([orders, new], ignore_index=True)
        frames["order_items"] = pd.concat([items, new_items], ignore_index=True)
    else:
        frames["orders"] = new
        frames["order_items"] = new_items
    for name, frame in frames.items():
        _write(out, name, frame)
    truth = day1 / "ground_truth"
    if truth.is_dir() and not (out / "ground_truth").exists():
        shutil.copytree(truth, out / "ground_truth")
    return NextDay(
        out=out,
        day=day,
        changed={
            "customers": customers.loc[customers.index[picked], "customer_id"].tolist(),
            "orders": orders.loc[chosen, "order_id"].tolist(),
        },
        added={"customers": [new_customer], "orders": new_ids},
    )
