"""The CLI imports only what a verb uses: no heavy library is loaded to parse a command line.

Each check runs a fresh interpreter (so nothing an earlier test imported counts) and reads its
``sys.modules``. The heavy libraries are the ones the issue names (duckdb, polars, pyarrow,
paramiko, openpyxl) plus numpy, pydantic, asn1tools and jinja2, and the package's own layers
that load them. The timings themselves are a benchmark: ``tests/bench/test_bench_startup.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

ISSUE_HEAVY = ("duckdb", "polars", "pyarrow", "paramiko", "openpyxl")
"""The libraries no ``import clearing.cli`` may load (issue 15, item 7)."""
ALSO_HEAVY = ("numpy", "pydantic", "asn1tools", "jinja2", "pyparsing")
PACKAGE_LAYERS = (
    "clearing.config",
    "clearing.codecs",
    "clearing.store",
    "clearing.lake",
    "clearing.ingest",
    "clearing.validate",
    "clearing.returns",
    "clearing.rating",
    "clearing.outbound",
    "clearing.transport",
    "clearing.settle",
    "clearing.pipeline",
)

# runs the CLI in-process with `args`, then prints the modules loaded, whatever the exit
_PROBE = r"""
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.__stderr__))
args = json.loads(sys.argv[1])
if args is None:
    import clearing.cli
else:
    from clearing.cli import main
    main(args)
"""


def _loaded(args: list[str] | None) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )
    last = done.stderr.strip().splitlines()[-1]
    modules: set[str] = set(json.loads(last))
    return modules


def _heavy(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules)


def test_importing_the_cli_loads_no_heavy_library() -> None:
    modules = _loaded(None)
    assert "clearing.cli" in modules  # the probe did import it
    assert _heavy(modules, ISSUE_HEAVY) == []
    assert _heavy(modules, ALSO_HEAVY) == []
    assert _heavy(modules, PACKAGE_LAYERS) == []


@pytest.mark.parametrize(
    "args",
    [["--help"], ["inspect", "--help"], ["nightly", "--help"], ["settle", "daily", "--help"]],
    ids=" ".join,
)
def test_help_loads_no_heavy_library(args: list[str]) -> None:
    modules = _loaded(args)
    assert "typer" in modules
    assert _heavy(modules, ISSUE_HEAVY) == []
    assert _heavy(modules, ("numpy", "asn1tools", "jinja2")) == []
    assert _heavy(modules, PACKAGE_LAYERS) == []


def test_inspect_loads_no_state_transport_or_workbook_library() -> None:
    """``clearing inspect`` reads one file: no state, no lake, no transport, no workbook.

    A Notification (a TAP file without events) needs no event table either: no numpy, no Arrow.
    """
    modules = _loaded(["inspect", str(ROOT / "data_samples" / "tap" / "CDSGPS9HKGCL00966")])
    assert "clearing.codecs.asn1" in modules  # it did decode the file
    assert _heavy(modules, ISSUE_HEAVY) == []
    assert _heavy(modules, ("numpy", "jinja2")) == []
    layers = ("clearing.store", "clearing.transport", "clearing.settle", "clearing.pipeline")
    assert _heavy(modules, layers) == []


def test_inspect_of_a_tap_file_loads_no_state_transport_or_workbook_library() -> None:
    modules = _loaded(["inspect", str(ROOT / "data_samples" / "tap" / "CDCHEC9HKGCL03631")])
    assert "clearing.codecs.fast" in modules  # its events were read
    assert _heavy(modules, ("duckdb", "polars", "paramiko", "openpyxl", "jinja2")) == []
    layers = ("clearing.store", "clearing.transport", "clearing.settle", "clearing.pipeline")
    assert _heavy(modules, layers) == []
