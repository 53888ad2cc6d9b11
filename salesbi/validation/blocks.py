"""Validating a long table in blocks of rows: block bounds, cross-block duplicate keys, merged GX results.

Great Expectations evaluates a table's suite on one frame at a time and keeps its own typed copy
of it plus the evaluation's temporaries while it runs: for ``order_items`` that is the largest
transient of the validate step (``orders``: +168 MB at 3M lines in one pass, ~1.7x the frame).
``validate_staged(..., block_rows=N)`` runs the suite on slices of
at most N rows instead and merges what GX found, so the result equals one run over the whole
table (tested at several block sizes, ``tests/test_ingest_blocks.py``). Only the tables in
:data:`BLOCKED_TABLES` are split:

* row findings: each block's failing positions shifted by the block's first row;
* duplicate keys: within a block GX finds them; a key repeated in *different* blocks is found
  here, over the key columns only (:func:`cross_block_duplicates`), with the equality GX's pandas
  engine uses (``DataFrame.duplicated``: missing values equal each other; rows whose key values
  are all missing are ignored, as ``ignore_row_if="all_values_are_missing"``);
* the validation result (Data Docs): per expectation the counts summed, the failing indexes and
  values concatenated, the percentages recomputed, ``success`` true only when every block passed.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from salesbi.validation.keycodes import TableDictionaries, key_codes, repeated

#: the tables validated in blocks: the two that grow with history, the order lines by millions of
#: rows and the orders (a fifth of that, but GX's transient per order row is ~5x a line's: six text
#: columns matched by regular expressions, three dates); the dimensions (thousands) are checked whole
BLOCKED_TABLES = frozenset({"orders", "order_items"})
#: result fields GX reports per expectation that are counts over the rows (summed over blocks)
_COUNTS = ("element_count", "unexpected_count", "missing_count")
#: list fields whose items are row values or indexes (concatenated over blocks)
_LISTS = ("unexpected_list", "unexpected_index_list")
_PARTIAL = 20  # GX's partial_unexpected_count in salesbi.validation.gxrun.RESULT_FORMAT


def block_bounds(rows: int, block_rows: int | None) -> list[tuple[int, int]]:
    """Return the ``[start, stop)`` ranges of ``rows`` rows in blocks of ``block_rows`` (one when None)."""
    if not block_rows or block_rows <= 0 or rows <= block_rows:
        return [(0, rows)]
    return [(start, min(start + block_rows, rows)) for start in range(0, rows, block_rows)]


def cross_block_duplicates(
    frame: pd.DataFrame, key: Sequence[str], block_rows: int, dictionaries: TableDictionaries | None = None
) -> np.ndarray:
    """Return the sorted positions of rows whose key also occurs in another block of ``block_rows`` rows.

    Only the key columns are read: one pass over their codes (:func:`salesbi.validation.keycodes.key_codes`,
    an int64 per row) finds the repeated keys of the whole table, and only those rows (few) are
    split by block. Rows whose key values are all missing are never
    duplicates (GX ignores them); otherwise missing values compare equal, as in
    ``DataFrame.duplicated``. ``dictionaries``: the run's shared dictionaries of the key's text
    columns (:class:`~salesbi.validation.keycodes.KeyDictionaries`), folded instead of encoded again.
    """
    if len(frame) <= block_rows:
        return np.array([], dtype="int64")
    names = list(key)
    keys = frame[names]
    coded = key_codes(frame, names, dictionaries)  # one int64 per row, not the key text (issue 18 memory)
    if coded is None:
        found = keys.duplicated(keep=False).to_numpy(dtype=bool) & ~keys.isna().all(axis=1).to_numpy(
            dtype=bool
        )
    else:
        codes, all_missing = coded
        found = repeated(codes) & ~all_missing
        del codes
    positions = np.flatnonzero(found).astype("int64")
    if not len(positions):
        return positions
    sub = keys.iloc[positions].reset_index(drop=True).assign(_block=positions // block_rows)
    pairs = sub.drop_duplicates()  # each repeated key once per block it is in
    in_many = pairs[pairs.duplicated(subset=names, keep=False)][names].drop_duplicates()
    if not len(in_many):
        return np.array([], dtype="int64")
    hit = sub[names].merge(in_many, on=names, how="left", indicator=True)["_merge"] == "both"
    return np.sort(positions[hit.to_numpy(dtype=bool)])


def _shift(index: Any, offset: int) -> Any:
    """Return one ``unexpected_index_list`` item moved by ``offset`` rows (a position, or a dict of them)."""
    if isinstance(index, dict):
        return {k: (v + offset if isinstance(v, int | np.integer) else v) for k, v in index.items()}
    return index + offset if isinstance(index, int | np.integer) else index


def _merge_result(parts: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Return one expectation's ``result`` dict merged over the blocks (offset, result)."""
    merged = dict(parts[0][1])
    for field in _COUNTS:
        if any(field in r for _, r in parts):
            merged[field] = sum(int(r.get(field) or 0) for _, r in parts)
    for field in _LISTS:
        if any(field in r for _, r in parts):
            items: list[Any] = []
            for offset, r in parts:
                values = r.get(field) or []
                if field == "unexpected_index_list":
                    items.extend(_shift(v, offset) for v in values)
                else:
                    items.extend(values)
            merged[field] = items
    if "partial_unexpected_list" in merged:
        partial = [v for _, r in parts for v in (r.get("partial_unexpected_list") or [])][:_PARTIAL]
        merged["partial_unexpected_list"] = partial
        if "partial_unexpected_counts" in merged:
            counts = Counter(repr(v) for v in partial)
            first = {repr(v): v for v in partial}
            merged["partial_unexpected_counts"] = [
                {"value": first[k], "count": n} for k, n in counts.most_common()
            ]
    if "partial_unexpected_index_list" in merged:
        merged["partial_unexpected_index_list"] = [
            _shift(v, offset) for offset, r in parts for v in (r.get("partial_unexpected_index_list") or [])
        ][:_PARTIAL]
    if "element_count" in merged:
        _percentages(merged)
    if "observed_value" in merged and isinstance(merged["observed_value"], int | np.integer):
        merged["observed_value"] = sum(int(r.get("observed_value") or 0) for _, r in parts)
    return merged


def _percentages(result: dict[str, Any]) -> None:
    """Recompute GX's percentages of ``result`` from its merged counts (in place)."""
    total = int(result.get("element_count") or 0)
    missing = int(result.get("missing_count") or 0)
    bad = int(result.get("unexpected_count") or 0)
    present = total - missing
    if "missing_percent" in result:
        result["missing_percent"] = missing / total * 100 if total else None
    if "unexpected_percent_total" in result:
        result["unexpected_percent_total"] = bad / total * 100 if total else None
    if "unexpected_percent_nonmissing" in result:
        result["unexpected_percent_nonmissing"] = bad / present * 100 if present else None
    if "unexpected_percent" in result:
        result["unexpected_percent"] = bad / present * 100 if present else None


def merge_results(blocks: list[tuple[int, Any]]) -> Any:
    """Return one GX ``ExpectationSuiteValidationResult`` for the blocks' results (offset, result).

    The first block's result is copied and each expectation's result replaced by the merge over
    all blocks (same expectation order in every block: one suite); the suite's statistics and
    success are recomputed.
    """
    if len(blocks) == 1:
        return blocks[0][1]
    merged = copy.deepcopy(blocks[0][1])
    for i, r in enumerate(merged.results):
        parts = [(offset, dict(res.results[i].result or {})) for offset, res in blocks]
        r.result = _merge_result(parts)
        r.success = all(bool(res.results[i].success) for _, res in blocks)
        if r.exception_info is not None and not (r.exception_info or {}).get("raised_exception"):
            for _, res in blocks:
                info = res.results[i].exception_info or {}
                if info.get("raised_exception"):
                    r.exception_info = info
                    break
    _restate(merged)
    return merged


def _restate(result: Any) -> None:
    """Recompute a suite result's ``success`` and ``statistics`` from its expectation results (in place)."""
    evaluated = len(result.results)
    passed = sum(1 for r in result.results if r.success)
    result.success = passed == evaluated
    stats = dict(result.statistics or {})
    stats.update(
        evaluated_expectations=evaluated,
        successful_expectations=passed,
        unsuccessful_expectations=evaluated - passed,
        success_percent=passed / evaluated * 100 if evaluated else None,
    )
    result.statistics = stats


def add_duplicates(result: Any, rule_index: int, positions: np.ndarray, rows: pd.DataFrame) -> None:
    """Record in ``result`` (in place) the full set of duplicated-key rows of expectation ``rule_index``.

    ``positions`` are every duplicated row's position (within and across blocks), ``rows`` the
    key columns of those rows (for the failing values GX lists).
    """
    r = result.results[rule_index]
    res = dict(r.result or {})
    res["unexpected_count"] = len(positions)
    res["unexpected_index_list"] = [int(p) for p in positions]
    values = rows.astype(object).where(rows.notna(), None).to_dict("records")
    res["unexpected_list"] = values
    if "partial_unexpected_list" in res:
        res["partial_unexpected_list"] = values[:_PARTIAL]
    if "partial_unexpected_index_list" in res:
        res["partial_unexpected_index_list"] = res["unexpected_index_list"][:_PARTIAL]
    if "partial_unexpected_counts" in res:
        counts = Counter(repr(v) for v in values[:_PARTIAL])
        first = {repr(v): v for v in values[:_PARTIAL]}
        res["partial_unexpected_counts"] = [{"value": first[k], "count": n} for k, n in counts.most_common()]
    if "element_count" in res:
        _percentages(res)
    r.result = res
    r.success = len(positions) == 0
    _restate(result)
