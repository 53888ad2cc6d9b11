"""Report tables built inside the warehouse (``--reports-in warehouse``): SQL renderings of the definitions."""
