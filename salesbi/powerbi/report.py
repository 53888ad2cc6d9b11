"""Render the report (PBIR): report.json, version.json, pages, visuals and the theme."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from salesbi.powerbi.model import ModelPlan
from salesbi.powerbi.report_spec import Field, PageSpec, VisualSpec

SCHEMA_BASE = "https://developer.microsoft.com/json-schemas/fabric/item/report"
REPORT_VERSION = "3.0.0"
PAGE_VERSION = "2.0.0"
VISUAL_VERSION = "2.4.0"
SCHEMAS = {
    "definitionProperties": f"{SCHEMA_BASE}/definitionProperties/2.0.0/schema.json",
    "report": f"{SCHEMA_BASE}/definition/report/{REPORT_VERSION}/schema.json",
    "version": f"{SCHEMA_BASE}/definition/versionMetadata/1.0.0/schema.json",
    "pages": f"{SCHEMA_BASE}/definition/pagesMetadata/1.0.0/schema.json",
    "page": f"{SCHEMA_BASE}/definition/page/{PAGE_VERSION}/schema.json",
    "visual": f"{SCHEMA_BASE}/definition/visualContainer/{VISUAL_VERSION}/schema.json",
}
THEME_NAME = "SalesBI"
# Power BI's shipped base theme every Desktop-saved report names; our custom theme applies on top.
BASE_THEME = "CY24SU10"
THEME_FILE = "SalesBI.json"
PAGE_WIDTH, PAGE_HEIGHT, GAP = 1280, 720, 8
TOOLTIP_WIDTH, TOOLTIP_HEIGHT = 320, 240

THEME: dict[str, Any] = {
    "name": THEME_NAME,
    "dataColors": ["#1F4E79", "#2E86C1", "#F39C12", "#27AE60", "#C0392B", "#8E44AD", "#16A085", "#7F8C8D"],
    "background": "#FFFFFF",
    "foreground": "#1B2631",
    "tableAccent": "#1F4E79",
    "good": "#27AE60",
    "neutral": "#F39C12",
    "bad": "#C0392B",
    "textClasses": {
        "title": {"fontFace": "Segoe UI Semibold", "fontSize": 12, "color": "#1B2631"},
        "callout": {"fontFace": "Segoe UI Semibold", "fontSize": 24, "color": "#1F4E79"},
        "label": {"fontFace": "Segoe UI", "fontSize": 10, "color": "#1B2631"},
    },
}


@dataclass
class ReportPlan:
    """The pages and visuals the model can support, and the declared visuals it could not."""

    pages: list[PageSpec] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def field_exists(plan: ModelPlan, f: Field) -> bool:
    """Return whether a visual field exists in the model (column of a table, or emitted measure)."""
    if f.is_measure:
        m = plan.measure(f.name)
        return m is not None and m.table == f.table
    return plan.has_column(f.table, f.name)


def plan_report(plan: ModelPlan, pages: tuple[PageSpec, ...]) -> ReportPlan:
    """Return the pages with only the visuals whose fields all exist; list what was left out."""
    out = ReportPlan()
    for page in pages:
        kept = []
        for v in page.visuals:
            missing = [f.query_ref for f in v.fields if not field_exists(plan, f)]
            if missing:
                out.skipped.append(f"visual {page.key}/{v.key}: missing {', '.join(missing)}")
            else:
                kept.append(v)
        if any(v.visual_type != "slicer" for v in kept):
            out.pages.append(replace(page, visuals=tuple(kept)))
        else:
            out.skipped.append(f"page {page.key}: no visual has its fields")
    return out


def _literal(value: str) -> dict[str, Any]:
    return {"expr": {"Literal": {"Value": value}}}


def _text(value: str) -> dict[str, Any]:
    return _literal("'" + value.replace("'", "''") + "'")


def _field_expr(f: Field) -> dict[str, Any]:
    kind = "Measure" if f.is_measure else "Column"
    return {kind: {"Expression": {"SourceRef": {"Entity": f.table}}, "Property": f.name}}


def _projection(f: Field, *, active: bool) -> dict[str, Any]:
    p: dict[str, Any] = {"field": _field_expr(f), "queryRef": f.query_ref, "nativeQueryRef": f.name}
    if active:
        p["active"] = True
    return p


def page_size(page: PageSpec) -> tuple[int, int]:
    """Return ``(width, height)`` of a page: tooltip pages are small."""
    return (TOOLTIP_WIDTH, TOOLTIP_HEIGHT) if page.kind == "tooltip" else (PAGE_WIDTH, PAGE_HEIGHT)


def layout(
    visuals: tuple[VisualSpec, ...], page_width: int = PAGE_WIDTH, page_height: int = PAGE_HEIGHT
) -> dict[str, tuple[int, int, int, int]]:
    """Return ``key -> (x, y, width, height)``: slicers on top, then cards, then a two-column grid.

    On a narrow page (a tooltip) the cards are stacked two per row.
    """
    PAGE_WIDTH, PAGE_HEIGHT = page_width, page_height
    pos: dict[str, tuple[int, int, int, int]] = {}
    slicers = [v for v in visuals if v.visual_type == "slicer"]
    cards = [v for v in visuals if v.visual_type == "card"]
    rest = [v for v in visuals if v.visual_type not in ("slicer", "card")]
    y = GAP
    if slicers:
        w = (PAGE_WIDTH - GAP * (len(slicers) + 1)) // max(len(slicers), 4)
        for i, v in enumerate(slicers):
            pos[v.key] = (GAP + i * (w + GAP), y, w, 56)
        y += 56 + GAP
    if cards:
        per_row = len(cards) if PAGE_WIDTH >= 640 else 2
        card_h = 96 if PAGE_WIDTH >= 640 else (PAGE_HEIGHT - GAP * 3) // 2
        w = (PAGE_WIDTH - GAP * (per_row + 1)) // per_row
        for i, v in enumerate(cards):
            line, column = divmod(i, per_row)
            pos[v.key] = (GAP + column * (w + GAP), y + line * (card_h + GAP), w, card_h)
        y += (card_h + GAP) * ((len(cards) + per_row - 1) // per_row)
    rows: list[list[VisualSpec]] = []
    for v in rest:
        if v.wide or not rows or len(rows[-1]) == 2 or rows[-1][0].wide:
            rows.append([v])
        else:
            rows[-1].append(v)
    if rows:
        h = (PAGE_HEIGHT - y - GAP * len(rows)) // len(rows)
        for row in rows:
            w = (PAGE_WIDTH - GAP * (len(row) + 1)) // len(row)
            for i, v in enumerate(row):
                pos[v.key] = (GAP + i * (w + GAP), y, w, h)
            y += h + GAP
    return pos


def alt_text(v: VisualSpec) -> str:
    """Return the screen-reader description of a visual: its kind, title and the fields it shows."""
    if v.alt_text:
        return v.alt_text
    kind = VISUAL_KINDS.get(v.visual_type, v.visual_type)
    shown = ", ".join(f.name.replace("_", " ") for f in v.fields)
    return f"{kind}: {v.title}. Shows {shown}."


VISUAL_KINDS = {
    "card": "Card",
    "slicer": "Slicer",
    "lineChart": "Line chart",
    "clusteredColumnChart": "Column chart",
    "clusteredBarChart": "Bar chart",
    "donutChart": "Donut chart",
    "scatterChart": "Scatter chart",
    "tableEx": "Table",
    "azureMap": "Map",
}


def visual_json(v: VisualSpec, position: tuple[int, int, int, int], order: int) -> dict[str, Any]:
    """Return the ``visual.json`` object of one visual container."""
    by_role: dict[str, list[Field]] = {}
    for role, fs in v.roles:  # a role may be listed twice (e.g. a table's columns, then its measures)
        by_role.setdefault(role, []).extend(fs)
    query_state = {
        role: {
            "projections": [_projection(f, active=(role == "Category" and i == 0)) for i, f in enumerate(fs)]
        }
        for role, fs in by_role.items()
    }
    query: dict[str, Any] = {"queryState": query_state}
    if v.sort is not None:
        query["sortDefinition"] = {
            "sort": [
                {
                    "field": _field_expr(v.sort),
                    "direction": "Descending" if v.sort_descending else "Ascending",
                }
            ],
            "isDefaultSort": True,
        }
    visual: dict[str, Any] = {"visualType": v.visual_type, "query": query}
    if v.slicer_mode is not None:
        visual["objects"] = {"data": [{"properties": {"mode": _text(v.slicer_mode)}}]}
    visual["visualContainerObjects"] = {
        "title": [{"properties": {"show": _literal("true"), "text": _text(v.title)}}],
        "general": [{"properties": {"altText": _text(alt_text(v))}}],
    }
    if v.visual_type == "slicer":  # the same slicer field is synced across pages
        field = v.fields[0]
        visual["syncGroup"] = {
            "groupName": f"{field.table}.{field.name}",
            "fieldChanges": True,
            "filterChanges": True,
        }
    visual["drillFilterOtherVisuals"] = True
    x, y, w, h = position
    return {
        "$schema": SCHEMAS["visual"],
        "name": v.key,
        "position": {"x": x, "y": y, "z": order * 1000, "height": h, "width": w, "tabOrder": order * 1000},
        "visual": visual,
    }


def page_json(page: PageSpec) -> dict[str, Any]:
    """Return ``page.json``; drillthrough and tooltip pages carry their binding field and filter."""
    width, height = page_size(page)
    doc: dict[str, Any] = {
        "$schema": SCHEMAS["page"],
        "name": page.key,
        "displayName": page.display_name,
        "displayOption": "FitToPage",
        "height": height,
        "width": width,
    }
    if page.kind in ("drillthrough", "tooltip") and page.binding is not None:
        kind = "Drillthrough" if page.kind == "drillthrough" else "Tooltip"
        filter_name = f"{page.key}_binding"
        doc["filterConfig"] = {
            "filters": [
                {
                    "name": filter_name,
                    "field": _field_expr(page.binding),
                    "type": "Categorical",
                    "howCreated": "Drillthrough" if page.kind == "drillthrough" else "User",
                }
            ]
        }
        doc["pageBinding"] = {
            "name": f"{page.key}_pageBinding",
            "type": kind,
            "referenceScope": "Default",
            "parameters": [
                {
                    "name": f"{page.key}_parameter",
                    "boundFilter": filter_name,
                    "fieldExpr": _field_expr(page.binding),
                }
            ],
        }
        doc["type"] = kind
        if page.kind == "tooltip":
            doc["visibility"] = "HiddenInViewMode"
    return doc


def pages_json(report: ReportPlan) -> dict[str, Any]:
    """Return ``pages/pages.json`` (page order, first page active)."""
    order = [p.key for p in report.pages]  # question pages first, then drillthrough and tooltip pages
    return {"$schema": SCHEMAS["pages"], "pageOrder": order, "activePageName": order[0] if order else ""}


def report_json() -> dict[str, Any]:
    """Return ``report.json``: the custom theme and report settings."""
    return {
        "$schema": SCHEMAS["report"],
        "themeCollection": {
            "baseTheme": {
                "name": BASE_THEME,
                "reportVersionAtImport": {
                    "visual": VISUAL_VERSION,
                    "report": REPORT_VERSION,
                    "page": PAGE_VERSION,
                },
                "type": "SharedResources",
            },
            "customTheme": {
                "name": THEME_FILE,
                "reportVersionAtImport": {
                    "visual": VISUAL_VERSION,
                    "report": REPORT_VERSION,
                    "page": PAGE_VERSION,
                },
                "type": "RegisteredResources",
            },
        },
        "resourcePackages": [
            {
                "name": "RegisteredResources",
                "type": "RegisteredResources",
                "items": [{"name": THEME_FILE, "path": THEME_FILE, "type": "CustomTheme"}],
            }
        ],
        "settings": {
            "useStylableVisualContainerHeader": True,
            "exportDataMode": "AllowSummarized",
            "defaultDrillFilterOtherVisuals": True,
            "allowChangeFilterTypes": True,
            "useEnhancedTooltips": True,
            "useDefaultAggregateDisplayName": True,
        },
    }


def version_json() -> dict[str, Any]:
    """Return ``definition/version.json``."""
    return {"$schema": SCHEMAS["version"], "version": "2.0.0"}


def definition_pbir(model_folder: str) -> dict[str, Any]:
    """Return ``definition.pbir`` pointing at the semantic model folder by relative path."""
    return {
        "$schema": SCHEMAS["definitionProperties"],
        "version": "4.0",
        "datasetReference": {"byPath": {"path": f"../{model_folder}"}},
    }
