"""Proofs for the generated Power BI project: schemas, TMDL, fields, DAX, stability, staleness, BPA."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource

from salesbi.kinds import KINDS
from salesbi.powerbi import DEFAULT_PARQUET_FOLDER, build_powerbi_project, plan_project, project_files
from salesbi.rpt import rpt_tables
from tests.powerbi_tmdl_reader import SemanticModel, TmdlError, model_refs, parse, read_model

ROOT = Path(__file__).resolve().parents[1]
CHECKED_IN = ROOT / "powerbi"
SCHEMA_URL = "https://developer.microsoft.com/json-schemas/"
KIND_TO_TMDL = {name: k.tmdl_data_type for name, k in KINDS.items()}  # pinned in test_kinds.py


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pbi") / "powerbi"
    build_powerbi_project(out, parquet_folder="/data/out/powerbi/data")
    return out


@pytest.fixture(scope="module")
def model(project: Path) -> SemanticModel:
    return read_model(project / "SalesBI.SemanticModel" / "definition")


def _visuals(project: Path) -> Iterator[tuple[Path, dict]]:
    for path in sorted((project / "SalesBI.Report" / "definition" / "pages").glob("*/visuals/*/visual.json")):
        yield path, json.loads(path.read_text(encoding="utf-8"))


def _field_refs(obj: object) -> Iterator[tuple[str, str, str]]:
    """Yield ``(Column|Measure, entity, property)`` for every field reference in a PBIR object."""
    if isinstance(obj, dict):
        for kind in ("Column", "Measure"):
            ref = obj.get(kind)
            if isinstance(ref, dict) and "Property" in ref:
                yield kind, ref["Expression"]["SourceRef"]["Entity"], ref["Property"]
        for v in obj.values():
            yield from _field_refs(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _field_refs(v)


# --------------------------------------------------------------------------- schemas


@pytest.fixture(scope="module")
def schema_registry(shared_dir: Path) -> Registry:
    root = shared_dir / "powerbi-schemas"
    resources = []
    for path in root.rglob("*.json"):
        url = SCHEMA_URL + path.relative_to(root).as_posix()
        resources.append((url, Resource.from_contents(json.loads(path.read_text(encoding="utf-8")))))
    return Registry().with_resources(resources)


def test_every_pbir_json_file_validates_against_its_schema(project: Path, schema_registry: Registry) -> None:
    checked = 0
    for path in sorted(project.rglob("*")):
        if path.suffix not in (".json", ".pbir", ".pbism") or "StaticResources" in path.parts:
            continue
        doc = json.loads(path.read_text(encoding="utf-8"))
        url = doc["$schema"]
        schema = schema_registry.contents(url)  # raises when the schema is not in ../shared
        errors = list(Draft7Validator(schema, registry=schema_registry).iter_errors(doc))
        assert not errors, f"{path.relative_to(project)}: {[e.message for e in errors[:3]]}"
        checked += 1
    pages = len(plan_project()[1].pages)
    visuals = sum(len(p.visuals) for p in plan_project()[1].pages)
    # definition.pbir, definition.pbism, report.json, version.json, pages.json + one per page and visual
    assert checked == 5 + pages + visuals


def test_validation_catches_a_broken_visual(project: Path, schema_registry: Registry) -> None:
    _path, doc = next(_visuals(project))
    doc["position"]["x"] = "left"
    schema = schema_registry.contents(doc["$schema"])
    assert list(Draft7Validator(schema, registry=schema_registry).iter_errors(doc))


def test_pbip_and_platform_files_have_the_expected_shape(project: Path) -> None:
    pbip = json.loads((project / "SalesBI.pbip").read_text(encoding="utf-8"))
    assert pbip["artifacts"] == [{"report": {"path": "SalesBI.Report"}}]
    pbir = json.loads((project / "SalesBI.Report" / "definition.pbir").read_text(encoding="utf-8"))
    assert pbir["datasetReference"]["byPath"]["path"] == "../SalesBI.SemanticModel"
    assert (project / "SalesBI.Report" / pbir["datasetReference"]["byPath"]["path"]).resolve().is_dir()
    for item, kind in (("SalesBI.SemanticModel", "SemanticModel"), ("SalesBI.Report", "Report")):
        platform = json.loads((project / item / ".platform").read_text(encoding="utf-8"))
        assert platform["metadata"]["type"] == kind
    report = json.loads((project / "SalesBI.Report/definition/report.json").read_text(encoding="utf-8"))
    for pkg in report["resourcePackages"]:
        for item in pkg["items"]:
            assert (project / "SalesBI.Report/StaticResources" / pkg["name"] / item["path"]).is_file()


# --------------------------------------------------------------------------- TMDL vs rpt definitions


def test_tmdl_tables_and_columns_match_the_rpt_definitions(project: Path, model: SemanticModel) -> None:
    tables = rpt_tables()
    assert sorted(model.tables) == sorted(t.name for t in tables)
    refs = model_refs((project / "SalesBI.SemanticModel/definition/model.tmdl").read_text(encoding="utf-8"))
    assert refs == [t.name for t in tables]
    for t in tables:
        node = model.tables[t.name]
        columns = node.of("column")
        assert [c.name for c in columns] == t.column_names
        for c, spec in zip(columns, t.columns, strict=True):
            assert c.props["dataType"] == KIND_TO_TMDL[spec.kind], f"{t.name}[{c.name}]"
            assert c.props["sourceColumn"] == spec.name
            if spec.spec.identifier or spec.name in t.key:
                assert c.props["summarizeBy"] == "none", f"{t.name}[{c.name}]"
        (partition,) = node.of("partition")
        assert partition.expression == "m" and partition.props["mode"] == "import"
        source = partition.props["source"]
        assert f'Item = "{t.name}"' in source and f'& "{t.name}.parquet"' in source
        typed = re.findall(r'\{"([^"]+)", ([A-Za-z0-9. ]+)\}', source)
        assert [name for name, _ in typed] == t.column_names


def test_measures_parse_with_format_folder_and_description(model: SemanticModel) -> None:
    plan, _ = plan_project()
    found = {m.name: (t, m) for t, node in model.tables.items() for m in node.of("measure")}
    assert sorted(found) == sorted(m.name for m in plan.measures)
    assert len(found) == sum(len(n.of("measure")) for n in model.tables.values()), "measure names unique"
    for name, (_, m) in found.items():
        assert m.expression.strip(), name
        assert m.props.get("formatString"), f"{name}: no format string"
        assert m.props.get("displayFolder"), f"{name}: no display folder"
        assert m.description, f"{name}: no description"
    assert {
        "Net Sales",
        "Gross Profit",
        "Margin %",
        "Net Orders",
        "Cancelled Orders",
        "Cancel Rate",
        "Active Customers",
        "New Customers",
        "Average Order Value",
        "Sales YoY %",
        "Sales MoM %",
        "Churned Customers",
        "Quick Ratio",
    } <= set(found)


def test_reader_rejects_malformed_tmdl() -> None:
    with pytest.raises(TmdlError):
        parse("table t\n  column a\n")  # spaces instead of tabs
    with pytest.raises(TmdlError):
        parse("table t\n\tcolumn 'a\n")
    nodes = parse("table t\n\tmeasure 'A b' =\n\t\t\tSUM(t[x])\n\t\tformatString: 0\n")
    assert nodes[0].of("measure")[0].name == "A b"
    assert nodes[0].of("measure")[0].expression == "SUM(t[x])"


# --------------------------------------------------------------------------- DAX


def _dax_tokens(expression: str) -> Iterator[tuple[str, str, str]]:
    """Yield ``('column', table, column)`` and ``('measure', '', name)`` from a DAX expression."""
    i, n, last_table = 0, len(expression), ""
    while i < n:
        ch = expression[i]
        if ch == '"':
            j = i + 1
            while j < n and not (expression[j] == '"' and expression[j + 1 : j + 2] != '"'):
                j += 2 if expression[j : j + 2] == '""' else 1
            i, last_table = j + 1, ""
        elif expression.startswith("--", i) or expression.startswith("//", i):
            i = expression.find("\n", i) if "\n" in expression[i:] else n
        elif expression.startswith("/*", i):
            i = expression.index("*/", i) + 2
        elif ch == "'":
            j = i + 1
            while expression[j] != "'" or expression[j + 1 : j + 2] == "'":
                j += 2 if expression[j] == "'" else 1
            last_table, i = expression[i + 1 : j].replace("''", "'"), j + 1
            continue
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (expression[j].isalnum() or expression[j] in "_."):
                j += 1
            last_table, i = expression[i:j], j
            continue
        elif ch == "[":
            j = expression.index("]", i)
            name = expression[i + 1 : j]
            yield ("column", last_table, name) if last_table else ("measure", "", name)
            i, last_table = j + 1, ""
            continue
        else:
            i += 1
            if not ch.isspace():
                last_table = ""


def test_dax_references_only_existing_columns_and_measures(model: SemanticModel) -> None:
    columns = {(t, c.name) for t, node in model.tables.items() for c in node.of("column")}
    measures = {m.name for node in model.tables.values() for m in node.of("measure")}
    checked = 0
    for node in model.tables.values():
        for m in node.of("measure"):
            for kind, table, name in _dax_tokens(m.expression):
                if kind == "column":
                    assert (table, name) in columns, f"[{m.name}] uses {table}[{name}]"
                elif not name.startswith("@"):
                    assert name in measures, f"[{m.name}] uses unknown measure [{name}]"
                checked += 1
    assert checked > 30
    assert list(_dax_tokens("SUM('a b'[c]) + [M] + x[y]")) == [
        ("column", "a b", "c"),
        ("measure", "", "M"),
        ("column", "x", "y"),
    ]


# --------------------------------------------------------------------------- report fields


def test_every_visual_field_exists_in_the_semantic_model(project: Path, model: SemanticModel) -> None:
    columns = {(t, c.name) for t, node in model.tables.items() for c in node.of("column")}
    measures = {(t, m.name) for t, node in model.tables.items() for m in node.of("measure")}
    count = 0
    for path, doc in _visuals(project):
        for kind, entity, prop in _field_refs(doc):
            assert (entity, prop) in (measures if kind == "Measure" else columns), f"{path}: {entity}.{prop}"
            count += 1
    assert count > 50


def _filters(model: SemanticModel) -> dict[str, set[str]]:
    """Return ``table -> tables its filters reach`` following many-to-one relationships one->many."""
    edges: dict[str, set[str]] = {}
    for r in model.relationships:
        many = r.props["fromColumn"].split(".")[0]
        one = r.props["toColumn"].split(".")[0]
        edges.setdefault(one, set()).add(many)
    reach: dict[str, set[str]] = {}
    for t in model.tables:
        seen, todo = {t}, [t]
        while todo:
            for nxt in edges.get(todo.pop(), set()) - seen:
                seen.add(nxt)
                todo.append(nxt)
        reach[t] = seen
    return reach


def test_chart_categories_filter_the_measures_they_show(project: Path, model: SemanticModel) -> None:
    reach = _filters(model)
    home = {m.name: t for t, node in model.tables.items() for m in node.of("measure")}
    for path, doc in _visuals(project):
        state = doc["visual"]["query"]["queryState"]
        cats = [
            e
            for role in ("Category",)
            for p in state.get(role, {}).get("projections", [])
            for k, e, _ in _field_refs(p["field"])
            if k == "Column"
        ]
        meas = [
            prop
            for role in state.values()
            for p in role["projections"]
            for k, _, prop in _field_refs(p["field"])
            if k == "Measure"
        ]
        for cat in cats:
            for m in meas:
                assert home[m] in reach[cat], f"{path}: {cat} does not filter [{m}] on {home[m]}"


def test_relationships_are_star_many_to_one_single_direction(model: SemanticModel) -> None:
    assert model.relationships
    for r in model.relationships:
        assert r.props.get("crossFilteringBehavior", "oneDirection") == "oneDirection"
        assert (
            r.props.get("fromCardinality", "many") == "many" and r.props.get("toCardinality", "one") == "one"
        )
        assert r.props.get("isActive", "true") == "true"
        to_table, to_col = r.props["toColumn"].split(".")
        assert to_table.startswith("dim_")
        plan_table = next(t for t in rpt_tables() if t.name == to_table)
        assert plan_table.key == (to_col,), "the one side is the dimension's key"
    fact = {
        r.props["toColumn"].split(".")[0]
        for r in model.relationships
        if r.props["fromColumn"].startswith("fact_order_lines.")
    }
    assert fact == {t.name for t in rpt_tables() if t.name.startswith("dim_")}


# --------------------------------------------------------------------------- BPA-style rules


def test_bpa_rules(model: SemanticModel) -> None:
    date = model.tables["dim_date"]
    assert date.props.get("dataCategory") == "Time"
    assert [c.name for c in date.of("column") if c.props.get("isKey")] == ["date"]
    assert next(c for c in date.of("column") if c.name == "month_name").props["sortByColumn"] == "month"
    fks = {tuple(r.props["fromColumn"].split(".")) for r in model.relationships}
    for t, node in model.tables.items():
        for c in node.of("column"):
            if (t, c.name) in fks:
                assert c.props.get("isHidden") == "true", f"foreign key {t}[{c.name}] visible"
    for t in rpt_tables():
        for spec in t.columns:
            c = next(c for c in model.tables[t.name].of("column") if c.name == spec.name)
            if spec.kind == "money":
                assert c.props["dataType"] == "decimal", "no floating point for money"
                assert c.props["formatString"].startswith("\\$")
    assert model.model.props.get("discourageImplicitMeasures") == "true"
    tags = [
        n.props["lineageTag"]
        for node in model.tables.values()
        for n in [node, *node.of("column"), *node.of("measure")]
    ]
    assert len(tags) == len(set(tags))
    params = model.expressions
    assert set(params) == {"SourceType", "SqlServer", "Database", "ParquetFolder"}
    assert params["SourceType"].expression.startswith('"Parquet" meta [IsParameterQuery=true')


# --------------------------------------------------------------------------- stability


def test_build_is_deterministic_and_lineage_tags_are_stable(tmp_path: Path) -> None:
    a = build_powerbi_project(tmp_path / "a", parquet_folder="/x").parent
    b = build_powerbi_project(tmp_path / "b", parquet_folder="/x").parent
    files_a = {p.relative_to(a): p.read_bytes() for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b): p.read_bytes() for p in b.rglob("*") if p.is_file()}
    assert files_a == files_b
    # a smaller model keeps the tags of the objects it shares
    fact_only = [t for t in rpt_tables() if t.name in ("fact_order_lines", "dim_date")]
    small = project_files("/x", fact_only)
    key = "SalesBI.SemanticModel/definition/tables/fact_order_lines.tmdl"
    tags = re.compile(r"(column \S+)\n(?:\t\t.*\n)*?\t\tlineageTag: (\S+)")
    assert dict(tags.findall(small[key])) == dict(tags.findall(files_a[Path(key)].decode()))
    assert "timestamp" not in "".join(small.values()).lower()


def test_build_replaces_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "p"
    build_powerbi_project(out, parquet_folder="/x")
    stray = out / "SalesBI.Report/definition/pages/old/page.json"
    stray.parent.mkdir(parents=True)
    stray.write_text("{}")
    build_powerbi_project(out, parquet_folder="/x")
    assert not stray.exists()


def test_parquet_folder_is_the_parameter_default(tmp_path: Path) -> None:
    build_powerbi_project(tmp_path, parquet_folder="D:\\runs\\out\\powerbi\\data\\")
    text = (tmp_path / "SalesBI.SemanticModel/definition/expressions.tmdl").read_text(encoding="utf-8")
    assert 'expression ParquetFolder = "D:\\runs\\out\\powerbi\\data" meta' in text


def test_parquet_folder_must_be_absolute_and_keeps_its_own_separator(tmp_path: Path) -> None:
    from salesbi.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="not absolute"):
        project_files("out/powerbi/data")
    for folder in ("C:\\salesbi\\out\\powerbi\\data", "\\\\server\\share\\data", "/srv/out/powerbi/data"):
        files = project_files(folder)
        text = files["SalesBI.SemanticModel/definition/expressions.tmdl"]
        assert f'expression ParquetFolder = "{folder}" meta' in text
    # the M joins folder and file with the folder's own separator (a POSIX folder used to get "\\")
    source = project_files("/srv/out")["SalesBI.SemanticModel/definition/tables/dim_date.tmdl"]
    assert (
        'ParquetFolder & (if Text.Contains(ParquetFolder, "/") and not Text.Contains(ParquetFolder, "\\")'
        in source
    )
    assert '& "dim_date.parquet"' in source and '"\\dim_date.parquet"' not in source


def test_checked_in_project_is_current() -> None:
    expected = project_files(DEFAULT_PARQUET_FOLDER)
    actual = {
        p.relative_to(CHECKED_IN).as_posix(): p.read_text(encoding="utf-8")
        for p in CHECKED_IN.rglob("*")
        if p.is_file()
    }
    stale = sorted(k for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k))
    assert not stale, (
        f"powerbi/ is stale ({len(stale)} files, e.g. {stale[:3]}); run: python -m salesbi.powerbi"
    )


def test_everything_declared_is_emitted_with_the_registry() -> None:
    model, report = plan_project()
    assert model.skipped + report.skipped == []


# --------------------------------------------------------------------------- third-party validators


def test_coop_dax_review_reports_no_errors(project: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("coop-dax-review")
    if not exe.exists():
        exe = Path(shutil.which("coop-dax-review") or "coop-dax-review")
    out = tmp_path / "review.json"
    subprocess.run(
        [
            str(exe),
            "check",
            str(project / "SalesBI.SemanticModel"),
            "--format",
            "json",
            "-o",
            str(out),
            "--no-open",
            "--no-color",
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
        timeout=300,
    )
    report = json.loads(out.read_text(encoding="utf-8"))
    findings = _findings(report)
    assert findings, "the linter read the model (it always flags something for review)"
    errors = [f for f in findings if str(f.get("severity", "")).lower() == "error"]
    assert errors == []
    warnings = {
        f.get("rule_id") or f.get("rule") for f in findings if str(f.get("severity")).lower() == "warning"
    }
    # Our measure names follow the issue ("Net Sales"), not the linter's "[Category: Name]" house style.
    assert warnings <= {"DAX-MEASURE-CATEGORY"}
    diagnostics = report.get("diagnostics") or []
    assert not [d for d in diagnostics if "parse" in json.dumps(d).lower()], diagnostics


def _findings(report: object) -> list[dict]:
    if isinstance(report, dict):
        for key in ("findings", "results"):
            if isinstance(report.get(key), list):
                return report[key]
        for v in report.values():
            found = _findings(v)
            if found:
                return found
    return []


def test_pbipinspect_reads_the_same_model(project: Path) -> None:
    pbipinspect = pytest.importorskip("pbipinspect.inspect")
    from pbipinspect import expectations as ex

    inspect = pbipinspect.create_inspect(project)
    pbip = inspect.pbip
    plan, _ = plan_project()
    assert len(pbip.tables) == len(plan.tables)
    assert len(pbip.measures) == len(plan.measures)
    assert len(pbip.relationships) == len(plan.relationships)
    assert len(pbip.columns) == sum(len(t.columns) for t in plan.tables)
    types = {(c["table"], c["name"]): c["dataType"] for c in pbip.columns}
    for t in plan.tables:
        for c in t.columns:
            assert types[(t.name, c.name)] == KIND_TO_TMDL[c.kind]
    inspect.expectations(
        [
            ex.expect_cols_in_relationship_has_same_type(),
            ex.expect_all_relationships_active(),
            ex.expect_no_calculated_tables(),
            ex.expect_no_calculated_columns(),
            ex.expect_table_name_no_spaces(),
        ]
    )
    inspect.run_expectations()
    assert inspect.expects == []


# --------------------------------------------------------------------------- issue 14 defects


def test_attributes_keys_and_ranks_are_not_summarised(model: SemanticModel) -> None:
    """Defect 7: 34 attribute and rank columns (quarter, month, iso_week, rank_*) had summarizeBy: sum."""
    summed = {
        (t, c.name)
        for t, node in model.tables.items()
        for c in node.of("column")
        if c.props["summarizeBy"] == "sum"
    }
    assert not {(t, c) for t, c in summed if t.startswith("dim_") or "rank" in c}
    for column in ("quarter", "month", "iso_week", "year", "fiscal_month", "day_of_month"):
        assert ("dim_date", column) not in summed
    assert ("fact_order_lines", "net_sales") in summed and ("fact_order_lines", "quantity") in summed


def test_units_margin_and_forecast_measures_mean_what_they_say(model: SemanticModel) -> None:
    """Defects 3 and 7: [Units] counted cancelled orders, Margin % divided by sales without cost,
    forecast bounds were sums of daily quantiles."""
    found = {m.name: m.expression for node in model.tables.values() for m in node.of("measure")}
    assert "is_cancelled] = FALSE()" in found["Units Sold"]
    assert "DIVIDE([Gross Profit], [Net Sales with Cost])" in found["Margin %"]
    assert "NOT ISBLANK(fact_order_lines[cost])" in found["Net Sales with Cost"]
    for name in ("Forecast Lower 80", "Forecast Upper 80", "Forecast Lower 95", "Forecast Upper 95"):
        assert "sales_forecast_monthly" in found[name] and "COUNTROWS(_rows) = 1" in found[name]
        assert "sales_forecast[" not in found[name]
    assert {"Units", "Orders", "Customers", "Forecast"}.isdisjoint(found)


def test_report_has_base_theme_azure_map_and_alt_text_on_every_visual(project: Path) -> None:
    """Defect 7: no baseTheme, the deprecated Bing map, 0 of 50 visuals with alt text."""
    report = json.loads((project / "SalesBI.Report/definition/report.json").read_text(encoding="utf-8"))
    assert report["themeCollection"]["baseTheme"]["type"] == "SharedResources"
    types = set()
    for path, doc in _visuals(project):
        visual = doc["visual"]
        types.add(visual["visualType"])
        alt = visual["visualContainerObjects"]["general"][0]["properties"]["altText"]["expr"]["Literal"][
            "Value"
        ]
        assert len(alt) > 20, f"{path}: alt text {alt!r}"
    assert "azureMap" in types and "map" not in types


def test_forecast_relates_to_a_calendar_covering_it() -> None:
    """Defect 2: the forecast month table relates to dim_date (which the pipeline stretches over it)."""
    plan, _ = plan_project()
    rel = [(r.from_table, r.from_column, r.to_table) for r in plan.relationships]
    assert ("sales_forecast_monthly", "month_start", "dim_date") in rel


def test_cli_build_takes_a_windows_parquet_folder(tmp_path: Path) -> None:
    """`salesbi powerbi build --parquet-folder 'C:\\...'` keeps the Windows path as given."""
    from typer.testing import CliRunner

    from salesbi.cli import app

    folder = "C:\\salesbi\\out\\powerbi\\data"
    result = CliRunner().invoke(app, ["powerbi", "build", "--out", str(tmp_path), "--parquet-folder", folder])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "SalesBI.SemanticModel/definition/expressions.tmdl").read_text(encoding="utf-8")
    assert f'expression ParquetFolder = "{folder}" meta' in text
    bad = CliRunner().invoke(app, ["powerbi", "build", "--out", str(tmp_path), "--parquet-folder", "data"])
    assert bad.exit_code == 2 and "not absolute" in bad.output


def test_no_visual_binds_a_hidden_column_or_mixes_location_levels(
    project: Path, model: SemanticModel
) -> None:
    """Defect 6: the forecast table used a hidden column; the locations table mixed country, city, office."""
    hidden = {
        (t, c.name) for t, node in model.tables.items() for c in node.of("column") if c.props.get("isHidden")
    }
    for path, doc in _visuals(project):
        for kind, entity, prop in _field_refs(doc["visual"]["query"]):
            if kind == "Column":
                assert (entity, prop) not in hidden, f"{path}: hidden column {entity}[{prop}]"
                assert (entity, prop) != ("location_summary", "level"), path
