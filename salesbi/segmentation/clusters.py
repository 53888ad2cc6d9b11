"""Behaviour clusters: KMeans on scaled, log-transformed features, k by silhouette, names from centroids.

Features (per customer): recency, frequency, monetary, tenure, average order value and
product-line breadth, each as ``log(1 + x)``, plus the cancellation rate as is; all standardised
(mean 0, standard deviation 1). KMeans (``n_init=4``, fixed ``random_state``) is fitted for every
k in 4..8 (at least four groups, because three — "good, middling, gone" — tell a marketer
nothing new; at most one cluster per 15 customers, and fewer than the distinct customers); the
k with the best silhouette wins (silhouette on a fixed sample of at most 5,000 customers).
KMeans is fitted on at most ``FIT_CAP`` customers (a seeded sample stratified by repeat
purchases, :mod:`salesbi.sampling`; every customer under the cap, so the clusters are then
exactly the uncapped ones); every customer is assigned to the nearest centroid.
Clusters are renumbered by descending centroid
monetary value, so cluster 0 is the most valuable. Customers are assigned to the nearest
centroid by :func:`assign`, the same function the single-customer path uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from salesbi.sampling import by_repeat_purchases

CLUSTER_FEATURES: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "avg_order_value",
    "product_lines",
    "cancellation_rate",
)
LOGGED = frozenset(CLUSTER_FEATURES) - {"cancellation_rate"}
K_RANGE = (4, 8)
MIN_PER_CLUSTER = 15
MIN_CUSTOMERS = K_RANGE[0] * MIN_PER_CLUSTER
WEAK_SILHOUETTE = 0.25
SILHOUETTE_SAMPLE = 5_000
#: KMeans is fitted on at most this many customers (a stratified sample; see the module docstring)
FIT_CAP = 50_000


@dataclass
class ClusterModel:
    """A fitted clustering: scaling, centroids (scaled space), names, and the silhouette search."""

    mean: list[float]
    scale: list[float]
    centroids: list[list[float]]
    names: list[str]
    silhouette_by_k: dict[int, float] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    #: customers KMeans was fitted on (all, or the capped sample; 0: not recorded, older models)
    fit_customers: int = 0

    @property
    def k(self) -> int:
        """Return the number of clusters."""
        return len(self.centroids)

    def as_dict(self) -> dict[str, Any]:
        """Return the model as plain JSON-able data."""
        return {
            "features": list(CLUSTER_FEATURES),
            "mean": self.mean,
            "scale": self.scale,
            "centroids": self.centroids,
            "names": self.names,
            "silhouette_by_k": {str(k): v for k, v in self.silhouette_by_k.items()},
            "sizes": self.sizes,
            "fit_customers": self.fit_customers,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterModel:
        """Return a model read back from :meth:`as_dict`."""
        return cls(
            mean=[float(x) for x in data["mean"]],
            scale=[float(x) for x in data["scale"]],
            centroids=[[float(x) for x in row] for row in data["centroids"]],
            names=list(data["names"]),
            silhouette_by_k={int(k): float(v) for k, v in data.get("silhouette_by_k", {}).items()},
            sizes=[int(x) for x in data.get("sizes", [])],
            fit_customers=int(data.get("fit_customers", 0)),
        )


def transform(features: pd.DataFrame) -> np.ndarray:
    """Return the unscaled model matrix: log1p of the logged features, cancellation rate as is."""
    columns = []
    for name in CLUSTER_FEATURES:
        x = features[name].to_numpy(dtype="float64")
        columns.append(np.log1p(np.clip(x, 0.0, None)) if name in LOGGED else x)
    return np.column_stack(columns)


def scaled(features: pd.DataFrame, model: ClusterModel) -> np.ndarray:
    """Return the model matrix standardised with the model's stored mean and scale."""
    return (transform(features) - np.asarray(model.mean)) / np.asarray(model.scale)


def assign(features: pd.DataFrame, model: ClusterModel) -> np.ndarray:
    """Return the cluster number of each row: the nearest centroid in the scaled space."""
    x = scaled(features, model)
    centroids = np.asarray(model.centroids)
    distances = ((x[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(distances, axis=1)


def _name(z: dict[str, float]) -> str:
    quiet, recent = z["recency_days"] > 0.5, z["recency_days"] < -0.3
    big, small = z["monetary"] > 0.5, z["monetary"] < -0.5
    frequent, rare = z["frequency"] > 0.5, z["frequency"] < -0.5
    if z["cancellation_rate"] > 1.0:
        return "frequent cancellers"
    if quiet and big:
        return "lapsed big spenders"
    if quiet and small:
        return "lapsed small buyers"
    if quiet:
        return "drifting regulars"
    if recent and z["tenure_days"] < -0.7:
        return "recent newcomers"
    if big and frequent and z["monetary"] > 1.5:
        return "top-spending regulars"
    if big and frequent:
        return "high-value regulars"
    if frequent:
        return "steady regulars"
    if big:
        return "big-basket occasional buyers"
    if small and rare:
        return "occasional small buyers"
    return "mid-value regulars"


def name_clusters(centroids: np.ndarray) -> list[str]:
    """Return a distinct marketing name for each centroid (rows in scaled space, value-ordered)."""
    names = [_name(dict(zip(CLUSTER_FEATURES, row.tolist(), strict=True))) for row in centroids]
    out = list(names)
    for name in set(names):
        same = [i for i, n in enumerate(names) if n == name]
        if len(same) == 1:
            continue
        # clusters are ordered by value already, so the first is the higher-value one
        for rank, i in enumerate(same):
            label = (
                "higher value"
                if rank == 0
                else "lower value"
                if rank == len(same) - 1
                else f"tier {rank + 1}"
            )
            out[i] = f"{name} ({label})"
    return out


def fit_clusters(features: pd.DataFrame, *, random_state: int = 0, cap: int = FIT_CAP) -> ClusterModel | None:
    """Return the fitted :class:`ClusterModel`, or None when there are too few customers to cluster.

    Too few: fewer than ``MIN_CUSTOMERS`` (60) customers or fewer than 5 distinct feature rows.
    The scaling comes from every customer; KMeans and the silhouettes from at most ``cap`` of
    them (seeded, stratified by repeat purchases; all of them under the cap).
    """
    raw = transform(features)
    distinct = len(np.unique(raw, axis=0)) if len(raw) else 0
    if len(raw) < MIN_CUSTOMERS or distinct < 4:
        return None
    mean = raw.mean(axis=0)
    scale = raw.std(axis=0)
    scale[scale == 0] = 1.0
    x = (raw - mean) / scale
    k_max = min(K_RANGE[1], distinct - 1, len(raw) // MIN_PER_CLUSTER)
    repeats = np.maximum(features["frequency"].to_numpy(dtype="float64") - 1.0, 0.0)  # repeat orders
    fit_rows = by_repeat_purchases(repeats, cap, random_state)
    x = x if len(fit_rows) == len(x) else x[fit_rows]
    sample = min(len(x), SILHOUETTE_SAMPLE)
    silhouettes: dict[int, float] = {}
    fits: dict[int, KMeans] = {}
    for k in range(K_RANGE[0], k_max + 1):
        # one OpenMP thread: on a busy machine spinning threads make small fits many times slower
        with threadpool_limits(limits=1, user_api="openmp"):
            km = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit(x)
        if len(np.unique(km.labels_)) < 2:
            continue
        silhouettes[k] = round(
            float(silhouette_score(x, km.labels_, sample_size=sample, random_state=random_state)), 6
        )
        fits[k] = km
    if not silhouettes:
        return None
    best = max(silhouettes, key=lambda k: (silhouettes[k], -k))
    centroids = fits[best].cluster_centers_
    monetary = CLUSTER_FEATURES.index("monetary")
    order = np.argsort(-centroids[:, monetary], kind="stable")
    centroids = centroids[order]
    model = ClusterModel(
        mean=mean.tolist(),
        scale=scale.tolist(),
        centroids=centroids.tolist(),
        names=name_clusters(centroids),
        silhouette_by_k=silhouettes,
        fit_customers=len(x),
    )
    labels = assign(features, model)
    model.sizes = np.bincount(labels, minlength=model.k).astype(int).tolist()
    return model


def centroid_profiles(model: ClusterModel) -> list[dict[str, Any]]:
    """Return each centroid in original units (days, orders, money...) with its name and size."""
    rows = []
    centroids = np.asarray(model.centroids) * np.asarray(model.scale) + np.asarray(model.mean)
    for i, row in enumerate(centroids):
        profile: dict[str, Any] = {"cluster_id": i, "name": model.names[i]}
        if model.sizes:
            profile["customers"] = model.sizes[i]
        for name, value in zip(CLUSTER_FEATURES, row.tolist(), strict=True):
            profile[name] = round(float(np.expm1(value)) if name in LOGGED else float(value), 3) + 0.0
        rows.append(profile)
    return rows
