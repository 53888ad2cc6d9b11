"""The fact table spilled to its Parquet file after the report step (``salesbi.fact_spill``).

Cross-checked against the run that keeps the fact as a frame (``fact_spill_lines`` above its
length): every rpt table and Parquet file equal, the fact's Parquet file byte for byte, on the
generator and classicmodels, SQLite and PostgreSQL. The frame is dead while the model steps
run, the model steps get their inputs at order grain (``salesbi.order_grain``) with no frame as
long as the fact alive (a census of the live frames), and the staging folder is gone after a
run, succeeded or failed.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from salesbi import fact_spill, pipeline
from salesbi.fact_spill import SPILL_FOLDER, spill
from salesbi.forecasting.series import DAY_COLUMNS
from salesbi.params import PipelineParams
from salesbi.pipeline import INSIGHT_FACT_COLUMNS, run_pipeline
from salesbi.publish import write_parquet
from salesbi.reports.fact import FACT_ORDER_LINES
from salesbi.segmentation.history import HISTORY_ORDER_COLUMNS, LINE_COLUMNS
from salesbi.warehouse.engine import create_engine
from tests.census import frames_of_length
from tests.conftest import drop_pg_schemas
from tests.test_pipeline import RUN_SPECIFIC

pytestmark = pytest.mark.slow

STEPS = ("ingest", "reports", "segments", "predictions", "forecast")
NEVER = 10**12  # fact_spill_lines above any fact: the fact stays a frame, as before


def _params(source: Path, profile: str, url: str, out: Path, spill_lines: int) -> PipelineParams:
    return PipelineParams(
        source=source,
        profile=profile,
        warehouse_url=url,
        out_dir=out,
        steps=STEPS,  # type: ignore[arg-type]
        fact_spill_lines=spill_lines,
        model_workers=1,  # the census runs inside the model steps (tests/census.py)
    )


def _rpt_fingerprint(url: str) -> dict[str, str]:
    """Return a hash of every rpt table's rows (run-specific columns left out), by table."""
    out: dict[str, str] = {}
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for name in sorted(sa.inspect(conn).get_table_names(schema="rpt")):
                table = sa.Table(name, sa.MetaData(), schema="rpt", autoload_with=conn)
                cols = [c for c in table.columns if c.name not in RUN_SPECIFIC]
                rows = conn.execute(sa.select(*cols)).fetchall()
                out[f"rpt.{name}"] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
    finally:
        engine.dispose()
    return out


def _parquet_fingerprint(out: Path) -> dict[str, str]:
    prints: dict[str, str] = {}
    for path in sorted((out / "powerbi" / "data").glob("*.parquet")):
        frame = pd.read_parquet(path)
        frame = frame.drop(columns=[c for c in frame.columns if c in RUN_SPECIFIC])
        prints[path.name] = hashlib.sha256(pd.util.hash_pandas_object(frame).values.tobytes()).hexdigest()
    return prints


def _watch_models(monkeypatch: pytest.MonkeyPatch, seen: dict[str, Any]) -> None:
    """Wrap each model fit: record whether the spilled frame is alive and which columns the step got."""
    for step, (fit, tables) in list(pipeline.MODEL_FITS.items()):

        def watched(*args: Any, _fit: Callable[..., Any] = fit, _step: str = step) -> Any:
            lines = seen.get("lines", -1)
            seen[_step] = {
                "frame_alive": any(ref() is not None for ref in seen.get("blocks", [])),
                # segments and predictions get an OrderHistory (its orders' columns), the forecast a frame
                "columns": list((args[0] if isinstance(args[0], pd.DataFrame) else args[0].orders).columns),
                # the census: every frame alive as long as the fact (a per-line frame of it)
                "line_frames": frames_of_length(lines),
            }
            return _fit(*args)

        monkeypatch.setitem(pipeline.MODEL_FITS, step, (watched, tables))
    real_append = fact_spill.FactSpill.append

    def spying(self: fact_spill.FactSpill, block: pd.DataFrame) -> None:
        seen.setdefault("blocks", []).append(weakref.ref(block))  # the fact's blocks as built
        seen["lines"] = seen.get("lines", 0) + len(block)  # the fact's length, for the census
        real_append(self, block)

    monkeypatch.setattr(fact_spill.FactSpill, "append", spying)


def _spill_equals_frame(
    source: Path, profile: str, urls: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spilled_url, kept_url = urls
    kept_out, spilled_out = tmp_path / "kept", tmp_path / "spilled"
    kept = run_pipeline(_params(source, profile, kept_url, kept_out, NEVER))
    assert "spill" not in kept.timings
    expected_rpt, expected_parquet = _rpt_fingerprint(kept_url), _parquet_fingerprint(kept_out)
    kept_bytes = (kept_out / "powerbi" / "data" / "fact_order_lines.parquet").read_bytes()
    if spilled_url == kept_url:  # one PostgreSQL database: empty it for the second run
        drop_pg_schemas(spilled_url)

    seen: dict[str, Any] = {}
    _watch_models(monkeypatch, seen)
    summary = run_pipeline(_params(source, profile, spilled_url, spilled_out, 0))
    assert summary.status in ("succeeded", "succeeded_with_warnings")
    assert "spill" in summary.timings
    for step in ("segments", "predictions", "forecast"):
        assert seen["blocks"] and seen[step]["frame_alive"] is False, step  # no block of it alive
        # the inputs at order grain (salesbi.order_grain), no per-line frame of the fact alive
        wanted = list(DAY_COLUMNS if step == "forecast" else HISTORY_ORDER_COLUMNS)
        assert seen[step]["columns"] == wanted, step
        assert seen[step]["line_frames"] == [], step
    assert _rpt_fingerprint(spilled_url) == expected_rpt
    assert _parquet_fingerprint(spilled_out) == expected_parquet
    published = (spilled_out / "powerbi" / "data" / "fact_order_lines.parquet").read_bytes()
    assert published == kept_bytes  # the file publish writes from the frame, byte for byte
    assert not (spilled_out / SPILL_FOLDER).exists()  # the staging file is gone with the run


def test_a_spilled_fact_publishes_what_a_fact_frame_publishes_on_sqlite(
    sample_company: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = (f"sqlite:///{tmp_path / 'a' / 'wh.db'}", f"sqlite:///{tmp_path / 'b' / 'wh.db'}")
    _spill_equals_frame(sample_company, "canonical", urls, tmp_path, monkeypatch)


@pytest.mark.integration
@pytest.mark.postgres
def test_a_spilled_fact_publishes_what_a_fact_frame_publishes_on_postgres(
    sample_company: Path, pg_warehouse: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _spill_equals_frame(sample_company, "canonical", (pg_warehouse, pg_warehouse), tmp_path, monkeypatch)
    drop_pg_schemas(pg_warehouse)


@pytest.mark.realdata
def test_a_spilled_fact_publishes_what_a_fact_frame_publishes_on_classicmodels(
    classicmodels_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = (f"sqlite:///{tmp_path / 'a' / 'wh.db'}", f"sqlite:///{tmp_path / 'b' / 'wh.db'}")
    _spill_equals_frame(classicmodels_dir, "classicmodels", urls, tmp_path, monkeypatch)


@pytest.mark.realdata
@pytest.mark.integration
@pytest.mark.postgres
def test_a_spilled_fact_publishes_what_a_fact_frame_publishes_on_classicmodels_postgres(
    classicmodels_dir: Path, pg_warehouse: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _spill_equals_frame(
        classicmodels_dir, "classicmodels", (pg_warehouse, pg_warehouse), tmp_path, monkeypatch
    )
    drop_pg_schemas(pg_warehouse)


def test_a_failed_run_removes_its_spilled_fact_and_keeps_the_last_good_outputs(
    sample_company: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, out = f"sqlite:///{tmp_path / 'wh.db'}", tmp_path / "out"
    run_pipeline(_params(sample_company, "canonical", url, out, 0))
    good_rpt, good_parquet = _rpt_fingerprint(url), _parquet_fingerprint(out)
    good_bytes = (out / "powerbi" / "data" / "fact_order_lines.parquet").read_bytes()
    leftover = out / SPILL_FOLDER / "a-killed-run" / "fact_order_lines.parquet"  # what a killed run left
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"x")

    def failing(*args: Any) -> Any:
        assert any((out / SPILL_FOLDER).glob("*/fact_order_lines.parquet"))  # spilled, in use
        raise RuntimeError("the forecast failed")

    monkeypatch.setitem(pipeline.MODEL_FITS, "forecast", (failing, pipeline.MODEL_FITS["forecast"][1]))
    with pytest.raises(RuntimeError, match="the forecast failed"):
        run_pipeline(
            _params(sample_company, "canonical", url, out, 0).model_copy(update={"steps": STEPS[1:]})
        )
    assert not (out / SPILL_FOLDER).exists()  # this run's file and the killed run's are gone
    assert _rpt_fingerprint(url) == good_rpt
    assert _parquet_fingerprint(out) == good_parquet
    assert (out / "powerbi" / "data" / "fact_order_lines.parquet").read_bytes() == good_bytes


#: the fact's columns the forecast read from the lines before it read days (a projection to read back)
FORECAST_COLUMNS = ("order_id", "order_date", "net_sales", "customer_id", "product_line_id", "office_id")


def test_the_spilled_file_reads_back_as_the_frame(sample_company: Path, tmp_path: Path) -> None:
    """Every column, each model step's and the insights' columns, and the batches equal the frame."""
    from salesbi.reading.reader import core_frames, read_source
    from salesbi.reports.build import build_reports

    fact = build_reports(core_frames(read_source(sample_company, "canonical")))["fact_order_lines"]
    spilled = spill(fact, FACT_ORDER_LINES, tmp_path / "spill")
    assert spilled.rows == len(fact) > 10_000
    assert (
        spilled.path.read_bytes()
        == write_parquet(fact, FACT_ORDER_LINES, tmp_path / "p.parquet").read_bytes()
    )
    pd.testing.assert_frame_equal(spilled.read(), fact, check_exact=True)
    for columns in (LINE_COLUMNS, FORECAST_COLUMNS, INSIGHT_FACT_COLUMNS):
        part = spilled.read(columns)
        assert set(part.columns) == {*columns, *FACT_ORDER_LINES.key}
        pd.testing.assert_frame_equal(part, fact[list(part.columns)], check_exact=True)
    batches = list(spilled.batches(rows=7_000))
    assert [len(b) for b in batches[:-1]] == [7_000] * (len(batches) - 1)
    pd.testing.assert_frame_equal(pd.concat(batches, ignore_index=True), fact, check_exact=True)
    some = pd.concat(list(spilled.batches(rows=7_000, columns=["net_sales"])), ignore_index=True)
    pd.testing.assert_frame_equal(some, fact[["order_id", "line_number", "net_sales"]], check_exact=True)
    with pytest.raises(KeyError, match="no columns"):
        spilled.read(["no_such_column"])
