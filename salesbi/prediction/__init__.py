"""Customer-level sales prediction (LightGBM) and the model store."""

from salesbi.modelstore import load_latest, save, save_all
from salesbi.prediction.model import StoredModel
from salesbi.prediction.predict import PredictionResult, predict_customer_sales, predict_from_history

__all__ = [
    "PredictionResult",
    "StoredModel",
    "load_latest",
    "predict_customer_sales",
    "predict_from_history",
    "save",
    "save_all",
]
