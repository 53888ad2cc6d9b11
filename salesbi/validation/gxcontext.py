"""Lazy, quiet access to Great Expectations (its import takes seconds, so only functions import it)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from functools import cache
from types import ModuleType
from typing import Any


@cache
def gx() -> ModuleType:
    """Return the imported ``great_expectations`` module, with analytics off and progress bars silenced."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    return great_expectations


def import_in_background() -> None:
    """Start importing Great Expectations on a daemon thread; returns at once.

    Call it before work that leaves a core idle (reading CSVs with Arrow), so that the first
    validation does not wait the import's few seconds. Harmless if GX is already imported.
    """
    if "great_expectations" not in sys.modules:
        threading.Thread(target=gx, name="import-great-expectations", daemon=True).start()


def ephemeral_context() -> Any:
    """Return a new in-memory GX data context without analytics and without tqdm progress bars."""
    g = gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return g.get_context(mode="ephemeral", project_config=config)
