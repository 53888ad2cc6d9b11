"""Validation configuration: per-rule severity, business-rule parameters and table-level limits.

Read from ``expectations/severity.yaml`` and ``expectations/business_rules.yaml``;
see docs/validation.md for every setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml

from salesbi import contract
from salesbi.errors import ConfigurationError
from salesbi.resources import project_dir

Severity = Literal["reject", "warn"]
SEVERITIES: tuple[str, ...] = ("reject", "warn")

EXPECTATIONS_DIR = project_dir("expectations")

# Rules that keep core consistent (keys unique and present, references resolvable): always reject.
# (not_null covers the contract's required columns, which are NOT NULL in core.)
FIXED_REJECT: frozenset[str] = frozenset(
    {
        "not_null",
        "duplicate_key",
        "duplicate_identical",
        "key_collision",
        "foreign_key",
        "parent_rejected",
        # a value the warehouse would refuse (or that is not a value at all) never reaches a load
        "unclosed_quote",
        "field_count",
        "text_too_long",
        "number_out_of_range",
        "not_finite",
        "control_character",
        "date_out_of_range",
    }
)


@dataclass(frozen=True)
class ValidationConfig:
    """Severities per rule id, business-rule parameters and table-level limits."""

    severity: Mapping[str, Severity] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    max_shrink_fraction: float = 0.5
    allow_shrink: frozenset[str] = frozenset()
    allow_empty: frozenset[str] = frozenset()
    source: str = "defaults"

    def severity_of(self, rule: str) -> Severity:
        """Return ``reject`` or ``warn`` for ``rule`` (unknown rules reject)."""
        if rule in FIXED_REJECT:
            return "reject"
        return self.severity.get(rule, "reject")

    def with_changes(self, **changes: Any) -> ValidationConfig:
        """Return a copy with ``changes`` applied (e.g. ``allow_shrink=frozenset({'orders'})``)."""
        return replace(self, **changes)

    @property
    def min_order_date(self) -> date:
        """Return the earliest accepted order date (parameters.min_order_date)."""
        return date.fromisoformat(str(self.parameters.get("min_order_date", "1990-01-01")))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigurationError(
            "validation configuration file not found", file=path, hint="restore it from the repository"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"not valid YAML: {exc}", file=path, hint="fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise ConfigurationError("expected a mapping at the top level", file=path)
    return data


def load_rules_file(directory: Path | None = None) -> dict[str, Any]:
    """Return the parsed ``business_rules.yaml`` of ``directory`` (default: repo expectations/)."""
    return _read_yaml((directory or EXPECTATIONS_DIR) / "business_rules.yaml")


def load_config(directory: Path | None = None) -> ValidationConfig:
    """Return the ValidationConfig read from severity.yaml and business_rules.yaml in ``directory``."""
    folder = directory or EXPECTATIONS_DIR
    path = folder / "severity.yaml"
    data = _read_yaml(path)
    rules = data.get("rules") or {}
    if not isinstance(rules, dict):
        raise ConfigurationError("'rules' must map rule ids to reject or warn", file=path)
    severity: dict[str, Severity] = {}
    for rule, value in rules.items():
        if value not in SEVERITIES:
            raise ConfigurationError(
                f"rule {rule!r} has severity {value!r}",
                file=path,
                hint="use reject or warn",
            )
        if rule in FIXED_REJECT and value != "reject":
            raise ConfigurationError(
                f"rule {rule!r} cannot be set to {value!r}: it keeps keys and references in core consistent",
                file=path,
                hint=f"set {rule}: reject",
            )
        severity[str(rule)] = value
    tables = data.get("tables") or {}
    names = set(contract.TABLES_BY_NAME)

    def table_set(key: str) -> frozenset[str]:
        values = tables.get(key) or []
        unknown = [v for v in values if v not in names]
        if unknown:
            raise ConfigurationError(
                f"tables.{key} names unknown tables {unknown}",
                file=path,
                hint=f"use canonical names: {', '.join(contract.TABLES_BY_NAME)}",
            )
        return frozenset(values)

    fraction = float(tables.get("max_shrink_fraction", 0.5))
    if not 0 <= fraction <= 1:
        raise ConfigurationError(
            f"tables.max_shrink_fraction is {fraction}", file=path, hint="use a fraction between 0 and 1"
        )
    params = load_rules_file(folder).get("parameters") or {}
    return ValidationConfig(
        severity=severity,
        parameters=dict(params),
        max_shrink_fraction=fraction,
        allow_shrink=table_set("allow_shrink"),
        allow_empty=table_set("allow_empty"),
        source=str(path),
    )
