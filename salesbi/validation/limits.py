"""Row rules on keys and values that Great Expectations cannot express, and storable staging rows.

* ``key_collision``: keys that differ only in case, surrounding spaces or Unicode
  normal form (``C1``/``c1``, ``Zürich`` composed/decomposed) would be one key on
  SQL Server (case-insensitive collation) and on any reader that normalises; every
  copy is rejected, like conflicting duplicates.
* :func:`storable`: rejected rows still go to ``staging`` (with ``_status``
  ``rejected``); their offending cells are nulled there so a value the database would
  refuse (too long, NUL, a DECIMAL overflow) cannot abort the load. The rejected value
  itself is kept in ``audit.rejected_rows``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from salesbi.schema import Table
from salesbi.types import decimal_limit, text_limit
from salesbi.validation.issues import empty_issues, issues_at
from salesbi.validation.keycodes import KeyDictionary, TableDictionaries, arrow_text

RULE_KEY_COLLISION = "key_collision"


#: the ASCII characters Python's ``str.strip()`` removes (``str.isspace``)
_ASCII_SPACES = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"


def _folds_alike(values: pd.Series, coded: KeyDictionary | None = None) -> bool:
    """Return True when two distinct values of ``values`` fold to the same key.

    Only the distinct values are folded. When they are all ASCII (ids usually are), folding is
    done by Arrow on the Arrow text: Unicode normalisation changes no ASCII text, case folding is
    lower-casing, and the spaces stripped are those :func:`fold_key` strips; otherwise by
    :func:`fold_key` (a Python string per distinct value). ``coded``: the column's shared
    dictionary, whose values are the distinct values (not hashed again).
    """
    distinct = coded.values if coded is not None else pc.unique(arrow_text(values)).drop_null()
    if not len(distinct):
        return False
    if pc.all(pc.string_is_ascii(distinct)).as_py():
        folded = pc.utf8_trim(pc.ascii_lower(distinct), characters=_ASCII_SPACES)
        return bool(len(pc.unique(folded)) < len(distinct))
    text = pd.Series(distinct.to_pylist(), dtype="string")
    return bool(fold_key(text).nunique() < len(text))


def _joined(frame: pd.DataFrame, key: tuple[str, ...]) -> pd.Series:
    """Return the key columns as one text per row (``\x1f`` between parts, nulls as ``\x00``)."""
    out = frame[key[0]].astype("string").fillna("\x00")
    for k in key[1:]:
        out = out + "\x1f" + frame[k].astype("string").fillna("\x00")
    return out


def fold_key(values: pd.Series) -> pd.Series:
    """Return key text folded for comparison: Unicode NFC, case-folded, surrounding spaces removed."""
    return values.astype("string").str.normalize("NFC").str.casefold().str.strip()


def key_collisions(
    spec: Table, frame: pd.DataFrame, dictionaries: TableDictionaries | None = None
) -> pd.DataFrame:
    """Return ``key_collision`` issues: rows whose key equals another row's only after folding.

    ``dictionaries``: the run's shared dictionaries of the table's columns (their distinct values).
    """
    text_keys = [k for k in spec.key if spec.column(k).spec.family == "text"]
    if not text_keys or not len(frame):
        return empty_issues()
    # cheap first: folding the distinct values of each text key column; no two distinct values that
    # fold alike → no collision is possible (the usual case, a million order lines included). Only
    # then is every row's key made text (for order lines: line_number too, a string per row)
    shared = dictionaries or (lambda column: None)
    if not any(_folds_alike(frame[k].astype("string"), shared(k)) for k in text_keys):
        return empty_issues()
    raw = frame[list(spec.key)].astype("string").reset_index(drop=True)
    folded = raw.copy()
    for k in text_keys:
        folded[k] = fold_key(raw[k])
    raw_id, fold_id = _joined(raw, spec.key), _joined(folded, spec.key)
    present = raw[text_keys].notna().all(axis=1).to_numpy()
    spellings = pd.DataFrame({"fold": fold_id, "raw": raw_id})[present]
    counts = spellings.groupby("fold")["raw"].nunique()
    colliding = counts[counts > 1].index
    mask = present & fold_id.isin(colliding).to_numpy()
    positions = np.flatnonzero(mask)
    label = ", ".join(spec.key)
    others = spellings[spellings["fold"].isin(colliding)].drop_duplicates()
    variants = others.groupby("fold")["raw"].agg(lambda v: " / ".join(sorted(v)))
    view = pd.DataFrame(
        {
            "_key": raw_id.str.replace("\x1f", "|", regex=False),
            "_variants": fold_id.map(variants).astype("string").str.replace("\x1f", "|", regex=False),
        }
    )
    found = issues_at(
        view,
        positions,
        rule=RULE_KEY_COLLISION,
        column="_key",
        other_column="_variants",
        template=f"key ({label}) {{value}} collides with another spelling of the same key once case, "
        "spaces and Unicode form are ignored ({other}); SQL Server would see one key, so every copy "
        "is rejected — keep one spelling",
    )
    found["column"] = pd.Series(
        spec.key[0] if len(spec.key) == 1 else pd.NA, index=found.index, dtype="string"
    )
    return found


def storable(frame: pd.DataFrame, spec: Table, rows: np.ndarray) -> pd.DataFrame:
    """Return ``frame`` with every cell of ``rows`` (a mask) the warehouse would refuse set to null."""
    out = frame.copy(deep=False)  # copy-on-write: only the columns changed below are copied
    positions = np.flatnonzero(rows)
    for c in spec.columns:
        if c.name not in out.columns or not len(positions):
            continue
        s = out[c.name].iloc[positions]
        limit = text_limit(c)
        bad = np.zeros(len(positions), dtype=bool)
        if c.spec.family == "text":
            bad |= s.str.contains("\x00", regex=False).fillna(False).to_numpy(dtype=bool)
            if limit is not None:
                bad |= (s.str.len() > limit).fillna(False).to_numpy(dtype=bool)
        decimal = decimal_limit(c)
        if decimal is not None:
            values = s.to_numpy(dtype="float64", na_value=np.nan)
            with np.errstate(invalid="ignore"):
                bad |= (
                    ~np.isfinite(values) | (np.abs(values) >= 10.0 ** (decimal[0] - decimal[1]))
                ) & ~np.isnan(values)
        if bad.any():
            mask = np.zeros(len(out), dtype=bool)
            mask[positions[bad]] = True
            out[c.name] = out[c.name].mask(mask)
    return out
