"""Whole-table key checks on compact codes instead of the key text of every row.

The checks that compare rows with each other or with another table (foreign keys and the
cascade, keys repeated across blocks, key collisions, the returns rule) used to build text
arrays, Python sets or hash tables over the keys of every line: ~85 MB per million order lines
held while they ran. Here each key value is replaced by a small integer first, with Arrow's
hash kernels over the Arrow text the frames already hold (no copy of the text):

* :func:`in_set`: which values are among a parent's keys, by Arrow's hash look-up over the Arrow
  text the frames hold (a bit per row; only the parent's distinct keys are hashed);
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


def in_set(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """Return which ``values`` are among ``keys`` (a boolean array; nulls never are).

    Arrow's hash look-up straight over both columns' Arrow text: the hash set is built from
    ``keys`` as they are (no distinct copy first), nulls on either side match nothing.
    """
    if not len(values):
        return np.zeros(0, dtype=bool)
    if not len(keys):
        return np.zeros(len(values), dtype=bool)
    options = pc.SetLookupOptions(value_set=arrow_text(keys), skip_nulls=True)
    found = pc.is_in(arrow_text(values), options=options)
    return np.asarray(found.fill_null(False).to_numpy(), dtype=bool)


def _column_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Return one int64 code per value (nulls share the last code) and the number of codes.

    Text is dictionary-encoded by Arrow chunk by chunk (one dictionary for the whole column, its
    indices copied into the codes without combining the chunks); other columns by ``pd.factorize``.
    """
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        encoded = pc.dictionary_encode(arrow_text(values))
        width = (len(encoded.chunk(encoded.num_chunks - 1).dictionary) if encoded.num_chunks else 0) + 1
        codes = np.empty(len(values), dtype=np.int64)
        at = 0
        for chunk in encoded.chunks:
            indices = chunk.indices.fill_null(width - 1).to_numpy()
            codes[at : at + len(indices)] = indices
            at += len(indices)
        return codes, width
    factorized, uniques = pd.factorize(values, use_na_sentinel=True)
    width = len(uniques) + 1
    codes = np.asarray(factorized, dtype=np.int64)
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
        del codes
    return combined, all_missing


def repeated(codes: np.ndarray) -> np.ndarray:
    """Return a boolean array: which rows' code occurs on another row too.

    Sorted once (a copy of the codes), the codes equal to their neighbour are the repeated ones
    (few); the rows holding them are then found by a look-up of those few codes.
    """
    if len(codes) < 2:
        return np.zeros(len(codes), dtype=bool)
    ordered = np.sort(codes)
    twins = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    if not len(twins):
        return np.zeros(len(codes), dtype=bool)
    return np.asarray(pd.Series(codes, copy=False).isin(np.unique(twins)).to_numpy(), dtype=bool)
