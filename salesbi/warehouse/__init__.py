"""The warehouse: engines, schemas, DDL, bulk loads, upserts and atomic report swaps."""
