"""Resolving the warehouse URL from a Prefect Secret block, so passwords never sit in parameters or logs."""

from __future__ import annotations

from typing import Any

from prefect.blocks.system import Secret

from salesbi.errors import ConfigurationError
from salesbi.params import PipelineParams


def with_warehouse_secret(params: PipelineParams) -> PipelineParams:
    """Return ``params`` with ``warehouse_url`` read from the Secret block named by ``warehouse_secret``."""
    if not params.warehouse_secret:
        return params
    try:
        secret: Any = Secret.load(params.warehouse_secret)  # sync call from a sync flow: a block
    except ValueError as exc:
        raise ConfigurationError(
            f"no Prefect Secret block named {params.warehouse_secret!r}",
            hint="create it: see docs/deploy.md, 'Set the warehouse secret'",
        ) from exc
    return params.model_copy(update={"warehouse_url": str(secret.get())})
