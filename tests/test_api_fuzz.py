"""Property-based fuzzing of the API's OpenAPI schema with schemathesis.

Valid requests (positive mode) must get a documented status code, content type and response
body; invalid requests (negative mode: anything the stricter schema refuses, e.g. both or
neither of history/rfm, over-long arrays, out-of-range values) must be refused with a 4xx. No
request gets a server error, and every 4xx names what was wrong in ``message``.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

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


@schemathesis.check
def error_has_a_message(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is the project's ErrorBody with a non-empty message."""
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], body
    return None


POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_has_a_message,
]
NEGATIVE_CHECKS = [not_a_server_error, negative_data_rejection, error_has_a_message]


#: operations that take input (those without have no invalid request to generate)
WITH_INPUT = [op for op in OPERATIONS if op not in (("GET", "/health"), ("POST", "/admin/reload"))]
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in WITH_INPUT
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=lambda v: getattr(v, "value", v))
def test_generated_requests_get_documented_answers_and_never_a_server_error(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    checks = POSITIVE_CHECKS if mode is GenerationMode.POSITIVE else NEGATIVE_CHECKS
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        response = case.call(headers={"X-API-Key": KEY})
        statuses.append(response.status_code)
        assert "Traceback" not in response.text
        case.validate_response(response, checks=checks)

    run()
    assert statuses and max(statuses) < 500
