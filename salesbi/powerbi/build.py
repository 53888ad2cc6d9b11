"""Write the whole PBIP project (semantic model + report) for the ``rpt`` tables."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from salesbi.errors import ConfigurationError
from salesbi.powerbi import declarations, report_spec
from salesbi.powerbi.ids import lineage_tag
from salesbi.powerbi.model import ModelPlan, plan_model
from salesbi.powerbi.report import (
    THEME,
    THEME_FILE,
    ReportPlan,
    definition_pbir,
    layout,
    page_json,
    page_size,
    pages_json,
    plan_report,
    report_json,
    version_json,
    visual_json,
)
from salesbi.powerbi.semantic_model import (
    database_tmdl,
    expressions_tmdl,
    model_tmdl,
    relationships_tmdl,
    role_tmdl,
    table_tmdl,
)
from salesbi.schema import Table

PROJECT = "SalesBI"
MODEL_FOLDER = f"{PROJECT}.SemanticModel"
REPORT_FOLDER = f"{PROJECT}.Report"
# What the checked-in ``powerbi/`` carries: where ``make run`` puts the Parquet files when the
# repository is cloned to C:\salesbi. Change the ParquetFolder parameter (docs/powerbi.md) otherwise.
DEFAULT_PARQUET_FOLDER = r"C:\salesbi\out\powerbi\data"
PBIP_SCHEMA = "https://developer.microsoft.com/json-schemas/fabric/pbip/pbipProperties/1.0.0/schema.json"
PBISM_SCHEMA = "https://developer.microsoft.com/json-schemas/fabric/item/semanticModel/definitionProperties/1.0.0/schema.json"
PLATFORM_SCHEMA = (
    "https://developer.microsoft.com/json-schemas/fabric/gitIntegration/platformProperties/2.0.0/schema.json"
)
GITIGNORE = "**/.pbi/localSettings.json\n**/.pbi/cache.abf\n"


def plan_project(tables: Sequence[Table] | None = None) -> tuple[ModelPlan, ReportPlan]:
    """Return the model and report plans for ``tables`` (default: every ``rpt`` table)."""
    if tables is None:
        from salesbi.rpt import rpt_tables

        tables = rpt_tables()
    model = plan_model(
        tables, declarations.MEASURES, declarations.RELATIONSHIPS, declarations.SORTS, declarations.ROLES
    )
    return model, plan_report(model, report_spec.ALL_PAGES)


def project_files(parquet_folder: str, tables: Sequence[Table] | None = None) -> dict[str, str]:
    """Return every file of the project as ``relative path -> text`` (deterministic, sorted)."""
    if not parquet_folder.strip():
        raise ConfigurationError(
            "the Parquet folder for the Power BI project is empty",
            hint="pass the absolute folder that holds <table>.parquet, e.g. <out>/powerbi/data",
        )
    if not (PureWindowsPath(parquet_folder).is_absolute() or PurePosixPath(parquet_folder).is_absolute()):
        raise ConfigurationError(
            f"the Parquet folder for the Power BI project is not absolute: {parquet_folder!r}",
            hint=r"Power Query needs an absolute folder, e.g. C:\salesbi\out\powerbi\data or /srv/out",
        )
    model, report = plan_project(tables)
    files: dict[str, str] = {
        f"{PROJECT}.pbip": _json(
            {
                "$schema": PBIP_SCHEMA,
                "version": "1.0",
                "artifacts": [{"report": {"path": REPORT_FOLDER}}],
                "settings": {"enableAutoRecovery": True},
            }
        ),
        ".gitignore": GITIGNORE,
        f"{MODEL_FOLDER}/definition.pbism": _json(
            {"$schema": PBISM_SCHEMA, "version": "4.2", "settings": {}}
        ),
        f"{MODEL_FOLDER}/.platform": _platform("SemanticModel"),
        f"{MODEL_FOLDER}/definition/database.tmdl": database_tmdl(),
        f"{MODEL_FOLDER}/definition/model.tmdl": model_tmdl(model),
        f"{MODEL_FOLDER}/definition/expressions.tmdl": expressions_tmdl(parquet_folder.rstrip("\\/")),
        f"{MODEL_FOLDER}/definition/relationships.tmdl": relationships_tmdl(model),
        f"{REPORT_FOLDER}/definition.pbir": _json(definition_pbir(MODEL_FOLDER)),
        f"{REPORT_FOLDER}/.platform": _platform("Report"),
        f"{REPORT_FOLDER}/definition/report.json": _json(report_json()),
        f"{REPORT_FOLDER}/definition/version.json": _json(version_json()),
        f"{REPORT_FOLDER}/definition/pages/pages.json": _json(pages_json(report)),
        f"{REPORT_FOLDER}/StaticResources/RegisteredResources/{THEME_FILE}": _json(THEME),
    }
    for table in model.tables:
        files[f"{MODEL_FOLDER}/definition/tables/{table.name}.tmdl"] = table_tmdl(model, table)
    for role in model.roles:
        files[f"{MODEL_FOLDER}/definition/roles/{role.name}.tmdl"] = role_tmdl(role)
    for page in report.pages:
        base = f"{REPORT_FOLDER}/definition/pages/{page.key}"
        files[f"{base}/page.json"] = _json(page_json(page))
        positions = layout(page.visuals, *page_size(page))
        for order, v in enumerate(page.visuals):
            files[f"{base}/visuals/{v.key}/visual.json"] = _json(visual_json(v, positions[v.key], order))
    return dict(sorted(files.items()))


def build_powerbi_project(
    out_dir: Path, *, parquet_folder: str, tables: Sequence[Table] | None = None
) -> Path:
    """Write the PBIP project into ``out_dir`` and return the path of ``SalesBI.pbip``.

    ``parquet_folder`` is the absolute folder of the ``<table>.parquet`` files
    (the default of the ``ParquetFolder`` parameter); ``tables`` defaults to the
    ``rpt`` registry. Previous ``SalesBI.*`` output in ``out_dir`` is replaced.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigurationError(
            "the Power BI output path is a file, not a folder", file=out_dir, hint="pass a folder with --out"
        )
    files = project_files(parquet_folder, tables)
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder in (MODEL_FOLDER, REPORT_FOLDER):
        if (out_dir / folder).is_dir():
            shutil.rmtree(out_dir / folder)
    for rel, text in files.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    return out_dir / f"{PROJECT}.pbip"


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def _platform(kind: str) -> str:
    return _json(
        {
            "$schema": PLATFORM_SCHEMA,
            "metadata": {"type": kind, "displayName": PROJECT},
            "config": {"version": "2.0", "logicalId": lineage_tag("platform", kind)},
        }
    )
