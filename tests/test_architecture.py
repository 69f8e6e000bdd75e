"""The package's shape, held by tests: imports run one way, each rule and table has one owner.

Read from the source with `ast` (nothing is imported), so a violation names the file and line:

* **import order** — a module imports only its own package, the foundation, and the layers
  below it: codecs → store/lake → ingest → validate → returns → rating → outbound → transport
  → settle → pipeline → cli (DESIGN.md "Layout");
* **no import cycle** between sub-packages (even through function-local imports);
* **no private names across packages** — ``from clearing.x._y import …`` or
  ``from clearing.x import _name`` only inside package ``x``;
* **one owner for the DDL** — ``CREATE TABLE`` appears in ``clearing/store/schema.py`` only
  (a query's working tables, ``CREATE TEMP TABLE`` / ``CREATE OR REPLACE TABLE … AS`` in an
  in-memory session, are not state);
* **settle is a function of store + lake** — it imports neither the codecs nor ``inspect``;
* (no function over 150 lines: ``tests/test_structure.py``, with a test of its own scan).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "clearing"

# Foundation: small owners of one rule each, importable from anywhere, importing only each other.
FOUNDATION = {
    "errors",
    "config",
    "money",
    "names",
    "identity",
    "_io",
    "_memory",
    "log",
    "_paths",
    "environment",
    "__init__",
    "py",
}
# The layers, lowest first; a unit may import its own layer and the ones before it.
LAYERS: list[set[str]] = [
    {"codecs"},
    {"store", "lake", "keyindex", "stage"},
    {"ingest"},
    {"validate"},
    {"inspect"},
    {"returns"},
    {"rating"},
    {"lookup"},  # clearing find: the lake's events of one subscriber
    {"outbound"},
    {"transport"},
    {"settle"},
    {"samples"},
    {"pipeline"},
    {"demo"},
    {"cli"},
    {"__main__"},  # python -m clearing: the command line
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


@dataclass(frozen=True)
class Import:
    """One `clearing.*` import: who imports what (module path and the names taken)."""

    source: Path
    line: int
    target: str  # dotted module, e.g. "clearing.validate.state"
    names: tuple[str, ...]


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """The top-level unit of ``clearing.x.y`` → ``x``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path)
    is_pkg = path.name == "__init__.py"
    out: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [
                Import(path, node.lineno, a.name, ())
                for a in node.names
                if a.name == "clearing" or a.name.startswith("clearing.")
            ]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = me.split(".") if is_pkg else me.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "clearing" or target.startswith("clearing."):
                out.append(Import(path, node.lineno, target, tuple(a.name for a in node.names)))
    return out


def _where(imp: Import) -> str:
    return f"{imp.source.relative_to(PACKAGE.parent)}:{imp.line} imports {imp.target}"


ALL_IMPORTS = [imp for path in _modules() for imp in _imports(path)]


def test_every_unit_has_a_place_in_the_layers() -> None:
    units = {_unit(_module_name(p)) for p in _modules()}
    unplaced = sorted(u for u in units if u not in RANK and u not in FOUNDATION)
    assert unplaced == [], "add these to LAYERS or FOUNDATION (and DESIGN.md)"


def test_imports_run_one_way() -> None:
    wrong = []
    for imp in ALL_IMPORTS:
        src, dst = _unit(_module_name(imp.source)), _unit(imp.target)
        if dst == "__init__":  # `from clearing import x`: judge each name taken
            targets = [n for n in imp.names if n in RANK or n in FOUNDATION] or ["__init__"]
        else:
            targets = [dst]
        for t in targets:
            if t == src:
                continue
            if src in FOUNDATION:
                if t not in FOUNDATION:
                    wrong.append(f"{_where(imp)}: the foundation imports only the foundation")
            elif t not in FOUNDATION and RANK.get(t, -1) > RANK.get(src, 99):
                wrong.append(f"{_where(imp)}: {src} sits below {t}")
    assert wrong == []


def test_no_import_cycle_between_sub_packages() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in ALL_IMPORTS:
        src, dst = _unit(_module_name(imp.source)), _unit(imp.target)
        if src != dst and dst != "__init__":
            graph[src].add(dst)
    cycles = []
    for start in sorted(graph):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    cycles.append(" → ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert cycles == []


def test_no_package_imports_another_packages_private_names() -> None:
    wrong = []
    for imp in ALL_IMPORTS:
        src_mod = _module_name(imp.source)
        src, dst = _unit(src_mod), _unit(imp.target)
        if src == dst:
            continue
        private_module = any(p.startswith("_") for p in imp.target.split(".")[2:])
        private_name = [n for n in imp.names if n.startswith("_") and n != "__version__"]
        if private_module or private_name:
            wrong.append(f"{_where(imp)} {', '.join(private_name)}".strip())
    assert wrong == []


def test_create_table_is_written_in_one_module() -> None:
    owners = sorted(
        str(p.relative_to(PACKAGE.parent))
        for p in _modules()
        if re.search(r"\bcreate\s+table\b", p.read_text(encoding="utf-8"), re.I)
    )
    assert owners == ["clearing/store/schema.py"]


@pytest.mark.parametrize("forbidden", ["codecs", "inspect"])
def test_settle_reads_store_and_lake_only(forbidden: str) -> None:
    wrong = [
        _where(imp)
        for imp in ALL_IMPORTS
        if _unit(_module_name(imp.source)) == "settle"
        and (_unit(imp.target) == forbidden or forbidden in imp.names)
    ]
    assert wrong == []
