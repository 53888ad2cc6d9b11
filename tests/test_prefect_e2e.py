"""End to end on a real Prefect server: schedules fire, a deployment runs through a worker, Retry works.

One `prefect server start` per test session (SQLite backend, free port) with
the scheduler service on and its loops shortened; the process work pool is
created and `prefect deploy --all` run once. Then:

- every deployment with a schedule in prefect.yaml has its cron and time zone
  on the server and upcoming SCHEDULED runs at the right local time, and the
  server log holds no scheduler error (SQLAlchemy 2.1 broke exactly this);
- a worker runs `daily-sales-refresh` triggered as the UI's Run button does;
  with the source folder missing it fails with a message saying what to do,
  publishes nothing and records the failure; once the folder exists, the same
  REST call the UI's Retry button makes (``POST /flow_runs/{id}/set_state``,
  state SCHEDULED named AwaitingRetry, ``force`` false) brings it to Completed;
- `rebuild-reports` keeps the full insight set.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from tests.prefect_server import BIN, PROJECT_ROOT, poll, prefect_cli, prefect_env, prefect_server, running

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]

WAREHOUSE_ENV = "SALESBI_E2E_WAREHOUSE"
FLOW_OF = {
    "flows/sales_pipeline.py:sales_pipeline": "sales-pipeline",
    "flows/models.py:models_flow": "train-models",
    "flows/reports.py:reports_flow": "rebuild-reports",
}
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class Server:
    api: str
    env: dict[str, str]
    log: list[str]
    deployed: str
    workdir: Path

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        # like Prefect's own client, try again while the server says it is busy (503/429: SQLite locked)
        def answer() -> httpx.Response | None:
            response = httpx.request(method, self.api + path, json=body, timeout=30)
            return None if response.status_code in (429, 503) else response

        response = poll(f"{method} {path} while the server is busy", answer, timeout=60)
        response.raise_for_status()
        return response.json() if response.content else None

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, body)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The session's Prefect server (scheduler on), its work pool, and every deployment of prefect.yaml."""
    home = tmp_path_factory.mktemp("prefect-home")
    workdir = tmp_path_factory.mktemp("e2e")
    with prefect_server(home, scheduler=True) as (api, log):
        env = prefect_env(home, api)
        env[WAREHOUSE_ENV] = f"sqlite:///{workdir / 'wh' / 'warehouse.db'}"
        prefect_cli(["work-pool", "create", "salesbi-process", "--type", "process"], env)
        prefect_cli(["work-pool", "set-concurrency-limit", "salesbi-process", "1"], env)
        deployed = prefect_cli(["deploy", "--all"], env)
        yield Server(api, env, log, deployed, workdir)


def _declared() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    return list(doc["deployments"])


def _deployment(server: Server, name: str) -> dict[str, Any]:
    flow = FLOW_OF[next(d["entrypoint"] for d in _declared() if d["name"] == name)]
    return server.get(f"/deployments/name/{flow}/{name}")  # type: ignore[no-any-return]


def _runs(server: Server, deployment_id: str, state: str) -> list[dict[str, Any]] | None:
    rows = server.post(
        "/flow_runs/filter",
        {
            "deployments": {"id": {"any_": [deployment_id]}},
            "flow_runs": {"state": {"type": {"any_": [state]}}},
            "sort": "EXPECTED_START_TIME_ASC",
        },
    )
    return rows or None


def test_every_scheduled_deployment_gets_upcoming_runs(server: Server) -> None:
    scheduled = [d for d in _declared() if d.get("schedules")]
    assert {d["name"] for d in scheduled} == {"daily-sales-refresh", "weekly-model-retrain"}
    for declared in _declared():
        assert declared["name"] in server.deployed
        assert declared.get("concurrency_limit", {}).get("limit") == 1, declared["name"]
    for declared in scheduled:
        want = declared["schedules"][0]
        deployment = _deployment(server, declared["name"])
        (schedule,) = deployment["schedules"]
        assert schedule["active"] is True
        assert schedule["schedule"]["cron"] == want["cron"]
        assert schedule["schedule"]["timezone"] == want["timezone"] == "Europe/London"
        deployment_id: str = deployment["id"]
        runs = poll(
            f"scheduled runs of {declared['name']}",
            lambda: _runs(server, deployment_id, "SCHEDULED"),  # noqa: B023 - polled at once
            timeout=120,
        )
        minute, hour, _, _, weekday = want["cron"].split()
        for run in runs:
            local = datetime.fromisoformat(run["expected_start_time"]).astimezone(ZoneInfo(want["timezone"]))
            assert (local.hour, local.minute) == (int(hour), int(minute)), run["expected_start_time"]
            if weekday != "*":
                assert local.isoweekday() % 7 == int(weekday)
            assert local > datetime.now(ZoneInfo(want["timezone"]))
    log = "".join(server.log)
    assert "InvalidRequestError" not in log
    assert not [line for line in server.log if "Traceback" in line or "| ERROR" in line], log[-4000:]


def _wait_final(server: Server, run_id: str) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        run: dict[str, Any] = server.get(f"/flow_runs/{run_id}")
        return run if run["state"]["type"] in FINAL else None

    return poll(f"flow run {run_id} to finish", final, timeout=900, every=2)


def _artifact_keys(server: Server, run_id: str) -> set[str]:
    rows = server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})
    return {a["key"] for a in rows if a.get("key")}


def _audit(warehouse: str) -> list[tuple[str, str | None, str]]:
    engine = sa.create_engine(warehouse.replace("warehouse.db", "warehouse.audit.db"))
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT status, failed_step, flow FROM runs ORDER BY started_at, run_id"
        ).fetchall()
    engine.dispose()
    return [(r[0], r[1], r[2]) for r in rows]


def test_worker_runs_a_deployment_and_the_ui_retry_completes_it(server: Server, sample_company: Path) -> None:
    source = server.workdir / "drop"
    out = server.workdir / "out"
    params = {"source": str(source), "warehouse_env": WAREHOUSE_ENV, "out_dir": str(out)}
    daily = _deployment(server, "daily-sales-refresh")
    form = daily["parameter_openapi_schema"]
    fields = form["definitions"]["RunOptions"]["properties"]
    assert "run_key" not in form["properties"] and "warehouse_url" not in fields
    assert all(f.get("description") for f in fields.values()), [
        k for k, f in fields.items() if not f.get("description")
    ]
    # the warehouse exists (a production one always does): a failure before connecting is recorded there
    from salesbi.params import PipelineParams
    from salesbi.pipeline import open_warehouse

    engine, _ = open_warehouse(PipelineParams(warehouse_url=server.env[WAREHOUSE_ENV]))
    engine.dispose()
    worker = [str(BIN / "prefect"), "worker", "start", "--pool", "salesbi-process"]
    with running(worker, server.env, ready="started!", timeout=120) as worker_log:
        # the UI's Run button: POST /deployments/{id}/create_flow_run
        run = server.post(f"/deployments/{daily['id']}/create_flow_run", {"parameters": {"params": params}})
        failed = _wait_final(server, run["id"])
        assert failed["state"]["type"] == "FAILED", "".join(worker_log[-80:])
        message = failed["state"]["message"]
        assert "source folder does not exist" in message and str(source) in message, message
        summary = json.loads((out / "run_summary.json").read_text())
        assert (summary["status"], summary["failed_step"]) == ("failed", "read")
        assert "top-customers" not in _artifact_keys(server, run["id"])
        assert _audit(server.env[WAREHOUSE_ENV]) == [("failed", "read", "sales-pipeline")]

        shutil.copytree(sample_company, source)
        # the UI's Retry button (Prefect 3.8.8 UI: retryFlowRun → setFlowRunState(..., force=false))
        server.post(
            f"/flow_runs/{run['id']}/set_state",
            {
                "state": {"type": "SCHEDULED", "name": "AwaitingRetry", "message": "Retry from the UI"},
                "force": False,
            },
        )
        retried = _wait_final(server, run["id"])
        assert retried["state"]["type"] == "COMPLETED", f"{retried['state']}\n{''.join(worker_log[-80:])}"
        assert retried["run_count"] >= 2
        summary = json.loads((out / "run_summary.json").read_text())
        assert summary["status"] in ("succeeded", "succeeded_with_warnings")
        assert summary["outputs"]["published_by"] == summary["run_id"]
        assert {"sales-run-summary", "top-customers", "latest-forecast"} <= _artifact_keys(server, run["id"])
        parquet = {p.stem for p in (out / "powerbi" / "data").glob("*.parquet")}
        assert {"fact_order_lines", "customer_summary", "sales_forecast", "customer_segments"} <= parquet
        assert (out / "powerbi" / "SalesBI.pbip").exists()
        insights = len(pd.read_parquet(out / "powerbi" / "data" / "insights.parquet"))

        # rebuild-reports keeps the model insights (read back from rpt)
        rebuild = _deployment(server, "rebuild-reports")
        run2 = server.post(
            f"/deployments/{rebuild['id']}/create_flow_run", {"parameters": {"params": params}}
        )
        done = _wait_final(server, run2["id"])
        assert done["state"]["type"] == "COMPLETED", "".join(worker_log[-80:])
    assert len(pd.read_parquet(out / "powerbi" / "data" / "insights.parquet")) == insights
    statuses = [s for s, _, _ in _audit(server.env[WAREHOUSE_ENV])]
    assert (
        statuses[0] == "failed"
        and all(s.startswith("succeeded") for s in statuses[1:])
        and len(statuses) == 3
    )
