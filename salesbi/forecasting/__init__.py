"""Sales forecasting with LightGBM against statistical baselines."""
