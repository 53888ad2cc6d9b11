"""Issue 18 memory: Parquet files are written in row groups from slices of the frame.

The file must be the one ``pq.write_table`` of the whole frame wrote before (byte for byte: same
schema, pandas metadata, row groups and pages), without converting the whole frame to Arrow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import salesbi.publish as publish
from salesbi.reading.reader import core_frames, read_source
from salesbi.reports.fact import FACT_ORDER_LINES, build_fact_order_lines
from salesbi.reports.tables import CUSTOMER_SUMMARY
from salesbi.types import conform, to_arrow


@pytest.fixture(scope="module")
def fact(sample_company: Path) -> pd.DataFrame:
    """Return the generated company's fact_order_lines (20,000 lines)."""
    return conform(
        build_fact_order_lines(core_frames(read_source(sample_company, "canonical"))), FACT_ORDER_LINES
    )


def _old_write(frame: pd.DataFrame, path: Path, row_group: int | None) -> None:
    """How stage_parquet wrote a table before (``row_group`` None: pyarrow's default)."""
    pq.write_table(to_arrow(frame, FACT_ORDER_LINES), path, compression="zstd", row_group_size=row_group)


@pytest.mark.parametrize("row_group", [3_000, 7_000, 20_000, 50_000])
def test_the_file_is_byte_for_byte_the_whole_frame_write(
    fact: pd.DataFrame, tmp_path: Path, row_group: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    converted: list[int] = []
    real = publish.to_arrow
    monkeypatch.setattr(
        publish, "to_arrow", lambda frame, spec: converted.append(len(frame)) or real(frame, spec)
    )
    new = publish.write_parquet(fact, FACT_ORDER_LINES, tmp_path / "new.parquet", row_group=row_group)
    _old_write(fact, tmp_path / "old.parquet", row_group)
    assert new.read_bytes() == (tmp_path / "old.parquet").read_bytes()
    meta = pq.read_metadata(new)
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == len(fact) == 20_000 and max(sizes) == min(row_group, len(fact))
    assert max(converted) == min(row_group, len(fact)) and sum(converted) == len(
        fact
    )  # never the whole frame
    back = conform(pd.read_parquet(new), FACT_ORDER_LINES)  # dates come back as dates: the frame's dtypes
    pd.testing.assert_frame_equal(back, fact, check_exact=True)


def test_empty_and_small_frames_are_written_as_before(fact: pd.DataFrame, tmp_path: Path) -> None:
    for rows in (0, 1, 999):
        part = fact.head(rows)
        new = publish.write_parquet(part, FACT_ORDER_LINES, tmp_path / f"new{rows}.parquet", row_group=1_000)
        _old_write(part, tmp_path / f"old{rows}.parquet", None)
        assert new.read_bytes() == (tmp_path / f"old{rows}.parquet").read_bytes()


def test_the_row_group_is_pyarrows_default(tmp_path: Path) -> None:
    """PARQUET_ROW_GROUP is what pq.write_table uses by default: files keep the layout readers saw."""
    n = publish.PARQUET_ROW_GROUP + 5
    pq.write_table(pa.table({"x": np.zeros(n, dtype=np.int8)}), tmp_path / "x.parquet")
    meta = pq.read_metadata(tmp_path / "x.parquet")
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [publish.PARQUET_ROW_GROUP, 5]


def test_stage_parquet_writes_every_table_through_it(fact: pd.DataFrame, tmp_path: Path) -> None:
    summary = conform(pd.DataFrame(columns=CUSTOMER_SUMMARY.column_names), CUSTOMER_SUMMARY)
    staged = publish.stage_parquet(
        {"fact_order_lines": fact, "customer_summary": summary},
        [FACT_ORDER_LINES, CUSTOMER_SUMMARY],
        tmp_path / "pq",
    )
    _old_write(fact, tmp_path / "old.parquet", None)
    assert (staged / "fact_order_lines.parquet").read_bytes() == (tmp_path / "old.parquet").read_bytes()
    assert pq.read_table(staged / "customer_summary.parquet").num_rows == 0
