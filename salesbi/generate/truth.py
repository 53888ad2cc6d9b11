"""The ground truth of a generated company, written to ``<out>/ground_truth/``.

Later tests read it to check that segmentation recovers the personas and forecasting the
seasonality. It lives in a subfolder so the canonical profile never reads it as a table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from salesbi.generate import personas as ps
from salesbi.generate.calendar import Calendar
from salesbi.generate.dimensions import Catalogue, Clientele, Staff
from salesbi.generate.writer import write_arrow

GROUND_TRUTH_DIR = "ground_truth"


@dataclass(frozen=True)
class TruthInputs:
    """Everything the ground truth files describe."""

    calendar: Calendar
    staff: Staff
    catalogue: Catalogue
    clients: Clientele
    scale: float
    expected_orders: np.ndarray
    meta: dict[str, Any]


def _dates(calendar: Calendar, day: np.ndarray) -> pa.Array:
    """Return a date32 array for day indices of the window, null where the index is negative."""
    offset = (calendar.start - date(1970, 1, 1)).days
    return pa.array((day + offset).astype("int32"), type=pa.date32(), mask=day < 0)


def _text(values: np.ndarray) -> pa.Array:
    """Return a string array (None → null)."""
    return pa.array(values, type=pa.string())


def customers_truth(inputs: TruthInputs) -> pa.Table:
    """Return one row per customer: persona, base order rate, value factor and life-cycle dates."""
    c, cal = inputs.clients, inputs.calendar
    act = c.activity
    rep_ids = pa.array(inputs.staff.rep_ids, type=pa.string())
    rep = rep_ids.take(pa.array(c.rep_index, mask=c.rep_index < 0))
    return pa.table(
        {
            "customer_id": _text(c.frame["customer_id"].to_numpy()),
            "persona": _text(np.asarray(ps.PERSONAS, dtype=object)[act.persona]),
            "sales_rep_id": rep,
            "base_order_rate": np.round(inputs.scale * c.relative_rate, 6),
            "value_factor": np.round(c.value_factor, 6),
            "expected_orders": np.round(inputs.expected_orders, 6),
            "active_from": _dates(cal, act.active_from),
            "fade_start": _dates(cal, act.fade_start),
            "churn_date": _dates(cal, act.churn_day),
            "gap_start": _dates(cal, act.gap_start),
            "regain_date": _dates(cal, act.regain_day),
        }
    )


def employees_truth(staff: Staff) -> pd.DataFrame:
    """Return one row per sales rep: territory and performance factor (multiplies customers' order rate)."""
    return pd.DataFrame(
        {
            "employee_id": staff.rep_ids,
            "territory": staff.rep_territory,
            "performance_factor": np.round(staff.rep_factor, 6),
        }
    )


def product_lines_truth(catalogue: Catalogue) -> pd.DataFrame:
    """Return one row per product line: nominal margin (1 − cost/list price), popularity, mean quantity."""
    return pd.DataFrame(
        {
            "product_line_id": catalogue.lines["product_line_id"].to_numpy(),
            "name": catalogue.lines["name"].to_numpy(),
            "margin": catalogue.line_margin,
            "popularity": np.round(catalogue.line_popularity, 6),
            "mean_quantity": catalogue.line_quantity,
        }
    )


def products_truth(catalogue: Catalogue) -> pd.DataFrame:
    """Return one row per product: its share of its line's lines and whether it is never sold."""
    weight = catalogue.product_weight
    line = catalogue.product_line_index
    line_total = np.bincount(line, weights=weight)[line]
    return pd.DataFrame(
        {
            "product_id": catalogue.products["product_id"].to_numpy(),
            "product_line_id": catalogue.products["product_line_id"].to_numpy(),
            "share_of_line": np.round(weight / line_total, 6),
            "never_sold": weight == 0,
        }
    )


def write_ground_truth(folder: Path, inputs: TruthInputs) -> dict[str, Path]:
    """Write the ground truth files into ``folder`` and return name → path."""
    folder.mkdir(parents=True, exist_ok=True)
    frames: dict[str, pa.Table | pd.DataFrame] = {
        "customers": customers_truth(inputs),
        "employees": employees_truth(inputs.staff),
        "product_lines": product_lines_truth(inputs.catalogue),
        "products": products_truth(inputs.catalogue),
    }
    paths: dict[str, Path] = {}
    for name, frame in frames.items():
        path = folder / f"{name}.csv"
        data = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        write_arrow(path, data)
        paths[name] = path
    meta_path = folder / "meta.json"
    meta_path.write_text(json.dumps(inputs.meta, indent=2, sort_keys=True, default=_json_default) + "\n")
    paths["meta"] = meta_path
    return paths


def _json_default(value: object) -> object:
    """Return a JSON-ready form of dates, paths and numpy scalars."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
