"""Great Expectations 1.x suites (``expectations/<table>.json``) generated from the contract and rules.

The JSON files are generated, never edited: change ``salesbi/contract.py``,
``expectations/business_rules.yaml`` or ``expectations/severity.yaml`` and run::

    python -m salesbi.validation.suites          # rewrites expectations/*.json

A test fails when the checked-in files differ from what this module generates.
Building the dicts does not import GX (it is slow to import); :func:`gx_suite`
turns one into a GX ``ExpectationSuite``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from salesbi import contract
from salesbi.validation.config import EXPECTATIONS_DIR, ValidationConfig, load_config
from salesbi.validation.rules import Rule, rules_for

GX_SEVERITY = {"reject": "critical", "warn": "warning"}


def expectation_dict(rule: Rule, config: ValidationConfig) -> dict[str, Any]:
    """Return the GX 1.x expectation configuration of ``rule`` (its rule id and message in ``meta``)."""
    severity = "reject" if rule.level == "table" else config.severity_of(rule.id)
    meta: dict[str, Any] = {"rule": rule.id, "level": rule.level, "origin": rule.origin}
    if rule.column:
        meta["column"] = rule.column
    if rule.other_column:
        meta["other_column"] = rule.other_column
    meta["message"] = rule.message
    return {
        "type": rule.expectation,
        "kwargs": rule.kwargs,
        "meta": meta,
        "severity": GX_SEVERITY[severity],
    }


def suite_dict(table: str, config: ValidationConfig | None = None, directory: Path | None = None) -> dict:
    """Return the GX 1.x ExpectationSuite JSON document for canonical ``table``."""
    config = config or load_config(directory)
    spec = contract.table(table)
    rules = rules_for(spec, directory)
    references = [
        {
            "rule": r.id,
            "column": r.column,
            "references": f"{r.kwargs['parent_table']}.{r.kwargs['parent_column']}",
        }
        for r in rules
        if r.expectation is None
    ]
    return {
        "name": table,
        "expectations": [
            expectation_dict(r, config)
            for r in rules
            if r.expectation is not None and not (r.id == "zero_rows" and table in config.allow_empty)
        ],
        "meta": {
            "generated_by": "salesbi.validation.suites (do not edit; see expectations/business_rules.yaml)",
            "table": table,
            "key": list(spec.key),
            "checked_in_pandas": references,
        },
        "notes": f"{spec.description} Generated from salesbi/contract.py and expectations/*.yaml.",
    }


def render(doc: dict[str, Any]) -> str:
    """Return the canonical text of a suite file (sorted keys, 2-space indent, final newline)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_suites(directory: Path | None = None) -> list[Path]:
    """Write ``<directory>/<table>.json`` for the seven tables; return the paths written."""
    folder = Path(directory) if directory else EXPECTATIONS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    config = load_config(folder if (folder / "severity.yaml").exists() else None)
    rules_dir = folder if (folder / "business_rules.yaml").exists() else None
    paths = []
    for spec in contract.TABLES:
        path = folder / f"{spec.name}.json"
        path.write_text(render(suite_dict(spec.name, config, rules_dir)), encoding="utf-8")
        paths.append(path)
    return paths


def gx_suite(doc: dict[str, Any]) -> Any:
    """Return a ``great_expectations.ExpectationSuite`` built from a suite document (imports GX)."""
    from salesbi.validation.gxcontext import gx

    g = gx()
    return g.ExpectationSuite(
        name=doc["name"], expectations=list(doc["expectations"]), meta=dict(doc["meta"]), notes=doc["notes"]
    )


if __name__ == "__main__":
    for p in write_suites(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(p)
