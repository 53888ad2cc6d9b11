"""Draw every report page to PNG from the PBIR layout and the measures evaluated over the run's data.

For reviewers and users without Power BI Desktop: each visual is drawn at its PBIR position
with its title and real values (cards, bars, columns, lines, donuts, scatter, tables); maps
are drawn as ranked bars and slicers as their caption with "All". Numbers come from
pbix-mcp's DAX engine (:mod:`salesbi.powerbi.evaluate`) with no slicer selection.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from salesbi.errors import SalesBIError
from salesbi.powerbi.evaluate import DaxModel

MAX_BARS = 12
HEADER = 30  # pixels above the page for its name
MAX_ROWS = 12
MAX_CANDIDATES = 600  # category values ranked by a measure (e.g. all customers)
COLORS = ["#1F4E79", "#2E86C1", "#F39C12", "#27AE60", "#C0392B", "#8E44AD", "#16A085", "#7F8C8D"]


class PreviewUnavailable(SalesBIError):
    """matplotlib (the renderer) is not installed."""


@dataclass
class VisualLayout:
    """One visual of a page as PBIR describes it."""

    name: str
    visual_type: str
    title: str
    x: float
    y: float
    width: float
    height: float
    roles: dict[str, list[tuple[str, str, bool]]]  # role -> [(table, field, is_measure)]
    sort: tuple[str, str, bool, bool] | None  # (table, field, is_measure, descending)


def _field(expr: dict[str, Any]) -> tuple[str, str, bool]:
    for kind in ("Measure", "Column"):
        if kind in expr:
            ref = expr[kind]
            return ref["Expression"]["SourceRef"]["Entity"], ref["Property"], kind == "Measure"
    raise ValueError(f"unsupported field expression {expr}")


def read_page(page_dir: Path) -> tuple[dict[str, Any], list[VisualLayout]]:
    """Return ``(page.json, visuals in z order)`` of one PBIR page folder."""
    page = json.loads((page_dir / "page.json").read_text(encoding="utf-8"))
    visuals = []
    for path in sorted((page_dir / "visuals").glob("*/visual.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        v, pos = doc["visual"], doc["position"]
        title = v["visualContainerObjects"]["title"][0]["properties"]["text"]["expr"]["Literal"]["Value"]
        roles = {
            role: [_field(p["field"]) for p in state["projections"]]
            for role, state in v["query"]["queryState"].items()
        }
        sort = None
        if "sortDefinition" in v["query"]:
            s = v["query"]["sortDefinition"]["sort"][0]
            sort = (*_field(s["field"]), s["direction"] == "Descending")
        visuals.append(
            VisualLayout(
                doc["name"],
                v["visualType"],
                title.strip("'").replace("''", "'"),
                pos["x"],
                pos["y"],
                pos["width"],
                pos["height"],
                roles,
                sort,
            )
        )
    visuals.sort(key=lambda v: (v.y, v.x))
    return page, visuals


def format_value(value: Any, fmt: str) -> str:
    """Return ``value`` as Power BI would roughly show it with format string ``fmt``."""
    if value is None:
        return "(Blank)"
    if isinstance(value, datetime) and (value.hour or value.minute):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, datetime | date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, str):
        return value
    number = float(value)
    if "%" in fmt:
        return f"{number:.1%}"
    if "$" in fmt:
        for size, suffix in ((1e9, "bn"), (1e6, "M"), (1e3, "K")):
            if abs(number) >= size:
                return f"${number / size:.2f}{suffix}"
        return f"${number:,.2f}"
    if fmt in ("#,0", "0") or number.is_integer():
        return f"{number:,.0f}"
    return f"{number:,.2f}"


class PageRenderer:
    """Evaluates and draws the visuals of the report's pages."""

    def __init__(self, model: DaxModel) -> None:
        self.model = model

    def _categories(self, v: VisualLayout) -> tuple[list[Any], list[str], list[dict[str, Any]]]:
        """Return ``(category values, measures, values per category)`` in the visual's order."""
        candidates = v.roles.get("Category") or [c for c in v.roles.get("Values", []) if not c[2]]
        category = candidates[0] if candidates else None
        measures = [f for fs in v.roles.values() for t, f, m in fs if m]
        if category is None:
            return [], measures, []
        table, column, _ = category
        values = self.model.values(table, column)[:MAX_CANDIDATES]
        key = f"{table}.{column}"
        sort = v.sort
        if sort and sort[2] and sort[1] in measures:  # rank by the sort measure, then evaluate the top
            ranked = [(c, self.model.evaluate([sort[1]], {}, group={key: [c]})[sort[1]]) for c in values]
            ranked = [(c, x) for c, x in ranked if x is not None]
            ranked.sort(key=lambda p: p[1], reverse=sort[3])
            values = [c for c, _ in ranked[: max(MAX_BARS, MAX_ROWS)]]
        rows = [self.model.evaluate(measures, {}, group={key: [c]}) for c in values]
        pairs = [(c, r) for c, r in zip(values, rows, strict=True) if any(x is not None for x in r.values())]
        if table == "dim_date":
            month_key = self.model.tables["dim_date"]["columns"].index("year_month_key")
            at = self.model.tables["dim_date"]["columns"].index(column)
            order = {row[at]: row[month_key] for row in self.model.tables["dim_date"]["rows"]}
            pairs.sort(key=lambda p: order.get(p[0], 0))
        return [p[0] for p in pairs], measures, [p[1] for p in pairs]

    def draw(self, ax: Any, v: VisualLayout) -> None:
        """Draw one visual into the matplotlib axes ``ax``."""
        limit = max(int(v.width / 6), 12)
        title = v.title if len(v.title) <= limit else v.title[: limit - 1] + "…"
        ax.set_title(title, fontsize=7.5, loc="left", color="#1B2631")
        kind = v.visual_type
        missing = sorted({t for fs in v.roles.values() for t, _, _ in fs} - set(self.model.tables))
        if missing:
            ax.axis("off")
            ax.text(0.5, 0.5, f"no data: {', '.join(missing)} not in this run", ha="center", fontsize=7)
            return
        if kind == "slicer":
            ax.axis("off")
            ax.text(0.02, 0.2, "All", fontsize=8, transform=ax.transAxes)
            return
        if kind == "card":
            ax.axis("off")
            (name,) = [f for fs in v.roles.values() for t, f, m in fs if m]
            value = self.model.evaluate([name], {})[name]
            text = format_value(value, self.model.formats.get(name, ""))
            size = 15 if len(text) < 12 else 10 if len(text) < 20 else 7
            if len(text) > 30:  # a label card (period, freshness): wrap it
                text = "\n".join(textwrap.wrap(text, max(int(v.width / 6), 16)))
            ax.text(0.5, 0.45, text, ha="center", va="center", fontsize=size, color="#1F4E79")
            return
        if kind == "tableEx":
            self._table(ax, v)
            return
        cats, measures, rows = self._categories(v)
        labels = [format_value(c, "") for c in cats]
        months = (v.roles.get("Category") or [("", "", False)])[0][0] == "dim_date"
        if (
            kind in ("clusteredBarChart", "clusteredColumnChart", "azureMap")
            and len(cats) > MAX_BARS
            and not months
        ):
            cats, labels, rows = cats[:MAX_BARS], labels[:MAX_BARS], rows[:MAX_BARS]
        series = {
            m: [float(r.get(m) or 0) if not isinstance(r.get(m), str) else 0.0 for r in rows]
            for m in measures
        }
        if kind in ("clusteredBarChart", "azureMap"):
            self._bars(ax, labels[::-1], {m: s[::-1] for m, s in series.items()}, horizontal=True)
            if kind == "azureMap":
                ax.text(0.99, 0.01, "map drawn as bars", transform=ax.transAxes, ha="right", fontsize=6)
        elif kind == "clusteredColumnChart":
            self._bars(ax, labels, series, horizontal=False)
        elif kind == "lineChart":
            for i, m in enumerate(series):
                raw = [r.get(m) for r in rows]
                ys = [float(x) if x is not None else float("nan") for x in raw]
                ax.plot(range(len(ys)), ys, label=m, color=COLORS[i % len(COLORS)], lw=1.2, marker="o", ms=2)
            step = max(1, len(labels) // 8)
            ax.set_xticks(range(0, len(labels), step), labels[::step], fontsize=6, rotation=30)
            ax.legend(fontsize=5, loc="upper left")
        elif kind == "donutChart":
            (m,) = measures
            values = [max(x, 0.0) for x in series[m]]
            if sum(values) > 0:
                ax.pie(
                    values, labels=labels, textprops={"fontsize": 6}, wedgeprops={"width": 0.4}, colors=COLORS
                )
        elif kind == "scatterChart":
            xs = series[v.roles["X"][0][1]]
            ys = series[v.roles["Y"][0][1]]
            ax.scatter(xs, ys, s=8, color=COLORS[0])
            ax.set_xlabel(v.roles["X"][0][1], fontsize=6)
            ax.set_ylabel(v.roles["Y"][0][1], fontsize=6)
        ax.tick_params(labelsize=6)

    def _bars(self, ax: Any, labels: list[str], series: dict[str, list[float]], *, horizontal: bool) -> None:
        n = max(len(series), 1)
        width = 0.8 / n
        for i, (m, values) in enumerate(series.items()):
            positions = [j + i * width for j in range(len(labels))]
            if horizontal:
                ax.barh(positions, values, height=width, label=m, color=COLORS[i % len(COLORS)])
            else:
                ax.bar(positions, values, width=width, label=m, color=COLORS[i % len(COLORS)])
        ticks = [j + 0.4 - width / 2 for j in range(len(labels))]
        if horizontal:
            ax.set_yticks(ticks, [label[:24] for label in labels], fontsize=6)
        else:
            ax.set_xticks(ticks, [label[:12] for label in labels], fontsize=6, rotation=30)
        if n > 1:
            ax.legend(fontsize=5)

    def _table(self, ax: Any, v: VisualLayout) -> None:
        ax.axis("off")
        fields = [f for fs in v.roles.values() for f in fs]
        columns = [f for f in fields if not f[2]]
        measures = [f for f in fields if f[2]]
        header = [f[1].replace("_", " ") for f in fields]
        body: list[list[str]] = []
        if measures:
            cats, names, rows = self._categories(v)
            for c, r in list(zip(cats, rows, strict=True))[:MAX_ROWS]:
                first = [format_value(c, "")] + [""] * (len(columns) - 1)
                if len(columns) > 1:  # further columns of the same table: look them up for this row
                    first = self._row_values(columns, c)
                body.append(first + [format_value(r.get(m), self.model.formats.get(m, "")) for m in names])
        else:
            table = columns[0][0]
            data = self.model.tables[table]
            at = [data["columns"].index(f[1]) for f in columns]
            rows = data["rows"]
            if v.sort and not v.sort[2] and v.sort[1] in data["columns"]:
                s = data["columns"].index(v.sort[1])
                rows = sorted(rows, key=lambda r: (r[s] is None, r[s]), reverse=v.sort[3])
            body = [[format_value(r[i], "")[:40] for i in at] for r in rows[:MAX_ROWS]]
        if not body:
            ax.text(0.5, 0.5, "(no rows)", ha="center", fontsize=7)
            return
        table = ax.table(cellText=body, colLabels=header, loc="upper center", cellLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(5.5)
        table.scale(1, 0.9)

    def _row_values(self, columns: list[tuple[str, str, bool]], key: Any) -> list[str]:
        table = columns[0][0]
        data = self.model.tables[table]
        at = data["columns"].index(columns[0][1])
        row = next((r for r in data["rows"] if r[at] == key), None)
        if row is None:
            return [format_value(key, "")] + [""] * (len(columns) - 1)
        return [format_value(row[data["columns"].index(f[1])], "")[:30] for f in columns if f[0] == table]


def render_previews(
    project: Path, parquet: Path, out: Path, pages: tuple[str, ...] | None = None
) -> list[Path]:
    """Draw the pages of the PBIP ``project`` with the data in ``parquet``; return the PNGs in ``out``.

    ``pages`` limits the drawing to those page names (default: every page, in report order).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PreviewUnavailable(
            "matplotlib is not installed: no page previews", hint="make install"
        ) from exc
    model = DaxModel(parquet, project / "SalesBI.SemanticModel" / "definition")
    renderer = PageRenderer(model)
    pages_dir = project / "SalesBI.Report" / "definition" / "pages"
    order = json.loads((pages_dir / "pages.json").read_text(encoding="utf-8"))["pageOrder"]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for number, key in enumerate(order, start=1):
        if pages is not None and key not in pages:
            continue
        page, visuals = read_page(pages_dir / key)
        width, height = page["width"], page["height"]
        total = height + HEADER
        fig = plt.figure(figsize=(width / 100, total / 100), dpi=100)
        fig.text(0.005, 1 - 8 / total, page["displayName"], va="top", fontsize=11, fontweight="bold")
        for v in visuals:
            # the visual's box in figure coordinates, below the page name, with room for its title;
            # charts keep a margin for their axis labels
            chart = v.visual_type not in ("card", "slicer", "tableEx")
            pad_left = (
                60 if chart and v.visual_type in ("clusteredBarChart", "azureMap") else 36 if chart else 4
            )
            pad_bottom = 34 if chart else 4
            left, bottom = (v.x + pad_left) / width, 1 - (HEADER + v.y + v.height - pad_bottom) / total
            w, h = (v.width - pad_left - 6) / width, (v.height - 20 - pad_bottom) / total
            ax = fig.add_axes((left, bottom, max(w, 0.01), max(h, 0.01)))
            renderer.draw(ax, v)
        path = out / f"{number:02d}_{key}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
