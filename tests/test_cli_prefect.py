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
