"""End to end on a real Prefect server: deploy from prefect.yaml, run as the UI does, check outputs.

Starts `prefect server start` (SQLite backend, free port), creates the
process work pool, runs `prefect deploy --all`, starts a worker, triggers
`daily-sales-refresh` through the API (the endpoint the UI's Run button
calls), waits for Completed, checks reports, Parquet and artifacts; then runs
it again and checks that nothing changed in core.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.prefect_server import BIN, prefect_cli, prefect_env, prefect_server, running

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]


def _core_counts(url: str) -> dict[str, int]:
    from salesbi import contract
    from salesbi.warehouse.engine import create_engine

    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {
            t.name: conn.execute(sa.text(f"SELECT COUNT(*) FROM core.{t.name}")).scalar_one()
            for t in contract.TABLES
        }
    engine.dispose()
    return counts


async def _trigger_and_wait(api_url: str, parameters: dict[str, Any]) -> tuple[str, str, list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            flow_run = await run_deployment(
                "sales-pipeline/daily-sales-refresh",
                client=client,
                parameters=parameters,
                timeout=900,
                poll_interval=1,
                as_subflow=False,
            )
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]))
            )
            state = flow_run.state
            assert state is not None
            return state.type.value, state.message or "", sorted({a.key for a in artifacts if a.key})


def test_daily_refresh_deployment_end_to_end(tmp_path: Path, sample_company: Path) -> None:
    home = tmp_path / "prefect-home"
    home.mkdir()
    out = tmp_path / "out"
    warehouse = f"sqlite:///{tmp_path / 'wh' / 'warehouse.db'}"
    parameters = {
        "params": {
            "source": str(sample_company),
            "profile": "canonical",
            "warehouse_url": warehouse,
            "out_dir": str(out),
        }
    }
    with prefect_server(home) as api_url:
        env = prefect_env(home, api_url)
        prefect_cli(["work-pool", "create", "salesbi-process", "--type", "process"], env)
        deployed = prefect_cli(["deploy", "--all"], env)
        for name in ("daily-sales-refresh", "weekly-model-retrain", "rebuild-reports", "backfill"):
            assert name in deployed
        worker = [str(BIN / "prefect"), "worker", "start", "--pool", "salesbi-process"]
        with running(worker, env, ready="started!", timeout=120) as worker_log:
            state, message, artifacts = asyncio.run(_trigger_and_wait(api_url, parameters))
            assert state == "COMPLETED", f"{state}: {message}\n{''.join(worker_log[-80:])}"
            first = _core_counts(warehouse)
            summary = json.loads((out / "run_summary.json").read_text())
            assert summary["status"] == "succeeded"
            assert {"sales-run-summary", "top-customers", "latest-forecast"} <= set(artifacts)
            parquet = {p.stem for p in (out / "powerbi" / "data").glob("*.parquet")}
            assert {"fact_order_lines", "customer_summary", "sales_monthly", "sales_forecast"} <= parquet
            assert (out / "powerbi" / "SalesBI.pbip").exists()

            state2, message2, _ = asyncio.run(_trigger_and_wait(api_url, parameters))
            assert state2 == "COMPLETED", message2
            assert _core_counts(warehouse) == first
            summary2 = json.loads((out / "run_summary.json").read_text())
            assert summary2["run_id"] != summary["run_id"]
            assert summary2["tables"] == summary["tables"]
    engine = sa.create_engine(warehouse.replace("warehouse.db", "warehouse.audit.db"))
    with engine.connect() as conn:
        statuses = [r[0] for r in conn.exec_driver_sql("SELECT status FROM runs ORDER BY started_at")]
    assert statuses == ["succeeded", "succeeded"]
