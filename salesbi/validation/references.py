"""Foreign keys and the reject cascade, in contract load order.

Checked in pandas rather than with GX ``expect_column_values_to_be_in_set``:
the value set would be every parent key (a million order ids for order lines),
which GX copies into the expectation configuration, the validation result and
the Data Docs; a hash ``isin`` over the column does the same check in
milliseconds. Also, the parent set depends on the outcome of the parent
table's validation (the cascade), which a static suite cannot express.

For a child row with a non-null reference ``v`` to ``parent.pcol``:

* ``v`` is the key of an accepted parent row in this run → fine;
* ``v`` is the key of parent rows that were all rejected in this run → ``parent_rejected``
  (even if core already holds an older version: the new child belongs to the rejected parent);
* ``v`` is already in core (``known_keys``) → fine;
* otherwise → ``foreign_key``.

Tables are handled in load order, so a rejected customer rejects its orders,
and those orders reject their lines. ``employees.manager_id`` references its
own table and is iterated to a fixed point.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from salesbi import contract
from salesbi.validation.config import ValidationConfig
from salesbi.validation.issues import issues_at
from salesbi.validation.keycodes import KeyDictionaries, KeyDictionary, in_set


def _rejected_mask(n: int, issues: pd.DataFrame, config: ValidationConfig) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    if len(issues):
        rejecting = issues["rule"].map(config.severity_of).to_numpy() == "reject"
        mask[issues["pos"].to_numpy(dtype="int64")[rejecting]] = True
    return mask


def _isin(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """Return a boolean array: which ``values`` are among ``keys`` (nulls never are).

    A hash lookup in Arrow over the Arrow text the frames hold: pandas' ``isin`` on
    Arrow-backed strings builds Python lists, ten times slower on a million order lines.
    """
    return in_set(values, keys)


def _dead_keys(keys: pd.Series, rejected: np.ndarray) -> pd.Series:
    """Return the keys whose every parent row was rejected (usually none; few when some).

    A reference to a key of this source is to an accepted parent exactly when its key is not one
    of these: so the references are looked up in the parent's keys once, and a second time only
    in this short list, not in a copy of the accepted keys.
    """
    if not rejected.any():
        return keys.iloc[:0]
    gone = keys[rejected]
    return gone[~_isin(gone, keys[~rejected])]


def _known(known_keys: Mapping[str, pd.DataFrame], parent: str, pcol: str) -> pd.Series:
    frame = known_keys.get(parent)
    if frame is None or pcol not in frame.columns:
        return pd.Series([], dtype="string")
    return frame[pcol].astype("string").dropna()


def _lookup(values: pd.Series, coded: KeyDictionary | None, keys: pd.Series) -> np.ndarray:
    """Return which ``values`` are among ``keys``: per distinct value when ``values`` is coded."""
    if coded is None:
        return _isin(values, keys)
    if not len(keys):
        return np.zeros(len(values), dtype=bool)
    return coded.isin(keys)


def check_references(
    frames: Mapping[str, pd.DataFrame],
    issues: Mapping[str, pd.DataFrame],
    config: ValidationConfig,
    known_keys: Mapping[str, pd.DataFrame],
    dictionaries: KeyDictionaries | None = None,
) -> dict[str, pd.DataFrame]:
    """Return ``issues`` extended with ``foreign_key`` and ``parent_rejected`` issues for every table.

    ``dictionaries``: the run's shared key dictionaries; a reference column encoded there (the
    order lines' order ids) is looked up per distinct value, the parent's keys by their distinct
    values when the parent's key column is encoded.
    """
    out = {name: df for name, df in issues.items()}
    rejected: dict[str, np.ndarray] = {}
    for spec in contract.TABLES:
        name = spec.name
        frame = frames[name]
        parts = [out[name]]
        mask = _rejected_mask(len(frame), out[name], config)
        self_refs = []
        for col, parent, pcol in spec.foreign_keys:
            if parent == name:
                self_refs.append((col, pcol))
                continue
            values = frame[col]
            present = values.notna().to_numpy()
            parent_keys = frames[parent][pcol]
            coded = dictionaries.get(name, col, values) if dictionaries is not None else None
            parent_coded = dictionaries.get(parent, pcol, parent_keys) if dictionaries is not None else None
            # a bitmap over the references (a byte per row once in NumPy), no text per row
            if coded is not None and parent_coded is not None:
                in_batch = coded.isin(parent_coded.values)  # the parent's distinct keys
            else:
                in_batch = _lookup(values, coded, parent_keys)
            dead = _dead_keys(parent_keys, rejected[parent])
            ok = in_batch & ~_lookup(values, coded, dead) if len(dead) else in_batch
            # core's keys are looked up only for the references this source does not hold (few)
            outside = np.flatnonzero(present & ~in_batch)
            known = np.zeros(len(frame), dtype=bool)
            if len(outside):
                known[outside] = _isin(values.iloc[outside], _known(known_keys, parent, pcol))
            cascade = present & ~ok & in_batch
            unknown = present & ~ok & ~in_batch & ~known
            parts.append(_fk_issues(frame, np.flatnonzero(unknown), col, parent, pcol))
            parts.append(_cascade_issues(frame, np.flatnonzero(cascade), col, parent, pcol))
            mask |= cascade | unknown
        for col, pcol in self_refs:
            values = frame[col]
            present = values.notna().to_numpy()
            in_batch = _isin(values, frame[pcol])
            known = _isin(values, _known(known_keys, name, pcol))
            unknown = present & ~in_batch & ~known
            parts.append(_fk_issues(frame, np.flatnonzero(unknown), col, name, pcol))
            mask |= unknown
            cascaded = np.zeros(len(frame), dtype=bool)
            while True:
                accepted_keys = frame[pcol][~mask]
                newly = present & ~mask & in_batch & ~_isin(values, accepted_keys)
                if not newly.any():
                    break
                cascaded |= newly
                mask |= newly
            parts.append(_cascade_issues(frame, np.flatnonzero(cascaded), col, name, pcol))
        rejected[name] = mask
        out[name] = pd.concat([p for p in parts if len(p)] or [parts[0]], ignore_index=True)
    return out


def _fk_issues(frame: pd.DataFrame, positions: np.ndarray, col: str, parent: str, pcol: str) -> pd.DataFrame:
    return issues_at(
        frame,
        positions,
        rule="foreign_key",
        column=col,
        template=f"{col} {{value}} is not a known {parent}.{pcol} (neither in this source nor already in "
        f"the warehouse); add the {parent} row or fix the reference",
    )


def _cascade_issues(
    frame: pd.DataFrame, positions: np.ndarray, col: str, parent: str, pcol: str
) -> pd.DataFrame:
    return issues_at(
        frame,
        positions,
        rule="parent_rejected",
        column=col,
        template=f"parent rejected: {parent} {pcol}={{value}} was rejected in this run; fix that row "
        "(see its own reason) and this one loads too",
    )
