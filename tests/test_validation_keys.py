"""The whole-table key checks on compact codes give exactly the results of the text comparisons.

``salesbi.validation.keycodes`` replaces the key text of every row by small integers (cross-block
duplicates), Arrow bitmaps (foreign keys, core's keys only for references outside the source),
Arrow folding of ASCII keys (key collisions) and look-ups on candidate rows only (returns rule,
reader faults). Here the checks as they were before (text per row: ``DataFrame.duplicated``,
Python sets, ``fold_key`` over every distinct value, whole-table merges) are put back into
``validate_staged`` and the outcomes compared: accepted frames (rows, order, index, dtypes),
rejects and warnings (messages with file, line and column), counts and GX results; on the
generator with planted faults, on constructed edge cases, on a transaction export with absent
tables, and on classicmodels and Northwind.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from salesbi import contract, incremental
from salesbi.generate import generate_company
from salesbi.incremental import KEY_SEPARATOR
from salesbi.ingest import read_step, validate_step
from salesbi.reading.reader import SourceData, read_source
from salesbi.types import conform
from salesbi.validation import blocks, limits, references, returns, validate
from salesbi.validation.config import ValidationConfig
from salesbi.validation.issues import empty_issues, issues_at
from salesbi.validation.keycodes import KeyDictionaries, encode, in_set, key_codes, repeated
from salesbi.validation.validate import ValidationOutcome
from tests.test_ingest_blocks import _assert_same_outcome, _with_faults
from tests.test_reading_exports import PROFILE, SALES, SUPPLIERS

# ------------------------------------------------------------- the checks as they were (text per row)


def _old_isin(values: pd.Series, keys: pd.Series) -> np.ndarray:
    wanted = set(keys.dropna().astype(str))
    return np.array([v is not pd.NA and v is not None and str(v) in wanted for v in values], dtype=bool)


def _old_cross_block_duplicates(
    frame: pd.DataFrame, key: Any, block_rows: int, dictionaries: Any = None
) -> np.ndarray:
    """Every row whose key (nulls equal, all-null keys never) is also in another block."""
    if len(frame) <= block_rows:
        return np.array([], dtype="int64")
    names = list(key)
    keys = frame[names].reset_index(drop=True)
    rows = keys.duplicated(keep=False) & ~keys.isna().all(axis=1)
    text = keys.astype("string").fillna("\x00").agg("\x1f".join, axis=1)
    blocks_of: dict[str, set[int]] = {}
    for pos in np.flatnonzero(rows.to_numpy()):
        blocks_of.setdefault(text[pos], set()).add(int(pos) // block_rows)
    hit = [int(p) for p in np.flatnonzero(rows.to_numpy()) if len(blocks_of[text[p]]) > 1]
    return np.array(hit, dtype="int64")


def _old_check_references(
    frames: Mapping[str, pd.DataFrame],
    issues: Mapping[str, pd.DataFrame],
    config: ValidationConfig,
    known_keys: Mapping[str, pd.DataFrame],
    dictionaries: Any = None,
) -> dict[str, pd.DataFrame]:
    """The foreign keys and cascade with every reference looked up in Python sets, core's keys too."""
    out = dict(issues)
    rejected: dict[str, np.ndarray] = {}
    for spec in contract.TABLES:
        name = spec.name
        frame = frames[name]
        parts = [out[name]]
        mask = references._rejected_mask(len(frame), out[name], config)
        for col, parent, pcol in spec.foreign_keys:
            values = frame[col]
            present = values.notna().to_numpy()
            known = _old_isin(values, references._known(known_keys, parent, pcol))
            if parent == name:
                in_batch = _old_isin(values, frame[pcol])
                unknown = present & ~in_batch & ~known
                parts.append(references._fk_issues(frame, np.flatnonzero(unknown), col, name, pcol))
                mask |= unknown
                cascaded = np.zeros(len(frame), dtype=bool)
                while True:
                    newly = present & ~mask & in_batch & ~_old_isin(values, frame[pcol][~mask])
                    if not newly.any():
                        break
                    cascaded |= newly
                    mask |= newly
                parts.append(references._cascade_issues(frame, np.flatnonzero(cascaded), col, name, pcol))
                continue
            parent_keys = frames[parent][pcol]
            ok = _old_isin(values, parent_keys[~rejected[parent]])
            in_batch = _old_isin(values, parent_keys)
            cascade = present & ~ok & in_batch
            unknown = present & ~ok & ~in_batch & ~known
            parts.append(references._fk_issues(frame, np.flatnonzero(unknown), col, parent, pcol))
            parts.append(references._cascade_issues(frame, np.flatnonzero(cascade), col, parent, pcol))
            mask |= cascade | unknown
        rejected[name] = mask
        out[name] = pd.concat([p for p in parts if len(p)] or [parts[0]], ignore_index=True)
    return out


def _old_folds_alike(values: pd.Series, coded: Any = None) -> bool:
    distinct = pd.Series(values.dropna().unique(), dtype="string")
    return bool(limits.fold_key(distinct).nunique() < len(distinct))


def _old_return_line_issues(order_items: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """The returns rule with every line's order id as text and a float copy of every quantity."""
    if not len(order_items):
        return empty_issues()
    qty = order_items["quantity"].to_numpy(dtype="float64", na_value=np.nan)
    negative = np.nan_to_num(qty, nan=0.0) < 0
    if not negative.any():
        return empty_issues()
    cancelled = set(
        orders.loc[orders["status"].isin(returns.RETURN_STATUSES), "order_id"].dropna().astype(str)
    )
    ids = order_items["order_id"].astype("string").fillna("")
    positions = np.flatnonzero(negative & ~ids.isin(cancelled).to_numpy(dtype=bool))
    return issues_at(
        order_items,
        positions,
        rule=returns.RULE,
        column="quantity",
        template=(
            "quantity {value} is negative on an order that is not cancelled; only a cancelled order "
            "(a credit note, e.g. a C… invoice) may carry returned (negative) quantities"
        ),
    )


def _old_fault_rows(frame: pd.DataFrame, faults: pd.DataFrame) -> pd.DataFrame:
    """The reader's faults matched to every staged row (one Python object per row)."""
    from salesbi.schema import SOURCE_FILE, SOURCE_LINE

    rows = pd.DataFrame(
        {
            "file": frame[SOURCE_FILE].to_numpy(),
            "line": frame[SOURCE_LINE].astype("Int64").to_numpy(),
            "pos": np.arange(len(frame), dtype="int64"),
        }
    )
    f = faults.reset_index(drop=True).copy()
    f["line"] = f["line"].astype("Int64")
    return f.merge(rows, on=["file", "line"], how="left")


def _both(data: SourceData, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> tuple[ValidationOutcome, ...]:
    """Return (compact, as before) outcomes of validating ``data`` with the same arguments."""
    compact = validate_step(data, run_id="r1", **kwargs)
    with monkeypatch.context() as m:
        m.setattr(validate, "cross_block_duplicates", _old_cross_block_duplicates)
        m.setattr(validate, "check_references", _old_check_references)
        m.setattr(validate, "return_line_issues", _old_return_line_issues)
        m.setattr(limits, "_folds_alike", _old_folds_alike)
        before = validate_step(data, run_id="r1", **kwargs)
    return compact, before


# -------------------------------------------------------------------------------- the codes themselves


def _edge_keys() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": pd.array(
                ["SO1", "so1", "SO1 ", "SO1", None, None, "SO2", "SO2", "Zürich", "Zu\u0308rich", "", ""],
                dtype="string",
            ),
            "b": pd.array([1, 1, 1, 1, None, None, None, None, 3, 3, 4, 4], dtype="Int64"),
        }
    )


def test_key_codes_are_equal_exactly_when_the_keys_are() -> None:
    frame = _edge_keys()
    coded = key_codes(frame, ["a", "b"])
    assert coded is not None
    codes, all_missing = coded
    expected = frame.duplicated(["a", "b"], keep=False).to_numpy()
    assert repeated(codes).tolist() == expected.tolist()
    assert all_missing.tolist() == frame.isna().all(axis=1).tolist()
    # case, trailing spaces and Unicode form are different keys here (key_collision's business)
    assert len({codes[0], codes[1], codes[2]}) == 3 and codes[0] == codes[3] and codes[8] != codes[9]
    # pairwise: same code ⇔ same values, missing equal to missing
    text = frame.astype("string").fillna("\x00").agg("\x1f".join, axis=1).tolist()
    for i in range(len(frame)):
        for j in range(len(frame)):
            assert (codes[i] == codes[j]) == (text[i] == text[j]), (i, j)


def test_a_shared_dictionary_gives_the_same_codes_and_look_ups() -> None:
    """A column's shared dictionary: the codes key_codes folds from the text, the look-ups in_set does.

    Over several Arrow chunks (each chunk's dictionary extends the previous one) with nulls, case
    and space variants; encoded once per (table, column) however often it is asked for.
    """
    import pyarrow as pa

    frame = _edge_keys()
    halves = (frame["a"].iloc[:5], frame["a"].iloc[5:])
    chunked = pa.chunked_array([pa.array(h.tolist(), pa.large_string(), from_pandas=True) for h in halves])
    frame["a"] = pd.Series(pd.arrays.ArrowExtensionArray(chunked)).astype(pd.StringDtype("pyarrow"))
    shared = KeyDictionaries(frozenset({("t", "a")}))
    dictionaries = shared.table("t", frame)
    assert key_codes(frame, ["a", "b"], dictionaries) is not None
    plain, with_shared = key_codes(frame, ["a", "b"]), key_codes(frame, ["a", "b"], dictionaries)
    assert plain is not None and with_shared is not None
    assert plain[0].tolist() == with_shared[0].tolist() and plain[1].tolist() == with_shared[1].tolist()
    assert dictionaries("b") is None and shared.encodings == 1  # b is not shared; a encoded once
    coded = encode(frame["a"])
    assert coded.values.to_pylist() == ["SO1", "so1", "SO1 ", "SO2", "Zürich", "Zu\u0308rich", ""]
    for keys in (["SO1", "Zürich", None], [], ["nothing"], ["", "so1"]):
        parent = pd.Series(keys, dtype="string")
        assert coded.isin(parent).tolist() == in_set(frame["a"], parent).tolist(), keys


def test_key_codes_of_integer_float_and_all_missing_columns() -> None:
    frame = pd.DataFrame(
        {
            "i": pd.array([-5, 3, None, -5, 3, None, 7], dtype="Int64"),
            "none": pd.array([None] * 7, dtype="Int64"),
            "f": [1.5, 2.0, np.nan, 1.5, 2.5, np.nan, 1.5],
            "t": pd.array(["a", "b", None, "a", "b", None, None], dtype="string"),
        }
    )
    for names in (["i"], ["i", "none"], ["f", "i"], ["t", "f", "i"], ["none"], ["none", "t"]):
        coded = key_codes(frame, names)
        assert coded is not None
        codes, all_missing = coded
        assert repeated(codes).tolist() == frame.duplicated(names, keep=False).tolist(), names
        assert all_missing.tolist() == frame[names].isna().all(axis=1).tolist(), names


def test_too_wide_a_key_falls_back_to_comparing_values() -> None:
    frame = pd.DataFrame(
        {
            "a": pd.array(["x", "y", "x", "y"], dtype="string"),
            "b": pd.array([0, 2**62, 0, 1], dtype="Int64"),
        }
    )
    assert key_codes(frame, ["a", "b"]) is None
    got = blocks.cross_block_duplicates(frame, ["a", "b"], 2)
    assert got.tolist() == _old_cross_block_duplicates(frame, ["a", "b"], 2).tolist() == [0, 2]


def test_repeated_on_few_rows_and_many() -> None:
    assert repeated(np.array([], dtype=np.int64)).tolist() == []
    assert repeated(np.array([5], dtype=np.int64)).tolist() == [False]
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 50_000, size=100_000)
    assert repeated(codes).tolist() == pd.Series(codes).duplicated(keep=False).tolist()


@pytest.mark.parametrize("block_rows", [1, 2, 3, 5, 11, 12])
def test_cross_block_duplicates_equal_the_text_check(block_rows: int) -> None:
    frame = _edge_keys()
    got = blocks.cross_block_duplicates(frame, ["a", "b"], block_rows)
    assert got.tolist() == _old_cross_block_duplicates(frame, ["a", "b"], block_rows).tolist()


def test_in_set_equals_python_sets() -> None:
    values = pd.Series(["a", None, "b", "A", "a ", "c"], dtype="string")
    keys = pd.Series(["a", "b", None, "b"], dtype="string")
    assert (
        in_set(values, keys).tolist()
        == _old_isin(values, keys).tolist()
        == [
            True,
            False,
            True,
            False,
            False,
            False,
        ]
    )
    assert in_set(values.iloc[:0], keys).tolist() == []
    assert in_set(values, keys.iloc[:0]).tolist() == [False] * 6


@pytest.mark.parametrize(
    "values",
    [
        ["C1", "c1"],
        ["C1", "C1 "],
        ["C1", "\tC1"],
        ["C1", "C1\x1f"],  # U+001F is whitespace to str.strip
        ["C1", "C1\x1f", None],
        ["C1", "C2", None, "C1"],
        ["Zürich", "Zu\u0308rich"],  # composed / decomposed
        ["STRASSE", "straße"],  # casefold: ß → ss
        ["ÉTÉ", "été"],
        ["a", "b", ""],
        [None, None],
    ],
)
def test_folds_alike_equals_fold_key(values: list[str | None]) -> None:
    series = pd.Series(values, dtype="string")
    assert limits._folds_alike(series) == _old_folds_alike(series)


# ----------------------------------------------------------------------------- whole validation outcomes


def _constructed(folder: Path) -> Path:
    """A small company with orphaned lines, keys across blocks, case/space variants and null keys."""
    generate_company(folder, order_lines=300, seed=11)
    _with_faults(folder)
    path = folder / "order_items.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, lines = rows[0], rows[1:]
    order = lines[5][0]
    extra = [
        [order.lower(), *lines[5][1:]],  # the same order id in lower case: a key collision, no order
        [order + " ", "99", *lines[5][2:]],  # with a trailing space (trimmed by the reader)
        ["", "7", lines[5][2], "1", "2", "0"],  # a null order id
        [lines[6][0], "", lines[6][2], "1", "2", "0"],  # a null line number
        ["", "", lines[6][2], "1", "2", "0"],  # both key parts null
        ["", "", lines[6][2], "1", "2", "0"],  # twice
        [lines[7][0], lines[7][1], "NOPRODUCT", "1", "2", "0"],  # unknown product, key repeated
        [*lines[8][:3], "-3", *lines[8][4:]],  # a negative quantity, key repeated
    ]
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows([*lines[:40], *extra[:4], *lines[40:], *extra[4:]])
    customers = folder / "customers.csv"
    with customers.open(encoding="utf-8", newline="") as f:
        crow = list(csv.reader(f))
    crow.append([crow[1][0].lower(), *crow[1][1:]])  # a customer id in another case
    with customers.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(crow)
    return folder


@pytest.fixture(scope="module")
def constructed(tmp_path_factory: pytest.TempPathFactory) -> SourceData:
    return read_step(_constructed(tmp_path_factory.mktemp("keys")), "canonical")


def test_the_constructed_company_has_every_kind_of_key_fault(constructed: SourceData) -> None:
    outcome = validate_step(constructed, run_id="r1", block_rows=37)
    rules = set(outcome.rejected_rows["rule"]) | set(outcome.warnings["rule"])
    assert {
        "foreign_key",
        "duplicate_key",
        "duplicate_identical",
        "key_collision",
        "parent_rejected",
    } <= rules
    assert "quantity_not_positive" in rules


@pytest.mark.parametrize("block_rows", [None, 37, 500])
def test_constructed_outcome_is_unchanged(
    constructed: SourceData, monkeypatch: pytest.MonkeyPatch, block_rows: int | None
) -> None:
    compact, before = _both(constructed, monkeypatch, block_rows=block_rows)
    _assert_same_outcome(compact, before)


def test_outcome_with_core_keys_is_unchanged(
    constructed: SourceData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """References outside the source resolve against core's keys (an orphan's order is in core)."""
    known = {
        "orders": pd.DataFrame({"order_id": pd.array(["SO99999999", "X"], dtype="string")}),
        "products": pd.DataFrame({"product_id": pd.array(["NOPRODUCT"], dtype="string")}),
        "customers": pd.DataFrame({"customer_id": pd.array([], dtype="string")}),
    }
    compact, before = _both(constructed, monkeypatch, block_rows=37, known_keys=known)
    _assert_same_outcome(compact, before)
    fk = compact.rejected_rows.query("rule == 'foreign_key'")
    assert "SO99999999" not in set(fk["value"].astype(str))  # resolved by core


def test_faults_are_located_as_before(constructed: SourceData) -> None:
    table = constructed.tables["order_items"]
    assert len(table.faults)
    spec = contract.table("order_items")
    found = validate._fault_issues(spec, table.frame, table.faults)
    old = _old_fault_rows(table.frame, table.faults)
    assert sorted(found["pos"].tolist()) == sorted(old["pos"].astype("int64").tolist())


def test_generated_outcome_is_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate_company(tmp_path, order_lines=3_000, seed=5)
    data = read_step(_with_faults(tmp_path), "canonical")
    compact, before = _both(data, monkeypatch, block_rows=700)
    assert compact.counts["order_items"].rejected >= 6
    _assert_same_outcome(compact, before)


def test_one_transaction_file_with_absent_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "sales.csv").write_text(
        SALES + "536368,85123A,X,2,2/22/11 09:00,2.55,,France,S1\n", encoding="utf-8"
    )
    (src / "suppliers.csv").write_text(SUPPLIERS, encoding="utf-8")
    prof = tmp_path / "shop.yaml"
    prof.write_text(PROFILE, encoding="utf-8")
    data = read_source(src, prof)
    compact, before = _both(data, monkeypatch, block_rows=2)
    _assert_same_outcome(compact, before)
    assert compact.counts["offices"].read == 0 and compact.counts["order_items"].read == 5


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("name", ["classicmodels", "northwind"])
def test_real_outcome_is_unchanged(datasets_dir: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = read_source(datasets_dir / name, name)
    compact, before = _both(data, monkeypatch, block_rows=500)
    _assert_same_outcome(compact, before)


# --------------------------------------------------------------- the changes step: row keys and hashes


def _old_row_keys(frame: pd.DataFrame, spec: Any) -> pd.Series:
    parts = []
    for name in spec.key:
        values = frame[name]
        if spec.column(name).spec.pandas_dtype == "Int64":
            values = values.astype("Int64")
        parts.append(values.astype("string"))
    key = parts[0]
    for part in parts[1:]:
        key = key + KEY_SEPARATOR + part
    return key.reset_index(drop=True)


def _old_text_hash(series: pd.Series) -> np.ndarray:
    values = series.astype("string").fillna("").to_numpy(dtype=object)
    null = series.isna().to_numpy(dtype=bool)
    return np.where(null, incremental._NULL, pd.util.hash_array(values, categorize=False))


def test_row_keys_and_hashes_are_unchanged(constructed: SourceData) -> None:
    """Keys joined by Arrow and text hashed per distinct value equal the per-row Python versions."""
    for spec in contract.TABLES:
        frame = constructed.tables[spec.name].frame
        for part in (frame, frame.iloc[3:], frame.iloc[:0]):
            pd.testing.assert_series_equal(incremental.row_keys(part, spec), _old_row_keys(part, spec))
        for column in spec.columns:
            if column.spec.family == "text" and len(frame):
                conformed = conform(frame, spec)[column.name]
                assert (incremental._column_hash(conformed, column) == _old_text_hash(conformed)).all()


@pytest.mark.parametrize(
    "values",
    [["a", None, "", "a", "Zürich", "Zu\u0308rich", " a"], [None, None], [], ["x"] * 5],
)
def test_text_hashes_per_distinct_value_equal_hashing_every_row(values: list[str | None]) -> None:
    series = pd.Series(values, dtype="string")
    column = contract.table("customers").column("customer_name")
    assert incremental._column_hash(series, column).tolist() == _old_text_hash(series).tolist()
    chunked = pd.concat([series, series])  # more than one Arrow chunk
    assert incremental._column_hash(chunked, column).tolist() == _old_text_hash(chunked).tolist()
