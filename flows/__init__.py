"""Prefect flows: composition only, one module per deployable flow."""
