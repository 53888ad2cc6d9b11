"""Report tables built inside the warehouse (``--reports-in warehouse``): the definitions as SQL."""
