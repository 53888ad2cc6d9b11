"""The streamed ingest (``ingest_spill_rows``): ``order_items`` spilled block by block gives the
outcome of the whole-frame path.

The reader writes the typed blocks of ``order_items`` to an Arrow file as it reads them; the
validate, load and row-hash steps read that file block by block or by its key columns. Forced to
spill (0 rows, a few rows, reader blocks cut inside an order), the outcome must equal the
whole-frame path's: the accepted rows, ``audit.rejected_rows`` with file/line/column, warnings,
counts and GX's merged statistics; core, rejects and row hashes after a load (SQLite and
PostgreSQL), also for a snapshot drop on day 2; classicmodels and Northwind; and the staging
folder is gone after the run, succeeded or failed. A census checks that no frame as long as
``order_items`` is alive during the ingest stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from salesbi import pipeline
from salesbi.errors import SalesBIError, StructuralError
from salesbi.generate import generate_company
from salesbi.generate.nextday import next_day_drop
from salesbi.ingest import validate_step
from salesbi.reading.reader import SourceData, read_source
from salesbi.reading.spilled import INGEST_SPILL_FOLDER, SpilledFrame, SpilledRows, SpillPolicy
from salesbi.validation.validate import ValidationOutcome
from tests.census import frames_of_length, live_objects
from tests.conftest import need
from tests.test_incremental import _ingest
from tests.test_ingest_blocks import _assert_same_outcome, _state, _url, _with_faults

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
NEVER = 10**12  # ingest_spill_rows above any table: the whole-frame path


@pytest.fixture(scope="module")
def faulty_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A company of 2,000 generated order lines plus faults at the start and the end of order_items."""
    folder = tmp_path_factory.mktemp("faulty")
    generate_company(folder, order_lines=2_000, seed=4)
    return _with_faults(folder)


def _spilled(source: Path, folder: Path, rows: int, profile: str = "canonical", **kw: Any) -> SourceData:
    data = read_source(source, profile, spill=SpillPolicy(folder, rows), **kw)
    assert isinstance(data.tables["order_items"].frame, SpilledFrame)
    return data


def _as_frames(outcome: ValidationOutcome) -> ValidationOutcome:
    """Return ``outcome`` with spilled accepted rows read back as the frame ``frame[keep]`` gives."""
    for name, rows in outcome.accepted.items():
        if isinstance(rows, SpilledRows):
            outcome.accepted[name] = rows.to_frame()
            # what the core stage reads back: the same rows, batch by batch, without the rejected
            pd.testing.assert_frame_equal(rows.read(), outcome.accepted[name].reset_index(drop=True))
            assert len(rows) == len(outcome.accepted[name])
    return outcome


@pytest.mark.parametrize("block_bytes", [None, 3_000])  # one block; 21 blocks, cut inside orders
def test_the_spilled_table_reads_back_as_the_frame(
    faulty_source: Path, tmp_path: Path, block_bytes: Any
) -> None:
    reference = read_source(faulty_source, "canonical")
    data = _spilled(faulty_source, tmp_path / "spill", 0, block_bytes=block_bytes)
    spill = data.tables["order_items"].frame
    assert isinstance(spill, SpilledFrame)
    frame = reference.tables["order_items"].frame
    assert isinstance(frame, pd.DataFrame)
    pd.testing.assert_frame_equal(spill.to_frame(), frame)
    pd.testing.assert_frame_equal(data.tables["order_items"].faults, reference.tables["order_items"].faults)
    assert len(spill) == len(frame) == 2_006 and list(spill.columns) == list(frame.columns)
    # blocks of 333 rows carry their positions; take reads rows in the order asked
    blocks = list(spill.blocks(333))
    assert [len(b) for b in blocks] == [333] * 6 + [8]
    pd.testing.assert_frame_equal(pd.concat(blocks), frame)
    picks = np.array([2_005, 0, 334, 1_000, 332])
    pd.testing.assert_frame_equal(spill.take(picks), frame.iloc[picks].reset_index(drop=True))
    # the other tables stay frames
    assert all(isinstance(t.frame, pd.DataFrame) for n, t in data.tables.items() if n != "order_items")


def test_a_table_under_the_threshold_stays_a_frame(faulty_source: Path, tmp_path: Path) -> None:
    data = read_source(faulty_source, "canonical", spill=SpillPolicy(tmp_path / "spill", 2_007))
    reference = read_source(faulty_source, "canonical")
    frame = data.tables["order_items"].frame
    assert isinstance(frame, pd.DataFrame)
    pd.testing.assert_frame_equal(frame, reference.tables["order_items"].frame)
    assert not (tmp_path / "spill").exists()


@pytest.mark.parametrize(
    ("spill_rows", "block_bytes", "block_rows"),
    [
        (0, None, None),  # one reader block, validated in one block
        (0, 3_000, 333),  # reader blocks cut inside orders, validation blocks of 333 (a remainder of 8)
        (5, 3_000, 1_000),  # a few rows held, then spilled
        (0, 3_000, 2_006),  # one validation block over many reader blocks
    ],
)
def test_spilled_validation_equals_the_whole_frame(
    faulty_source: Path, tmp_path: Path, spill_rows: int, block_bytes: Any, block_rows: Any
) -> None:
    """Accepted rows, rejects (file, line, column), warnings, counts and GX statistics are equal."""
    reference = validate_step(read_source(faulty_source, "canonical"), run_id="r1", block_rows=block_rows)
    assert reference.counts["order_items"].rejected >= 6  # the planted faults were found
    data = _spilled(faulty_source, tmp_path / "spill", spill_rows, block_bytes=block_bytes)
    outcome = validate_step(data, run_id="r1", block_rows=block_rows)
    assert isinstance(outcome.accepted["order_items"], SpilledRows)
    _assert_same_outcome(_as_frames(outcome), reference)


def test_constructed_shapes_equal_the_whole_frame(tmp_path: Path) -> None:
    """Duplicates across blocks, orphaned lines and a reject in the very last line, spilled in blocks."""
    folder = tmp_path / "src"
    generate_company(folder, order_lines=600, seed=9)
    path = folder / "order_items.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    body = [*body, body[0], body[5], "SO77777777,1," + body[1].split(",")[2] + ",1,2.5,0"]
    body.append(",".join([*body[10].split(",")[:3], "0", *body[10].split(",")[4:]]))  # zero quantity, last
    path.write_text("\n".join([header, *body]) + "\n", encoding="utf-8")
    reference = validate_step(read_source(folder, "canonical"), run_id="r1", block_rows=100)
    rules = set(reference.rejected_rows["rule"])
    assert {"duplicate_identical", "foreign_key"} <= rules
    assert reference.rejected_rows["source_line"].max() == len(body) + 1  # the last line is rejected
    data = _spilled(folder, tmp_path / "spill", 0, block_bytes=2_000)
    _assert_same_outcome(_as_frames(validate_step(data, run_id="r1", block_rows=100)), reference)


def test_an_empty_order_items_leaves_no_spill(tmp_path: Path) -> None:
    """A header without rows is the whole-frame path's structural error; no spill file is left."""
    folder = tmp_path / "src"
    generate_company(folder, order_lines=200, seed=2)
    path = folder / "order_items.csv"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(StructuralError, match="header but no data rows"):
        read_source(folder, "canonical")
    with pytest.raises(StructuralError, match="header but no data rows"):
        read_source(folder, "canonical", spill=SpillPolicy(tmp_path / "spill", 0))
    assert not list((tmp_path / "spill").glob("*.arrow"))


# ---------------------------------------------------------------------------------------- the load


def test_a_spilled_load_equals_the_whole_frame_load(
    warehouse: str, faulty_source: Path, tmp_path: Path
) -> None:
    """Core, staging's effect, rejects and row hashes after a spilled load equal the whole-frame load."""
    ref_url = f"sqlite:///{tmp_path / 'ref' / 'wh.db'}"
    ref_doc = _ingest(
        faulty_source, ref_url, tmp_path / "out_ref", ingest_spill_rows=NEVER, ingest_block_rows=333
    )
    reference = _state(ref_url)
    doc = _ingest(faulty_source, warehouse, tmp_path / "out", ingest_spill_rows=0, ingest_block_rows=333)
    assert doc["tables"] == ref_doc["tables"]
    assert doc["tables"]["order_items"]["rejected"] >= 6
    mine = _state(warehouse)
    for name in reference:
        pd.testing.assert_frame_equal(mine[name], reference[name], obj=name)
    assert len(mine["row_hashes"].query("table_name == 'order_items'")) == len(mine["order_items"])
    assert (tmp_path / "out" / "validation.md").read_text(encoding="utf-8").replace(doc["run_id"], "RUN") == (
        tmp_path / "out_ref" / "validation.md"
    ).read_text(encoding="utf-8").replace(ref_doc["run_id"], "RUN")
    assert not (tmp_path / "out" / INGEST_SPILL_FOLDER).exists()  # the staging folder went with the run


def test_a_snapshot_drop_on_day_two_equals_the_whole_frame(
    warehouse: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """Day 1 spilled (a full load), then a snapshot day 2 (read back whole for the comparison)."""
    root = tmp_path_factory.mktemp("stream_drops")
    generate_company(root / "day1", order_lines=1_500, seed=12)
    day2 = next_day_drop(root / "day1", root / "day2", kind="snapshot", seed=6).out
    ref_url = f"sqlite:///{root / 'ref' / 'wh.db'}"
    _ingest(root / "day1", ref_url, root / "o1_ref", ingest_spill_rows=NEVER)
    ref_doc = _ingest(day2, ref_url, root / "o2_ref", ingest_spill_rows=NEVER, mode="snapshot")
    reference = _state(ref_url)
    url = _url(warehouse, tmp_path, "mine")
    _ingest(root / "day1", url, tmp_path / "o1", ingest_spill_rows=0, ingest_block_rows=250)
    doc = _ingest(day2, url, tmp_path / "o2", ingest_spill_rows=0, ingest_block_rows=250, mode="snapshot")
    assert doc["outputs"]["ingest_changes"] == ref_doc["outputs"]["ingest_changes"]
    assert doc["tables"] == ref_doc["tables"]
    mine = _state(url)
    for name in reference:
        pd.testing.assert_frame_equal(mine[name], reference[name], obj=name)


def test_a_failed_run_leaves_no_spill(faulty_source: Path, tmp_path: Path) -> None:
    """A run failing after the read (too many rejects) removes its spill, and what a killed run left."""
    out = tmp_path / "out"
    leftover = out / INGEST_SPILL_FOLDER / "a-killed-run" / "order_items.arrow"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"x")
    with pytest.raises(SalesBIError):
        _ingest(
            faulty_source,
            f"sqlite:///{tmp_path / 'wh.db'}",
            out,
            ingest_spill_rows=0,
            max_rejected_share=0.0001,
        )
    assert not (out / INGEST_SPILL_FOLDER).exists()


def test_no_frame_as_long_as_order_items_lives_during_the_ingest(
    faulty_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The census: at the load and after the ingest stage, no live frame has order_items' length."""
    lines = 2_006
    seen: dict[str, list[list[str]]] = {}

    def census(label: str) -> None:
        seen[label] = frames_of_length((lines, lines - 9))

    import salesbi.ingest as ingest_module

    real_load = ingest_module.load_step

    def load(*args: Any, **kw: Any) -> Any:
        census("validated")
        result = real_load(*args, **kw)
        census("loaded")
        return result

    monkeypatch.setattr(ingest_module, "load_step", load)
    from salesbi.validation import report

    real_docs = report.build_data_docs

    def docs(*args: Any, **kw: Any) -> Any:
        census("reported")  # the ingest stage's last step: the outcome and the read data alive
        return real_docs(*args, **kw)

    monkeypatch.setattr(report, "build_data_docs", docs)
    real_release = pipeline.release

    def release(*args: Any, **kw: Any) -> Any:
        census("between stages")
        return real_release(*args, **kw)

    monkeypatch.setattr(pipeline, "release", release)
    doc = _ingest(faulty_source, f"sqlite:///{tmp_path / 'wh.db'}", tmp_path / "out", ingest_spill_rows=0)
    assert (
        doc["tables"]["order_items"]["read"] == lines and doc["tables"]["order_items"]["loaded"] == lines - 9
    )
    assert seen["validated"] == [] and seen["loaded"] == [] and seen["reported"] == []
    assert "between stages" in seen and seen["between stages"] == []


def _buffers(frame: pd.DataFrame) -> dict[int, int]:
    """Return the memory a frame's columns hold: buffer address → bytes (Arrow buffers, NumPy bases).

    Frames sharing their columns (a shallow copy, a copy-on-write view) share these addresses: two
    frames are two copies of the data only when their buffers differ.
    """
    out: dict[int, int] = {}
    for i in range(frame.shape[1]):
        array = frame.iloc[:, i].array
        arrow = getattr(array, "_pa_array", None)
        if arrow is not None:
            for chunk in arrow.chunks:
                out.update({b.address: b.size for b in chunk.buffers() if b is not None})
            continue
        for part in (array, *(getattr(array, a, None) for a in ("_ndarray", "_data", "_mask", "codes"))):
            if isinstance(part, np.ndarray):
                while isinstance(part.base, np.ndarray):
                    part = part.base
                out[part.__array_interface__["data"][0]] = part.nbytes
    return out


def test_validation_holds_one_copy_of_orders(faulty_source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The census inside validation: every live frame as long as ``orders`` is the staged frame's data.

    Taken at each GX block (GX's typed copy of the block alive), after the whole-table checks and
    at the end (``validate.checkpoints``); ``orders`` is longer than the validation block here, as
    it is at 10M lines (2M orders, blocks of 500,000). The staged frame's own buffers are the one
    copy; a frame as long as it with other buffers (GX's copy of the whole table, a ``frame[keep]``)
    is a second one.
    """
    from salesbi.validation import validate

    data = read_source(faulty_source, "canonical")
    orders = data.tables["orders"].frame
    assert isinstance(orders, pd.DataFrame) and len(orders) > 300
    own = _buffers(orders)
    copies: dict[str, int] = {}

    def census(label: str) -> None:
        other = 0
        for o in live_objects():
            if isinstance(o, pd.DataFrame) and len(o) == len(orders) and o is not orders:
                other += sum(size for address, size in _buffers(o).items() if address not in own)
        copies[label] = max(copies.get(label, 0), other)

    monkeypatch.setattr(validate, "checkpoints", [census])
    outcome = validate_step(data, run_id="r1", block_rows=100)
    assert outcome.counts["orders"].read == len(orders)
    assert {"gx orders", "gx order_items", "checks", "validated"} <= set(copies)
    assert copies == dict.fromkeys(copies, 0), copies


def test_the_order_ids_are_encoded_once(
    faulty_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order lines' order ids are made Arrow text and dictionary-encoded once per validation run.

    The cross-block duplicate codes, the key-collision folding and the references to ``orders``
    read one shared dictionary (:class:`salesbi.validation.keycodes.KeyDictionaries`); before, each
    of the three encoded or hashed every line's order id itself. Counted: the calls that turn a
    column as long as the order lines into Arrow text.
    """
    from salesbi.validation import keycodes, limits

    data = _spilled(faulty_source, tmp_path / "spill", 0)
    lines = len(data.tables["order_items"].frame)
    seen: list[str] = []
    real = keycodes.arrow_text

    def counting(values: pd.Series) -> Any:
        if len(values) == lines:
            seen.append(str(values.name))
        return real(values)

    monkeypatch.setattr(keycodes, "arrow_text", counting)
    monkeypatch.setattr(limits, "arrow_text", counting)
    reference = validate_step(read_source(faulty_source, "canonical"), run_id="r1", block_rows=333)
    seen.clear()
    outcome = validate_step(data, run_id="r1", block_rows=333)
    assert seen.count("order_id") == 1, seen
    _assert_same_outcome(_as_frames(outcome), reference)


# ------------------------------------------------------------------------------------ real data


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "spills"), [("classicmodels", True), ("northwind", False)])
def test_real_sources_spilled_equal_the_whole_frame(name: str, spills: bool, tmp_path: Path) -> None:
    """classicmodels' order lines (a constant derivation: row-local) spill; Northwind's profile reads
    files for several tables and numbers its lines per order, so they keep the whole-frame path."""
    source = DATASETS / name
    need(source.is_dir(), f"{source} not found")
    reference = validate_step(read_source(source, name), run_id="r1", block_rows=500)
    data = read_source(source, name, spill=SpillPolicy(tmp_path / "spill", 0), block_bytes=4_000)
    assert isinstance(data.tables["order_items"].frame, SpilledFrame) is spills
    _assert_same_outcome(_as_frames(validate_step(data, run_id="r1", block_rows=500)), reference)


@pytest.mark.realdata
def test_classicmodels_spilled_load_equals_the_whole_frame_load(warehouse: str, tmp_path: Path) -> None:
    source = DATASETS / "classicmodels"
    need(source.is_dir(), f"{source} not found")
    ref_url = f"sqlite:///{tmp_path / 'ref' / 'wh.db'}"
    fields: dict[str, Any] = {"profile": "classicmodels", "ingest_block_rows": 700}
    ref_doc = _ingest(source, ref_url, tmp_path / "out_ref", ingest_spill_rows=NEVER, **fields)
    doc = _ingest(source, warehouse, tmp_path / "out", ingest_spill_rows=0, **fields)
    assert doc["tables"] == ref_doc["tables"]
    reference, mine = _state(ref_url), _state(warehouse)
    for table in reference:
        pd.testing.assert_frame_equal(mine[table], reference[table], obj=table)


def test_reports_from_spilled_lines_equal_the_whole_frame(faulty_source: Path, tmp_path: Path) -> None:
    """The report step's tables (pandas path: core's lines read back from the spill) are unchanged."""
    from salesbi.params import PipelineParams
    from salesbi.pipeline import run_pipeline
    from tests.test_fact_spill import _rpt_fingerprint

    prints = []
    for spill_rows in (NEVER, 0):
        url = f"sqlite:///{tmp_path / str(spill_rows) / 'wh.db'}"
        params = PipelineParams(
            source=faulty_source,
            warehouse_url=url,
            out_dir=tmp_path / f"out{spill_rows}",
            steps=("ingest", "reports"),
            ingest_spill_rows=spill_rows,
        )
        summary = run_pipeline(params)
        assert summary.status in ("succeeded", "succeeded_with_warnings")
        prints.append(_rpt_fingerprint(url))
        assert not (tmp_path / f"out{spill_rows}" / INGEST_SPILL_FOLDER).exists()
    assert prints[0] and prints[0] == prints[1]


def test_a_read_failing_midway_deletes_its_partial_file(
    faulty_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salesbi.reading import spilled

    real_append = spilled.SpillWriter.append
    calls: list[int] = []

    def failing(self: spilled.SpillWriter, block: pd.DataFrame) -> None:
        calls.append(len(block))
        if len(calls) == 3:
            assert self.path.exists()  # two blocks written
            raise RuntimeError("the read was interrupted")
        real_append(self, block)

    monkeypatch.setattr(spilled.SpillWriter, "append", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        read_source(faulty_source, "canonical", spill=SpillPolicy(tmp_path / "spill", 0), block_bytes=3_000)
    assert len(calls) == 3 and not list((tmp_path / "spill").glob("*"))
