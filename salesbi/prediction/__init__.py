"""Customer-level sales prediction (LightGBM) and the model store."""
