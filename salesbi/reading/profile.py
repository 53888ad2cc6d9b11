"""Source profiles: the declarative YAML that maps a company's CSV files onto the seven canonical tables.

A profile is validated with typed pydantic models (unknown keys are errors) and
then checked against the contract (table and column names must exist), so a
typo fails when the profile is loaded, naming the file, the line and the key.
See ``docs/profiles.md`` for every key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from salesbi import contract
from salesbi.errors import ProfileError
from salesbi.resources import project_dir

Scalar = str | int | float | bool

ENCODINGS = ("auto", "utf-8", "utf-8-sig", "cp1252")
DELIMITERS = ("auto", ",", ";", "\t", "|")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvOptions(_Strict):
    """How files are parsed; every ``None`` means "detect" (or inherit from the profile level)."""

    encoding: Literal["auto", "utf-8", "utf-8-sig", "cp1252"] | None = None
    delimiter: Literal["auto", ",", ";", "\t", "|"] | None = None
    quote: str | None = Field(default=None, min_length=1, max_length=1)
    null_tokens: list[str] | None = None
    date_format: str | None = None
    dayfirst: bool | None = None
    decimal: Literal[".", ","] | None = None
    repair_ragged: bool | None = None

    def merged(self, override: CsvOptions | None) -> CsvOptions:
        """Return these options with every field set in ``override`` replacing ours."""
        if override is None:
            return self
        data = self.model_dump()
        data.update({k: v for k, v in override.model_dump().items() if v is not None})
        return CsvOptions(**data)


#: The options used where neither the profile nor the table sets a value.
DEFAULT_CSV = CsvOptions(
    encoding="auto",
    delimiter="auto",
    quote='"',
    null_tokens=["", "NULL"],
    date_format="auto",
    dayfirst=True,
    decimal=".",
    repair_ragged=True,
)


class RowNumber(_Strict):
    """``row_number: {within: [order_id]}``: 1, 2, 3... per group, in file order."""

    within: list[str] = Field(default_factory=list)
    start: int = 1


class IfPresent(_Strict):
    """``if_present: {column: shipped_date, then: shipped, else: placed}``."""

    column: str
    then: Scalar
    else_: Scalar | None = Field(default=None, alias="else")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Lookup(_Strict):
    """``lookup: {file: suppliers.csv, key: supplierID, value: companyName, column: supplierID}``.

    Replaces the row's ``column`` value by ``value`` from the row of ``file`` whose ``key`` equals it.
    """

    file: str
    key: str
    value: str
    column: str


class Case(_Strict):
    """One case of ``when``: a condition on ``column`` and the value (``then``) it gives.

    Exactly one condition is set: ``prefix`` (text starts with), ``regex`` (re.search matches),
    ``equals`` (one value or a list, ignoring case), ``empty`` (true: the cell is null),
    ``below`` (the number is smaller than this).
    """

    column: str
    prefix: str | None = None
    regex: str | None = None
    equals: Scalar | list[Scalar] | None = None
    empty: bool | None = None
    below: float | None = None
    then: Scalar

    @model_validator(mode="after")
    def _one_condition(self) -> Case:
        names = [k for k in CONDITIONS if getattr(self, k) is not None]
        if len(names) != 1:
            raise ValueError(
                f"a when case sets exactly one of {', '.join(CONDITIONS)} (got {', '.join(names) or 'none'})"
            )
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.regex!r}: {exc}") from None
        return self


CONDITIONS = ("prefix", "regex", "equals", "empty", "below")


class When(_Strict):
    """``when: {cases: [{column, prefix|regex|equals|empty|below, then}], else: value}``: first match wins.

    Rows no case matches get ``else`` (a value), ``else_copy`` (a column's value) or
    ``else_template`` (a template such as ``"Customer {customer_id}"``); at most one of them.
    """

    cases: list[Case] = Field(min_length=1)
    else_: Scalar | None = Field(default=None, alias="else")
    else_copy: str | None = None
    else_template: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_else(self) -> When:
        given = [k for k in ("else_", "else_copy", "else_template") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError("set at most one of else, else_copy, else_template")
        return self


class Replace(_Strict):
    """``replace: {column, pattern, with}``: the column's text with regex ``pattern`` replaced by ``with``."""

    column: str
    pattern: str
    with_: str = Field(default="", alias="with")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _valid_pattern(self) -> Replace:
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"invalid regex {self.pattern!r}: {exc}") from None
        return self


class Derivation(_Strict):
    """How to compute one canonical column; exactly one key is set."""

    copy_: str | None = Field(default=None, alias="copy")
    constant: Scalar | None = None
    template: str | None = None
    concat: list[str] | None = None
    sep: str = " "
    row_number: RowNumber | None = None
    if_present: IfPresent | None = None
    lookup: Lookup | None = None
    coalesce: list[str | Derivation] | None = None
    when: When | None = None
    abs_: str | None = Field(default=None, alias="abs")
    replace: Replace | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _exactly_one(self) -> Derivation:
        kinds = self.kinds_set()
        if len(kinds) != 1:
            raise ValueError(
                "a derivation sets exactly one of copy, constant, template, concat, row_number, "
                f"if_present, lookup, coalesce, when, abs, replace (got {', '.join(kinds) or 'none'})"
            )
        return self

    def kinds_set(self) -> list[str]:
        """Return the names of the derivation kinds this entry sets."""
        names = {
            "copy": self.copy_,
            "constant": self.constant,
            "template": self.template,
            "concat": self.concat,
            "row_number": self.row_number,
            "if_present": self.if_present,
            "lookup": self.lookup,
            "coalesce": self.coalesce,
            "when": self.when,
            "abs": self.abs_,
            "replace": self.replace,
        }
        return [k for k, v in names.items() if v is not None]

    @property
    def kind(self) -> str:
        """Return the derivation kind (``copy``, ``template``...)."""
        return self.kinds_set()[0]

    def inputs(self) -> list[str]:
        """Return the column names this derivation reads from the row."""
        if self.copy_ is not None:
            return [self.copy_]
        if self.template is not None:
            return template_fields(self.template)
        if self.concat is not None:
            return list(self.concat)
        if self.row_number is not None:
            return list(self.row_number.within)
        if self.if_present is not None:
            return [self.if_present.column]
        if self.lookup is not None:
            return [self.lookup.column]
        if self.coalesce is not None:
            out: list[str] = []
            for part in self.coalesce:
                out.extend([part] if isinstance(part, str) else part.inputs())
            return out
        if self.when is not None:
            cols = [c.column for c in self.when.cases]
            if self.when.else_template:
                cols += template_fields(self.when.else_template)
            return cols + ([self.when.else_copy] if self.when.else_copy else [])
        if self.abs_ is not None:
            return [self.abs_]
        if self.replace is not None:
            return [self.replace.column]
        return []

    def files(self) -> list[str]:
        """Return the file names this derivation reads (its lookups, also inside ``coalesce``)."""
        if self.lookup is not None:
            return [self.lookup.file]
        out: list[str] = []
        for part in self.coalesce or []:
            if isinstance(part, Derivation):
                out.extend(part.files())
        return out


class Thresholds(_Strict):
    """Completeness thresholds: the share of a table's rows rejected above which a run warns or fails."""

    warn: float | None = Field(default=None, ge=0, le=1)
    fail: float | None = Field(default=None, ge=0, le=1)


class TableSpec(_Strict):
    """How one canonical table is read (or derived) from the source."""

    file: str | None = None
    from_table: str | None = None
    distinct: list[str] | None = None
    rename: dict[str, str] = Field(default_factory=dict)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    defaults: dict[str, Scalar] = Field(default_factory=dict)
    derive: dict[str, Derivation] = Field(default_factory=dict)
    absent: dict[str, str] | str = Field(default_factory=dict)
    dates: dict[str, str | list[str]] = Field(default_factory=dict)
    csv: CsvOptions | None = None
    allow_empty: bool | None = None
    rows: list[dict[str, Scalar | None]] | None = None
    keep: Literal["first", "last"] = "first"
    completeness: Thresholds | None = None

    @model_validator(mode="after")
    def _file_or_table(self) -> TableSpec:
        sources = [k for k in ("file", "from_table", "rows") if getattr(self, k) is not None]
        if len(sources) > 1:
            raise ValueError(f"set one of 'file', 'from_table' or 'rows', not {' and '.join(sources)}")
        if isinstance(self.absent, str) and (sources or self.derive or self.rename or self.defaults):
            raise ValueError(
                'a table declared absent (absent: "why") reads nothing: drop file/from_table/rows/'
                "rename/derive/defaults, or use absent: {column: why} to declare single columns absent"
            )
        if self.rows is not None and not self.rows:
            raise ValueError("'rows' needs at least one row (declare the table absent instead)")
        return self

    @property
    def table_absent(self) -> str | None:
        """Return the reason when the whole table is declared absent (``absent: "why"``), else None."""
        return self.absent if isinstance(self.absent, str) else None

    @property
    def absent_columns(self) -> dict[str, str]:
        """Return column → reason for the columns declared absent."""
        return self.absent if isinstance(self.absent, dict) else {}


class Profile(_Strict):
    """A validated source profile."""

    name: str
    description: str = ""
    csv: CsvOptions = Field(default_factory=CsvOptions)
    notes: list[str] = Field(default_factory=list)
    completeness: Thresholds | None = None
    tables: dict[str, TableSpec] = Field(default_factory=dict)
    path: Path | None = Field(default=None, exclude=True)

    def spec(self, table: str) -> TableSpec:
        """Return the spec of ``table`` (a table the profile does not list reads ``<table>.csv``)."""
        return self.tables.get(table) or TableSpec()

    def file_pattern(self, table: str) -> str | None:
        """Return the file name/glob read for ``table``, or None when it is derived from another table."""
        spec = self.spec(table)
        if spec.from_table is not None or spec.rows is not None or spec.table_absent is not None:
            return None
        return spec.file or f"{table}.csv"

    def csv_options(self, table: str) -> CsvOptions:
        """Return the fully resolved CSV options for ``table`` (defaults < profile < table)."""
        return DEFAULT_CSV.merged(self.csv).merged(self.spec(table).csv)

    @property
    def label(self) -> str:
        """Return ``name (path)`` for messages."""
        return f"{self.name} ({self.path})" if self.path else self.name

    def absent_tables(self) -> dict[str, str]:
        """Return table → reason for the tables the profile declares absent."""
        return {
            name: spec.table_absent for name, spec in self.tables.items() if spec.table_absent is not None
        }

    def allowed_empty(self) -> frozenset[str]:
        """Return the tables that may have no rows: declared absent, or ``allow_empty: true``."""
        return frozenset(
            name for name, spec in self.tables.items() if spec.table_absent is not None or spec.allow_empty
        )


# Tables with zero data rows are a structural fault unless the profile says allow_empty.
MUST_HAVE_ROWS = frozenset({"customers", "orders", "order_items"})

#: Tables a source may lack entirely (``absent: "why"``); the others carry the sales themselves.
MAY_BE_ABSENT = ("offices", "employees", "product_lines")


def template_fields(template: str) -> list[str]:
    """Return the ``{field}`` names used in a template string."""
    import string

    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def repo_profiles_dir() -> Path:
    """Return the shipped profiles' folder: ``<repo>/profiles``, or the installed package's copy."""
    return project_dir("profiles")


def profile_dirs() -> list[Path]:
    """Return the folders searched for a profile name: ``$SALESBI_PROFILES_DIR`` first, then the repo's."""
    dirs = []
    env = os.environ.get("SALESBI_PROFILES_DIR")
    if env:
        dirs.append(Path(env))
    dirs.append(repo_profiles_dir())
    return dirs


def available_profiles() -> list[str]:
    """Return the sorted names of the profiles found in the profile folders."""
    names = {p.stem for d in profile_dirs() if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(names)


def resolve_profile_path(name_or_path: str | Path) -> Path:
    """Return the YAML file for a profile name or path; raise ProfileError listing the known names."""
    text = str(name_or_path)
    looks_like_path = (
        isinstance(name_or_path, Path)
        or any(s in text for s in ("/", "\\"))
        or text.endswith((".yaml", ".yml"))
    )
    if looks_like_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise ProfileError(
                "profile file not found",
                file=path,
                hint=f"pass an existing YAML file or a profile name ({', '.join(available_profiles())})",
            )
        return path
    for d in profile_dirs():
        candidate = d / f"{text}.yaml"
        if candidate.is_file():
            return candidate
    raise ProfileError(
        f"unknown profile {text!r}",
        hint=(
            f"use one of: {', '.join(available_profiles()) or '(none found)'}, "
            f"or pass the path of a profile YAML file (searched {', '.join(str(d) for d in profile_dirs())})"
        ),
    )


def _node_line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Return the 1-based line of the YAML node at ``loc`` (the deepest node found on the way)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = None
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    found = (key_node, value_node)
                    break
            if found is None:
                return line
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _loc_text(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _public_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop pydantic's union/model tags from an error location, keep the user's key path."""
    return tuple(
        p
        for p in loc
        if not (isinstance(p, str) and ("[" in p or p.startswith("function-") or p in UNION_TAGS))
    )


#: pydantic's names for the members of a union (``coalesce: [column | derivation]``), not user keys
UNION_TAGS = frozenset({"str", "Derivation"})


def _first_error(exc: ValidationError) -> Any:
    """Return the error to report: an unknown key first, else one not from a union's text branch."""
    errors = exc.errors()
    for e in errors:
        if e["type"] == "extra_forbidden":
            return e
    for e in errors:
        if "str" not in e["loc"]:
            return e
    return errors[0]


def parse_profile(text: str, *, path: Path | None = None, default_name: str = "profile") -> Profile:
    """Return the Profile parsed from YAML ``text``; raise ProfileError naming file, line and key."""
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ProfileError(
            f"malformed YAML: {getattr(exc, 'problem', None) or exc}",
            file=path,
            line=mark.line + 1 if mark is not None else None,
            hint="fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ProfileError("a profile must be a YAML mapping of keys", file=path, line=1)
    raw.setdefault("name", path.stem if path else default_name)
    try:
        profile = Profile(**raw, path=path)
    except ValidationError as exc:
        err = _first_error(exc)
        loc = _public_loc(tuple(err["loc"]))
        line = _node_line(node, loc)
        if err["type"] == "extra_forbidden":
            key = loc[-1] if loc else "?"
            parent = loc[:-1]
            allowed = _allowed_keys(parent)
            raise ProfileError(
                f"unknown key {key!r} in {_loc_text(parent)}",
                file=path,
                line=line,
                column=str(key),
                hint=f"allowed keys there: {', '.join(allowed)}; see docs/profiles.md",
            ) from None
        raise ProfileError(
            f"invalid value for {_loc_text(loc)}: {err['msg']}",
            file=path,
            line=line,
            column=str(loc[-1]) if loc else None,
            hint="see docs/profiles.md for the keys a profile takes",
        ) from None
    _check_against_contract(profile, node)
    _check_absent_tables(profile, node)
    return profile


def _allowed_keys(parent: tuple[int | str, ...]) -> list[str]:
    """Return the keys allowed in the mapping at ``parent`` (for unknown-key messages)."""
    model: type[BaseModel] = Profile
    path = list(parent)
    if path[:1] == ["tables"]:
        model = TableSpec
        path = path[2:]
        if path[:1] == ["derive"]:
            model = Derivation
            path = path[2:]
            sub: dict[str, type[BaseModel]] = {
                "row_number": RowNumber,
                "if_present": IfPresent,
                "lookup": Lookup,
                "when": When,
                "replace": Replace,
            }
            if path and str(path[0]) in sub:
                model = sub[str(path[0])]
                path = path[1:]
                if model is When and path[:1] == ["cases"]:
                    model = Case
        elif path[:1] == ["csv"]:
            model = CsvOptions
            path = path[1:]
        elif path[:1] == ["completeness"]:
            model = Thresholds
    elif path[:1] == ["csv"]:
        model = CsvOptions
    elif path[:1] == ["completeness"]:
        model = Thresholds
    names = []
    for name, field in model.model_fields.items():
        if name == "path":
            continue
        names.append(field.alias or name)
    return names


def _check_against_contract(profile: Profile, node: yaml.Node | None) -> None:
    """Raise ProfileError when the profile names a table or canonical column the contract lacks."""

    def fail(what: str, loc: tuple[int | str, ...], hint: str, column: str | None = None) -> None:
        raise ProfileError(what, file=profile.path, line=_node_line(node, loc), column=column, hint=hint)

    for tname, spec in profile.tables.items():
        if tname not in contract.TABLES_BY_NAME:
            fail(
                f"unknown table {tname!r} under 'tables'",
                ("tables", tname),
                f"the contract has {', '.join(contract.TABLES_BY_NAME)}",
            )
        table = contract.table(tname)
        names = table.column_names
        hint = f"{tname} has columns {', '.join(names)}"
        for src, dst in spec.rename.items():
            if dst not in names:
                fail(f"rename {src!r} → unknown column {dst!r}", ("tables", tname, "rename", src), hint, dst)
        sections: dict[str, Mapping[str, Any]] = {
            "values": spec.values,
            "defaults": spec.defaults,
            "derive": spec.derive,
            "absent": spec.absent_columns,
            "dates": spec.dates,
        }
        for i, row in enumerate(spec.rows or []):
            for col in row:
                if col not in names:
                    fail(
                        f"unknown column {col!r} in tables.{tname}.rows",
                        ("tables", tname, "rows", i),
                        hint,
                        col,
                    )
            for req in table.required_columns:
                if row.get(req) is None and req not in spec.defaults:
                    fail(
                        f"tables.{tname}.rows[{i}] lacks required column {req!r}",
                        ("tables", tname, "rows", i),
                        f"every row of a constant table sets {', '.join(table.required_columns)}",
                        req,
                    )
        if spec.table_absent is not None and tname not in MAY_BE_ABSENT:
            fail(
                f"table {tname!r} cannot be declared absent",
                ("tables", tname, "absent"),
                f"only {', '.join(MAY_BE_ABSENT)} may be absent; {tname} carries the sales themselves",
            )
        for file_key, file_name in _named_files(spec):
            problem = unsafe_path_reason(file_name)
            if problem:
                fail(
                    f"tables.{tname}.{file_key} {file_name!r} {problem}",
                    ("tables", tname, file_key.split(".")[0]),
                    "name a file inside the source folder, relative to it (e.g. orders.csv or exports/*.csv)",
                )
        for section, cols in sections.items():
            for col in cols:
                if col not in names:
                    fail(
                        f"unknown column {col!r} under tables.{tname}.{section}",
                        ("tables", tname, section, col),
                        hint,
                        col,
                    )
        if spec.from_table is not None and spec.from_table not in contract.TABLES_BY_NAME:
            fail(
                f"from_table names unknown table {spec.from_table!r}",
                ("tables", tname, "from_table"),
                f"the contract has {', '.join(contract.TABLES_BY_NAME)}",
            )
        if spec.from_table == tname:
            fail(
                "a table cannot be derived from itself", ("tables", tname, "from_table"), "name another table"
            )


def _named_files(spec: TableSpec) -> list[tuple[str, str]]:
    """Return (key, file name) for every path ``spec`` names: its file and its lookups' files."""
    out = [("file", spec.file)] if spec.file is not None else []
    for target, deriv in spec.derive.items():
        out.extend((f"derive.{target}", f) for f in deriv.files())
    return out


def unsafe_path_reason(name: str) -> str | None:
    """Return why a file name from a profile could leave the source folder, or None when it cannot."""
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":") or text.startswith("~"):
        return "is an absolute path; profiles may only name files inside the source folder"
    if ".." in text.split("/"):
        return "goes up out of the source folder ('..'); profiles may only name files inside it"
    return None


def _check_absent_tables(profile: Profile, node: yaml.Node | None) -> None:
    """Raise ProfileError when a table is absent but another table's required column needs it."""
    absent = profile.absent_tables()
    if "offices" in absent and "employees" not in absent:
        raise ProfileError(
            "offices is declared absent but employees is not: every employee needs an office",
            file=profile.path,
            line=_node_line(node, ("tables", "offices")),
            hint="declare employees absent too, or give offices one constant row "
            "(rows: [{office_id: HQ, city: ..., country: ...}]) and derive "
            "employees.office_id: {constant: HQ}",
        )


def load_profile(name_or_path: str | Path | Profile) -> Profile:
    """Return the validated profile for a name (``profiles/<name>.yaml``), a YAML path, or a Profile."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    path = resolve_profile_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read profile: {exc}", file=path, hint="save it as UTF-8 text") from None
    return parse_profile(text, path=path)


def profile_summary(profile: Profile) -> dict[str, Any]:
    """Return a plain dict of the profile (for logs and run artifacts)."""
    return profile.model_dump(by_alias=True, exclude_none=True)
