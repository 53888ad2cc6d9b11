"""What every model step reports about itself: one ``ml.model_runs`` row per fitted model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from salesbi.schema import Column, Table

MODEL_RUNS = Table(
    name="model_runs",
    schema="ml",
    description="One row per model fitted in a pipeline run: parameters, data window, metrics.",
    key=("run_id", "model_name"),
    columns=(
        Column("run_id", "id", required=True),
        Column("model_name", "text", required=True, length=64),
        Column("model_version", "text", required=True, length=64),
        Column("created_at", "datetime", required=True),
        Column("status", "text", required=True, length=16, allowed=("ok", "too_thin", "failed")),
        Column("data_start", "date"),
        Column("data_end", "date"),
        Column("n_rows", "int"),
        Column("params_json", "long_text"),
        Column("metrics_json", "long_text"),
        Column("notes", "long_text"),
    ),
)


@dataclass
class ModelRun:
    """A fitted model's record: name and version, status, data window, parameters and metrics."""

    model_name: str
    model_version: str
    status: str = "ok"  # ok | too_thin (data too thin for a reliable model) | failed
    data_start: date | None = None
    data_end: date | None = None
    n_rows: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def as_row(self, run_id: str, created_at: Any) -> dict[str, Any]:
        """Return this record as an ``ml.model_runs`` row (parameters and metrics as JSON text)."""
        return {
            "run_id": run_id,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "created_at": created_at,
            "status": self.status,
            "data_start": self.data_start,
            "data_end": self.data_end,
            "n_rows": self.n_rows,
            "params_json": json.dumps(self.params, sort_keys=True, default=str),
            "metrics_json": json.dumps(self.metrics, sort_keys=True, default=str),
            "notes": self.notes,
        }
