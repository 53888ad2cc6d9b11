"""A small TMDL reader for the Power BI tests: indentation, object kinds, properties, expressions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

KINDS = {
    "model",
    "database",
    "table",
    "column",
    "measure",
    "partition",
    "relationship",
    "expression",
    "annotation",
    "ref",
    "cultureInfo",
    "hierarchy",
    "level",
    "dataAccessOptions",
    "variation",
}
_PROP = re.compile(r"^([A-Za-z]+):\s*(.*)$")
_FLAG = re.compile(r"^([A-Za-z]+)$")


@dataclass
class Node:
    """A TMDL object: kind, name, default expression, properties, flags, children."""

    kind: str
    name: str
    expression: str = ""
    props: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    description: str = ""
    line: int = 0

    def of(self, kind: str) -> list[Node]:
        """Return the children of one kind."""
        return [c for c in self.children if c.kind == kind]


class TmdlError(ValueError):
    """A TMDL text the reader cannot parse (message names the line)."""


def _name(rest: str, line_no: int) -> tuple[str, str]:
    rest = rest.strip()
    if rest.startswith("'"):
        i, out = 1, []
        while i < len(rest):
            if rest[i] == "'":
                if rest[i + 1 : i + 2] == "'":
                    out.append("'")
                    i += 2
                    continue
                return "".join(out), rest[i + 1 :].strip()
            out.append(rest[i])
            i += 1
        raise TmdlError(f"line {line_no}: unterminated quoted name")
    m = re.match(r"^([^\s=]+)(.*)$", rest)
    return (m.group(1), m.group(2).strip()) if m else ("", rest)


def _depth(line: str, line_no: int) -> int:
    stripped = line.lstrip("\t")
    if stripped.startswith(" "):
        raise TmdlError(f"line {line_no}: indentation must use tabs")
    return len(line) - len(stripped)


def parse(text: str) -> list[Node]:
    """Return the top-level objects of a TMDL document."""
    lines = text.split("\n")
    roots: list[Node] = []
    stack: list[tuple[int, Node]] = []
    description: list[str] = []
    i = 0
    while i < len(lines):
        raw, line_no = lines[i], i + 1
        i += 1
        if not raw.strip():
            continue
        depth = _depth(raw, line_no)
        body = raw.strip()
        if body.startswith("///"):
            description.append(body[3:].strip())
            continue
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        head = body.split(None, 1)
        kind = head[0]
        if kind in KINDS and not body.startswith(f"{kind}:"):
            rest = head[1] if len(head) > 1 else ""
            if kind == "ref":
                sub, rest = rest.split(None, 1)
                kind = f"ref {sub}"
            name, tail = _name(rest, line_no) if rest else ("", "")
            node = Node(kind, name, description=" ".join(description), line=line_no)
            description = []
            if tail.startswith("="):
                value = tail[1:].strip()
                if value:
                    node.expression = value
                else:
                    node.expression, i = _block(lines, i, depth + 1)
            elif tail:
                raise TmdlError(f"line {line_no}: unexpected text after {kind} name: {tail!r}")
            (parent.children if parent else roots).append(node)
            stack.append((depth, node))
            continue
        if parent is None:
            raise TmdlError(f"line {line_no}: property outside an object: {body!r}")
        m = _PROP.match(body)
        if m:
            parent.props[m.group(1)] = m.group(2)
            continue
        if body.endswith("=") and _FLAG.match(body[:-1].strip()):
            parent.props[body[:-1].strip()], i = _block(lines, i, depth)
            continue
        if _FLAG.match(body):
            parent.props[body] = "true"
            continue
        raise TmdlError(f"line {line_no}: cannot read {body!r}")
    return roots


def _block(lines: list[str], i: int, owner_depth: int) -> tuple[str, int]:
    """Read a multi-line expression: lines indented deeper than ``owner_depth`` (blank lines allowed)."""
    out: list[str] = []
    while i < len(lines):
        raw = lines[i]
        if raw.strip() and len(raw) - len(raw.lstrip("\t")) <= owner_depth:
            break
        out.append(raw.strip("\t") if raw.strip() else "")
        i += 1
    while out and not out[-1]:
        out.pop()
    if not out:
        raise TmdlError(f"line {i}: empty expression block")
    return "\n".join(out), i


@dataclass
class SemanticModel:
    """The parts of a TMDL folder the tests look at."""

    model: Node
    tables: dict[str, Node]
    relationships: list[Node]
    expressions: dict[str, Node]


def read_model(definition: Path) -> SemanticModel:
    """Parse ``definition/`` (model, tables, relationships, expressions) into a :class:`SemanticModel`."""
    model = parse((definition / "model.tmdl").read_text(encoding="utf-8"))
    tables: dict[str, Node] = {}
    for path in sorted((definition / "tables").glob("*.tmdl")):
        nodes = parse(path.read_text(encoding="utf-8"))
        assert len(nodes) == 1 and nodes[0].kind == "table", path
        tables[nodes[0].name] = nodes[0]
    rels = parse((definition / "relationships.tmdl").read_text(encoding="utf-8"))
    exprs = parse((definition / "expressions.tmdl").read_text(encoding="utf-8"))
    assert parse((definition / "database.tmdl").read_text(encoding="utf-8"))[0].kind == "database"
    return SemanticModel(
        model=next(n for n in model if n.kind == "model")
        if any(n.kind == "model" for n in model)
        else model[0],
        tables=tables,
        relationships=rels,
        expressions={e.name: e for e in exprs},
    )


def model_refs(text: str) -> list[str]:
    """Return the table names of the ``ref table`` lines of ``model.tmdl``, in order."""
    return [n.name for n in parse(text) if n.kind == "ref table"]
