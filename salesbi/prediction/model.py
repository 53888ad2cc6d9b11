"""The stored customer-sales model and how it turns features into predictions.

One bundle holds up to four LightGBM boosters — ``sales`` (expected net sales in the window),
``order`` (probability of ordering at all), ``q10`` and ``q90`` (interval) — or none, when the
data were too thin and the naive baseline is the published method. :func:`predict_frame` turns
feature rows into prediction columns for the batch; :func:`predict_row` does the same for one
customer (single-threaded, no frames) and must stay in step with it (tests/test_prediction_fast.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from salesbi.modelstore import dumps, make_version, read_card
from salesbi.prediction.features import FEATURES

MODEL_NAME = "customer_sales"
MODEL_FILE = "model.json"
BOOSTERS = ("sales", "order", "q10", "q90")
SALES_METHODS = ("lightgbm", "bgnbd", "naive_last_window", "naive_average")
PROBABILITY_METHODS = ("lightgbm_calibrated", "lightgbm", "bgnbd", "naive_rate")
#: churn risk bands on the calibrated P(order in the window): below 0.3 high, below 0.6 medium
RISK_BANDS = (0.3, 0.6)


@dataclass
class StoredModel:
    """A fitted (or naive) customer-sales model: methods, boosters, feature list, window, metrics."""

    as_of: date
    horizon_days: int
    sales_method: str
    probability_method: str
    boosters: dict[str, lgb.Booster] = field(default_factory=dict)
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    status: str = "ok"
    note: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_start: date | None = None
    data_end: date | None = None
    created_at: str = ""
    version: str = ""
    model_name: str = MODEL_NAME

    def payload(self) -> dict[str, Any]:
        """Return the non-booster content as JSON-able data."""
        return {
            "as_of": self.as_of.isoformat(),
            "horizon_days": self.horizon_days,
            "sales_method": self.sales_method,
            "probability_method": self.probability_method,
            "features": self.features,
            "boosters": sorted(self.boosters),
            "status": self.status,
            "note": self.note,
        }

    def files(self) -> dict[str, bytes]:
        """Return the files to store: ``model.json`` and one LightGBM text model per booster."""
        files = {MODEL_FILE: dumps(self.payload())}
        for name, booster in sorted(self.boosters.items()):
            files[f"{name}.txt"] = booster.model_to_string().encode("utf-8")
        return files

    def card(self) -> dict[str, Any]:
        """Return the model card."""
        return {
            "kind": "customer_sales",
            "model_name": self.model_name,
            "version": self.version,
            "created_at": self.created_at,
            "status": self.status,
            "training_window": {
                "start": self.data_start.isoformat() if self.data_start else None,
                "end": self.data_end.isoformat() if self.data_end else None,
                "as_of": self.as_of.isoformat(),
                "horizon_days": self.horizon_days,
            },
            "features": self.features,
            "methods": {"sales": self.sales_method, "probability": self.probability_method},
            "params": self.params,
            "metrics": self.metrics,
            "note": self.note,
        }

    def stamp(self, created_at: datetime) -> None:
        """Set ``created_at`` and the content-derived ``version``."""
        self.created_at = created_at.isoformat()
        self.version = make_version(created_at, self.files(), self.card())

    @classmethod
    def from_folder(cls, folder: Path) -> StoredModel:
        """Return the model stored in a version folder (boosters loaded from their text files)."""
        folder = Path(folder)
        card = read_card(folder)
        data = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
        boosters = {name: lgb.Booster(model_file=str(folder / f"{name}.txt")) for name in data["boosters"]}
        window = card.get("training_window", {})
        return cls(
            as_of=date.fromisoformat(data["as_of"]),
            horizon_days=int(data["horizon_days"]),
            sales_method=data["sales_method"],
            probability_method=data["probability_method"],
            boosters=boosters,
            features=list(data["features"]),
            status=data.get("status", "ok"),
            note=data.get("note", ""),
            params=card.get("params", {}),
            metrics=card.get("metrics", {}),
            data_start=date.fromisoformat(window["start"]) if window.get("start") else None,
            data_end=date.fromisoformat(window["end"]) if window.get("end") else None,
            created_at=card.get("created_at", ""),
            version=card.get("version", ""),
            model_name=card.get("model_name", MODEL_NAME),
        )


def naive_sales(features: pd.DataFrame, method: str) -> np.ndarray:
    """Return the naive baseline's predicted sales: last window's sales, or the average per window."""
    column = "sales_last_window" if method == "naive_last_window" else "avg_window_sales"
    return features[column].to_numpy(dtype="float64")


def naive_probability(features: pd.DataFrame) -> np.ndarray:
    """Return the naive P(order in window) = 1 − exp(−orders per past window) (a Poisson rate)."""
    return 1.0 - np.exp(-features["orders_per_window"].to_numpy(dtype="float64"))


def _driver_text(contrib: np.ndarray, names: list[str] | np.ndarray, n: int) -> list[str]:
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :n]
    out = []
    for row, idx in zip(contrib, order, strict=True):
        out.append(", ".join(f"{names[i]} ({'+' if row[i] >= 0 else '-'})" for i in idx))
    return out


#: LightGBM treats |x| <= this as zero (``kZeroThreshold`` of its C++ sources)
_ZERO = 1e-35
#: contributions closer than this (relative to the sum of their per-tree magnitudes) are recomputed
_AMBIGUOUS = 1e-9


def _tree_thresholds(booster: lgb.Booster) -> list[dict[int, np.ndarray]] | None:
    """Return per tree {feature: sorted split thresholds}; None if a split is not numerical ``<=``."""
    out: list[dict[int, np.ndarray]] = []
    for tree in booster.dump_model()["tree_info"]:
        found: dict[int, set[float]] = {}
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" not in node:
                continue
            if node.get("decision_type") != "<=":
                return None
            found.setdefault(int(node["split_feature"]), set()).add(float(node["threshold"]))
            stack += [node["left_child"], node["right_child"]]
        out.append({f: np.array(sorted(t), dtype="float64") for f, t in found.items()})
    return out


def decision_classes(values: np.ndarray, thresholds: dict[int, np.ndarray]) -> np.ndarray:
    """Return per row one integer that fixes the row's branch at every split of one tree.

    Rows with the same integer take the same branches everywhere in the tree (the splits on
    feature ``f`` are ``x <= t`` for ``t`` in ``thresholds[f]``), so the tree gives them the same
    output and the same SHAP contributions. Per feature the code is the number of thresholds
    below the value, times 2, plus 1 for a LightGBM zero (|x| <= 1e-35, a missing value for
    ``missing_type`` Zero splits), and a separate code for NaN; the codes are then combined.
    """
    codes = []
    for f, t in thresholds.items():
        col = values[:, f]
        code = 2 * np.searchsorted(t, col, side="left") + (np.abs(col) <= _ZERO) + 1
        code[np.isnan(col)] = 0
        codes.append((code, 2 * len(t) + 3))
    key = np.zeros(len(values), dtype="int64")
    radix = 1
    for code, size in codes:
        if radix * size >= 2**62:  # too many combinations for one integer: number the distinct rows
            stacked = np.column_stack([c for c, _ in codes])
            return np.asarray(np.unique(stacked, axis=0, return_inverse=True)[1]).reshape(-1)
        key += code * radix
        radix *= size
    return key


def shap_contributions(
    booster: lgb.Booster, x: pd.DataFrame, threads: int = 1, workers: int = 1
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (SHAP contributions of every row of ``x``, sum of their per-tree magnitudes or None).

    The contributions are ``pred_contrib``'s without the bias column.
    TreeSHAP costs ~1-3 ms a row for a few hundred trees. Tree by tree, rows that take the
    same branches (:func:`decision_classes`) get the same contributions, so each tree is
    explained once per class (a few hundred, not tens of thousands of rows) and the results
    summed. The sums can differ from LightGBM's own order of addition in the last bits; rows
    where that could change which features lead or their signs (two contributions, or one and
    zero, within 1e-9 of the per-tree magnitudes) are recomputed with ``pred_contrib`` itself
    by :func:`top_drivers`. The magnitudes are None when LightGBM computed every row itself
    (fewer than two rows, non-numeric columns, categorical splits or several trees per round).
    ``workers`` > 1: the trees are split into that many contiguous runs explained side by side in
    threads, each with its own copy of the booster (LightGBM releases the GIL while it predicts);
    the runs' sums are added in order.
    """
    numeric = all(pd.api.types.is_float_dtype(t) or pd.api.types.is_integer_dtype(t) for t in x.dtypes)
    trees = _tree_thresholds(booster) if numeric and booster.num_model_per_iteration() == 1 else None
    if trees is None or len(x) < 2:
        return np.asarray(booster.predict(x, pred_contrib=True, num_threads=threads))[:, :-1], None
    values = x.to_numpy(dtype="float64", na_value=np.nan)
    per_tree = trees

    def explain(own: lgb.Booster, first_tree: int, last_tree: int) -> tuple[np.ndarray, np.ndarray]:
        total = np.zeros(values.shape, dtype="float64")
        magnitude = np.zeros(values.shape, dtype="float64")
        for i in range(first_tree, last_tree):
            if not per_tree[i]:
                continue  # a single leaf: only the bias
            _, first, inverse = np.unique(
                decision_classes(values, per_tree[i]), return_index=True, return_inverse=True
            )
            part = np.asarray(
                own.predict(
                    x.iloc[first], start_iteration=i, num_iteration=1, pred_contrib=True, num_threads=threads
                )
            )[:, :-1]
            total += part[inverse]
            magnitude += np.abs(part)[inverse]
        return total, magnitude

    runs = max(1, min(workers, len(trees)))
    if runs == 1:
        return explain(booster, 0, len(trees))
    from concurrent.futures import ThreadPoolExecutor

    edges = np.linspace(0, len(trees), runs + 1).round().astype(int)
    text = booster.model_to_string()
    copies = [booster, *(lgb.Booster(model_str=text) for _ in range(runs - 1))]
    with ThreadPoolExecutor(max_workers=runs) as pool:
        parts = list(pool.map(explain, copies, edges[:-1].tolist(), edges[1:].tolist()))
    total, magnitude = parts[0]
    for t, m in parts[1:]:
        total += t
        magnitude += m
    return total, magnitude


def _ambiguous_rows(contrib: np.ndarray, magnitude: np.ndarray, n: int) -> np.ndarray:
    """Return the rows whose top ``n`` features or signs could change within the rounding bound."""
    tol = _AMBIGUOUS * magnitude
    size = np.abs(contrib)
    k = min(n + 1, contrib.shape[1])
    order = np.argsort(-size, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(size, order, axis=1)
    top_tol = np.take_along_axis(tol, order, axis=1)
    near_zero = (top[:, :n] <= top_tol[:, :n]).any(axis=1)
    near_tie = (np.diff(-top, axis=1) <= top_tol[:, 1:] + top_tol[:, :-1]).any(axis=1) if k > 1 else False
    return np.flatnonzero(near_zero | near_tie)


def top_drivers(
    booster: lgb.Booster, x: pd.DataFrame, n: int = 3, threads: int = 1, workers: int = 1
) -> list[str]:
    """Return per row the ``n`` features with the largest SHAP contribution, e.g. 'recency_days (-), ...'.

    The same text as ranking ``pred_contrib`` of every row: contributions come from
    :func:`shap_contributions` (each tree explained once per class of rows; ``workers`` runs of
    trees side by side), and rows whose ranking or signs sit within rounding of a tie are ranked
    from ``pred_contrib`` itself, so the text is the same for any ``workers``.
    """
    names = np.asarray(x.columns)
    if not len(x):
        return []
    contrib, magnitude = shap_contributions(booster, x, threads, workers)
    if magnitude is None:
        return _driver_text(contrib, names, n)
    redo = _ambiguous_rows(contrib, magnitude, n)
    if len(redo):
        exact = np.asarray(booster.predict(x.iloc[redo], pred_contrib=True, num_threads=threads))[:, :-1]
        contrib[redo] = exact
    return _driver_text(contrib, names, n)


def risk_from_probability(p: np.ndarray) -> np.ndarray:
    """Return churn risk words from the calibrated P(order): < 0.3 → high, < 0.6 → medium, else low."""
    p = np.asarray(p, dtype="float64")
    high, medium = RISK_BANDS
    return np.where(p < high, "high", np.where(p < medium, "medium", "low")).astype(object)


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype="float64"), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


#: Platt scaling's L2 penalty on the slope: 1/(2·C)·slope² with C = 1e6 (as scikit-learn's
#: ``LogisticRegression(C=1e6)``, which this replaced): negligible, but keeps separable data finite
_PLATT_C = 1e6


def platt_fit(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Return Platt scaling (slope, intercept) of logit(``p``) fitted to outcomes ``y`` (max likelihood).

    Newton's method on the two parameters (the log-likelihood is concave), with step halving,
    to a gradient below 1e-9 per row: the maximum scikit-learn's ``LogisticRegression(C=1e6)``
    approaches (tested), without its set-up cost.
    """
    y = np.asarray(y, dtype="float64")
    if y.min() == y.max():
        return 1.0, 0.0
    z = _logit(p)
    design = np.column_stack([z, np.ones_like(z)])
    penalty = np.array([1.0 / _PLATT_C, 0.0])

    def objective(w: np.ndarray) -> float:
        s = design @ w
        return float(np.sum(np.logaddexp(0.0, s) - y * s) + 0.5 * penalty[0] * w[0] ** 2)

    w = np.array([1.0, 0.0])
    value = objective(w)
    for _ in range(100):
        q = 1.0 / (1.0 + np.exp(-(design @ w)))
        grad = design.T @ (q - y) + penalty * w
        if np.max(np.abs(grad)) <= 1e-9 * len(y):
            break
        hess = (design * (q * (1.0 - q))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hess + 1e-12 * np.eye(2), grad)
        t = 1.0
        while t > 1e-8:
            trial = w - t * step
            trial_value = objective(trial)
            if trial_value <= value:
                w, value = trial, trial_value
                break
            t /= 2.0
        else:
            break
    return float(w[0]), float(w[1])


def platt_apply(p: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Return the Platt-calibrated probabilities 1 / (1 + exp(−(slope · logit(p) + intercept)))."""
    return 1.0 / (1.0 + np.exp(-(slope * _logit(p) + intercept)))


def btyd_columns(features: Any, model: StoredModel) -> dict[str, np.ndarray]:
    """Return the BG/NBD + Gamma-Gamma columns of feature rows (a frame, or one row as a dict).

    Empty when the model has no fitted BG/NBD parameters (``params['btyd']``).
    """
    data = model.params.get("btyd")
    if not data:
        return {}
    from salesbi.prediction.btyd import BTYD, btyd_arrays

    return btyd_arrays(BTYD.from_dict(data), features, model.horizon_days)


def _probability(model: StoredModel, raw: np.ndarray) -> np.ndarray:
    if model.probability_method != "lightgbm_calibrated":
        return raw
    cal = model.params["calibration"]
    return platt_apply(raw, float(cal["slope"]), float(cal["intercept"]))


def predict_frame(
    features: pd.DataFrame, model: StoredModel, threads: int = 1, workers: int = 1
) -> pd.DataFrame:
    """Return the prediction columns (sales, interval, probability, drivers...) for feature rows.

    ``workers``: threads explaining the top drivers side by side (the text does not depend on it).
    """
    n = len(features)
    extra = btyd_columns(features, model) if n else {}
    if extra:
        features = features.assign(**extra)
    x = features[model.features]
    out = pd.DataFrame(index=features.index)
    if model.sales_method == "lightgbm" and n:
        boosters = model.boosters
        sales = np.clip(np.asarray(boosters["sales"].predict(x, num_threads=threads)), 0.0, None)
        low = np.clip(np.asarray(boosters["q10"].predict(x, num_threads=threads)), 0.0, None)
        high = np.asarray(boosters["q90"].predict(x, num_threads=threads))
        out["predicted_sales_low"] = np.round(np.minimum(low, sales), 2)
        out["predicted_sales_high"] = np.round(np.maximum(high, sales), 2)
        out["top_drivers"] = top_drivers(boosters["sales"], x, threads=threads, workers=workers)
    else:
        if model.sales_method == "bgnbd":
            sales = features["btyd_sales"].to_numpy(dtype="float64") if n else np.zeros(0)
        else:
            sales = naive_sales(features, model.sales_method) if n else np.zeros(0)
        out["predicted_sales_low"] = np.nan
        out["predicted_sales_high"] = np.nan
        out["top_drivers"] = pd.NA
    out["predicted_sales"] = np.round(sales, 2)
    if model.probability_method in ("lightgbm", "lightgbm_calibrated") and n:
        probability = _probability(model, np.asarray(model.boosters["order"].predict(x, num_threads=threads)))
    elif model.probability_method == "bgnbd" and n:
        probability = features["btyd_probability"].to_numpy(dtype="float64")
    else:
        probability = naive_probability(features) if n else np.zeros(0)
    out["order_probability"] = np.round(probability, 6)
    out["churn_risk"] = risk_from_probability(probability)
    out["last_window_sales"] = np.round(features["sales_last_window"].to_numpy(), 2)
    out["avg_window_sales"] = np.round(features["avg_window_sales"].to_numpy(), 2)
    out["method"] = model.sales_method
    out["model_version"] = model.version
    out["note"] = model.note or pd.NA
    return out


def predict_row(features: dict[str, float], model: StoredModel) -> dict[str, Any]:
    """Return :func:`predict_frame`'s columns for one customer's features, as a dict of plain values.

    The single-customer fast path: the same numbers as ``predict_frame`` on a one-row frame
    (missing values as None), from a NumPy row and single-threaded LightGBM calls — a request
    predicts one row, where thread start-up costs more than it saves.
    """
    out: dict[str, Any] = {}
    extra = {k: float(v[0]) for k, v in btyd_columns(features, model).items()}
    if extra:
        features = {**features, **extra}
    if model.sales_method == "lightgbm":
        x = np.array([[features[name] for name in model.features]], dtype="float64")
        boosters = model.boosters
        sales = max(float(boosters["sales"].predict(x, num_threads=1)[0]), 0.0)
        low = max(float(boosters["q10"].predict(x, num_threads=1)[0]), 0.0)
        high = float(boosters["q90"].predict(x, num_threads=1)[0])
        out["predicted_sales_low"] = float(np.round(min(low, sales), 2))
        out["predicted_sales_high"] = float(np.round(max(high, sales), 2))
        contrib = np.asarray(boosters["sales"].predict(x, pred_contrib=True, num_threads=1))[:, :-1]
        out["top_drivers"] = _driver_text(contrib, model.features, 3)[0]
    else:
        column = {"naive_last_window": "sales_last_window", "bgnbd": "btyd_sales"}.get(
            model.sales_method, "avg_window_sales"
        )
        sales = features[column]
        out["predicted_sales_low"] = None
        out["predicted_sales_high"] = None
        out["top_drivers"] = None
    out["predicted_sales"] = float(np.round(sales, 2))
    if model.probability_method in ("lightgbm", "lightgbm_calibrated"):
        x = np.array([[features[name] for name in model.features]], dtype="float64")
        raw = np.asarray(model.boosters["order"].predict(x, num_threads=1), dtype="float64")
        probability = float(_probability(model, raw)[0])
    elif model.probability_method == "bgnbd":
        probability = features["btyd_probability"]
    else:
        probability = float(1.0 - np.exp(-np.float64(features["orders_per_window"])))
    out["order_probability"] = float(np.round(probability, 6))
    out["churn_risk"] = str(risk_from_probability(np.array([probability]))[0])
    out["last_window_sales"] = float(np.round(features["sales_last_window"], 2))
    out["avg_window_sales"] = float(np.round(features["avg_window_sales"], 2))
    out["method"] = model.sales_method
    out["model_version"] = model.version
    out["note"] = model.note or None
    return {key: (None if isinstance(v, float) and math.isnan(v) else v) for key, v in out.items()}
