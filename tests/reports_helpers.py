"""Hand-made canonical ``core`` frames for the report tests (small, answers known by hand)."""

from __future__ import annotations

import pandas as pd

from salesbi import contract
from salesbi.types import conform

OrderSpec = tuple[str, str, str, str, list[tuple[str, int, float, float]]]


def make_core(orders: list[OrderSpec], *, uncosted: bool = False) -> dict[str, pd.DataFrame]:
    """Return core frames: five customers (C1, C2 in New York, C3-C5 in Paris), two reps, three products.

    ``orders`` are (order_id, customer_id, 'YYYY-MM-DD', status, [(product_id, qty, price, discount)]).
    P1 costs 6, P2 costs 3, P3 has no cost (or every product has none when ``uncosted``).
    """
    offices = pd.DataFrame(
        {"office_id": ["O1", "O2"], "city": ["New York", "Paris"], "country": ["USA", "France"]}
    )
    employees = pd.DataFrame(
        {
            "employee_id": ["E0", "E1", "E2"],
            "first_name": ["Ann", "Bob", "Cy"],
            "last_name": ["Boss", "Rep", "Seller"],
            "office_id": ["O1", "O1", "O2"],
            "manager_id": [None, "E0", "E0"],
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3", "C4", "C5"],
            "customer_name": ["Alpha", "Beta", "Gamma", "Delta", "Epsilon"],
            "city": ["New York", "New York", "Paris", "Paris", "Paris"],
            "country": ["USA", "USA", "France", "France", "France"],
            "sales_rep_id": ["E1", "E1", "E2", "E2", "E2"],
        }
    )
    lines = pd.DataFrame({"product_line_id": ["L1", "L2"], "name": ["Cars", "Trains"]})
    products = pd.DataFrame(
        {
            "product_id": ["P1", "P2", "P3"],
            "product_name": ["Car", "Train", "Mystery"],
            "product_line_id": ["L1", "L2", "L2"],
            "unit_cost": [None, None, None] if uncosted else [6.0, 3.0, None],
            "list_price": [10.0, 5.0, 1.0],
        }
    )
    head = pd.DataFrame(
        {
            "order_id": [o[0] for o in orders],
            "customer_id": [o[1] for o in orders],
            "order_date": pd.to_datetime([o[2] for o in orders]),
            "status": [o[3] for o in orders],
        }
    )
    items = pd.DataFrame(
        [
            {
                "order_id": o[0],
                "line_number": i + 1,
                "product_id": p,
                "quantity": q,
                "unit_price": u,
                "discount": d,
            }
            for o in orders
            for i, (p, q, u, d) in enumerate(o[4])
        ]
    )
    raw = {
        "offices": offices,
        "employees": employees,
        "customers": customers,
        "product_lines": lines,
        "products": products,
        "orders": head,
        "order_items": items,
    }
    for t in contract.TABLES:
        for c in t.columns:
            if c.name not in raw[t.name].columns:
                raw[t.name][c.name] = float("nan") if c.spec.pandas_dtype == "float64" else None
    return {t.name: conform(raw[t.name], t) for t in contract.TABLES}
