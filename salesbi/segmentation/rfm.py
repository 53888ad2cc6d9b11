"""RFM scoring: quantile scores 1–5 that keep ties together, and the documented score map.

Scores are a function of the value alone, given four *edges*: ``score = 1 + #(edges <= value)``.
Edges are fitted on the customers' values so that:

* equal values always get the same score (ties are never split by an arbitrary order);
* with at least five distinct values every score 1–5 is used (each of the five groups of
  consecutive distinct values is non-empty), and the group boundaries sit as close as the ties
  allow to the 20/40/60/80 % points of the customer count (the boundary after distinct value j
  is chosen where the count of customers at or below it is nearest to n·k/5, then nudged so the
  groups are non-empty and ordered);
* with two to four distinct values they are spread over 1–5 (2 → 1, 5; 3 → 1, 3, 5;
  4 → 1, 2, 4, 5); a single value scores 3.

Recency is scored the other way round: ``r_score = 6 − score(recency_days)``, so 5 is the most
recent. Because edges are stored, one new customer is scored exactly as in the batch.

**One-time buyers are separated before scoring**: a customer with at most one placed order has
``f_score = 1``; the frequency edges are fitted on repeat buyers (two orders or more) only and
their score is at least 2 (the two lowest quintiles of repeat buyers share 2).  So F = 1 means
"bought once" and nothing else, and the score map sends one-time buyers to New (R = 5),
Promising (R = 4) or Lost (R ≤ 3) — recency does not split the old one-time buyers by purchase
date into look-alike segments — while low-frequency repeat buyers go to About to Sleep (R = 3)
or Hibernating (R ≤ 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from salesbi.segmentation.tables import SEGMENT_NAMES

Edges = tuple[float, float, float, float]


def fit_edges(values: np.ndarray) -> Edges:
    """Return the four score edges for ``values`` (see the module docstring for the rule)."""
    v = np.asarray(values, dtype="float64")
    distinct, counts = np.unique(v, return_counts=True)
    d = len(distinct)
    if d == 0:
        return (math.inf, math.inf, math.inf, math.inf)
    if d == 1:
        return (-math.inf, -math.inf, math.inf, math.inf)
    if d < 5:
        scores = [1 + math.floor(i * 4 / (d - 1) + 0.5) for i in range(d)]
        edges = []
        for target in range(2, 6):
            first = next(i for i, s in enumerate(scores) if s >= target)
            edges.append(float(distinct[first]))
        return (edges[0], edges[1], edges[2], edges[3])
    cumulative = np.cumsum(counts)[:-1]  # customers at or below distinct value j (j = 1..d-1)
    n = int(counts.sum())
    cuts: list[int] = []
    for k in range(1, 5):
        j = int(np.argmin(np.abs(cumulative - n * k / 5))) + 1
        j = min(max(j, k), d - 5 + k)
        if cuts:
            j = max(j, cuts[-1] + 1)
        cuts.append(j)
    return (
        float(distinct[cuts[0]]),
        float(distinct[cuts[1]]),
        float(distinct[cuts[2]]),
        float(distinct[cuts[3]]),
    )


def apply_edges(values: np.ndarray, edges: Edges) -> np.ndarray:
    """Return the scores 1–5 of ``values`` given ``edges`` (``1 + number of edges <= value``)."""
    v = np.asarray(values, dtype="float64")
    return 1 + np.searchsorted(np.asarray(edges, dtype="float64"), v, side="right")


@dataclass(frozen=True)
class RfmEdges:
    """The fitted edges of the three scores (recency in days, frequency in orders, monetary in money)."""

    recency: Edges
    frequency: Edges
    monetary: Edges

    def as_dict(self) -> dict[str, list[float]]:
        """Return the edges as plain lists (for JSON)."""
        return {
            "recency": list(self.recency),
            "frequency": list(self.frequency),
            "monetary": list(self.monetary),
        }

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> RfmEdges:
        """Return edges read back from :meth:`as_dict`."""

        def four(key: str) -> Edges:
            a, b, c, d = (float(x) for x in data[key])
            return (a, b, c, d)

        return cls(four("recency"), four("frequency"), four("monetary"))


def fit_rfm_edges(recency: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> RfmEdges:
    """Return the edges of the R, F and M scores fitted on the customers' values.

    Frequency edges are fitted on repeat buyers (frequency ≥ 2) only: one-time buyers score F = 1.
    """
    freq = np.asarray(frequency, dtype="float64")
    return RfmEdges(fit_edges(recency), fit_edges(freq[freq >= 2]), fit_edges(monetary))


def rfm_scores(
    recency: np.ndarray, frequency: np.ndarray, monetary: np.ndarray, edges: RfmEdges
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the (r, f, m) score arrays; r is reversed so that 5 means the most recent.

    ``f`` is 1 for one-time buyers (at most one placed order) and 2–5 for repeat buyers.
    """
    r = 6 - apply_edges(recency, edges.recency)
    freq = np.asarray(frequency, dtype="float64")
    f = np.where(freq <= 1, 1, np.maximum(2, apply_edges(freq, edges.frequency)))
    m = apply_edges(monetary, edges.monetary)
    return r, f, m


# The score map. Rules are tried in order; the first that matches names the segment.
# (segment, r range, f range, m range), ranges inclusive.  F = 1 is exactly the one-time buyers.
SCORE_MAP: tuple[tuple[str, tuple[int, int], tuple[int, int], tuple[int, int]], ...] = (
    ("Champions", (4, 5), (4, 5), (4, 5)),
    ("Loyal", (3, 5), (4, 5), (1, 5)),
    ("New", (5, 5), (1, 1), (1, 5)),
    ("Promising", (4, 4), (1, 1), (1, 5)),
    ("Potential Loyalist", (4, 5), (2, 3), (1, 5)),
    ("Need Attention", (3, 3), (3, 3), (1, 5)),
    ("About to Sleep", (3, 3), (2, 2), (1, 5)),
    ("Can't Lose Them", (1, 2), (4, 5), (4, 5)),
    ("At Risk", (1, 2), (3, 5), (1, 5)),
    ("Hibernating", (1, 2), (2, 2), (1, 5)),
    ("Lost", (1, 3), (1, 1), (1, 5)),
)


#: segment tiers by the customer history they stand for, best first: 1 = many, large orders
#: (also when gone quiet), 2 = other repeat buyers, 3 = the least frequent repeat buyers gone
#: quiet, 4 = one-time buyers.  Observed future spend falls from tier to tier
#: (tests/test_segmentation_tiers.py, on the generator's planted personas).
SEGMENT_TIERS: dict[str, int] = {
    "Champions": 1,
    "Loyal": 1,
    "Can't Lose Them": 1,
    "Potential Loyalist": 2,
    "Need Attention": 2,
    "At Risk": 2,
    "About to Sleep": 2,
    "Hibernating": 3,
    "New": 4,
    "Promising": 4,
    "Lost": 4,
}


def segment_name(r: int, f: int, m: int) -> str:
    """Return the named segment of one (r, f, m) score triple, by the first matching rule of SCORE_MAP."""
    for name, (r0, r1), (f0, f1), (m0, m1) in SCORE_MAP:
        if r0 <= r <= r1 and f0 <= f <= f1 and m0 <= m <= m1:
            return name
    raise ValueError(f"scores {(r, f, m)} are outside 1..5")


_LOOKUP = np.array(
    [[[segment_name(r, f, m) for m in range(1, 6)] for f in range(1, 6)] for r in range(1, 6)], dtype=object
)


def segment_names(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Return the segment name of each (r, f, m) triple (vectorised :func:`segment_name`)."""
    return _LOOKUP[np.asarray(r) - 1, np.asarray(f) - 1, np.asarray(m) - 1]


assert set(_LOOKUP.ravel()) == set(SEGMENT_NAMES), "the score map must use every segment name"
assert set(SEGMENT_TIERS) == set(SEGMENT_NAMES), "every segment has a tier"
