"""Segment every customer (RFM + clusters + action), or one customer from their history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from salesbi.errors import SalesBIError
from salesbi.modelrun import ModelRun
from salesbi.modelstore import utc_now
from salesbi.segmentation.actions import SEGMENT_ACTIONS, recommend, recommend_all, risks, value_tiers
from salesbi.segmentation.clusters import (
    CLUSTER_FEATURES,
    K_RANGE,
    LOGGED,
    WEAK_SILHOUETTE,
    ClusterModel,
    assign,
    centroid_profiles,
    fit_clusters,
)
from salesbi.segmentation.history import (
    OrderHistory,
    as_history,
    behaviour_features,
    by_customer,
    customer_behaviour,
    customer_lines,
    default_as_of,
    sorted_by_date,
)
from salesbi.segmentation.model import SegmentationModel
from salesbi.segmentation.rfm import RfmEdges, fit_rfm_edges, rfm_scores, segment_names
from salesbi.segmentation.tables import CUSTOMER_SEGMENTS, SEGMENT_NAMES, SEGMENT_SUMMARY
from salesbi.types import conform


@dataclass
class SegmentationResult:
    """Frames for ``rpt.customer_segments`` and ``rpt.segment_summary``, model runs, and the stored model."""

    customer_segments: pd.DataFrame
    segment_summary: pd.DataFrame
    model_runs: list[ModelRun]
    models: dict[str, SegmentationModel] = field(default_factory=dict)

    @property
    def model(self) -> SegmentationModel:
        """Return the segmentation model (to store, or to score one customer)."""
        return self.models["customer_segments"]


def rep_names(employees: pd.DataFrame) -> pd.Series:
    """Return 'first last' per employee_id (string index)."""
    names = (
        employees["first_name"].astype("string").fillna("").str.strip()
        + " "
        + employees["last_name"].astype("string").fillna("").str.strip()
    ).str.strip()
    names = names.where(names != "", pd.NA)
    return pd.Series(names.to_numpy(), index=employees["employee_id"].astype("string"), dtype="string")


def customer_reps(
    history: pd.DataFrame | OrderHistory, customers: pd.DataFrame, index: pd.Index
) -> pd.Series:
    """Return each customer's rep: assigned ``sales_rep_id``, else the employee on their latest order.

    ``history``: an :class:`OrderHistory` or history-shaped lines; the latest order is the last by
    date and order id that credits an employee.
    """
    assigned = customers.set_index(customers["customer_id"].astype("string"))["sales_rep_id"].astype("string")
    assigned = assigned[~assigned.index.duplicated()].reindex(index)
    rows = history.orders if isinstance(history, OrderHistory) else history
    credited = sorted_by_date(rows[rows["employee_id"].notna().to_numpy()], first=())
    last = by_customer(credited.groupby("customer_id", observed=True)["employee_id"].last().astype("string"))
    return assigned.fillna(last.reindex(index))


def score_features(
    features: pd.DataFrame, edges: RfmEdges, clusters: Any, rep_name: pd.Series
) -> pd.DataFrame:
    """Return scores, segment, cluster, tier, risk and action for behaviour ``features`` (row per customer).

    ``clusters`` is a ClusterModel or None; ``rep_name`` is aligned with ``features``' index.
    """
    out = features.copy()
    r, f, m = rfm_scores(
        out["recency_days"].to_numpy(), out["frequency"].to_numpy(), out["monetary"].to_numpy(), edges
    )
    out["r_score"], out["f_score"], out["m_score"] = r, f, m
    out["rfm_score"] = [f"{a}{b}{c}" for a, b, c in zip(r, f, m, strict=True)]
    out["segment"] = segment_names(r, f, m)
    if clusters is not None and len(out):
        labels = assign(out, clusters)
        out["cluster_id"] = labels
        out["cluster_name"] = np.asarray(clusters.names, dtype=object)[labels]
    else:
        out["cluster_id"] = pd.NA
        out["cluster_name"] = pd.NA
    out["value_tier"] = value_tiers(m)
    out["risk"] = risks(r, out["frequency"].to_numpy(), out["recency_days"].to_numpy(), out["tenure_days"])
    out["sales_rep_name"] = rep_name.to_numpy()
    actions = recommend_all(out)
    return pd.concat([out, actions], axis=1)


def summarise_segments(segments: pd.DataFrame) -> pd.DataFrame:
    """Return the ``rpt.segment_summary`` frame: every named segment, empty ones with zero customers."""
    total_customers = len(segments)
    total_sales = float(segments["monetary"].sum())
    grouped = segments.groupby("segment", observed=True)
    rows = []
    for order, name in enumerate(SEGMENT_NAMES, start=1):
        part = grouped.get_group(name) if name in grouped.groups else segments.iloc[0:0]
        sales = float(part["monetary"].sum())
        action, what, _, description = SEGMENT_ACTIONS[name]
        rows.append(
            {
                "segment": name,
                "segment_order": order,
                "description": description,
                "customers": len(part),
                "customer_share": len(part) / total_customers if total_customers else 0.0,
                "net_sales": round(sales, 2),
                "sales_share": sales / total_sales if total_sales else 0.0,
                "avg_recency_days": float(part["recency_days"].mean()) if len(part) else None,
                "avg_frequency": float(part["frequency"].mean()) if len(part) else None,
                "avg_monetary": round(float(part["monetary"].mean()), 2) if len(part) else None,
                "recommended_action": f"{action}: {what}",
            }
        )
    return conform(pd.DataFrame(rows), SEGMENT_SUMMARY)


def segments_frame(
    features: pd.DataFrame,
    edges: RfmEdges,
    clusters: Any,
    history: pd.DataFrame | OrderHistory,
    customers: pd.DataFrame,
    employees: pd.DataFrame,
    as_of: date,
) -> pd.DataFrame:
    """Return the ``rpt.customer_segments`` rows of ``features`` scored with ``edges`` and ``clusters``."""
    rep_id = customer_reps(history, customers, features.index)
    rep_name = rep_id.map(rep_names(employees)).astype("string")
    scored = score_features(features, edges, clusters, rep_name)
    info = customers.set_index(customers["customer_id"].astype("string"))
    info = info[~info.index.duplicated()].reindex(scored.index)
    scored["customer_name"] = info["customer_name"].to_numpy()
    scored["country"] = info["country"].to_numpy()
    scored["sales_rep_id"] = rep_id.to_numpy()
    scored["as_of_date"] = pd.Timestamp(as_of)
    return conform(scored.reset_index(), CUSTOMER_SEGMENTS)


def segment_customers(
    fact: pd.DataFrame | OrderHistory,
    customers: pd.DataFrame,
    employees: pd.DataFrame,
    *,
    as_of: date | None = None,
    random_state: int = 0,
    created_at: datetime | None = None,
) -> SegmentationResult:
    """Return RFM segments, clusters and actions for every customer with an order before ``as_of``.

    ``fact``: ``rpt.fact_order_lines`` (its lines) or the :class:`OrderHistory` of the order-grain
    inputs (``salesbi.order_grain``): the same segments. ``as_of`` defaults to the day after the
    last order. Raises SalesBIError when there are no orders.
    """
    history = as_history(fact)
    as_of = as_of or default_as_of(history.orders)
    features = behaviour_features(history, as_of)
    if features.empty:
        raise SalesBIError(f"no orders before the as-of date {as_of}", hint="choose a later as_of")
    edges = fit_rfm_edges(
        features["recency_days"].to_numpy(), features["frequency"].to_numpy(), features["monetary"].to_numpy()
    )
    clusters = fit_clusters(features, random_state=random_state)
    frame = segments_frame(features, edges, clusters, history, customers, employees, as_of)
    summary = summarise_segments(frame)

    before = history.orders["order_date"]
    before = before[(before < pd.Timestamp(as_of)).to_numpy()]
    start = pd.Timestamp(before.min()).date()
    end = pd.Timestamp(before.max()).date()
    model = SegmentationModel(
        as_of=as_of,
        edges=edges,
        clusters=clusters,
        data_start=start,
        data_end=end,
        n_customers=len(frame),
        random_state=random_state,
    )
    model.stamp(created_at or utc_now())
    runs = [
        ModelRun(
            model_name="rfm_segments",
            model_version=model.version,
            data_start=start,
            data_end=end,
            n_rows=len(frame),
            params={"as_of": as_of.isoformat(), "scoring": "rank-based quantile edges, ties kept together"},
            metrics={
                "edges": edges.as_dict(),
                "segment_sizes": {k: int(v) for k, v in frame["segment"].value_counts().sort_index().items()},
            },
        ),
        _cluster_run(model, frame, start, end, random_state),
    ]
    return SegmentationResult(frame, summary, runs, {model.model_name: model})


def _cluster_run(
    model: SegmentationModel, frame: pd.DataFrame, start: date, end: date, random_state: int
) -> ModelRun:
    clusters = model.clusters
    run = ModelRun(
        model_name="customer_clusters",
        model_version=model.version,
        data_start=start,
        data_end=end,
        n_rows=len(frame),
        params={
            "algorithm": "KMeans",
            "k_range": list(K_RANGE),
            "n_init": 4,
            "random_state": random_state,
            "training_caps": model.training_caps(),
        },
    )
    if clusters is None:
        run.status = "too_thin"
        run.notes = (
            f"{len(frame)} customers are too few (or too alike) to cluster; cluster columns are left empty."
        )
        return run
    best = clusters.silhouette_by_k[clusters.k]
    if best < WEAK_SILHOUETTE:
        run.notes = (
            f"Weak cluster structure (silhouette {best:.2f} < {WEAK_SILHOUETTE}); "
            "treat the cluster names as rough descriptions, not distinct groups."
        )
    run.metrics = {
        "silhouette_by_k": {str(k): v for k, v in clusters.silhouette_by_k.items()},
        "chosen_k": clusters.k,
        "silhouette": clusters.silhouette_by_k[clusters.k],
        "sizes": clusters.sizes,
        "centroids": centroid_profiles(clusters),
    }
    return run


def segment_from_rfm(
    recency_days: int, frequency: int, monetary: float, model: SegmentationModel
) -> dict[str, Any]:
    """Return r/f/m scores, rfm_score and segment of one customer from RFM values and stored edges."""
    r, f, m = rfm_scores(np.array([recency_days]), np.array([frequency]), np.array([monetary]), model.edges)
    return {
        "r_score": int(r[0]),
        "f_score": int(f[0]),
        "m_score": int(m[0]),
        "rfm_score": f"{int(r[0])}{int(f[0])}{int(m[0])}",
        "segment": str(segment_names(r, f, m)[0]),
    }


def assign_one(features: dict[str, Any], model: ClusterModel) -> int:
    """Return the cluster of one customer: :func:`~salesbi.segmentation.clusters.assign` on one row."""
    raw = np.array(
        [[float(features[name]) for name in CLUSTER_FEATURES]],
        dtype="float64",
    )
    logged = np.array([name in LOGGED for name in CLUSTER_FEATURES])
    raw[:, logged] = np.log1p(np.clip(raw[:, logged], 0.0, None))
    x = (raw - np.asarray(model.mean)) / np.asarray(model.scale)
    centroids = np.asarray(model.centroids)
    distances = ((x[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return int(np.argmin(distances, axis=1)[0])


def score_one(
    features: dict[str, Any], model: SegmentationModel, as_of: date, sales_rep_name: str | None
) -> dict[str, Any]:
    """Return :func:`score_features` for one customer's behaviour values, as ``segment_from_history`` answers.

    The single-customer fast path: the same scoring functions on one-element arrays, no frames.
    """
    recency, frequency, monetary = features["recency_days"], features["frequency"], features["monetary"]
    r, f, m = rfm_scores(np.array([recency]), np.array([frequency]), np.array([monetary]), model.edges)
    row: dict[str, Any] = dict(features)
    row["monetary"] = np.float64(monetary)
    row["avg_order_value"] = np.float64(features["avg_order_value"])
    row["cancellation_rate"] = np.float64(features["cancellation_rate"])
    row["r_score"], row["f_score"], row["m_score"] = int(r[0]), int(f[0]), int(m[0])
    row["rfm_score"] = f"{int(r[0])}{int(f[0])}{int(m[0])}"
    row["segment"] = str(segment_names(r, f, m)[0])
    if model.clusters is not None:
        label = assign_one(features, model.clusters)
        row["cluster_id"], row["cluster_name"] = label, model.clusters.names[label]
    else:
        row["cluster_id"], row["cluster_name"] = None, None
    row["value_tier"] = str(value_tiers(m)[0])
    row["risk"] = str(
        risks(r, np.array([frequency]), np.array([recency]), np.array([features["tenure_days"]]))[0]
    )
    row["sales_rep_name"] = None if sales_rep_name is None else str(sales_rep_name)
    rep = row["sales_rep_name"]
    action, detail, priority = recommend(
        row["segment"], row["value_tier"], row["risk"], int(recency), int(frequency), float(monetary), rep
    )
    row.update({"action": action, "action_detail": detail, "action_priority": int(priority)})
    for column in ("first_order_date", "last_order_date"):
        row[column] = pd.Timestamp(row[column]).date()
    out: dict[str, Any] = {"as_of_date": as_of, "model_version": model.version}
    out.update({column: row[column] for column in CUSTOMER_SEGMENTS.column_names if column in row})
    return out


def segment_from_history(
    history: pd.DataFrame,
    model: SegmentationModel,
    *,
    as_of: date | None = None,
    sales_rep_name: str | None = None,
) -> dict[str, Any]:
    """Return one customer's ``customer_segments`` values (features, scores, segment, cluster, action).

    ``history``: the customer's orders or order lines (see ``lines_from_history``). ``as_of``
    defaults to the model's as-of date, so the answer equals the batch row of the same customer
    (computed without frames: see ``customer_behaviour`` and :func:`score_one`).
    """
    lines = customer_lines(history)
    as_of = as_of or model.as_of
    features = customer_behaviour(lines, as_of)
    if features is None:
        raise SalesBIError(
            f"the history has no order before {as_of}", hint="send orders before the as-of date"
        )
    return score_one(features, model, as_of, sales_rep_name)
