"""salesbi: seven sales CSV tables in, a validated warehouse, report tables, models and Power BI out.

The small public API (see docs/api.md) is importable from here without loading
the heavy libraries until first use::

    import salesbi
    salesbi.segment({"recency_days": 12, "frequency": 9, "monetary": 15400.0})
    salesbi.predict_customer_sales(history_frame)
    salesbi.forecast(monthly_sales_series)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "forecast", "predict_customer_sales", "segment"]

if TYPE_CHECKING:
    from salesbi.public import forecast, predict_customer_sales, segment

_PUBLIC = {"segment", "predict_customer_sales", "forecast"}


def __getattr__(name: str) -> Any:
    """Return the public functions lazily (the library's heavy imports happen on first use)."""
    if name in _PUBLIC:
        from salesbi import public

        return getattr(public, name)
    raise AttributeError(f"module 'salesbi' has no attribute {name!r}")
