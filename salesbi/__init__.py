"""salesbi: seven sales CSV tables in, a validated warehouse, report tables, models and Power BI out."""

__version__ = "0.1.0"
