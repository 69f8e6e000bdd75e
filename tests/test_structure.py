"""The package's shape: habits that keep each module readable one function at a time."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "clearing"
MAX_FUNCTION_LINES = 150


def _functions(source: str) -> list[tuple[str, int, int]]:
    """(qualified name, first line, lines) of every function and method in ``source``."""
    out: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                assert child.end_lineno is not None
                name = f"{prefix}{child.name}"
                out.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return out


def test_the_scan_counts_from_def_to_last_line_and_sees_methods_and_inner_functions() -> None:
    source = (
        "class A:\n"  # 1
        "    @staticmethod\n"  # 2
        "    def m(x):\n"  # 3
        "        def inner():\n"  # 4
        "            return 1\n"  # 5
        "\n"  # 6
        "        return (\n"  # 7
        "            x\n"  # 8
        "        )\n"  # 9
        "async def f():\n"  # 10
        "    pass\n"  # 11
    )
    assert _functions(source) == [("A.m", 3, 7), ("A.m.inner", 4, 2), ("f", 10, 2)]


def test_no_function_in_the_package_is_over_150_lines() -> None:
    paths = sorted(PACKAGE.rglob("*.py"))
    assert {"config.py", "codecs/fast.py", "settle/_monthly.py"} <= {
        p.relative_to(PACKAGE).as_posix() for p in paths
    }
    long = [
        f"{path.relative_to(PACKAGE)}:{line} {name} ({n} lines)"
        for path in paths
        for name, line, n in _functions(path.read_text(encoding="utf-8"))
        if n > MAX_FUNCTION_LINES
    ]
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines (split them): {long}"
