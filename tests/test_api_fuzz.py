"""Property-based fuzzing of the API's OpenAPI schema with schemathesis: no input gives a server error."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from salesbi.api import ApiSettings, create_app
from tests.test_api_support import KEY, build_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = 25
OPERATIONS = (
    ("GET", "/health"),
    ("POST", "/segment"),
    ("POST", "/segment/batch"),
    ("POST", "/predict/customer-sales"),
    ("POST", "/predict/customer-sales/batch"),
    ("GET", "/forecast"),
    ("GET", "/customers/{customer_id}"),
    ("POST", "/admin/reload"),
)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    world = build_world(tmp_path_factory.getbasetemp() / "api_world")
    app = create_app(
        ApiSettings(warehouse_url=world.warehouse_url, models_dir=world.models_dir, api_keys=(KEY,))
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_the_schema_lists_every_operation(api_schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_generated_request_causes_a_server_error(api_schema: Any, method: str, path: str) -> None:
    operation = api_schema[path][method]
    failures: list[tuple[int, str]] = []

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        response = case.call(headers={"X-API-Key": KEY})
        if response.status_code >= 500:
            failures.append((response.status_code, response.text[:300]))
        assert response.status_code < 500, (case.body, case.query, case.path_parameters, response.text[:300])
        assert "Traceback" not in response.text

    run()
    assert failures == []
