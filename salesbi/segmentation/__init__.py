"""Customer segmentation: RFM segments, behaviour clusters, recommended actions."""
