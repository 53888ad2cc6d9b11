"""The small public API of the package: segment a customer, predict their sales, forecast a series.

These three functions are what ``salesbi.segment``, ``salesbi.predict_customer_sales`` and
``salesbi.forecast`` name, and what the HTTP API (:mod:`salesbi.api`) calls, so a script and a
service give the same answer::

    import salesbi
    history = [{"order_date": "2024-11-02", "net_sales": 1200.0}, ...]
    salesbi.segment(history, models_dir="out/models")["segment"]           # 'Loyal'
    salesbi.predict_customer_sales(history, models_dir="out/models")["predicted_sales"]
    salesbi.forecast(monthly_sales_series, horizon=3)                      # a DataFrame

The models are the ones the pipeline stored (``salesbi run`` → ``<out>/models``); the newest
version is used and cached until a newer one appears.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from salesbi.errors import ConfigurationError, SalesBIError
from salesbi.modelstore import latest_folder, load_folder
from salesbi.prediction.features import FEATURES
from salesbi.prediction.model import MODEL_NAME as PREDICTION_MODEL
from salesbi.prediction.model import StoredModel, predict_frame
from salesbi.prediction.predict import predict_from_history
from salesbi.segmentation.actions import recommend, risks, value_tiers
from salesbi.segmentation.clusters import CLUSTER_FEATURES, assign
from salesbi.segmentation.model import MODEL_NAME as SEGMENTATION_MODEL
from salesbi.segmentation.model import SegmentationModel
from salesbi.segmentation.segment import segment_from_history, segment_from_rfm

__all__ = [
    "forecast",
    "load_prediction_model",
    "load_segmentation_model",
    "predict_customer_sales",
    "segment",
]

ENV_MODELS_DIR = "SALESBI_MODELS_DIR"
RFM_KEYS = ("recency_days", "frequency", "monetary")
OPTIONAL_FEATURES = ("mean_gap_days", "overdue_ratio")

History: TypeAlias = pd.DataFrame | Iterable[Mapping[str, Any]]

_cache: dict[Path, Any] = {}  # SegmentationModel | StoredModel (checked by the loaders)
_cache_lock = threading.Lock()


def default_models_dir() -> Path:
    """Return ``$SALESBI_MODELS_DIR``, else ``out/models`` (where ``salesbi run`` stores models)."""
    return Path(os.environ.get(ENV_MODELS_DIR) or Path("out") / "models")


def _load(models_dir: Path | str | None, name: str) -> Any:
    folder = latest_folder(Path(models_dir) if models_dir is not None else default_models_dir(), name)
    with _cache_lock:
        model = _cache.get(folder)
        if model is None:
            model = load_folder(folder)
            _cache[folder] = model
    return model


def load_segmentation_model(models_dir: Path | str | None = None) -> SegmentationModel:
    """Return the newest stored segmentation model; ConfigurationError (what to run) when none exists."""
    model = _load(models_dir, SEGMENTATION_MODEL)
    if not isinstance(model, SegmentationModel):
        raise ConfigurationError(f"the stored {SEGMENTATION_MODEL!r} model is not a segmentation model")
    return model


def load_prediction_model(models_dir: Path | str | None = None) -> StoredModel:
    """Return the newest stored customer-sales model; ConfigurationError (what to run) when none exists."""
    model = _load(models_dir, PREDICTION_MODEL)
    if not isinstance(model, StoredModel):
        raise ConfigurationError(f"the stored {PREDICTION_MODEL!r} model is not a customer-sales model")
    return model


def _history_frame(history: History) -> pd.DataFrame:
    frame = history.copy() if isinstance(history, pd.DataFrame) else pd.DataFrame(list(history))
    if frame.empty:
        raise SalesBIError("the order history is empty", hint="send at least one order")
    return frame


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.date()
    return value


def _is_rfm(value: object) -> bool:
    return isinstance(value, Mapping) and all(k in value for k in RFM_KEYS)


def _segment_rfm(
    rfm: Mapping[str, Any], model: SegmentationModel, sales_rep_name: str | None
) -> dict[str, Any]:
    recency, frequency, monetary = int(rfm["recency_days"]), int(rfm["frequency"]), float(rfm["monetary"])
    out: dict[str, Any] = {"as_of_date": model.as_of, "model_version": model.version}
    out.update({"recency_days": recency, "frequency": frequency, "monetary": round(monetary, 2)})
    tenure = rfm.get("tenure_days")
    out["tenure_days"] = int(tenure) if tenure is not None else None
    out["avg_order_value"] = round(monetary / frequency, 2) if frequency > 0 else 0.0
    for key in ("product_lines", "cancellation_rate"):
        out[key] = rfm.get(key)
    out.update(segment_from_rfm(recency, frequency, monetary, model))
    cluster_inputs = {k: out.get(k) for k in CLUSTER_FEATURES}
    if model.clusters is not None and all(v is not None for v in cluster_inputs.values()):
        label = int(assign(pd.DataFrame([cluster_inputs]), model.clusters)[0])
        out["cluster_id"], out["cluster_name"] = label, model.clusters.names[label]
    else:
        out["cluster_id"], out["cluster_name"] = None, None
    m = np.array([out["m_score"]])
    out["value_tier"] = str(value_tiers(m)[0])
    tenure_days = np.array([np.nan if tenure is None else float(tenure)])
    out["risk"] = str(
        risks(np.array([out["r_score"]]), np.array([frequency]), np.array([recency]), tenure_days)[0]
    )
    action, detail, priority = recommend(
        out["segment"], out["value_tier"], out["risk"], recency, frequency, monetary, sales_rep_name
    )
    out.update({"action": action, "action_detail": detail, "action_priority": priority})
    return out


def segment(
    history_or_rfm: History | Mapping[str, Any],
    *,
    models_dir: Path | str | None = None,
    as_of: date | None = None,
    sales_rep_name: str | None = None,
    model: SegmentationModel | None = None,
) -> dict[str, Any]:
    """Return one customer's RFM values and scores, segment, cluster, value tier, risk and action.

    ``history_or_rfm`` is either the customer's order history (a DataFrame or a list of dicts,
    one per order or order line: ``order_date`` and ``net_sales`` (or ``amount``); optional
    ``order_id``, ``is_cancelled``, ``product_line_id``) or a mapping of RFM values
    (``recency_days``, ``frequency``, ``monetary``; optional ``tenure_days``, ``product_lines``,
    ``cancellation_rate`` — with all of them the cluster is assigned too, else it is None).
    ``as_of`` defaults to the model's as-of date, so the answer equals the batch row for the same
    customer. ``model`` skips loading from ``models_dir`` (default ``$SALESBI_MODELS_DIR`` or
    ``out/models``). Keys: the columns of ``rpt.customer_segments`` without the customer's name,
    plus ``model_version``. Raises ConfigurationError when no model is stored, SalesBIError when the
    history is unusable.
    """
    model = model or load_segmentation_model(models_dir)
    if _is_rfm(history_or_rfm):
        assert isinstance(history_or_rfm, Mapping)
        return _segment_rfm(history_or_rfm, model, sales_rep_name)
    if isinstance(history_or_rfm, Mapping):
        raise SalesBIError(
            "the RFM values are incomplete",
            column=next(k for k in RFM_KEYS if k not in history_or_rfm),
            hint="send recency_days, frequency and monetary, or the order history",
        )
    frame = _history_frame(history_or_rfm)
    result = segment_from_history(frame, model, as_of=as_of, sales_rep_name=sales_rep_name)
    out = {key: _plain(value) for key, value in result.items()}
    out.pop("sales_rep_name", None)
    return out


def _check_horizon(model: StoredModel, horizon_days: int | None) -> None:
    if horizon_days is not None and horizon_days != model.horizon_days:
        raise SalesBIError(
            f"the stored model predicts {model.horizon_days}-day windows, not {horizon_days}",
            column="horizon_days",
            hint=f"omit horizon_days or send {model.horizon_days}; retrain with another "
            "prediction_horizon_days for other windows",
        )


def _predict_features(features: Mapping[str, Any], model: StoredModel, as_of: date | None) -> dict[str, Any]:
    missing = [k for k in FEATURES if k not in features and k not in OPTIONAL_FEATURES]
    if missing:
        raise SalesBIError(
            "the features are incomplete", column=missing[0], hint=f"send all of {list(FEATURES)}"
        )
    row = {k: (np.nan if features.get(k) is None else float(features[k])) for k in FEATURES}
    frame = pd.DataFrame([row], index=pd.Index(["customer"], name="customer_id"))
    result = predict_frame(frame, model).iloc[0]
    t = as_of or model.as_of
    out: dict[str, Any] = {
        "as_of_date": t,
        "horizon_days": model.horizon_days,
        "window_end": t + timedelta(days=model.horizon_days - 1),
    }
    out.update({str(k): _plain(v) for k, v in result.items()})
    out["features"] = {k: _plain(v) for k, v in row.items()}
    return out


def predict_customer_sales(
    history: History | Mapping[str, Any],
    *,
    models_dir: Path | str | None = None,
    horizon_days: int | None = None,
    as_of: date | None = None,
    model: StoredModel | None = None,
) -> dict[str, Any]:
    """Return one customer's predicted net sales for the next ``horizon_days`` and P(ordering).

    ``history``: the customer's order history (as for :func:`segment`), or a mapping of the model
    features (``salesbi.prediction.features.FEATURES``; ``mean_gap_days`` and ``overdue_ratio``
    may be None). ``horizon_days`` must equal the stored model's horizon (default: the model's);
    ``as_of`` defaults to the model's as-of date, so the answer equals the batch row. Keys:
    ``as_of_date``, ``horizon_days``, ``window_end``, ``predicted_sales``,
    ``predicted_sales_low``/``_high`` (80 % interval; None for a naive model),
    ``order_probability``, ``churn_risk``, ``last_window_sales``, ``avg_window_sales``,
    ``top_drivers``, ``method``, ``model_version``, ``note`` and ``features``.
    """
    model = model or load_prediction_model(models_dir)
    _check_horizon(model, horizon_days)
    if isinstance(history, Mapping):
        return _predict_features(history, model, as_of)
    result = predict_from_history(_history_frame(history), model, as_of=as_of)
    out = {key: _plain(value) for key, value in result.items() if key != "features"}
    out["features"] = {k: _plain(v) for k, v in result["features"].items()}
    return out


def forecast(history: pd.Series, *, horizon: int | None = None, frequency: str | None = None) -> pd.DataFrame:
    """Return a forecast of ``history`` (sales indexed by date) for ``horizon`` periods ahead.

    ``frequency`` is "D", "W" or "M" (default: chosen from the data, as the pipeline does). The
    frame has one row per future period with the forecast and its 80 %/95 % interval; it comes
    from ``salesbi.forecasting.forecast_series``, the same code the pipeline's forecast step uses.
    """
    try:
        from salesbi.forecasting import forecast_series  # type: ignore[attr-defined]
    except ImportError as exc:
        raise ConfigurationError(
            "salesbi.forecasting.forecast_series is not available in this installation",
            hint="upgrade salesbi; the forecast step of the pipeline provides it",
        ) from exc
    if not isinstance(history, pd.Series):
        raise SalesBIError("history must be a pandas Series of sales indexed by date")
    result: pd.DataFrame = forecast_series(history, horizon, frequency)
    return result
