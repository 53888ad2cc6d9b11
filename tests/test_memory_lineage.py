"""Issue 18 memory: lineage and staging columns held as categoricals load the same text.

The reader keeps ``_source_file`` as a categorical (one code per row instead of the file's name per
row) and the staging frame's ``_run_id`` and ``_status`` likewise; the warehouse must receive exactly
the text it received before, on every load path (SQLite rows, PostgreSQL's CSV for COPY).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from salesbi import contract
from salesbi.ingest import load_step, prepare_warehouse, read_step, validate_step
from salesbi.schema import RUN_ID, SOURCE_FILE, SOURCE_LINE, STATUS
from salesbi.warehouse.engine import create_engine
from salesbi.warehouse.load import _column_values, postgres_copy_csv

BAD = Path(__file__).parent / "data" / "bad_inputs" / "company"


def test_the_source_file_is_a_categorical_of_the_file_names(sample_company: Path) -> None:
    data = read_step(sample_company, "canonical")
    items = data.tables["order_items"].frame
    assert isinstance(items[SOURCE_FILE].dtype, pd.CategoricalDtype)
    assert items[SOURCE_FILE].astype("string").unique().tolist() == ["order_items.csv"]
    assert items[SOURCE_FILE].memory_usage(deep=True) < len(items) * 2


def test_staging_holds_the_same_text_as_before(tmp_path: Path) -> None:
    data = read_step(BAD, "canonical")
    outcome = validate_step(data, run_id="run-1")
    engine = create_engine(f"sqlite:///{tmp_path / 'wh.db'}")
    metadata = prepare_warehouse(engine)
    load_step(engine, metadata, data, outcome, run_id="run-1")
    rejected_somewhere = False
    with engine.connect() as conn:
        for spec in contract.TABLES:
            source = data.tables[spec.name].frame
            staged = pd.read_sql(
                sa.select(metadata.tables[f"staging.{spec.name}"]).order_by(sa.text(SOURCE_LINE)), conn
            )
            assert len(staged) == len(source)
            assert staged[RUN_ID].eq("run-1").all()
            accepted = source.index.isin(outcome.accepted[spec.name].index)
            expected_status = pd.Series(accepted).map({True: "accepted", False: "rejected"})
            expected = pd.DataFrame(
                {
                    SOURCE_FILE: source[SOURCE_FILE].astype(str).to_numpy(),
                    SOURCE_LINE: source[SOURCE_LINE].astype("int64").to_numpy(),
                    STATUS: expected_status.to_numpy(),
                }
            ).sort_values(SOURCE_LINE, ignore_index=True)
            got = staged[[SOURCE_FILE, SOURCE_LINE, STATUS]].astype({SOURCE_LINE: "int64"})
            pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)
            rejected_somewhere |= not accepted.all()
    engine.dispose()
    assert rejected_somewhere  # the dirty corpus has rejects: both statuses were written


def test_categorical_columns_load_as_their_text_on_every_path() -> None:
    text = pd.Series(["a.csv", None, "b.csv", "a.csv"], dtype="string")
    frame = pd.DataFrame({SOURCE_FILE: text, STATUS: text.fillna("x")})
    as_categories = frame.astype("category")
    table = sa.Table(
        "t", sa.MetaData(), sa.Column(SOURCE_FILE, sa.String(400)), sa.Column(STATUS, sa.String(16))
    )
    assert postgres_copy_csv(table, as_categories) == postgres_copy_csv(table, frame)
    for name in frame.columns:
        assert _column_values(as_categories[name], table.c[name]) == _column_values(
            frame[name], table.c[name]
        )
    assert _column_values(as_categories[SOURCE_FILE], table.c[SOURCE_FILE]) == [
        "a.csv",
        None,
        "b.csv",
        "a.csv",
    ]
