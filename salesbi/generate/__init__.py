"""A deterministic generator of sample companies in the canonical CSV layout."""
