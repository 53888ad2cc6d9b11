"""The FastAPI application: segment and predict customers, read forecasts and customer views from ``rpt``."""

from __future__ import annotations

import logging
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Path, Query, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import APIKeyHeader

from salesbi import __version__, public
from salesbi.api import errors
from salesbi.api.db import RptReader, TableMissing
from salesbi.api.errors import ApiError
from salesbi.api.limits import BodySizeLimit
from salesbi.api.schemas import (
    CustomerView,
    ErrorBody,
    ForecastPoint,
    ForecastResponse,
    Health,
    ItemError,
    ModelInfo,
    OrderLine,
    PredictBatchItem,
    PredictBatchRequest,
    PredictBatchResponse,
    PredictRequest,
    PredictResult,
    SegmentBatchItem,
    SegmentBatchRequest,
    SegmentBatchResponse,
    SegmentRequest,
    SegmentResult,
)
from salesbi.api.security import API_KEY_HEADER, key_matches, resolve_keys
from salesbi.api.settings import ApiSettings
from salesbi.api.state import ApiState
from salesbi.errors import SalesBIError
from salesbi.prediction.model import MODEL_NAME as PREDICTION_MODEL
from salesbi.prediction.model import StoredModel
from salesbi.segmentation.model import MODEL_NAME as SEGMENTATION_MODEL
from salesbi.segmentation.model import SegmentationModel

log = logging.getLogger(__name__)

CUSTOMER_TABLES = {
    "summary": "customer_summary",
    "segment": "customer_segments",
    "prediction": "customer_predictions",
}
FORECAST_TABLE = "sales_forecast"


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "no X-API-Key header",
        403: "the X-API-Key is not valid",
        404: "unknown id or series",
        413: "request body too large",
        422: "invalid request; `fields` names each wrong field",
        503: "no trained model or no published table yet; `message` says what to run",
    }
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.salesbi
    return state


_key_header = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="one of the configured API keys"
)


def _require_key(request: Request, key: Annotated[str | None, Security(_key_header)]) -> None:
    state = _state(request)
    if not state.settings.require_api_key:
        return
    if not key:
        raise ApiError(401, f"send an API key in the {API_KEY_HEADER} header")
    if not key_matches(key, state.keys):
        raise ApiError(403, f"the {API_KEY_HEADER} header does not hold a valid key")


def _segmentation(state: ApiState) -> SegmentationModel:
    model = state.segmentation
    if model is None:
        raise ApiError(503, f"no segmentation model is loaded: {state.reasons.get(SEGMENTATION_MODEL, '')}")
    return model


def _prediction(state: ApiState) -> StoredModel:
    model = state.prediction
    if model is None:
        raise ApiError(503, f"no prediction model is loaded: {state.reasons.get(PREDICTION_MODEL, '')}")
    return model


def _reader(state: ApiState) -> RptReader:
    reader = state.reader
    if reader is None:
        raise ApiError(503, f"the warehouse is not available: {state.reasons.get('warehouse', '')}")
    return reader


def _history(lines: list[OrderLine]) -> list[dict[str, Any]]:
    """Return the lines as dicts; rows without an order_id become one order each."""
    rows = [line.model_dump() for line in lines]
    for i, row in enumerate(rows):
        if row["order_id"] is None:
            row["order_id"] = f"_row{i}"
    return rows


def _user_error(exc: SalesBIError, prefix: str = "") -> ApiError:
    field = f"{prefix}{exc.column}" if exc.column else None
    return ApiError(422, exc.message, fields=[{"field": field, "message": exc.message}] if field else [])


def _segment_one(body: SegmentRequest, model: SegmentationModel) -> SegmentResult:
    source: Any = body.rfm.model_dump() if body.rfm is not None else _history(body.history or [])
    result = public.segment(source, model=model, as_of=body.as_of, sales_rep_name=body.sales_rep_name)
    return SegmentResult.model_validate({**result, "customer_id": body.customer_id})


def _predict_one(body: PredictRequest, model: StoredModel, default_horizon: int | None) -> PredictResult:
    source: Any = body.features.model_dump() if body.features is not None else _history(body.history or [])
    horizon = body.horizon_days if body.horizon_days is not None else default_horizon
    result = public.predict_customer_sales(source, model=model, horizon_days=horizon, as_of=body.as_of)
    return PredictResult.model_validate({**result, "customer_id": body.customer_id})


def _check_batch(size: int, state: ApiState) -> None:
    limit = state.settings.max_batch_size
    if size > limit:
        message = f"at most {limit} customers per request, got {size}"
        raise ApiError(422, message, fields=[{"field": "customers", "message": message}])


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _clean(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else {k: _json_value(v) for k, v in row.items()}


def _health(state: ApiState) -> Health:
    infos = []
    for name, model in ((SEGMENTATION_MODEL, state.segmentation), (PREDICTION_MODEL, state.prediction)):
        if model is None:
            infos.append(ModelInfo(name=name, loaded=False, detail=state.reasons.get(name)))
        else:
            infos.append(ModelInfo(name=name, loaded=True, version=model.version, as_of=model.as_of))
    if state.reader is None:
        infos.append(ModelInfo(name="warehouse", loaded=False, detail=state.reasons.get("warehouse")))
    return Health(
        status="ok" if not state.reasons else "degraded",
        version=__version__,
        models=infos,
    )


def _add_routes(app: FastAPI) -> None:
    guarded = [Depends(_require_key)]

    @app.get("/health", response_model=Health, tags=["service"])
    def health(request: Request) -> Health:
        """Return 'ok' when the models and the warehouse are loaded, else 'degraded' and why (no key)."""
        return _health(_state(request))

    @app.post(
        "/admin/reload",
        response_model=Health,
        dependencies=guarded,
        responses=_responses(401, 403),
        tags=["service"],
    )
    def reload(request: Request) -> Health:
        """Reload the newest models from the model store and reopen the warehouse; return the new health."""
        state = _state(request)
        state.load()
        return _health(state)

    @app.post(
        "/segment",
        response_model=SegmentResult,
        response_model_exclude_none=False,
        dependencies=guarded,
        responses=_responses(401, 403, 413, 422, 503),
        tags=["segmentation"],
    )
    def segment(request: Request, body: SegmentRequest) -> SegmentResult:
        """Return a customer's RFM scores, segment, cluster and action from their history or RFM values."""
        model = _segmentation(_state(request))
        try:
            return _segment_one(body, model)
        except SalesBIError as exc:
            raise _user_error(exc, "history.") from exc

    @app.post(
        "/segment/batch",
        response_model=SegmentBatchResponse,
        dependencies=guarded,
        responses=_responses(401, 403, 413, 422, 503),
        tags=["segmentation"],
    )
    def segment_batch(request: Request, body: SegmentBatchRequest) -> SegmentBatchResponse:
        """Segment up to max_batch_size customers; a customer that cannot be segmented gets an error item."""
        state = _state(request)
        _check_batch(len(body.customers), state)
        model = _segmentation(state)
        items = []
        for i, customer in enumerate(body.customers):
            try:
                items.append(
                    SegmentBatchItem(
                        index=i, customer_id=customer.customer_id, result=_segment_one(customer, model)
                    )
                )
            except SalesBIError as exc:
                error = ItemError(field=exc.column, message=exc.message)
                items.append(SegmentBatchItem(index=i, customer_id=customer.customer_id, error=error))
        return SegmentBatchResponse(results=items)

    @app.post(
        "/predict/customer-sales",
        response_model=PredictResult,
        dependencies=guarded,
        responses=_responses(401, 403, 413, 422, 503),
        tags=["prediction"],
    )
    def predict(request: Request, body: PredictRequest) -> PredictResult:
        """Return predicted net sales in the next horizon_days (80 % interval) and P(ordering)."""
        state = _state(request)
        model = _prediction(state)
        try:
            return _predict_one(body, model, state.settings.horizon_days)
        except SalesBIError as exc:
            raise _user_error(exc) from exc

    @app.post(
        "/predict/customer-sales/batch",
        response_model=PredictBatchResponse,
        dependencies=guarded,
        responses=_responses(401, 403, 413, 422, 503),
        tags=["prediction"],
    )
    def predict_batch(request: Request, body: PredictBatchRequest) -> PredictBatchResponse:
        """Predict up to max_batch_size customers; a customer that cannot be predicted gets an error item."""
        state = _state(request)
        _check_batch(len(body.customers), state)
        model = _prediction(state)
        items = []
        for i, customer in enumerate(body.customers):
            try:
                result = _predict_one(customer, model, state.settings.horizon_days)
                items.append(PredictBatchItem(index=i, customer_id=customer.customer_id, result=result))
            except SalesBIError as exc:
                error = ItemError(field=exc.column, message=exc.message)
                items.append(PredictBatchItem(index=i, customer_id=customer.customer_id, error=error))
        return PredictBatchResponse(results=items)

    @app.get(
        "/forecast",
        response_model=ForecastResponse,
        dependencies=guarded,
        responses=_responses(401, 403, 404, 422, 503),
        tags=["forecast"],
    )
    def forecast(
        request: Request,
        series: Annotated[str, Query(min_length=1, max_length=200, description="series_id, e.g. 'total'")],
        start: Annotated[
            date | None, Query(alias="from", description="first date (inclusive); not after 'to' (else 422)")
        ] = None,
        end: Annotated[
            date | None, Query(alias="to", description="last date (inclusive); not before 'from' (else 422)")
        ] = None,
    ) -> ForecastResponse:
        """Return actuals and forecasts (with intervals) of one series from rpt.sales_forecast, by date.

        Constraint: ``from`` ≤ ``to`` when both are given (422 otherwise).
        """
        if start is not None and end is not None and start > end:
            raise ApiError(
                422, "'from' is after 'to'", fields=[{"field": "query.from", "message": "after 'to'"}]
            )
        reader = _reader(_state(request))
        try:
            table = reader.table(FORECAST_TABLE)
        except TableMissing as exc:
            raise ApiError(503, f"{exc}; run the forecast step (salesbi run)") from exc
        for needed in ("date", "series_id"):
            if needed not in table.c:
                raise ApiError(503, f"rpt.{FORECAST_TABLE} has no column {needed!r}; republish it")
        query = sa.select(table).where(table.c.series_id == series)
        if start is not None:
            query = query.where(table.c.date >= start)
        if end is not None:
            query = query.where(table.c.date <= end)
        rows = reader.rows(query.order_by(table.c.date))
        if not rows:
            known = reader.rows(sa.select(table.c.series_id).where(table.c.series_id == series).limit(1))
            if not known:
                some = reader.rows(
                    sa.select(table.c.series_id).distinct().order_by(table.c.series_id).limit(20)
                )
                names = ", ".join(repr(str(r["series_id"])) for r in some)
                raise ApiError(404, f"unknown series {series!r}; known series include {names}")
        points = [ForecastPoint.model_validate(_clean(row)) for row in rows]
        return ForecastResponse(series=series, start=start, end=end, points=points)

    @app.get(
        "/customers/{customer_id}",
        response_model=CustomerView,
        dependencies=guarded,
        responses=_responses(401, 403, 404, 503),
        tags=["customers"],
    )
    def customer(
        request: Request, customer_id: Annotated[str, Path(min_length=1, max_length=64)]
    ) -> CustomerView:
        """Return a customer's summary, segment and prediction as published in the rpt tables."""
        reader = _reader(_state(request))
        found: dict[str, dict[str, Any] | None] = {}
        missing = []
        for part, name in CUSTOMER_TABLES.items():
            try:
                found[part] = _clean(reader.by_key(name, "customer_id", customer_id))
            except TableMissing:
                missing.append(f"rpt.{name}")
                found[part] = None
        if len(missing) == len(CUSTOMER_TABLES):
            raise ApiError(503, "no customer table is published yet; run the pipeline (salesbi run)")
        if all(v is None for v in found.values()):
            raise ApiError(404, f"unknown customer_id {customer_id!r}")
        return CustomerView(customer_id=customer_id, missing_tables=missing, **found)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Return the API application for ``settings`` (default :meth:`ApiSettings.from_env`).

    Resolves the API keys (ConfigurationError when keys are required and none is configured),
    loads the newest models from the model store once, and opens the warehouse read-only. A
    missing model or warehouse does not stop the start: the endpoints that need it answer 503
    with the reason, and ``POST /admin/reload`` picks them up once they exist.
    """
    settings = settings or ApiSettings.from_env()
    state = ApiState(settings=settings, keys=resolve_keys(settings))
    state.load()
    app = FastAPI(
        title="salesbi API",
        version=__version__,
        description=(
            "Segment customers, predict their sales, and read forecasts and customer views. "
            f"Every endpoint except /health needs the {API_KEY_HEADER} header. See docs/api.md."
        ),
    )
    app.state.salesbi = state
    errors.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=[API_KEY_HEADER, "Content-Type"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    _add_routes(app)
    _state_limits_in_openapi(app, settings)
    return app


def _state_limits_in_openapi(app: FastAPI, settings: ApiSettings) -> None:
    """Make the published OpenAPI state this server's configured limits (batch size, body bytes)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.get("components", {}).get("schemas", {})
        for name in ("SegmentBatchRequest", "PredictBatchRequest"):
            customers = components[name]["properties"]["customers"]
            customers["maxItems"] = settings.max_batch_size
        schema["info"]["description"] += (
            f" Request bodies over {settings.max_request_bytes} bytes are refused with 413 before "
            f"they are read; batch requests take at most {settings.max_batch_size} customers (422)."
        )
        schema["info"]["x-max-request-bytes"] = settings.max_request_bytes
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def serve(host: str = "127.0.0.1", port: int = 8000, *, settings: ApiSettings | None = None) -> None:
    """Run the API with uvicorn until interrupted (what ``salesbi api`` calls)."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", server_header=False)
