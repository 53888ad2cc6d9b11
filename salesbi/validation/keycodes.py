"""Whole-table key checks on compact codes instead of the key text of every row.

The checks that compare rows with each other or with another table (foreign keys and the
cascade, keys repeated across blocks, key collisions, the returns rule) used to build text
arrays, Python sets or hash tables over the keys of every line: ~85 MB per million order lines
held while they ran. Here each key value is replaced by a small integer first, with Arrow's
hash kernels over the Arrow text the frames already hold (no copy of the text):

* :func:`positions_in`: each value's position among a parent's *distinct* keys (``int32``, -1
  for a null or a value that is not there): a foreign key check is then an array look-up, and
  the same positions say both "in this source" and "of an accepted parent row";
* :func:`key_codes`: one ``int64`` code per row for a (compound) key, equal exactly when the
  rows' key values are equal (missing values equal each other, as in
  ``DataFrame.duplicated``); :func:`repeated` marks the rows whose code occurs more than once.

The codes are exact (a dictionary of the distinct values, not a hash), so the results are those
of the text comparisons they replace (tested against them, ``tests/test_validation_keys.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: a code combining several key columns must stay below this (int64, with room to spare)
_CODE_LIMIT = 2**62


def arrow_text(values: pd.Series) -> pa.ChunkedArray:
    """Return ``values`` as Arrow text (large_string), sharing the buffers of Arrow-backed text."""
    array = pa.array(values.astype("string").array, type=pa.large_string())
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def distinct(values: pd.Series) -> pa.Array:
    """Return the distinct non-null values of ``values`` as Arrow text (first-seen order)."""
    text = arrow_text(values)
    if not len(text):
        return pa.array([], type=pa.large_string())
    return pc.unique(text).drop_null()


def positions_in(values: pd.Series, keys: pa.Array) -> np.ndarray:
    """Return each value's position in ``keys`` (distinct values) as int32; -1 where null or absent."""
    if not len(values):
        return np.zeros(0, dtype=np.int32)
    if not len(keys):
        return np.full(len(values), -1, dtype=np.int32)
    found = pc.index_in(arrow_text(values), value_set=keys).fill_null(-1)
    return np.asarray(found.to_numpy(), dtype=np.int32)


def in_set(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """Return which ``values`` are among ``keys`` (a boolean array; nulls never are)."""
    if not len(values):
        return np.zeros(0, dtype=bool)
    found = pc.is_in(arrow_text(values), value_set=distinct(keys))
    return np.asarray(found.fill_null(False).to_numpy(), dtype=bool)


def _column_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Return one code per value (nulls share the last code) and the number of codes."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    width = len(uniques) + 1
    codes = np.asarray(codes, dtype=np.int64)
    codes[codes < 0] = width - 1
    return codes, width


def key_codes(frame: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Return one int64 code per row of the key columns ``names``, and which rows' key is all missing.

    Two rows have the same code exactly when every key column holds equal values or is missing in
    both (``DataFrame.duplicated``'s equality). Returns None when the columns have too many
    distinct values to combine into one int64 (the caller compares the values instead).
    """
    combined = np.zeros(len(frame), dtype=np.int64)
    all_missing = np.ones(len(frame), dtype=bool)
    span = 1
    for name in names:
        codes, width = _column_codes(frame[name])
        span *= width
        if span >= _CODE_LIMIT:
            return None
        combined *= width
        combined += codes
        all_missing &= codes == width - 1
    return combined, all_missing


def repeated(codes: np.ndarray) -> np.ndarray:
    """Return a boolean array: which rows' code occurs on another row too."""
    return np.asarray(pd.Series(codes, copy=False).duplicated(keep=False).to_numpy(), dtype=bool)
