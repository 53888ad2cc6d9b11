"""Capped, stratified training samples, and how a model card states them (issue 18).

A model fit that would read every customer (or every training row) reads at most a fixed cap:
above it, a seeded sample that keeps each stratum's share of the rows (proportional
allocation, so no weights are needed); at or below it, every row, so the fit is exactly the
uncapped one. :func:`cap_record` is how each model's card (``<out>/models/…/card.json``) and its
``audit.model_runs`` params state a cap and whether it was applied.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: the edges of the repeat-purchase strata of the customer samples (0, 1, 2–3, 4–7, 8–15, 16+)
REPEAT_STRATA: tuple[int, ...] = (1, 2, 4, 8, 16)
#: how the customer samples are drawn (stated in the model cards)
BY_REPEAT_PURCHASES = "seeded, stratified by repeat purchases (0, 1, 2-3, 4-7, 8-15, 16+)"


def stratified_rows(
    strata: np.ndarray, cap: int, seed: int = 0, latest: np.ndarray | None = None
) -> np.ndarray:
    """Return the sorted positions of a sample of about ``cap`` rows, stratified by ``strata``.

    Each stratum keeps ``round(rows × cap / total)`` rows (at least one): drawn without
    replacement in stratum order by one ``numpy.random.default_rng(seed)``, or, with ``latest``
    (a value per row, larger = more recent), the stratum's rows with the largest ``latest``
    (ties: the later position), no randomness. All rows when there are no more than ``cap``.
    """
    strata = np.asarray(strata)
    total = len(strata)
    if total <= cap:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    # grouped by one stable sort: each stratum's positions ascending, as np.flatnonzero gives them
    order = np.argsort(strata, kind="stable")
    _, starts, counts = np.unique(strata[order], return_index=True, return_counts=True)
    keep: list[np.ndarray] = []
    for start, count in zip(starts.tolist(), counts.tolist(), strict=True):
        rows = order[start : start + count]
        k = min(max(1, round(count * cap / total)), count)
        if latest is None:
            keep.append(rng.choice(rows, size=k, replace=False))
        else:
            keep.append(rows[np.argsort(np.asarray(latest)[rows], kind="stable")[count - k :]])
    return np.sort(np.concatenate(keep))


def by_repeat_purchases(repeats: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    """Return the sorted positions of a seeded sample of about ``cap`` customers, stratified by their
    repeat purchases (:data:`REPEAT_STRATA`; every customer when there are no more than ``cap``)."""
    return stratified_rows(np.digitize(np.asarray(repeats, dtype="float64"), REPEAT_STRATA), cap, seed)


def cap_record(
    fit: str, unit: str, cap: int, available: int, used: int, sampling: str, distinct: int | None = None
) -> dict[str, Any]:
    """Return a model card's statement of one training cap.

    ``fit``: what was trained; ``unit``: what the cap counts (customers, rows); ``available``:
    how many there were; ``used``: how many the fit read (a sample drawn with replacement: the
    draws, a row drawn twice counted twice); ``distinct`` (stated when given): how many
    different rows those were; ``applied``: whether the cap cut them.
    """
    record: dict[str, Any] = {
        "fit": fit,
        "unit": unit,
        "cap": int(cap),
        "available": int(available),
        "used": int(used),
    }
    if distinct is not None:
        record["distinct"] = int(distinct)
    record["applied"] = int(available) > int(cap)
    record["sampling"] = sampling if int(available) > int(cap) else "all rows (under the cap)"
    return record
