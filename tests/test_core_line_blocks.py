"""Issue 18 memory: core's order lines reach the report build as ordered blocks, never whole.

When ``order_items`` is long, the report step reads core's lines in key order a batch at a
time (:mod:`salesbi.reports.line_blocks`, :mod:`salesbi.warehouse.ordered_read`) and cuts them
into blocks of whole orders. Everything must equal the build from the whole frame (itself held
to the frozen old build in tests/test_report_blocks.py): every report table, the blocks (the
fact file's row groups) and the fact's values; at read batch and block sizes that cut many
orders; on the generator (planted faults), constructed shapes and the real samples; read from
SQLite and PostgreSQL; in ``salesbi run`` and ``salesbi report`` alone. A census checks that no
frame as long as ``order_items`` is alive in the report step.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from salesbi import fact_spill
from salesbi.errors import SalesBIError
from salesbi.params import PipelineParams
from salesbi.pipeline import run_pipeline
from salesbi.reading.reader import core_frames, read_source
from salesbi.reports import build
from salesbi.reports import context as context_module
from salesbi.reports.fact import FactBlocks, StreamedFactBlocks, fact_blocks, order_block_bounds
from salesbi.reports.line_blocks import OrderLineBlocks, frame_lines, whole_order_blocks
from salesbi.reports.params import ReportParams
from salesbi.warehouse.engine import create_engine
from tests.census import frames_of_length
from tests.conftest import need
from tests.test_fact_spill import _parquet_fingerprint, _rpt_fingerprint
from tests.test_ingest_blocks import _with_faults
from tests.test_report_blocks import _cases

#: read batches of one line, a few, and more than the table; blocks of one line, a few, many
READS = (1, 5, 10**6)
BLOCKS = (1, 7, 1_000, 10**9)
LARGE = ((997, 1_003), (4_096, 333), (10**9, 10**6))


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A company of 2,000 generated order lines plus planted faults (tests/test_stream_ingest.py's)."""
    from salesbi.generate import generate_company

    folder = tmp_path_factory.mktemp("faulty")
    generate_company(folder, order_lines=2_000, seed=4)
    return _with_faults(folder)


@pytest.fixture(scope="module")
def generated_core(sample_company: Path) -> dict[str, pd.DataFrame]:
    """Return the core frames of the session's generated company."""
    return core_frames(read_source(sample_company, "canonical"))


def _without_items(core: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {k: v for k, v in core.items() if k != "order_items"}


def _streamed(
    core: dict[str, pd.DataFrame], lines: OrderLineBlocks, block: int, read: int
) -> list[pd.DataFrame]:
    return list(StreamedFactBlocks(_without_items(core), lines, block, read_rows=read))


def _assert_same_blocks(core: dict[str, pd.DataFrame], block: int, read: int) -> None:
    whole = FactBlocks(core, block)
    expected = list(whole)
    got = _streamed(core, frame_lines(core["order_items"]), block, read)
    assert [len(b) for b in got] == [len(b) for b in expected], (block, read)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        pd.testing.assert_frame_equal(g, e, check_exact=True, obj=f"block {i} ({block}, {read})")


def test_the_blocks_equal_the_whole_frames_blocks(generated_core: dict[str, pd.DataFrame]) -> None:
    for _name, core in _cases(generated_core):
        if len(core["order_items"]) < 5_000:
            sizes = [(b, r) for b in BLOCKS for r in READS]
        else:
            sizes = list(LARGE)
        for block, read in sizes:
            _assert_same_blocks(core, block, read)


def test_every_report_table_equals_the_frame_build(generated_core: dict[str, pd.DataFrame]) -> None:
    params = ReportParams()
    for _name, core in _cases(generated_core):
        old = build.build_reports(core, params)
        lines = frame_lines(core["order_items"])
        for block in (7, 10**9) if len(core["order_items"]) < 5_000 else (997,):
            new = build.build_reports(_without_items(core), params, block_lines=block, order_lines=lines)
            assert list(new) == list(old)
            for table in new:
                pd.testing.assert_frame_equal(
                    new[table], old[table], check_exact=True, obj=f"{table} ({block})"
                )


def test_the_cut_rule_by_hand() -> None:
    ids = ["A", "A", "A", "B", "C", "C", "D", "E", "E", "E", "E", "F"]
    frame = pd.DataFrame({"order_id": pd.array(ids, dtype="string"), "n": range(len(ids))})
    codes = pd.factorize(frame["order_id"])[0]
    for block in range(1, 14):
        want = order_block_bounds(codes, block)
        for read in range(1, 13):
            batches = (frame.iloc[i : i + read] for i in range(0, len(frame), read))
            got = [len(b) for b in whole_order_blocks(batches, block)]
            assert got == [stop - start for start, stop in want], (block, read)
    # an order longer than a block is one block; a block ends at the first order start after it
    assert [len(b) for b in whole_order_blocks([frame], 2)] == [3, 1, 2, 5, 1]
    assert [len(b) for b in whole_order_blocks([frame.iloc[:0]], 5)] == [0]


def test_lines_out_of_key_order_are_refused(generated_core: dict[str, pd.DataFrame]) -> None:
    items = generated_core["order_items"].iloc[:50]
    reversed_lines = OrderLineBlocks(lambda rows: iter([items.iloc[::-1]]), "test")
    with pytest.raises(SalesBIError, match="out of"):
        list(reversed_lines.batches())


def _batches_of(frames: list[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield from frames


def test_fact_blocks_takes_the_lines_when_given(generated_core: dict[str, pd.DataFrame]) -> None:
    lines = frame_lines(generated_core["order_items"])
    assert isinstance(fact_blocks(generated_core), FactBlocks)
    streamed = fact_blocks(_without_items(generated_core), 10_000, lines)
    assert isinstance(streamed, StreamedFactBlocks)
    assert streamed.rows is None
    total = sum(len(b) for b in streamed)
    assert streamed.rows == total == len(generated_core["order_items"])
    assert np.all(total > 0)


# --- whole runs: salesbi run and salesbi report alone -------------------------------------------

NEVER = 10**12  # ingest_spill_rows above any table: core's order lines as one frame, as before
MODEL_STEPS = ("ingest", "reports", "segments", "predictions", "forecast")


def _run(source: Path, url: str, out: Path, spill_rows: int, steps: tuple[str, ...], profile: str) -> None:
    summary = run_pipeline(
        PipelineParams(
            source=source,
            profile=profile,
            warehouse_url=url,
            out_dir=out,
            steps=steps,  # type: ignore[arg-type]
            ingest_spill_rows=spill_rows,
        )
    )
    assert summary.status in ("succeeded", "succeeded_with_warnings"), summary.failed_step


def _outputs(url: str, out: Path) -> tuple[dict[str, str], dict[str, str], bytes]:
    fact = (out / "powerbi" / "data" / "fact_order_lines.parquet").read_bytes()
    return _rpt_fingerprint(url), _parquet_fingerprint(out), fact


def _streams(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the report builds that got core's lines as OrderLineBlocks (and their batches)."""
    seen = {"streamed": 0, "batches": 0}
    real = OrderLineBlocks.batches

    def batches(self: OrderLineBlocks, rows: int = 1) -> Iterator[pd.DataFrame]:
        seen["streamed"] += 1
        for batch in real(self, rows):
            seen["batches"] += 1
            yield batch

    monkeypatch.setattr(OrderLineBlocks, "batches", batches)
    return seen


def _run_equals_frame_run(
    source: Path,
    profile: str,
    url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    steps: tuple[str, ...],
) -> None:
    monkeypatch.setattr(build, "FACT_BLOCK_LINES", 301)  # many blocks (and read batches) cut inside orders
    ref_url = f"sqlite:///{tmp_path / 'ref' / 'wh.db'}"
    _run(source, ref_url, tmp_path / "ref", NEVER, steps, profile)
    expected = _outputs(ref_url, tmp_path / "ref")
    seen = _streams(monkeypatch)
    _run(source, url, tmp_path / "out", 0, steps, profile)
    assert seen["streamed"] >= 1 and seen["batches"] >= 2
    rpt, parquet, fact = _outputs(url, tmp_path / "out")
    assert rpt == expected[0]
    assert parquet == expected[1]
    assert fact == expected[2]  # the fact's file byte for byte (the same blocks: the same row groups)


@pytest.mark.slow
def test_a_run_with_core_lines_in_blocks_equals_the_frame_run(
    faulty: Path, warehouse: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generator with planted faults, every step (models read the spilled fact), SQLite and PostgreSQL."""
    _run_equals_frame_run(faulty, "canonical", warehouse, tmp_path, monkeypatch, MODEL_STEPS)


def _report_alone_equals_frame_report(
    source: Path, profile: str, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "FACT_BLOCK_LINES", 97)
    _run(source, url, tmp_path / "ingest", NEVER, ("ingest",), profile)
    _run(source, url, tmp_path / "ref", NEVER, ("reports",), profile)  # read_core: whole frames
    expected = _outputs(url, tmp_path / "ref")
    seen = _streams(monkeypatch)
    _run(source, url, tmp_path / "out", 0, ("reports",), profile)  # order_items left in core, streamed
    assert seen["streamed"] == 1 and seen["batches"] >= 2
    assert _outputs(url, tmp_path / "out") == expected


def test_salesbi_report_alone_streams_core_lines_and_equals_the_frame_report(
    faulty: Path, warehouse: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _report_alone_equals_frame_report(faulty, "canonical", warehouse, tmp_path, monkeypatch)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["classicmodels", "northwind"])
def test_real_samples_report_alone_streams_core_lines_and_equals_the_frame_report(
    name: str, datasets_dir: Path, warehouse: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = datasets_dir / name
    need(source.is_dir(), f"{source} not found")
    _report_alone_equals_frame_report(source, name, warehouse, tmp_path, monkeypatch)


@pytest.mark.realdata
def test_classicmodels_run_with_core_lines_in_blocks_equals_the_frame_run(
    classicmodels_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'wh.db'}"
    _run_equals_frame_run(
        classicmodels_dir, "classicmodels", url, tmp_path, monkeypatch, ("ingest", "reports")
    )


def test_no_frame_as_long_as_order_items_is_alive_in_the_report_step(
    faulty: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The census: while the report step builds the fact's blocks and its tables, no live frame has
    order_items' length (before, core's order lines were read back whole from the ingest's spill)."""
    monkeypatch.setattr(build, "FACT_BLOCK_LINES", 301)
    loaded = 1_997  # faulty: 2,006 lines read, 9 rejected
    seen: dict[str, list[list[str]]] = {}

    def census(label: str) -> None:
        seen.setdefault(label, []).extend(frames_of_length(loaded))

    real_append = fact_spill.FactSpill.append

    def append(self: fact_spill.FactSpill, block: pd.DataFrame) -> None:
        census("blocks")
        real_append(self, block)

    monkeypatch.setattr(fact_spill.FactSpill, "append", append)
    real_context = context_module.context_of

    def context_of(*args: Any, **kw: Any) -> Any:
        census("tables")
        return real_context(*args, **kw)

    monkeypatch.setattr(build, "context_of", context_of)
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    _run(faulty, url, tmp_path / "out", 0, ("ingest", "reports"), "canonical")
    with create_engine(url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM core.order_items")).scalar_one() == loaded
    assert "blocks" in seen and "tables" in seen
    assert seen == {"blocks": [], "tables": []}


@pytest.mark.slow
def test_a_model_step_alone_builds_its_input_from_core_lines_in_blocks(
    faulty: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--steps segments`` alone on a long order_items: the fact is built from core's lines read in
    key order (CoreLines with OrderLineBlocks), and the segments equal a whole run's."""
    url = f"sqlite:///{tmp_path / 'var' / 'wh.db'}"

    def params(out: str, steps: tuple[str, ...], spill_rows: int) -> PipelineParams:
        return PipelineParams(
            source=faulty,
            warehouse_url=url,
            out_dir=tmp_path / out,
            steps=steps,  # type: ignore[arg-type]
            ingest_spill_rows=spill_rows,
            refit="always",
        )

    run_pipeline(params("full", ("ingest", "reports", "segments"), NEVER))
    seen = _streams(monkeypatch)
    summary = run_pipeline(params("alone", ("segments",), 0))
    assert summary.status in ("succeeded", "succeeded_with_warnings")
    assert seen["streamed"] == 1
    data = [tmp_path / way / "powerbi" / "data" / "customer_segments.parquet" for way in ("full", "alone")]
    want, got = (pd.read_parquet(p).drop(columns=["run_id"], errors="ignore") for p in data)
    for frame in (want, got):
        if "model_version" in frame.columns:  # '<UTC time>-<content hash>': the hash names the model
            frame["model_version"] = frame["model_version"].str.split("-").str[-1]
    pd.testing.assert_frame_equal(got, want, check_exact=True)


# --- the ordered read per dialect ---------------------------------------------------------------


def test_the_ordered_read_compiles_for_each_dialect() -> None:
    """Text keys in byte (code point) order on every dialect; SQL Server's DECIMALs read as FLOAT."""
    from salesbi.warehouse.ddl import warehouse_metadata
    from salesbi.warehouse.ordered_read import mssql_ordered_select, postgres_ordered_copy_sql

    table = warehouse_metadata().tables["core.order_items"]
    t_sql = mssql_ordered_select(table)
    assert t_sql.endswith(
        "ORDER BY core.order_items.order_id COLLATE Latin1_General_BIN2, core.order_items.line_number"
    )
    assert "CAST(core.order_items.unit_price AS FLOAT(53)) AS unit_price" in t_sql
    copy = postgres_ordered_copy_sql(table)
    assert copy.startswith("COPY (SELECT core.order_items.order_id")
    assert 'ORDER BY core.order_items.order_id COLLATE "C", core.order_items.line_number) TO STDOUT' in copy


def test_the_ordered_read_gives_core_in_key_order_in_batches(
    faulty: Path, warehouse: str, tmp_path: Path
) -> None:
    """SQLite and PostgreSQL: the batches put together are core's order_items sorted by key, as
    read_core reads it (values and dtypes), ids that sort differently by bytes and by language included."""
    from salesbi import contract
    from salesbi.pipeline import read_core
    from salesbi.reports.line_blocks import warehouse_lines
    from salesbi.warehouse.ddl import warehouse_metadata

    _run(faulty, warehouse, tmp_path / "out", NEVER, ("ingest",), "canonical")
    engine = create_engine(warehouse)
    try:
        metadata = warehouse_metadata()
        items = metadata.tables["core.order_items"]
        with engine.begin() as conn:  # ids a language collation orders otherwise: 'a' < 'B' < 'É' there
            orders = metadata.tables["core.orders"]
            first = conn.execute(sa.select(items).limit(1)).mappings().one()
            order = conn.execute(sa.select(orders).limit(1)).mappings().one()
            for i, order_id in enumerate(["a-1", "B-1", "\u00c9-1", "_z", "Z_"]):
                conn.execute(orders.insert().values({**order, "order_id": order_id}))
                conn.execute(items.insert().values({**first, "order_id": order_id, "line_number": i + 1}))
        whole = read_core(engine, metadata)["order_items"]
        lines = warehouse_lines(engine, metadata)
        for rows in (1, 250, 10**6):
            got = pd.concat(list(lines.batches(rows)), ignore_index=True)
            want = frame_lines(whole).batches(10**9)
            pd.testing.assert_frame_equal(got, next(iter(want)), check_exact=True)
            assert len(got) == len(whole) and list(got.columns) == list(contract.ORDER_ITEMS.column_names)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_second_days_drop_with_core_lines_in_blocks_equals_the_frame_run(
    faulty: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Day two (a snapshot drop: core holds more than the drop's changes, the monthly tables are
    spliced): core's lines read from the warehouse in blocks give the frame run's outputs."""
    from salesbi.generate.nextday import next_day_drop

    monkeypatch.setattr(build, "FACT_BLOCK_LINES", 301)
    day2 = next_day_drop(faulty, tmp_path / "day2", kind="snapshot", seed=6).out
    prints = []
    seen = _streams(monkeypatch)
    for spill_rows in (NEVER, 0):
        url = f"sqlite:///{tmp_path / str(spill_rows) / 'wh.db'}"
        for source in (faulty, day2):
            _run(source, url, tmp_path / f"out{spill_rows}", spill_rows, ("ingest", "reports"), "canonical")
        prints.append(_outputs(url, tmp_path / f"out{spill_rows}"))
    assert seen["streamed"] == 2  # both days of the second run (none of the first)
    assert prints[0] == prints[1]
