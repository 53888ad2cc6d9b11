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

:class:`KeyDictionaries`: a validation run dictionary-encodes each table's text key columns once
(:class:`KeyDictionary`, a code per row and the distinct values) and every check that compares
them reads that: the codes of keys repeated across blocks, the distinct values folded by the
key-collision check, the references looked up per distinct value (the order ids of the order
lines were encoded by three checks in turn before).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


#: rows of an integer key column turned into codes at a time (bounds the temporaries)
_SLICE_ROWS = 1 << 18


def is_arrow_text(values: pd.Series) -> bool:
    """Return True when ``values`` is Arrow-backed text (what :class:`KeyDictionary` encodes)."""
    return isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"


@dataclass(frozen=True)
class KeyDictionary:
    """One text column as codes: ``values`` its distinct non-null values (first-seen order, Arrow text)
    and ``indices`` one code per row, the position of the row's value in ``values`` (a missing value
    is ``len(values)``, one code past the last)."""

    indices: np.ndarray
    values: pa.Array

    @property
    def width(self) -> int:
        """Return the number of codes (the distinct values and the code of a missing value)."""
        return len(self.values) + 1

    def isin(self, keys: pd.Series | pa.Array) -> np.ndarray:
        """Return which rows' values are among ``keys`` (a boolean per row; missing values never are).

        Each distinct value is looked up once (not every row), then taken by the rows' codes.
        """
        if not len(self.indices):
            return np.zeros(0, dtype=bool)
        if not len(keys) or not len(self.values):
            return np.zeros(len(self.indices), dtype=bool)
        value_set = keys if isinstance(keys, pa.Array | pa.ChunkedArray) else arrow_text(keys)
        found = pc.is_in(self.values, options=pc.SetLookupOptions(value_set=value_set, skip_nulls=True))
        per_code = np.zeros(self.width, dtype=bool)  # the last code (missing) matches nothing
        per_code[:-1] = np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        return per_code[self.indices]


def encode(values: pd.Series) -> KeyDictionary:
    """Return the :class:`KeyDictionary` of Arrow-backed text ``values`` (one Arrow dictionary encoding).

    Arrow encodes all chunks with one memo table: each chunk's dictionary extends the previous
    one, so the last chunk's is every distinct value and the indices of every chunk point into it.
    """
    encoded = pc.dictionary_encode(arrow_text(values))
    if not encoded.num_chunks:
        return KeyDictionary(np.zeros(0, dtype=np.int32), pa.array([], type=pa.large_string()))
    dictionary = encoded.chunk(encoded.num_chunks - 1).dictionary
    missing = len(dictionary)
    indices = np.empty(len(values), dtype=np.int32 if missing < 2**31 - 1 else np.int64)
    at = 0
    for chunk in encoded.chunks:
        part = chunk.indices.fill_null(missing).to_numpy()
        indices[at : at + len(part)] = part
        at += len(part)
    return KeyDictionary(indices, dictionary)


@dataclass
class KeyDictionaries:
    """The key dictionaries of one validation run: each (table, column) encoded once, on first use.

    ``columns``: the (table, column) pairs worth sharing (text key columns that several checks
    compare); any other column is not encoded (:meth:`get` returns None and the check reads the
    column itself, as before).
    """

    columns: frozenset[tuple[str, str]]
    built: dict[tuple[str, str], KeyDictionary] = field(default_factory=dict)
    encodings: int = 0  # how many columns were encoded (tests: once each)

    def get(self, table: str, column: str, values: pd.Series) -> KeyDictionary | None:
        """Return the shared dictionary of ``table.column`` (``values``: its rows), None if not shared."""
        key = (table, column)
        found = self.built.get(key)
        if found is None and key in self.columns and is_arrow_text(values):
            found = self.built[key] = encode(values)
            self.encodings += 1
        return found

    def table(self, table: str, frame: pd.DataFrame) -> TableDictionaries:
        """Return the dictionaries of ``table``'s columns, read from ``frame`` when first needed."""
        return TableDictionaries(self, table, frame)


@dataclass(frozen=True)
class TableDictionaries:
    """The shared dictionaries of one table's columns (see :class:`KeyDictionaries`)."""

    shared: KeyDictionaries
    name: str
    frame: pd.DataFrame

    def __call__(self, column: str) -> KeyDictionary | None:
        """Return the shared dictionary of ``column`` of this table, None if it is not shared."""
        if column not in self.frame.columns:
            return None
        return self.shared.get(self.name, column, self.frame[column])


def _add_dictionary_codes(
    combined: np.ndarray, all_missing: np.ndarray, coded: KeyDictionary, span: int
) -> int | None:
    """Fold a shared dictionary's codes into ``combined`` (in place); return the new span, None on overflow.

    The same codes :func:`_add_text_codes` folds (Arrow's dictionary order, missing values last).
    """
    width = coded.width
    if span * width >= _CODE_LIMIT:
        return None
    for start in range(0, len(coded.indices), _SLICE_ROWS):
        stop = min(start + _SLICE_ROWS, len(coded.indices))
        part = coded.indices[start:stop]
        combined[start:stop] *= width
        combined[start:stop] += part
        all_missing[start:stop] &= part == width - 1
    return span * width


def _add_text_codes(
    combined: np.ndarray, all_missing: np.ndarray, values: pd.Series, span: int
) -> int | None:
    """Fold a text column's codes into ``combined`` (in place); return the new span, None on overflow.

    Arrow dictionary-encodes the column (one dictionary for all its chunks); each chunk's indices
    are folded in as they are, nulls as the last code.
    """
    encoded = pc.dictionary_encode(arrow_text(values))
    width = (len(encoded.chunk(encoded.num_chunks - 1).dictionary) if encoded.num_chunks else 0) + 1
    if span * width >= _CODE_LIMIT:
        return None
    at = 0
    for chunk in encoded.chunks:
        indices = chunk.indices.fill_null(width - 1).to_numpy()
        stop = at + len(indices)
        combined[at:stop] *= width
        combined[at:stop] += indices
        all_missing[at:stop] &= indices == width - 1
        at = stop
    return span * width


def _add_integer_codes(
    combined: np.ndarray, all_missing: np.ndarray, values: pd.Series, span: int
) -> int | None:
    """Fold an integer column's codes (value minus the smallest; nulls last) into ``combined`` (in place).

    Returns the new span, None when it would overflow (a very wide range of values).
    """
    present = values.notna()
    if not present.any():
        return span  # one code for every row: nothing to fold in
    low, high = int(values.min()), int(values.max())
    width = high - low + 2
    if span * width >= _CODE_LIMIT:
        return None
    for start in range(0, len(values), _SLICE_ROWS):
        part = values.iloc[start : start + _SLICE_ROWS]
        null = part.isna().to_numpy(dtype=bool)
        codes = part.to_numpy(dtype="int64", na_value=low) - low
        codes[null] = width - 1
        stop = start + len(part)
        combined[start:stop] *= width
        combined[start:stop] += codes
        all_missing[start:stop] &= null
    return span * width


def _add_other_codes(
    combined: np.ndarray, all_missing: np.ndarray, values: pd.Series, span: int
) -> int | None:
    """Fold any other column's ``pd.factorize`` codes (nulls last) into ``combined`` (in place)."""
    factorized, uniques = pd.factorize(values, use_na_sentinel=True)
    width = len(uniques) + 1
    if span * width >= _CODE_LIMIT:
        return None
    codes = np.asarray(factorized, dtype=np.int64)
    codes[codes < 0] = width - 1
    combined *= width
    combined += codes
    all_missing &= codes == width - 1
    return span * width


def key_codes(
    frame: pd.DataFrame, names: list[str], dictionaries: TableDictionaries | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return one int64 code per row of the key columns ``names``, and which rows' key is all missing.

    Two rows have the same code exactly when every key column holds equal values or is missing in
    both (``DataFrame.duplicated``'s equality). Text columns are coded by Arrow's dictionary,
    integer columns by their value (minus the smallest), others by ``pd.factorize``; each is folded
    into the one code array in place, so a row costs 8 bytes plus a slice's temporaries. Returns
    None when the columns have too many distinct values to combine into one int64 (the caller
    compares the values instead). ``dictionaries``: the run's shared dictionaries of the table's
    columns; a text column encoded there is folded from it (the same codes) instead of encoded again.
    """
    combined = np.zeros(len(frame), dtype=np.int64)
    all_missing = np.ones(len(frame), dtype=bool)
    span: int | None = 1
    for name in names:
        values = frame[name]
        assert span is not None
        shared = dictionaries(name) if dictionaries is not None else None
        if shared is not None:
            span = _add_dictionary_codes(combined, all_missing, shared, span)
        elif is_arrow_text(values):
            span = _add_text_codes(combined, all_missing, values, span)
        elif pd.api.types.is_integer_dtype(values.dtype):
            span = _add_integer_codes(combined, all_missing, values, span)
        else:
            span = _add_other_codes(combined, all_missing, values, span)
        if span is None:
            return None
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
