"""What the running API holds: settings, accepted keys, the loaded models, the warehouse reader."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from salesbi.api.db import RptReader, read_only_engine
from salesbi.api.settings import ApiSettings
from salesbi.errors import SalesBIError
from salesbi.prediction.model import MODEL_NAME as PREDICTION_MODEL
from salesbi.prediction.model import StoredModel
from salesbi.public import load_prediction_model, load_segmentation_model
from salesbi.segmentation.model import MODEL_NAME as SEGMENTATION_MODEL
from salesbi.segmentation.model import SegmentationModel

log = logging.getLogger(__name__)


def _why(exc: Exception, models_dir: Path, name: str) -> str:
    """Return why model ``name`` could not be loaded: the user-facing message, or what was corrupt."""
    if isinstance(exc, SalesBIError):
        return exc.message
    log.error("the stored model %r under %s cannot be loaded", name, models_dir, exc_info=exc)
    return (
        f"the newest stored model {name!r} under {models_dir} is unreadable "
        f"({type(exc).__name__}: {str(exc)[:200]}); retrain it (salesbi run) or remove that version "
        "folder, then POST /admin/reload"
    )


@dataclass
class ApiState:
    """Loaded once at startup (and by POST /admin/reload); a missing piece keeps its reason for 503s."""

    settings: ApiSettings
    keys: tuple[str, ...]
    segmentation: SegmentationModel | None = None
    prediction: StoredModel | None = None
    reasons: dict[str, str] = field(default_factory=dict)
    reader: RptReader | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> None:
        """(Re)load both models from the model store and open the read-only warehouse reader."""
        reasons: dict[str, str] = {}
        segmentation: SegmentationModel | None = None
        prediction: StoredModel | None = None
        try:
            segmentation = load_segmentation_model(self.settings.models_dir)
        except Exception as exc:  # noqa: BLE001 - any unreadable model means 503 there, never no API
            reasons[SEGMENTATION_MODEL] = _why(exc, self.settings.models_dir, SEGMENTATION_MODEL)
        try:
            prediction = load_prediction_model(self.settings.models_dir)
        except Exception as exc:  # noqa: BLE001 - as above
            reasons[PREDICTION_MODEL] = _why(exc, self.settings.models_dir, PREDICTION_MODEL)
        reader: RptReader | None = None
        try:
            reader = RptReader(read_only_engine(self.settings.warehouse_url))
        except SalesBIError as exc:
            reasons["warehouse"] = exc.message
        for what, why in reasons.items():
            log.warning("API starts without %s: %s", what, why)
        with self.lock:
            old = self.reader
            self.segmentation, self.prediction, self.reader, self.reasons = (
                segmentation,
                prediction,
                reader,
                reasons,
            )
        if old is not None:
            old.engine.dispose()
