"""A deterministic generator of sample companies in the canonical CSV layout (see docs/sample-data.md)."""

from salesbi.generate.company import GenerationSummary, generate_company

__all__ = ["GenerationSummary", "generate_company"]
