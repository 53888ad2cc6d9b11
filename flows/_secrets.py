"""Where a flow's warehouse URL comes from: a Prefect Secret block or a named environment variable.

A password never sits in flow parameters, the UI's form or logs: the form
names the secret (or the variable), and the URL is looked up on the worker.
"""

from __future__ import annotations

import os
from typing import Any

from prefect.blocks.system import Secret

from salesbi.errors import ConfigurationError
from salesbi.params import PipelineParams, RunOptions


def warehouse_url_for(options: RunOptions) -> str | None:
    """Return the warehouse URL ``options`` names (secret, then environment variable), else None (default)."""
    if options.warehouse_secret:
        try:
            secret: Any = Secret.load(options.warehouse_secret)  # sync call from a sync flow: a block
        except ValueError:
            raise ConfigurationError(
                f"no Prefect Secret block named {options.warehouse_secret!r}",
                hint="create it: see docs/deploy.md, 'Set the warehouse secret'",
            ) from None
        return str(secret.get())
    if options.warehouse_env:
        value = os.environ.get(options.warehouse_env)
        if not value:
            raise ConfigurationError(
                f"the environment variable {options.warehouse_env} named by warehouse_env is not set "
                "on this worker",
                hint="set it in the worker's environment (or use warehouse_secret); see docs/deploy.md",
            )
        return value
    return getattr(options, "warehouse_url", None)


def pipeline_params(options: RunOptions) -> PipelineParams:
    """Return the library's parameters for ``options``, with the warehouse URL resolved on this worker."""
    return PipelineParams(
        **options.model_dump(exclude={"warehouse_url"}), warehouse_url=warehouse_url_for(options)
    )


def with_warehouse_secret(params: PipelineParams) -> PipelineParams:
    """Return ``params`` with ``warehouse_url`` resolved from its secret or variable (kept for callers)."""
    return pipeline_params(params)
