"""The Postman collection (api/postman/) covers every endpoint; newman passes it against a real server.

The integration test starts the API with uvicorn on localhost (the session's API test world: trained
models and an SQLite warehouse) and runs the collection with the newman pinned in api/postman/package.json
(`npm ci --prefix api/postman`, done by .ci/run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from salesbi.api import ApiSettings, create_app
from tests.conftest import PROJECT_ROOT, need
from tests.prefect_server import serving
from tests.test_api_support import KEY, build_world

POSTMAN = PROJECT_ROOT / "api" / "postman"
COLLECTION = POSTMAN / "salesbi.postman_collection.json"
ENVIRONMENT = POSTMAN / "salesbi.postman_environment.json"
NEWMAN = POSTMAN / "node_modules" / ".bin" / "newman"

PENDING: set[str] = set()  # folders documenting behaviour the API does not have yet (none now)


def _collection() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(COLLECTION.read_text(encoding="utf-8"))
    return data


def _requests(folder: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in folder["item"] if "request" in i]


def _script(item: dict[str, Any]) -> str:
    return "\n".join(line for e in item["event"] if e["listen"] == "test" for line in e["script"]["exec"])


def _route(item: dict[str, Any]) -> tuple[str, str]:
    path = "/" + "/".join(item["request"]["url"]["path"])
    return item["request"]["method"], path.replace("{{customerId}}", "{customer_id}").replace(
        "no-such-customer", "{customer_id}"
    )


def test_every_endpoint_has_a_happy_path_and_every_request_asserts_its_status(tmp_path: Path) -> None:
    app = create_app(
        ApiSettings(
            api_keys=(KEY,), models_dir=tmp_path / "models", warehouse_url=f"sqlite:///{tmp_path}/none.db"
        )
    )
    routes = {
        (method, route.path)
        for route in app.routes
        for method in getattr(route, "methods", ())
        if method != "HEAD" and route.path not in ("/docs", "/docs/oauth2-redirect", "/redoc")
    }
    items = [i for folder in _collection()["item"] for i in _requests(folder)]
    happy = {_route(i) for i in items if "to.have.status(200)" in _script(i)}
    assert routes - happy == set()
    for item in items:
        assert "pm.response.to.have.status(" in _script(item), item["name"]
        assert "pm.response.json()" in _script(item) or item["name"].startswith("OpenAPI"), item["name"]


def test_the_key_comes_from_the_environment_file_not_the_collection() -> None:
    collection = _collection()
    auth = {a["key"]: a["value"] for a in collection["auth"]["apikey"]}
    assert auth == {"key": "X-API-Key", "value": "{{apiKey}}", "in": "header"}
    environment = json.loads(ENVIRONMENT.read_text(encoding="utf-8"))
    values = {v["key"]: v for v in environment["values"]}
    assert values["apiKey"]["value"] == "" and values["apiKey"]["type"] == "secret"
    unauthenticated = {i["name"] for f in collection["item"] for i in _requests(f) if "auth" in i["request"]}
    assert {"segment without a key → 401", "segment with a wrong key → 403"} <= unauthenticated


@pytest.mark.integration
def test_newman_passes_the_collection_against_a_real_server(tmp_path: Path) -> None:
    need(NEWMAN.exists(), f"newman not installed at {NEWMAN}: run `npm ci --prefix api/postman`")
    world = build_world(tmp_path / "world")
    env = {
        **os.environ,
        "SALESBI_API_KEYS": KEY,
        "SALESBI_MODELS_DIR": str(world.models_dir),
        "SALESBI_WAREHOUSE_URL": world.warehouse_url,
    }

    def server(port: int) -> list[str]:
        cmd = [sys.executable, "-m", "uvicorn", "salesbi.api.app:create_app", "--factory"]
        return [*cmd, "--host", "127.0.0.1", "--port", str(port)]

    def health(port: int) -> str:
        return f"http://127.0.0.1:{port}/health"

    folders = [f["name"] for f in _collection()["item"] if f["name"] not in PENDING]
    report = tmp_path / "newman.json"
    with serving(server, env, ready="Uvicorn running on", health=health) as (port, server_log):
        newman = [str(NEWMAN), "run", str(COLLECTION), "-e", str(ENVIRONMENT)]
        for variable in (f"baseUrl=http://127.0.0.1:{port}", f"apiKey={KEY}", "customerId=C000001"):
            newman += ["--env-var", variable]
        newman += [arg for name in folders for arg in ("--folder", name)]
        newman += ["--reporters", "cli,json", "--reporter-json-export", str(report), "--disable-unicode"]
        done = subprocess.run(newman, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:] + "".join(server_log[-40:])
    stats = json.loads(report.read_text(encoding="utf-8"))["run"]["stats"]
    expected = sum(len(_requests(f)) for f in _collection()["item"] if f["name"] not in PENDING)
    assert stats["requests"]["total"] == expected
    assert stats["assertions"]["failed"] == 0
    assert stats["assertions"]["total"] >= 3 * expected  # every request: JSON, not 500, status, body
