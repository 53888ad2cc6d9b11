"""The stored segmentation model: RFM score edges and the cluster model, at an as-of date."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from salesbi.modelstore import dumps, make_version, read_card
from salesbi.sampling import BY_REPEAT_PURCHASES, cap_record
from salesbi.segmentation.clusters import CLUSTER_FEATURES, FIT_CAP, K_RANGE, ClusterModel
from salesbi.segmentation.rfm import RfmEdges

MODEL_NAME = "customer_segments"
MODEL_FILE = "segmentation.json"


@dataclass
class SegmentationModel:
    """What scores a customer like the batch did: as-of date, RFM edges, clusters (None when too few)."""

    as_of: date
    edges: RfmEdges
    clusters: ClusterModel | None
    data_start: date | None = None
    data_end: date | None = None
    n_customers: int = 0
    random_state: int = 0
    created_at: str = ""
    version: str = ""
    model_name: str = MODEL_NAME

    def payload(self) -> dict[str, Any]:
        """Return the model's content as JSON-able data."""
        return {
            "as_of": self.as_of.isoformat(),
            "edges": self.edges.as_dict(),
            "clusters": self.clusters.as_dict() if self.clusters else None,
        }

    def files(self) -> dict[str, bytes]:
        """Return the files to store: ``segmentation.json``."""
        return {MODEL_FILE: dumps(self.payload())}

    def card(self) -> dict[str, Any]:
        """Return the model card."""
        return {
            "kind": "segmentation",
            "model_name": self.model_name,
            "version": self.version,
            "created_at": self.created_at,
            "training_window": {
                "start": self.data_start.isoformat() if self.data_start else None,
                "end": self.data_end.isoformat() if self.data_end else None,
                "as_of": self.as_of.isoformat(),
            },
            "features": list(CLUSTER_FEATURES),
            "params": {"k_range": list(K_RANGE), "random_state": self.random_state, "n_init": 4},
            "training_caps": self.training_caps(),
            "metrics": {
                "customers": self.n_customers,
                "k": self.clusters.k if self.clusters else None,
                "silhouette_by_k": (
                    {str(k): v for k, v in self.clusters.silhouette_by_k.items()} if self.clusters else {}
                ),
                "sizes": self.clusters.sizes if self.clusters else [],
            },
        }

    def training_caps(self) -> list[dict[str, Any]]:
        """Return the card's statement of the KMeans fit's cap (none when there are no clusters)."""
        if self.clusters is None:
            return []
        used = self.clusters.fit_customers or min(self.n_customers, FIT_CAP)  # older models: not stored
        return [cap_record("kmeans", "customers", FIT_CAP, self.n_customers, used, BY_REPEAT_PURCHASES)]

    def stamp(self, created_at: datetime) -> None:
        """Set ``created_at`` and the content-derived ``version``."""
        self.created_at = created_at.isoformat()
        self.version = make_version(created_at, self.files(), self.card())

    @classmethod
    def from_folder(cls, folder: Path) -> SegmentationModel:
        """Return the model stored in a version folder."""
        card = read_card(folder)
        data = json.loads((Path(folder) / MODEL_FILE).read_text(encoding="utf-8"))
        window = card.get("training_window", {})
        return cls(
            as_of=date.fromisoformat(data["as_of"]),
            edges=RfmEdges.from_dict(data["edges"]),
            clusters=ClusterModel.from_dict(data["clusters"]) if data["clusters"] else None,
            data_start=date.fromisoformat(window["start"]) if window.get("start") else None,
            data_end=date.fromisoformat(window["end"]) if window.get("end") else None,
            n_customers=int(card.get("metrics", {}).get("customers", 0)),
            random_state=int(card.get("params", {}).get("random_state", 0)),
            created_at=card.get("created_at", ""),
            version=card.get("version", ""),
            model_name=card.get("model_name", MODEL_NAME),
        )
