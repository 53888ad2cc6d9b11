"""The ``changes`` step of snapshot and new-only drops over a spilled ``order_items`` (issue 18).

Day 1 of a generated company is loaded, then a day-2 drop (snapshot or new-only) with faults at
both ends of ``order_items`` (orphaned lines, a key repeated with other values, an exact copy, a
cell the reader cannot type): changed, new, unchanged, duplicated and faulty rows, orders cut
across blocks. With ``order_items`` spilled (threshold 0 or under the drop) and small blocks, the
outcome must equal the whole-frame path's (never spilled): the ChangeSet summary, the per-table
counts (unchanged included), core, rejects and row hashes, on SQLite and PostgreSQL; the selected
rows are a new spill or a frame as the threshold says. A census checks that no frame as long as
``order_items`` is alive while a spilled drop is compared with core.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from salesbi import contract
from salesbi.generate import generate_company
from salesbi.generate.nextday import next_day_drop
from salesbi.incremental import StoredHashes, _duplicated_keys, key_hashes, row_keys
from salesbi.reading.reader import read_source
from salesbi.reading.selection import select_spilled
from salesbi.reading.spilled import SpilledFrame, SpillPolicy, SpillWriter
from tests.census import frames_of_length
from tests.test_incremental import _ingest
from tests.test_ingest_blocks import _state, _with_faults

NEVER = 10**12  # ingest_spill_rows above any table: the whole-frame path
PG = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture(scope="module")
def drops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Day 1 (1,500 generated lines) and its day-2 snapshot and new-only drops, faults added to both."""
    root = tmp_path_factory.mktemp("spilled_drops")
    generate_company(root / "day1", order_lines=1_500, seed=12)
    snapshot = next_day_drop(root / "day1", root / "snapshot", kind="snapshot", seed=6).out
    new_only = next_day_drop(root / "day1", root / "new_only", kind="new_only", seed=6).out
    return {"day1": root / "day1", "snapshot": _with_faults(snapshot), "new_only": _with_faults(new_only)}


#: the day-2 drops each kind loads after day 1: a new-only drop twice (a same-day re-drop: its lines
#: are stored by then, and compared with their hashes looked up a block at a time)
RUNS = {"snapshot": ("snapshot",), "new_only": ("new_only", "new_only")}


@pytest.fixture(scope="module")
def references(
    drops: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[list[dict[str, Any]], dict[str, pd.DataFrame]]]:
    """Per drop kind: the run summaries of the day-2 runs and the warehouse state after them, of the
    whole-frame path (SQLite)."""
    out = {}
    for kind, runs in RUNS.items():
        root = tmp_path_factory.mktemp(f"ref_{kind}")
        url = f"sqlite:///{root / 'wh.db'}"
        _ingest(drops["day1"], url, root / "o1", ingest_spill_rows=NEVER)
        docs = [_ingest(drops[r], url, root / "o2", mode=kind, ingest_spill_rows=NEVER) for r in runs]
        assert all(doc["status"] in ("succeeded", "succeeded_with_warnings") for doc in docs)
        out[kind] = (docs, _state(url))
    return out


def _selections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record what :func:`select_spilled` returns in each run from now on: 'spill', 'frame' or 'same'."""
    import salesbi.incremental as incremental

    seen: list[str] = []

    def recording(spill: SpilledFrame, keep: np.ndarray, *, keep_below: int) -> Any:
        result = select_spilled(spill, keep, keep_below=keep_below)
        seen.append("same" if result is spill else "spill" if isinstance(result, SpilledFrame) else "frame")
        return result

    monkeypatch.setattr(incremental, "select_spilled", recording)
    return seen


def _assert_as_reference(docs: list[dict[str, Any]], state: dict[str, pd.DataFrame], reference: Any) -> None:
    ref_docs, ref_state = reference
    assert len(docs) == len(ref_docs)
    for doc, ref_doc in zip(docs, ref_docs, strict=True):
        assert doc["outputs"]["ingest_changes"] == ref_doc["outputs"]["ingest_changes"]
        assert doc["tables"] == ref_doc["tables"]
        assert doc["status"] == ref_doc["status"]
    for name in ref_state:
        pd.testing.assert_frame_equal(state[name], ref_state[name], obj=name)


@pytest.mark.parametrize("kind", ["snapshot", "new_only"])
@pytest.mark.parametrize(
    ("backend", "spill_rows", "block_rows", "selected_as"),
    [
        ("sqlite", 0, 97, "spill"),  # blocks of 97 lines: orders cut across blocks
        # spilled (snapshot 1,500 lines, new-only ~100), the selection under the threshold
        ("sqlite", {"snapshot": 1_000, "new_only": 40}, 250, "frame"),
        pytest.param("postgresql", 0, 97, "spill", marks=PG),
    ],
)
def test_a_spilled_drop_compared_block_by_block_equals_the_whole_frame(
    kind: str,
    backend: str,
    spill_rows: int | dict[str, int],
    block_rows: int,
    selected_as: str,
    drops: dict[str, Path],
    references: dict[str, Any],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = (
        request.getfixturevalue("pg_warehouse")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'w.db'}"
    )
    threshold = spill_rows[kind] if isinstance(spill_rows, dict) else spill_rows
    fields: dict[str, Any] = {"ingest_spill_rows": threshold, "ingest_block_rows": block_rows}
    _ingest(drops["day1"], url, tmp_path / "o1", **fields)
    seen = _selections(monkeypatch)
    docs = [_ingest(drops[r], url, tmp_path / "o2", mode=kind, **fields) for r in RUNS[kind]]
    # order_items (the only spilled table): a new-only drop's lines are all new the first time
    assert seen == (["same", selected_as] if kind == "new_only" else [selected_as])
    _assert_as_reference(docs, _state(url), references[kind])
    t = docs[-1]["tables"]["order_items"]
    # the last run had every kind of row: unchanged, validated and loaded (new or changed), rejected
    assert t["loaded"] > 0 and t["rejected"] > 0 and t["unchanged"] > 0


def test_a_first_snapshot_into_an_empty_core_keeps_the_spill(
    drops: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing stored: every row is selected, the spill itself goes on (no copy), as a full load's."""
    ref_url = f"sqlite:///{tmp_path / 'ref.db'}"
    ref_doc = _ingest(drops["snapshot"], ref_url, tmp_path / "ref", mode="snapshot", ingest_spill_rows=NEVER)
    seen = _selections(monkeypatch)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    doc = _ingest(
        drops["snapshot"], url, tmp_path / "o", mode="snapshot", ingest_spill_rows=0, ingest_block_rows=97
    )
    assert seen == ["same"]
    assert doc["outputs"]["ingest_changes"]["mode"] == "snapshot"
    assert all(n == 0 for n in doc["outputs"]["ingest_changes"]["unchanged"].values())
    _assert_as_reference([doc], _state(url), ([ref_doc], _state(ref_url)))


def test_no_frame_as_long_as_order_items_lives_while_a_spilled_snapshot_is_compared(
    drops: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The census, taken at each block hashed and when the changes step hands over: no live frame
    has the length of the drop's order_items."""
    import salesbi.incremental as incremental
    import salesbi.ingest as ingest

    lines = len(read_source(drops["snapshot"], "canonical").tables["order_items"].frame)
    seen: dict[str, list[list[str]]] = {}

    def census(label: str) -> None:
        seen.setdefault(label, []).extend(frames_of_length(lines))

    real_hashes = incremental.row_hashes

    def hashes(frame: pd.DataFrame, spec: Any) -> np.ndarray:
        if spec.name == "order_items":
            census("hashing")
        return real_hashes(frame, spec)

    real_validate = ingest.validate_step

    def validate(*args: Any, **kw: Any) -> Any:
        census("changes selected")  # the ChangeSet handed to validation, the read drop alive
        return real_validate(*args, **kw)

    monkeypatch.setattr(incremental, "row_hashes", hashes)
    monkeypatch.setattr(ingest, "validate_step", validate)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    _ingest(drops["day1"], url, tmp_path / "o1", ingest_spill_rows=0, ingest_block_rows=97)
    seen.clear()
    doc = _ingest(drops["snapshot"], url, tmp_path / "o2", ingest_spill_rows=0, ingest_block_rows=97)
    assert doc["outputs"]["ingest_changes"]["mode"] == "snapshot"
    assert doc["tables"]["order_items"]["read"] == lines
    assert set(seen) == {"hashing", "changes selected"}
    assert seen == {"hashing": [], "changes selected": []}


# ------------------------------------------------------------------------------------------ units


def _spill(frame: pd.DataFrame, path: Path, batch: int) -> SpilledFrame:
    writer = SpillWriter(path)
    for start in range(0, len(frame), batch):
        writer.append(frame.iloc[start : start + batch])
    spill = writer.finish()
    assert isinstance(spill, SpilledFrame)
    return spill


@pytest.mark.parametrize("keep_below", [0, 30, 10_000])
def test_a_selection_over_a_spill_equals_the_masked_frame(keep_below: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 200
    frame = pd.DataFrame(
        {
            "order_id": pd.Series([f"SO{i // 3:05d}" for i in range(n)], dtype=pd.StringDtype("pyarrow")),
            "line_number": pd.array(np.arange(n) % 3 + 1, dtype="Int64"),
            "status": pd.Categorical(rng.choice(["a", "b"], n), categories=["a", "b", "c"]),
            "price": rng.normal(size=n),
        }
    )
    frame.loc[5, "price"] = np.nan
    spill = _spill(frame, tmp_path / "t.arrow", batch=37)
    for keep in (rng.random(n) < 0.2, rng.random(n) < 0.9, np.zeros(n, dtype=bool), np.ones(n, dtype=bool)):
        selected = select_spilled(spill, keep, keep_below=keep_below)
        expected = frame[keep].reset_index(drop=True)
        if keep.all():
            assert selected is spill
        elif keep.sum() >= keep_below and keep.any():
            assert isinstance(selected, SpilledFrame) and selected.path != spill.path
        else:
            assert isinstance(selected, pd.DataFrame)
        got = selected.to_frame() if isinstance(selected, SpilledFrame) else selected
        pd.testing.assert_frame_equal(got, expected)


def test_stored_hashes_take_16_bytes_a_row_and_never_call_a_clashing_key_unchanged() -> None:
    keys = pd.Series(["A", "B", "C", None], dtype="string")
    hashes = np.array([1, 2, 3, 4], dtype=np.uint64)
    stored = StoredHashes.build(key_hashes(keys[:3]), hashes[:3])
    assert stored.key_hashes.nbytes + stored.hashes.nbytes == 16 * 3
    found, same = stored.compare(keys, np.array([1, 9, 3, 4], dtype=np.uint64))
    assert found.tolist() == [True, True, True, False]  # a null key is never stored
    assert same.tolist() == [True, False, True, False]
    # two stored keys with one key hash: both found, neither taken as unchanged (validated)
    x, y = key_hashes(pd.Series(["x", "y"], dtype="string"))
    clashing = StoredHashes.build(np.array([y, x, x], dtype=np.uint64), np.array([3, 1, 2], dtype=np.uint64))
    assert clashing.clash is not None and int(clashing.clash.sum()) == 2
    found, same = clashing.compare(pd.Series(["x", "y"], dtype="string"), np.array([1, 3], dtype=np.uint64))
    assert found.tolist() == [True, True] and same.tolist() == [False, True]


def test_duplicated_keys_are_exact_whatever_the_key_hashes(tmp_path: Path) -> None:
    """Every row given one key hash (all collide): the text of the keys decides, as ``duplicated``."""
    spec = contract.table("order_items")
    generate_company(tmp_path / "company", order_lines=60, seed=2)
    path = tmp_path / "company" / "order_items.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join([*lines, lines[1], lines[5]]), encoding="utf-8")  # two keys twice
    items = read_source(tmp_path / "company", "canonical").tables["order_items"].frame
    assert isinstance(items, pd.DataFrame)
    expected = row_keys(items, spec).duplicated(keep=False).to_numpy()
    assert expected.sum() == 4
    constant = np.zeros(len(items), dtype=np.uint64)
    assert (_duplicated_keys(items, spec, constant) == expected).all()
    read = read_source(tmp_path / "company", "canonical", spill=SpillPolicy(tmp_path / "spill", 0))
    spill = read.tables["order_items"].frame
    assert isinstance(spill, SpilledFrame)
    assert (_duplicated_keys(spill, spec, constant) == expected).all()
    assert (_duplicated_keys(spill, spec, key_hashes(row_keys(items, spec))) == expected).all()


def test_the_changed_orders_of_a_spilled_selection_are_read_from_its_file(tmp_path: Path) -> None:
    """``capture_changed_orders`` takes a spilled table's order ids batch by batch: the frame's."""
    from salesbi.incremental_reports import _ids, _order_ids

    generate_company(tmp_path / "company", order_lines=80, seed=3)
    frame = read_source(tmp_path / "company", "canonical").tables["order_items"].frame
    read = read_source(tmp_path / "company", "canonical", spill=SpillPolicy(tmp_path / "spill", 0))
    spill = read.tables["order_items"].frame
    assert isinstance(frame, pd.DataFrame) and isinstance(spill, SpilledFrame)
    expected = _ids(frame["order_id"])
    assert len(expected) > 10 and _order_ids(spill) == expected == _order_ids(frame)
