"""The HTTP API against real trained models and a real (SQLite) warehouse: numbers, errors, auth, limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from salesbi import public
from salesbi.api import ApiSettings, create_app
from salesbi.api.security import key_matches
from salesbi.errors import ConfigurationError
from salesbi.modelstore import save, versions
from tests.test_api_support import KEY, World, build_world, history_of

pytestmark = pytest.mark.integration

AUTH = {"X-API-Key": KEY}
CUSTOMERS = ("C000001", "C000004", "C000017", "C000123", "C000250")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.getbasetemp() / "api_world")


def settings(world: World, **overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {
        "warehouse_url": world.warehouse_url,
        "models_dir": world.models_dir,
        "api_keys": (KEY,),
    }
    values.update(overrides)
    return ApiSettings(**values)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings(world)), raise_server_exceptions=False) as c:
        yield c


def batch_row(frame: pd.DataFrame, customer_id: str) -> dict[str, Any]:
    return frame.set_index("customer_id").loc[customer_id].to_dict()


# ---------------------------------------------------------------- health, auth, settings


def test_health_names_the_stored_versions_without_a_key(client: TestClient, world: World) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    loaded = {m["name"]: m["version"] for m in body["models"]}
    assert loaded == {
        "customer_segments": versions(world.models_dir, "customer_segments")[-1],
        "customer_sales": versions(world.models_dir, "customer_sales")[-1],
    }
    assert {m["as_of"] for m in body["models"]} == {"2024-12-31"}


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [({}, 401, "missing_api_key"), ({"X-API-Key": "wrong-key-0123456789"}, 403, "invalid_api_key")],
)
def test_every_other_endpoint_needs_a_valid_key(
    client: TestClient, world: World, headers: dict[str, str], status: int, error: str
) -> None:
    body = {"rfm": {"recency_days": 10, "frequency": 3, "monetary": 900.0}}
    calls = [
        client.post("/segment", json=body, headers=headers),
        client.post("/segment/batch", json={"customers": [body]}, headers=headers),
        client.post(
            "/predict/customer-sales", json={"history": history_of(world.fact, "C000001")}, headers=headers
        ),
        client.get("/forecast", params={"series": "total"}, headers=headers),
        client.get("/customers/C000001", headers=headers),
        client.post("/admin/reload", headers=headers),
    ]
    assert [r.status_code for r in calls] == [status] * len(calls)
    assert {r.json()["error"] for r in calls} == {error}
    assert client.post("/segment", json=body, headers=AUTH).status_code == 200


def test_keys_are_compared_whole() -> None:
    keys = ("a" * 20, "b" * 20)
    assert key_matches("b" * 20, keys)
    assert not key_matches("b" * 19, keys)
    assert not key_matches("b" * 21, keys)
    assert not key_matches("", keys)


def test_keys_come_from_the_environment(world: World) -> None:
    s = ApiSettings.from_env(
        {"SALESBI_API_KEYS": f" {KEY} , other-key-0123456789 "}, models_dir=world.models_dir
    )
    assert s.api_keys == (KEY, "other-key-0123456789")
    assert s.require_api_key and s.cors_origins == ()


def test_no_key_configured_refuses_to_start(world: World) -> None:
    with pytest.raises(ConfigurationError, match="SALESBI_API_KEYS"):
        create_app(settings(world, api_keys=()))
    with pytest.raises(ConfigurationError, match="shorter than 16"):
        create_app(settings(world, api_keys=("short",)))
    open_app = TestClient(create_app(settings(world, api_keys=(), require_api_key=False)))
    assert open_app.get("/customers/C000001").status_code == 200


def test_cors_is_off_unless_configured(world: World) -> None:
    preflight = {"Origin": "https://crm.example.com", "Access-Control-Request-Method": "POST"}
    off = TestClient(create_app(settings(world)))
    r = off.options("/segment", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    on = TestClient(create_app(settings(world, cors_origins=("https://crm.example.com",))))
    r = on.options("/segment", headers={**preflight, "Access-Control-Request-Headers": "X-API-Key"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://crm.example.com"


def test_bodies_over_the_limit_get_413(world: World) -> None:
    small = TestClient(create_app(settings(world, max_request_bytes=2_000)))
    history = history_of(world.fact, "C000001") * 10
    r = small.post("/segment", json={"history": history}, headers=AUTH)
    assert r.status_code == 413
    assert r.json()["error"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming in
        yield b'{"history": ['
        for _ in range(100):
            yield b'{"order_date": "2024-01-01", "net_sales": 1.0},'
        yield b'{"order_date": "2024-01-01", "net_sales": 1.0}]}'

    r = small.post("/segment", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413
    ok = small.post(
        "/segment", json={"rfm": {"recency_days": 1, "frequency": 1, "monetary": 1}}, headers=AUTH
    )
    assert ok.status_code == 200


# ---------------------------------------------------------------- segment


def test_segment_from_history_matches_hand_computed_rfm_and_the_batch(
    client: TestClient, world: World
) -> None:
    customer = "C000017"
    lines = world.fact[world.fact["customer_id"] == customer]
    placed = lines[~lines["is_cancelled"]]
    as_of = pd.Timestamp("2024-12-31")
    r = client.post(
        "/segment", json={"customer_id": customer, "history": history_of(world.fact, customer)}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    got = r.json()
    # independent count with pandas
    assert got["frequency"] == placed["order_id"].nunique()
    assert got["monetary"] == pytest.approx(round(placed["net_sales"].sum(), 2))
    assert got["recency_days"] == (as_of - placed["order_date"].max()).days
    assert got["customer_id"] == customer
    row = batch_row(world.segments.customer_segments, customer)
    for key in (
        "r_score",
        "f_score",
        "m_score",
        "rfm_score",
        "segment",
        "cluster_id",
        "cluster_name",
        "risk",
    ):
        assert got[key] == row[key], key
    assert got["model_version"] == world.segments.model.version


def test_segment_from_rfm_values_scores_like_the_batch(client: TestClient, world: World) -> None:
    row = batch_row(world.segments.customer_segments, "C000004")
    rfm = {k: row[k] for k in ("recency_days", "frequency", "monetary", "tenure_days", "product_lines")}
    rfm = {k: (float(v) if k == "monetary" else int(v)) for k, v in rfm.items()}
    rfm["cancellation_rate"] = float(row["cancellation_rate"])
    r = client.post("/segment", json={"rfm": rfm}, headers=AUTH)
    assert r.status_code == 200, r.text
    got = r.json()
    for key in ("rfm_score", "segment", "cluster_id", "value_tier", "action_priority"):
        assert got[key] == row[key], key
    bare = client.post(
        "/segment", json={"rfm": {k: rfm[k] for k in ("recency_days", "frequency", "monetary")}}, headers=AUTH
    )
    assert bare.json()["rfm_score"] == row["rfm_score"]
    assert bare.json()["cluster_id"] is None


def test_segment_batch_answers_each_customer_in_order(client: TestClient, world: World) -> None:
    body = {
        "customers": [{"customer_id": c, "history": history_of(world.fact, c)} for c in CUSTOMERS[:3]]
        + [{"customer_id": "early", "history": history_of(world.fact, "C000001"), "as_of": "2000-01-01"}]
    }
    r = client.post("/segment/batch", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    items = r.json()["results"]
    assert [i["index"] for i in items] == [0, 1, 2, 3]
    expected = world.segments.customer_segments.set_index("customer_id")["segment"]
    assert [i["result"]["segment"] for i in items[:3]] == [expected[c] for c in CUSTOMERS[:3]]
    assert items[3]["result"] is None
    assert "no order before 2000-01-01" in items[3]["error"]["message"]


def test_a_history_of_only_cancelled_orders_is_segmented_like_its_rfm_values(
    client: TestClient, world: World
) -> None:
    history = [
        {"order_id": "A", "order_date": "2024-06-01", "net_sales": 500.0, "is_cancelled": True},
        {"order_id": "B", "order_date": "2024-08-15", "net_sales": 80.0, "is_cancelled": True},
    ]
    r = client.post("/segment", json={"history": history}, headers=AUTH)
    assert r.status_code == 200, r.text
    got = r.json()
    as_of = pd.Timestamp(got["as_of_date"])
    assert (got["frequency"], got["monetary"], got["cancellation_rate"]) == (0, 0.0, 1.0)
    assert got["recency_days"] == (as_of - pd.Timestamp("2024-08-15")).days
    assert got["tenure_days"] == (as_of - pd.Timestamp("2024-06-01")).days
    rfm = {
        "recency_days": got["recency_days"],
        "frequency": 0,
        "monetary": 0.0,
        "tenure_days": got["tenure_days"],
        "product_lines": 0,
        "cancellation_rate": 1.0,
    }
    same = client.post("/segment", json={"rfm": rfm}, headers=AUTH).json()
    for key in ("rfm_score", "segment", "cluster_id", "value_tier", "risk", "action"):
        assert got[key] == same[key], key
    batch = client.post("/segment/batch", json={"customers": [{"history": history}]}, headers=AUTH)
    assert batch.status_code == 200 and batch.json()["results"][0]["result"]["segment"] == got["segment"]


def test_a_corrupt_model_answers_503_where_needed_while_the_rest_serves(tmp_path: Path, world: World) -> None:
    import shutil

    models = tmp_path / "models"
    shutil.copytree(world.models_dir, models)
    for path in (models / "customer_segments").rglob("*"):
        if path.is_file() and path.name != "card.json":
            path.write_bytes(b"{ not a model")
    c = TestClient(create_app(settings(world, models_dir=models)), raise_server_exceptions=False)
    health = c.get("/health").json()
    assert health["status"] == "degraded"
    state = {m["name"]: m for m in health["models"]}
    assert not state["customer_segments"]["loaded"] and state["customer_sales"]["loaded"]
    assert "unreadable" in state["customer_segments"]["detail"]
    r = c.post("/segment", json={"rfm": {"recency_days": 1, "frequency": 1, "monetary": 1}}, headers=AUTH)
    assert r.status_code == 503
    assert "unreadable" in r.json()["message"] and "salesbi run" in r.json()["message"]
    ok = c.post("/predict/customer-sales", json={"history": history_of(world.fact, "C000001")}, headers=AUTH)
    assert ok.status_code == 200, ok.text
    assert c.get("/forecast?series=total", headers=AUTH).status_code == 200
    assert c.get("/customers/C000001", headers=AUTH).status_code == 200


def test_the_openapi_states_the_enforced_constraints(world: World) -> None:
    c = TestClient(create_app(settings(world, max_batch_size=7, max_request_bytes=50_000)))
    spec = c.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name, other in (("SegmentRequest", "rfm"), ("PredictRequest", "features")):
        assert schemas[name]["oneOf"] == [{"required": ["history"]}, {"required": [other]}]
        for field in ("history", other):
            assert "null" not in str(schemas[name]["properties"][field]), (name, field)
    assert schemas["SegmentRequest"]["properties"]["history"]["maxItems"] == 10_000
    for name in ("SegmentBatchRequest", "PredictBatchRequest"):
        assert schemas[name]["properties"]["customers"]["maxItems"] == 7
    assert spec["info"]["x-max-request-bytes"] == 50_000
    params = {p["name"]: p for p in spec["paths"]["/forecast"]["get"]["parameters"]}
    assert "not after 'to'" in params["from"]["description"]
    # and the server enforces exactly that: explicit nulls and both/neither are 422
    rfm = {"recency_days": 1, "frequency": 1, "monetary": 1}
    for body in (
        {"history": None, "rfm": rfm},
        {"rfm": rfm, "history": [{"order_date": "2024-01-01", "net_sales": 1}]},
    ):
        r = c.post("/segment", json=body, headers=AUTH)
        assert r.status_code == 422 and r.json()["message"], body
    r = c.get("/forecast?series=total&from=2024-05-01&to=2024-04-01", headers=AUTH)
    assert r.status_code == 422 and "query.from" in str(r.json()["fields"])


def test_an_over_long_history_is_a_422_not_a_413(client: TestClient) -> None:
    line = {
        "order_id": "O" * 64,
        "order_date": "2024-01-01",
        "net_sales": -123456789.25,
        "is_cancelled": False,
        "product_line_id": "P" * 64,
    }
    r = client.post("/segment", json={"history": [line] * 10_001}, headers=AUTH)
    assert r.status_code == 422, r.text[:300]
    assert r.json()["fields"][0]["field"] == "history"


def test_a_boolean_where_a_number_is_required_is_a_422(client: TestClient) -> None:
    ok = client.post(
        "/segment", json={"rfm": {"recency_days": 5, "frequency": 2, "monetary": 10.0}}, headers=AUTH
    )
    assert ok.status_code == 200, ok.text[:300]
    bad = client.post(
        "/segment", json={"rfm": {"recency_days": 5, "frequency": True, "monetary": 10.0}}, headers=AUTH
    )
    assert bad.status_code == 422, bad.text[:300]
    assert "not a boolean" in bad.text


def test_batch_size_is_limited(world: World) -> None:
    small = TestClient(create_app(settings(world, max_batch_size=2)))
    rfm = {"rfm": {"recency_days": 1, "frequency": 1, "monetary": 1}}
    r = small.post("/segment/batch", json={"customers": [rfm] * 3}, headers=AUTH)
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == "customers"
    assert "at most 2" in r.json()["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"history": [{"net_sales": 10.0}]}, "history[0].order_date"),
        ({"history": [{"order_date": "2024-13-01", "net_sales": 10.0}]}, "history[0].order_date"),
        ({"history": [{"order_date": "2024-01-01", "net_sales": "lots"}]}, "history[0].net_sales"),
        ({"rfm": {"recency_days": -1, "frequency": 1, "monetary": 1}}, "rfm.recency_days"),
        ({"rfm": {"recency_days": 1, "frequency": 1, "monetary": 1}, "colour": "red"}, "colour"),
        ({"history": [], "rfm": None}, "history"),
        ({}, "body"),
    ],
)
def test_422_names_the_wrong_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    r = client.post("/segment", json=body, headers=AUTH)
    assert r.status_code == 422
    fields = [f["field"] for f in r.json()["fields"]]
    assert field in fields
    assert field in r.json()["message"]


# ---------------------------------------------------------------- predict


def test_prediction_equals_the_batch_row(client: TestClient, world: World) -> None:
    for customer in CUSTOMERS:
        r = client.post(
            "/predict/customer-sales",
            json={"customer_id": customer, "history": history_of(world.fact, customer)},
            headers=AUTH,
        )
        assert r.status_code == 200, r.text
        got = r.json()
        row = batch_row(world.predictions.customer_predictions, customer)
        assert row["method"] == "lightgbm"  # the booster path (the world is built so that it wins)
        for key in ("predicted_sales", "predicted_sales_low", "predicted_sales_high", "order_probability"):
            assert got[key] == pytest.approx(row[key], abs=1e-9), (customer, key)
        assert (got["churn_risk"], got["method"], got["model_version"]) == (
            row["churn_risk"],
            row["method"],
            row["model_version"],
        )
        assert got["window_end"] == "2025-03-30" and got["horizon_days"] == 90


def test_prediction_from_features_equals_prediction_from_history(client: TestClient, world: World) -> None:
    history = history_of(world.fact, "C000250")
    from_history = client.post("/predict/customer-sales", json={"history": history}, headers=AUTH).json()
    features = from_history["features"]
    # the last-window sales, counted by hand: placed orders in [2024-10-02, 2024-12-31)
    lines = world.fact[(world.fact["customer_id"] == "C000250") & ~world.fact["is_cancelled"]]
    in_window = lines[(lines["order_date"] >= "2024-10-02") & (lines["order_date"] < "2024-12-31")]
    assert features["sales_last_window"] == pytest.approx(in_window["net_sales"].sum())
    assert features["orders_last_window"] == in_window["order_id"].nunique()
    r = client.post("/predict/customer-sales", json={"features": features}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["predicted_sales"] == from_history["predicted_sales"]
    assert r.json()["order_probability"] == from_history["order_probability"]


def test_a_horizon_the_model_was_not_trained_for_is_a_422(client: TestClient, world: World) -> None:
    body = {"history": history_of(world.fact, "C000001"), "horizon_days": 30}
    r = client.post("/predict/customer-sales", json=body, headers=AUTH)
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == "horizon_days"
    assert "90-day" in r.json()["message"]


def test_predict_batch(client: TestClient, world: World) -> None:
    body = {"customers": [{"customer_id": c, "history": history_of(world.fact, c)} for c in CUSTOMERS]}
    r = client.post("/predict/customer-sales/batch", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    expected = world.predictions.customer_predictions.set_index("customer_id")["predicted_sales"]
    got = {i["customer_id"]: i["result"]["predicted_sales"] for i in r.json()["results"]}
    assert got == pytest.approx({c: expected[c] for c in CUSTOMERS})


def test_public_api_gives_the_same_answer_as_the_http_api(client: TestClient, world: World) -> None:
    history = history_of(world.fact, "C000123")
    direct = public.predict_customer_sales(history, models_dir=world.models_dir)
    http = client.post("/predict/customer-sales", json={"history": history}, headers=AUTH).json()
    assert http["predicted_sales"] == direct["predicted_sales"]
    assert (
        public.segment(history, models_dir=world.models_dir)["segment"]
        == client.post("/segment", json={"history": history}, headers=AUTH).json()["segment"]
    )


# ---------------------------------------------------------------- warehouse reads


def test_customer_view_reads_the_three_tables(client: TestClient, world: World) -> None:
    r = client.get("/customers/C000017", headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    lines = world.fact[(world.fact["customer_id"] == "C000017") & ~world.fact["is_cancelled"]]
    assert body["summary"]["net_sales"] == pytest.approx(round(lines["net_sales"].sum(), 2))
    assert body["summary"]["orders"] == lines["order_id"].nunique()
    assert body["segment"]["segment"] == batch_row(world.segments.customer_segments, "C000017")["segment"]
    assert body["prediction"]["predicted_sales"] == pytest.approx(
        batch_row(world.predictions.customer_predictions, "C000017")["predicted_sales"]
    )
    assert body["missing_tables"] == []


def test_unknown_customer_is_404(client: TestClient) -> None:
    r = client.get("/customers/NOPE", headers=AUTH)
    assert r.status_code == 404
    assert "NOPE" in r.json()["message"]


def test_forecast_between_dates(client: TestClient) -> None:
    r = client.get(
        "/forecast", params={"series": "total", "from": "2024-11-01", "to": "2025-02-01"}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    points = r.json()["points"]
    assert [p["date"] for p in points] == ["2024-11-01", "2024-12-01", "2025-01-01", "2025-02-01"]
    assert [p["actual"] for p in points] == [110_000.0, 111_000.0, None, None]
    assert [p["forecast"] for p in points] == [None, None, 112_000.0, 113_000.0]
    assert points[2]["lower_80"] == 100_000.0 and points[2]["upper_80"] == 124_000.0
    assert len(client.get("/forecast", params={"series": "total"}, headers=AUTH).json()["points"]) == 15


def test_forecast_errors(client: TestClient) -> None:
    r = client.get("/forecast", params={"series": "mars"}, headers=AUTH)
    assert r.status_code == 404
    assert "'country:Norway'" in r.json()["message"] and "'total'" in r.json()["message"]
    r = client.get(
        "/forecast", params={"series": "total", "from": "2025-01-01", "to": "2024-01-01"}, headers=AUTH
    )
    assert r.status_code == 422
    r = client.get("/forecast", params={"series": "total", "from": "yesterday"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "query.from"
    assert client.get("/forecast", headers=AUTH).status_code == 422


def test_the_warehouse_is_opened_read_only(client: TestClient) -> None:
    engine = client.app.state.salesbi.reader.engine  # type: ignore[attr-defined]
    with engine.connect() as conn, pytest.raises(sa.exc.OperationalError, match=r"readonly|read-only"):
        conn.exec_driver_sql("DELETE FROM rpt.customer_segments")
    source = "\n".join(p.read_text() for p in Path("salesbi/api").glob("*.py"))
    writes = (
        r"\bsa\.(insert|update|delete)\(|\.(insert|update|delete|drop|create)\(\)"
        r"|\b(INSERT|UPDATE|DELETE|DROP|ALTER)\s"
    )
    assert not re.search(writes, source)
    assert "sa.select(" in source


# ---------------------------------------------------------------- missing pieces, failures


def test_without_models_or_warehouse_the_api_says_what_to_run(tmp_path: Path, world: World) -> None:
    app = create_app(
        ApiSettings(
            models_dir=tmp_path / "none", warehouse_url=f"sqlite:///{tmp_path / 'x.db'}", api_keys=(KEY,)
        )
    )
    c = TestClient(app)
    health = c.get("/health").json()
    assert health["status"] == "degraded"
    assert [m["loaded"] for m in health["models"]] == [False, False, False]
    r = c.post("/segment", json={"rfm": {"recency_days": 1, "frequency": 1, "monetary": 1}}, headers=AUTH)
    assert r.status_code == 503
    assert (
        "no stored model 'customer_segments'" in r.json()["message"] and "salesbi run" in r.json()["message"]
    )
    r = c.post("/predict/customer-sales", json={"history": history_of(world.fact, "C000001")}, headers=AUTH)
    assert r.status_code == 503 and "customer_sales" in r.json()["message"]
    r = c.get("/customers/C000001", headers=AUTH)
    assert r.status_code == 503 and "does not exist" in r.json()["message"]
    assert not (tmp_path / "x.db").exists()  # read-only: never created


def test_reload_picks_up_a_newer_model(tmp_path: Path, world: World) -> None:
    import shutil
    from datetime import UTC, datetime

    models = tmp_path / "models"
    shutil.copytree(world.models_dir, models)
    c = TestClient(create_app(settings(world, models_dir=models)))
    before = {m["name"]: m["version"] for m in c.get("/health").json()["models"]}
    model = world.segments.model
    newer = type(model)(**{**model.__dict__})
    newer.stamp(datetime(2030, 1, 1, tzinfo=UTC))
    save(newer, models)
    after = {m["name"]: m["version"] for m in c.post("/admin/reload", headers=AUTH).json()["models"]}
    assert after["customer_segments"] == newer.version != before["customer_segments"]
    assert after["customer_sales"] == before["customer_sales"]


def test_an_unexpected_failure_is_a_plain_500(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("secret internals at /srv/app.py line 3")

    monkeypatch.setattr(public, "segment", boom)
    c = TestClient(create_app(settings(world)), raise_server_exceptions=False)
    r = c.post("/segment", json={"rfm": {"recency_days": 1, "frequency": 1, "monetary": 1}}, headers=AUTH)
    assert r.status_code == 500
    assert r.json() == {
        "error": "error",
        "message": "internal error; the server log has the details",
        "fields": [],
    }
    assert "Traceback" not in r.text and "secret" not in r.text


def test_openapi_documents_every_endpoint_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) >= {
        "/health",
        "/segment",
        "/segment/batch",
        "/predict/customer-sales",
        "/predict/customer-sales/batch",
        "/forecast",
        "/customers/{customer_id}",
    }
    assert spec["components"]["schemas"]["SegmentRequest"]["examples"]
    assert "APIKeyHeader" in spec["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200


def test_public_forecast_returns_the_next_periods() -> None:
    months = pd.date_range("2022-01-01", periods=36, freq="MS")
    history = pd.Series(
        [1000.0 + 10 * i + (200 if m.month == 12 else 0) for i, m in enumerate(months)], index=months
    )
    out = public.forecast(history, horizon=3, frequency="M")
    assert len(out) == 3
    assert list(pd.to_datetime(out["date"])) == list(pd.date_range("2025-01-01", periods=3, freq="MS"))
    # the trend continues: 1000 + 10 * month index (36, 37, 38); December's bump is not in the window
    assert list(out["forecast"]) == pytest.approx([1360.0, 1370.0, 1380.0], rel=0.05)
    assert (out["lower_80"] <= out["upper_80"]).all()
