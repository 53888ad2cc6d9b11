"""Validation of staged tables with Great Expectations, and quarantine of bad rows."""
