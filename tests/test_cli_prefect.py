"""The CLI's run options: Prefect telemetry off for the temporary API, model threads passed through."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from salesbi import cli


@pytest.mark.parametrize("user_setting", [None, "true"])
def test_temporary_api_has_telemetry_off_unless_the_user_set_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, user_setting: str | None
) -> None:
    import flows.sales_pipeline

    seen: dict[str, Any] = {}

    def fake_flow(params: Any, return_state: bool) -> Any:
        seen["analytics"] = os.environ.get("PREFECT_SERVER_ANALYTICS_ENABLED")
        return SimpleNamespace(is_completed=lambda: True)

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    # set first so that monkeypatch restores the session's value (the CLI writes os.environ)
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", user_setting or "unset")
    if user_setting is None:
        monkeypatch.delenv("PREFECT_SERVER_ANALYTICS_ENABLED")
    monkeypatch.setattr(flows.sales_pipeline, "sales_pipeline", fake_flow)
    cli._run_prefect_flow(SimpleNamespace(out_dir=tmp_path))
    assert seen["analytics"] == (user_setting or "false")


def test_run_passes_model_threads_to_the_pipeline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import salesbi.pipeline

    seen: dict[str, Any] = {}

    def fake_pipeline(params: Any, progress: Any = None) -> Any:
        seen["threads"] = params.model_threads
        return SimpleNamespace(as_dict=lambda: {"status": "succeeded", "tables": {}, "outputs": {}})

    monkeypatch.setattr(salesbi.pipeline, "run_pipeline", fake_pipeline)
    monkeypatch.setattr(cli, "_print_outputs", lambda summary: None)
    runner = CliRunner()
    args = ["run", "--source", str(tmp_path), "--out", str(tmp_path / "out"), "--steps", "ingest"]
    assert runner.invoke(cli.app, [*args, "--model-threads", "3"]).exit_code == 0
    assert seen["threads"] == 3
    assert runner.invoke(cli.app, args).exit_code == 0
    assert seen["threads"] == 1
    assert runner.invoke(cli.app, [*args, "--model-threads", "0"]).exit_code == 2


def test_run_maps_forecast_and_prediction_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import salesbi.pipeline

    seen: dict[str, Any] = {}

    def fake_pipeline(params: Any, progress: Any = None) -> Any:
        seen["params"] = params
        return SimpleNamespace(as_dict=lambda: {"status": "succeeded", "tables": {}, "outputs": {}})

    monkeypatch.setattr(salesbi.pipeline, "run_pipeline", fake_pipeline)
    monkeypatch.setattr(cli, "_print_outputs", lambda summary: None)
    runner = CliRunner()
    args = ["run", "--source", str(tmp_path), "--out", str(tmp_path / "out"), "--steps", "forecast"]
    options = ["--forecast-frequency", "W", "--forecast-horizon", "8", "--prediction-horizon", "30"]
    assert runner.invoke(cli.app, [*args, *options]).exit_code == 0
    p = seen["params"]
    assert (p.forecast_frequency, p.forecast_horizon, p.prediction_horizon_days) == ("W", 8, 30)
    assert runner.invoke(cli.app, args).exit_code == 0
    p = seen["params"]
    assert (p.forecast_frequency, p.forecast_horizon, p.prediction_horizon_days) == (None, None, 90)
    bad = runner.invoke(cli.app, [*args, "--forecast-frequency", "Q"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_the_deployments_parameter_form_has_no_internal_fields_and_describes_everything() -> None:
    from prefect.utilities.callables import parameter_schema

    from flows.ingest import ingest_flow
    from flows.models import models_flow
    from flows.reports import reports_flow
    from flows.sales_pipeline import sales_pipeline

    for flow in (sales_pipeline, models_flow, reports_flow, ingest_flow):
        schema = parameter_schema(flow.fn).model_dump_for_openapi()
        assert list(schema["properties"]) == ["params"], flow.name
        fields = schema["definitions"]["RunOptions"]["properties"]
        assert "warehouse_url" not in fields and "run_key" not in fields
        assert {"warehouse_secret", "warehouse_env"} <= set(fields)
        undescribed = [name for name, f in fields.items() if not f.get("description")]
        assert not undescribed, (flow.name, undescribed)


def test_a_flow_takes_the_warehouse_from_the_named_variable_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows._secrets import pipeline_params
    from salesbi.errors import ConfigurationError
    from salesbi.params import RunOptions

    monkeypatch.setenv("MY_WH", "sqlite:///somewhere/warehouse.db")
    assert (
        pipeline_params(RunOptions(warehouse_env="MY_WH")).warehouse_url == "sqlite:///somewhere/warehouse.db"
    )
    assert pipeline_params(RunOptions()).warehouse_url is None  # the library's default resolution
    monkeypatch.delenv("MY_WH")
    with pytest.raises(ConfigurationError, match="MY_WH named by warehouse_env is not set"):
        pipeline_params(RunOptions(warehouse_env="MY_WH"))


def test_a_run_that_published_nothing_shows_no_report_artifacts(monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    import tasks.artifacts
    from salesbi.params import PipelineParams
    from salesbi.pipeline import Execution, start_run
    from salesbi.stage_results import Published

    made: dict[str, Any] = {}
    monkeypatch.setattr(
        tasks.artifacts, "create_markdown_artifact", lambda text, key, **_: made.update({key: text})
    )
    monkeypatch.setattr(
        tasks.artifacts, "create_table_artifact", lambda rows, key, **_: made.update({key: rows})
    )
    monkeypatch.setattr(tasks.artifacts, "get_run_logger", lambda: SimpleNamespace(info=lambda *a: None))
    run = Execution(start_run(PipelineParams(), flow="test"))
    never = {"customer_summary": pd.DataFrame({"sales_rank": [1], "customer_name": ["Never published"]})}
    run.summary.status, run.summary.failed_step, run.summary.error = "failed", "publish", "disk full"
    run.summary.outputs["published_by"] = "20260101T000000Z-aaaaaaaa"
    tasks.artifacts.publish_run_artifacts(run)
    assert set(made) == {"sales-run-summary"}
    text = made["sales-run-summary"]
    assert "Failed in step **publish**: disk full" in text
    assert "run `20260101T000000Z-aaaaaaaa` stay in place" in text and "Never published" not in text
    run.results = run.results.add(
        "publish", Published(tables={}, parquet=Path("."), models={}, files=(), frames=never)
    )
    tasks.artifacts.publish_run_artifacts(run)
    assert made["top-customers"][0]["customer_name"] == "Never published"


def test_the_cli_says_what_the_ingest_and_the_model_steps_decided(capsys: pytest.CaptureFixture[str]) -> None:
    doc = {
        "run_id": "r",
        "status": "succeeded",
        "tables": {
            "orders": {"read": 100, "loaded": 10, "rejected": 0, "unchanged": 90, "warehouse_rows": 100}
        },
        "outputs": {
            "ingest_changes": {
                "mode": "snapshot",
                "unchanged": {"orders": 90, "order_items": 400},
                "validated": {"orders": 10, "order_items": 100},
            },
            "model_decisions": {
                "segments": {"action": "score", "reason": "stored model 2 days old"},
                "forecast": {"action": "refit", "reason": "fitted every run"},
            },
        },
    }
    cli._print_outputs(doc)
    captured = capsys.readouterr()
    out = " ".join((captured.out + captured.err).split())
    assert "read loaded rejected unchanged in warehouse orders 100 10 0 90 100" in out
    assert "ingest_changes snapshot: 110 rows validated, 490 unchanged" in out
    assert "segments score (stored model 2 days old), forecast refit (fitted every run)" in out
