"""A reports-only or models-only run on a warehouse whose core has no orders fails with one clear
message (exit 2), in both modes (pandas, push-down) and on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from salesbi import cli
from salesbi.generate import generate_company
from salesbi.warehouse.engine import create_engine


def _emptied_warehouse(url: str, tmp_path: Path) -> Path:
    """Ingest a small company into ``url``, then delete core's order lines and orders; return its folder."""
    source = tmp_path / "company"
    generate_company(source, order_lines=1_000, seed=3)
    args = ["ingest", "--source", str(source), "--warehouse", url, "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code in (0, 3), result.output
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM core.order_items")
        conn.exec_driver_sql("DELETE FROM core.orders")
    engine.dispose()
    return source


def _run_models(url: str, source: Path, step: str, reports_in: str) -> str:
    """Return what ``salesbi run --steps step`` printed (it must fail with exit code 2, no traceback)."""
    out = source.parent / "out"
    args = ["run", "--source", str(source), "--steps", step, "--warehouse", url, "--out", str(out)]
    result = CliRunner().invoke(cli.app, [*args, "--reports-in", reports_in])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert result.exception is None or isinstance(result.exception, SystemExit), text
    assert "Traceback" not in result.output
    return text


@pytest.mark.integration
@pytest.mark.parametrize("step", ["reports", "segments", "predictions", "forecast"])
def test_a_run_on_an_empty_core_says_run_the_ingest_first(tmp_path: Path, step: str) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'w.db'}"
    source = _emptied_warehouse(url, tmp_path)
    text = _run_models(url, source, step, "python")
    assert "the warehouse has no orders in core" in text and "run the ingest step first" in text


@pytest.mark.integration
@pytest.mark.parametrize("step", ["reports", "segments", "predictions", "forecast"])
def test_a_warehouse_mode_run_on_an_empty_core_says_run_the_ingest_first(
    warehouse: str, tmp_path: Path, step: str
) -> None:
    source = _emptied_warehouse(warehouse, tmp_path)
    text = _run_models(warehouse, source, step, "warehouse")
    assert "the warehouse has no orders in core" in text and "run the ingest step first" in text
    assert "no order lines to report on" not in text
