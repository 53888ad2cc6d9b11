"""Prefect tasks: thin wrappers adding retries, logging and artifacts around salesbi stages."""
