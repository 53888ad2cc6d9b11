"""Customer segmentation: RFM segments, behaviour clusters, recommended actions."""

from salesbi.segmentation.model import SegmentationModel
from salesbi.segmentation.segment import (
    SegmentationResult,
    segment_customers,
    segment_from_history,
    segment_from_rfm,
)

__all__ = [
    "SegmentationModel",
    "SegmentationResult",
    "segment_customers",
    "segment_from_history",
    "segment_from_rfm",
]
