"""Request and response bodies of the HTTP API (pydantic), with the examples shown at ``/docs``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

EARLIEST = date(1900, 1, 1)
LATEST = date(2200, 12, 31)
MAX_HISTORY = 10_000
MAX_BATCH = 10_000
MONEY_LIMIT = 1e12

Day = Field(ge=EARLIEST, le=LATEST)

HISTORY_EXAMPLE: list[JsonValue] = [
    {"order_id": "10101", "order_date": "2024-03-02", "net_sales": 2450.0, "product_line_id": "Classic Cars"},
    {"order_id": "10180", "order_date": "2024-07-19", "net_sales": 1830.5, "product_line_id": "Motorcycles"},
    {"order_id": "10233", "order_date": "2024-11-25", "net_sales": 3120.0, "product_line_id": "Classic Cars"},
]


def exactly_one_of(first: str, second: str, examples: list[JsonValue]) -> Callable[[dict[str, Any]], None]:
    """Return a JSON-schema hook stating that a body has exactly one of two fields, never null.

    The server refuses both, neither, and an explicit null (see :func:`refuse_null`); the schema
    says the same with ``oneOf`` and non-nullable properties.
    """

    def patch(schema: dict[str, Any]) -> None:
        properties = schema.get("properties", {})
        for name in (first, second):
            prop = properties[name]
            branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
            if len(branches) == 1:
                prop.update(branches[0])
            prop.pop("default", None)
        schema["oneOf"] = [{"required": [first]}, {"required": [second]}]
        schema["examples"] = examples

    return patch


def refuse_null(value: Any) -> Any:
    """Return ``value``; an explicit null is refused (leave an unused field out instead)."""
    if value is None:
        raise ValueError("leave the field out instead of sending null")
    return value


class Strict(BaseModel):
    """A request body: unknown fields are refused (a typo is a 422, not silently ignored)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, data: Any) -> Any:
        """Refuse ``true``/``false`` where the schema says number (pydantic's lax mode would take 1/0)."""
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                value = data.get(info.alias or name)
                if isinstance(value, bool) and _is_number(info.annotation):
                    raise ValueError(f"{info.alias or name}: a number is required, not a boolean")
        return data


def _is_number(annotation: Any) -> bool:
    """Return whether ``annotation`` is int or float (optionally with None), not bool."""
    import typing

    args = typing.get_args(annotation) or (annotation,)
    return (
        bool(args)
        and all(a in (int, float, type(None)) for a in args)
        and any(a in (int, float) for a in args)
    )


class OrderLine(Strict):
    """One order or order line of a customer."""

    order_id: str | None = Field(
        default=None,
        max_length=64,
        description="lines with the same order_id form one order; without it each row is one order",
    )
    order_date: date = Field(ge=EARLIEST, le=LATEST)
    net_sales: float = Field(
        ge=-MONEY_LIMIT, le=MONEY_LIMIT, allow_inf_nan=False, description="after discount"
    )
    is_cancelled: bool = False
    product_line_id: str | None = Field(default=None, max_length=64)


class RfmValues(Strict):
    """RFM values measured at the model's as-of date; with the optional ones the cluster is assigned too.

    tenure_days, when given, must be at least recency_days (else 422).
    """

    recency_days: int = Field(ge=0, le=100_000, description="days since the last order")
    frequency: int = Field(ge=0, le=10_000_000, description="orders placed (cancelled excluded)")
    monetary: float = Field(ge=-MONEY_LIMIT, le=MONEY_LIMIT, allow_inf_nan=False, description="net sales")
    tenure_days: int | None = Field(default=None, ge=0, le=100_000, description="days since the first order")
    product_lines: int | None = Field(default=None, ge=0, le=100_000)
    cancellation_rate: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _recent_within_tenure(self) -> RfmValues:
        if self.tenure_days is not None and self.tenure_days < self.recency_days:
            raise ValueError(
                "tenure_days must be at least recency_days (the first order is not after the last)"
            )
        return self


class SegmentRequest(Strict):
    """A customer to segment: their order history, or their RFM values (exactly one)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=exactly_one_of(
            "history",
            "rfm",
            [
                {"customer_id": "103", "history": HISTORY_EXAMPLE, "sales_rep_name": "Leslie Jennings"},
                {"customer_id": "103", "rfm": {"recency_days": 37, "frequency": 3, "monetary": 7400.5}},
            ],
        ),
    )

    customer_id: str | None = Field(default=None, max_length=64, description="echoed back")
    history: list[OrderLine] | None = Field(default=None, min_length=1, max_length=MAX_HISTORY)
    rfm: RfmValues | None = None
    as_of: date | None = Field(default=None, ge=EARLIEST, le=LATEST, description="default: the model's")
    sales_rep_name: str | None = Field(default=None, max_length=100, description="named in action_detail")

    _not_null = field_validator("history", "rfm", mode="before")(refuse_null)

    @model_validator(mode="after")
    def _exactly_one(self) -> SegmentRequest:
        if (self.history is None) == (self.rfm is None):
            raise ValueError("send exactly one of 'history' or 'rfm'")
        return self


class SegmentResult(BaseModel):
    """One customer's RFM scores, segment, cluster and recommended action."""

    customer_id: str | None = None
    as_of_date: date
    model_version: str
    first_order_date: date | None = None
    last_order_date: date | None = None
    recency_days: int
    frequency: int
    monetary: float
    tenure_days: int | None = None
    avg_order_value: float | None = None
    product_lines: int | None = None
    cancellation_rate: float | None = None
    r_score: int = Field(ge=1, le=5)
    f_score: int = Field(ge=1, le=5)
    m_score: int = Field(ge=1, le=5)
    rfm_score: str
    segment: str
    cluster_id: int | None = None
    cluster_name: str | None = None
    value_tier: Literal["high", "medium", "low"]
    risk: Literal["high", "medium", "low"]
    action: str
    action_detail: str
    action_priority: int = Field(ge=1, le=5, description="1 = call first .. 5 = low-cost campaign only")


class CustomerFeatures(Strict):
    """The prediction model's features of one customer at the as-of date (see docs/segmentation.md)."""

    recency_days: float = Field(ge=0, le=100_000)
    tenure_days: float = Field(ge=0, le=100_000)
    frequency: float = Field(ge=0, le=10_000_000)
    monetary: float = Field(ge=-MONEY_LIMIT, le=MONEY_LIMIT, allow_inf_nan=False)
    avg_order_value: float = Field(ge=-MONEY_LIMIT, le=MONEY_LIMIT, allow_inf_nan=False)
    product_lines: float = Field(ge=0, le=100_000)
    cancellation_rate: float = Field(ge=0, le=1)
    sales_last_window: float = Field(ge=-MONEY_LIMIT, le=MONEY_LIMIT, allow_inf_nan=False)
    orders_last_window: float = Field(ge=0, le=10_000_000)
    sales_prev_window: float = Field(ge=-MONEY_LIMIT, le=MONEY_LIMIT, allow_inf_nan=False)
    orders_prev_window: float = Field(ge=0, le=10_000_000)
    sales_last_365: float = Field(ge=-MONEY_LIMIT, le=MONEY_LIMIT, allow_inf_nan=False)
    orders_last_365: float = Field(ge=0, le=10_000_000)
    avg_window_sales: float = Field(ge=-MONEY_LIMIT, le=MONEY_LIMIT, allow_inf_nan=False)
    orders_per_window: float = Field(ge=0, le=10_000_000)
    mean_gap_days: float | None = Field(default=None, ge=0, le=100_000)
    overdue_ratio: float | None = Field(default=None, ge=0, le=1e9)


class PredictRequest(Strict):
    """A customer to predict: their order history, or their model features (exactly one)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=exactly_one_of(
            "history", "features", [{"customer_id": "103", "history": HISTORY_EXAMPLE}]
        ),
    )

    customer_id: str | None = Field(default=None, max_length=64, description="echoed back")
    history: list[OrderLine] | None = Field(default=None, min_length=1, max_length=MAX_HISTORY)
    features: CustomerFeatures | None = None
    as_of: date | None = Field(default=None, ge=EARLIEST, le=LATEST, description="default: the model's")
    horizon_days: int | None = Field(
        default=None, ge=1, le=730, description="must equal the stored model's horizon (default)"
    )

    _not_null = field_validator("history", "features", mode="before")(refuse_null)

    @model_validator(mode="after")
    def _exactly_one(self) -> PredictRequest:
        if (self.history is None) == (self.features is None):
            raise ValueError("send exactly one of 'history' or 'features'")
        return self


class PredictResult(BaseModel):
    """Predicted net sales in the next horizon_days, its 80 % interval and P(at least one order)."""

    customer_id: str | None = None
    as_of_date: date
    horizon_days: int
    window_end: date = Field(description="last day of the predicted window")
    predicted_sales: float
    predicted_sales_low: float | None = Field(default=None, description="10 % quantile (None: naive model)")
    predicted_sales_high: float | None = Field(default=None, description="90 % quantile (None: naive model)")
    order_probability: float = Field(ge=0, le=1)
    churn_risk: Literal["high", "medium", "low"]
    last_window_sales: float
    avg_window_sales: float
    top_drivers: str | None = None
    method: str
    model_version: str
    note: str | None = None
    features: dict[str, float | None]


class SegmentBatchRequest(Strict):
    """Up to the configured number of customers (``max_batch_size``) to segment."""

    customers: list[SegmentRequest] = Field(min_length=1, max_length=MAX_BATCH)


class PredictBatchRequest(Strict):
    """Up to the configured number of customers (``max_batch_size``) to predict."""

    customers: list[PredictRequest] = Field(min_length=1, max_length=MAX_BATCH)


class ItemError(BaseModel):
    """Why one customer of a batch could not be answered."""

    field: str | None = None
    message: str


class SegmentBatchItem(BaseModel):
    """One customer's answer in a batch: a result or an error."""

    index: int
    customer_id: str | None = None
    result: SegmentResult | None = None
    error: ItemError | None = None


class PredictBatchItem(BaseModel):
    """One customer's answer in a batch: a result or an error."""

    index: int
    customer_id: str | None = None
    result: PredictResult | None = None
    error: ItemError | None = None


class SegmentBatchResponse(BaseModel):
    """Answers in request order."""

    results: list[SegmentBatchItem]


class PredictBatchResponse(BaseModel):
    """Answers in request order."""

    results: list[PredictBatchItem]


class ModelInfo(BaseModel):
    """A loaded model, or why none is loaded."""

    name: str
    loaded: bool
    version: str | None = None
    as_of: date | None = None
    detail: str | None = None


class Health(BaseModel):
    """Service status: 'ok' when every model is loaded, 'degraded' otherwise."""

    status: Literal["ok", "degraded"]
    version: str
    models: list[ModelInfo]


class ForecastPoint(BaseModel):
    """One period of a series: actual (history) and/or forecast with intervals, as in rpt.sales_forecast."""

    model_config = ConfigDict(extra="allow")

    date: dt.date
    series_id: str


class ForecastResponse(BaseModel):
    """The rows of ``rpt.sales_forecast`` for one series between ``from`` and ``to``."""

    series: str
    start: date | None = None
    end: date | None = None
    points: list[ForecastPoint]


class CustomerView(BaseModel):
    """What the warehouse says about one customer: summary, segment and prediction (None when absent)."""

    customer_id: str
    summary: dict[str, Any] | None = None
    segment: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    missing_tables: list[str] = Field(default_factory=list, description="rpt tables not published yet")


class ErrorBody(BaseModel):
    """Every error response: a code, a message, and for 422 the fields that were wrong."""

    error: str
    message: str
    fields: list[dict[str, Any]] = Field(default_factory=list)
