"""The report layer (``rpt``): star schema, analytic tables, commentary."""
