"""Returns: negative quantities are allowed only on cancelled orders (credit notes).

A transaction export records a return as its own document (e.g. invoice ``C536379``)
whose lines have negative quantities; the profile maps it to a cancelled order. Its
lines then net off sales as returns (see ``salesbi.reports.fact``). A negative
quantity on any other order is rejected with rule ``quantity_not_positive``, as a zero
quantity is (by the business rule of that id).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salesbi.validation.issues import empty_issues, issues_at

RULE = "quantity_not_positive"
RETURN_STATUSES = frozenset({"cancelled"})
#: the order_items columns the rule reads
RETURN_COLUMNS = ("order_id", "quantity")


def return_line_issues(order_items: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """Return issues for lines with a negative quantity whose order (in this source) is not cancelled."""
    if not len(order_items):
        return empty_issues()
    negative = (order_items["quantity"] < 0).fillna(False).to_numpy(dtype=bool)  # no float copy per line
    if not negative.any():
        return empty_issues()
    cancelled_ids = set(orders.loc[orders["status"].isin(RETURN_STATUSES), "order_id"].dropna().astype(str))
    # only the lines with a negative quantity are looked up (not a text copy of every line's order id)
    candidates = np.flatnonzero(negative)
    ids = order_items["order_id"].iloc[candidates].astype("string").fillna("")
    is_return = ids.isin(cancelled_ids).to_numpy(dtype=bool)
    positions = candidates[~is_return]
    return issues_at(
        order_items,
        positions,
        rule=RULE,
        column="quantity",
        template=(
            "quantity {value} is negative on an order that is not cancelled; only a cancelled order "
            "(a credit note, e.g. a C… invoice) may carry returned (negative) quantities"
        ),
    )
