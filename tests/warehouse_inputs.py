"""Read core and the warehouse's order-grain aggregates in one transaction (test helper).

Shared by tests/test_order_grain.py and tests/test_model_inputs.py: both compare what the
warehouse aggregates (``salesbi.reports.sql.model_inputs``) with what pandas computes from
the same core.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from salesbi import contract
from salesbi.reports.sql.model_inputs import (
    FIRST_USES_SPEC,
    ORDERS_SPEC,
    _read,
    first_uses_select,
    order_history_select,
    read_forecast_days,
    read_insight_facts,
    read_order_history,
)
from salesbi.segmentation.history import OrderHistory
from salesbi.types import conform
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import create_engine
from salesbi.warehouse.load import read_table


@dataclass(frozen=True)
class WarehouseInputs:
    """Core's tables (conformed) and the warehouse's aggregates of them, read in one snapshot."""

    core: dict[str, pd.DataFrame]
    #: the per-order rows and the first uses as the database sends them
    orders: pd.DataFrame
    first_uses: pd.DataFrame
    #: what the model steps read (``read_order_history``, ``read_forecast_days``, ``read_insight_facts``)
    history: OrderHistory
    days: pd.DataFrame
    insights: pd.DataFrame


def read_warehouse_inputs(url: str) -> WarehouseInputs:
    """Return core and the warehouse's aggregates of ``url``, all read in one transaction."""
    engine = create_engine(url)
    metadata = warehouse_metadata()
    try:
        with engine.begin() as conn:
            core = {
                s.name: conform(read_table(conn, metadata.tables[f"core.{s.name}"]), s)
                for s in contract.TABLES
            }
            return WarehouseInputs(
                core=core,
                orders=_read(conn, order_history_select(metadata), ORDERS_SPEC),
                first_uses=_read(conn, first_uses_select(metadata), FIRST_USES_SPEC),
                history=read_order_history(conn, metadata),
                days=read_forecast_days(conn, metadata),
                insights=read_insight_facts(conn, metadata),
            )
    finally:
        engine.dispose()
