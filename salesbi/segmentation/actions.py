"""Value tier, risk and a recommended action per customer, phrased for the sales rep's call list.

* value tier: ``m_score`` 4–5 → high, 3 → medium, 1–2 → low;
* risk: ``r_score`` 1–2 → high, 3 → medium, 4–5 → low — raised to medium when a customer with at
  least three orders has been quiet more than twice their own usual gap between orders;
* action: a high-value customer at high risk gets a retention call by their rep whatever the
  segment; a high-value customer at medium risk gets a check-in call; otherwise the segment's
  action (:data:`SEGMENT_ACTIONS`). Priority 1 (call first) .. 5 (mass campaign at most).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# segment → (short action, what to do, priority, segment description)
SEGMENT_ACTIONS: dict[str, tuple[str, str, int, str]] = {
    "Champions": (
        "Loyalty invitation",
        "Invite to the loyalty program; ask for referrals and reviews",
        3,
        "Bought recently, often and spent the most.",
    ),
    "Loyal": (
        "Loyalty invitation",
        "Offer the loyalty program and cross-sell other product lines",
        3,
        "Order often and are still active.",
    ),
    "Potential Loyalist": (
        "Membership offer",
        "Offer membership or a volume discount to build the habit",
        4,
        "Recent customers with a few orders.",
    ),
    "New": (
        "Welcome call",
        "Welcome call and onboarding: introduce the range and the rep",
        4,
        "First order very recently.",
    ),
    "Promising": (
        "Follow-up offer",
        "Follow up the first order with a targeted offer",
        4,
        "Recent single-order customers.",
    ),
    "Need Attention": (
        "Personal check-in",
        "Personal check-in with a limited-time offer",
        3,
        "Average recency, frequency and spend; could go either way.",
    ),
    "About to Sleep": (
        "Reactivation offer",
        "Send a reactivation offer on their usual product lines",
        3,
        "Repeat buyers with few orders and below-average recency; slipping away.",
    ),
    "At Risk": (
        "Win-back offer",
        "Win-back offer with a personal note from the rep",
        2,
        "Ordered often before but not for a long time.",
    ),
    "Can't Lose Them": (
        "Retention call",
        "Retention call by the rep; find out why they stopped",
        1,
        "Big, frequent buyers who have gone quiet.",
    ),
    "Hibernating": (
        "Win-back email",
        "Low-cost win-back email campaign",
        5,
        "Repeat buyers with the fewest orders, long ago.",
    ),
    "Lost": (
        "Low-cost campaign",
        "Include in low-cost campaigns only; do not spend rep time",
        5,
        "Bought once, not recently, and never came back.",
    ),
}


def value_tiers(m: np.ndarray) -> np.ndarray:
    """Return 'high' / 'medium' / 'low' per monetary score."""
    m = np.asarray(m)
    return np.where(m >= 4, "high", np.where(m == 3, "medium", "low")).astype(object)


def risks(r: np.ndarray, frequency: np.ndarray, recency: np.ndarray, tenure: np.ndarray) -> np.ndarray:
    """Return 'high' / 'medium' / 'low' per customer from recency score and their own order rhythm."""
    r = np.asarray(r)
    freq = np.asarray(frequency, dtype="float64")
    rec = np.asarray(recency, dtype="float64")
    active_span = np.asarray(tenure, dtype="float64") - rec
    gap = np.divide(active_span, freq - 1, out=np.full(len(freq), np.inf), where=freq >= 2)
    overdue = (freq >= 3) & (rec > 2 * gap)
    out = np.where(r <= 2, "high", np.where(r == 3, "medium", "low")).astype(object)
    out[(out == "low") & overdue] = "medium"
    return out


def _money(x: float) -> str:
    return f"${x:,.0f}"


def _rep(name: object) -> str:
    """Return 'by <rep>', or '(no sales rep assigned)' (already in parentheses) without a rep."""
    return f"by {name}" if isinstance(name, str) and name else "(no sales rep assigned)"


#: rep-based wording → what a customer without a sales rep gets instead (the account owner)
NO_REP_WORDING: tuple[tuple[str, str], ...] = (
    ("the rep", "the account owner"),
    ("rep time", "account-owner time"),
)


def _without_rep(text: str) -> str:
    """Return an action sentence with its references to a sales rep replaced by the account owner."""
    for rep_words, owner_words in NO_REP_WORDING:
        text = text.replace(rep_words, owner_words)
    return text


def recommend(
    segment: str,
    value_tier: str,
    risk: str,
    recency_days: int,
    frequency: int,
    monetary: float,
    rep_name: str | None,
) -> tuple[str, str, int]:
    """Return (action, sentence with the rep's name and the numbers, priority 1..5) for one customer."""
    rep = _rep(rep_name)
    facts = f"spent {_money(monetary)} over {frequency} orders, {recency_days} days quiet"
    if value_tier == "high" and risk == "high":
        return "Retention call", f"Retention call {rep}: {facts}", 1
    if value_tier == "high" and risk == "medium":
        return "Check-in call", f"Check-in call {rep}: {facts}", 2
    action, what, priority, _ = SEGMENT_ACTIONS[segment]
    if not (isinstance(rep_name, str) and rep_name):
        what = _without_rep(what)
    who = rep if rep.startswith("(") else f"({rep})"
    return action, f"{what} {who}: {facts}", priority


def recommend_all(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``action``, ``action_detail`` and ``action_priority`` for each row of ``frame``.

    ``frame`` needs segment, value_tier, risk, recency_days, frequency, monetary, sales_rep_name.
    """
    rows = [
        recommend(s, v, k, int(r), int(f), float(m), n if isinstance(n, str) else None)
        for s, v, k, r, f, m, n in zip(
            frame["segment"],
            frame["value_tier"],
            frame["risk"],
            frame["recency_days"],
            frame["frequency"],
            frame["monetary"],
            frame["sales_rep_name"].astype(object).where(frame["sales_rep_name"].notna(), None),
            strict=True,
        )
    ]
    out = pd.DataFrame(rows, columns=["action", "action_detail", "action_priority"], index=frame.index)
    return out
