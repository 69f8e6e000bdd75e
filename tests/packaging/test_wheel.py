"""The package as users install it: a wheel built from a clean copy, in a fresh virtualenv.

The wheel is built from a copy of the tracked tree (no ``var/``, no caches, no venv), installed
with ``pip`` (and ``constraints.txt``, the versions the tests ran with) into a new virtualenv
that has never seen the checkout, and run from a folder outside it with no ``PYTHONPATH``. It
must carry its own specifications and templates (package data, read with
``importlib.resources``): the golden scenario (two nights and a month, ``tests/test_golden.py``)
run by the installed ``clearing`` command gives the golden record byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import clearing

from ..cli_run import ROOT
from ..test_golden import DAY1, GOLDEN, _scenario

pytestmark = pytest.mark.slow

# what a clean clone holds that the build may read (everything else is local state)
_SKIP = {".git", ".venv", ".venv-airflow", "var", "build", "dist", ".hypothesis"}


def _clean_env() -> dict[str, str]:
    """The environment without anything that would point the venv back at the checkout."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"} and not k.startswith("CLEARING_")
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built (pip, build isolation) from a copy of the tracked tree."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(
        ROOT,
        src,
        symlinks=True,
        ignore=lambda _d, names: [
            n
            for n in names
            if n in _SKIP or n.endswith((".egg-info", "_cache")) or n == "__pycache__"
        ],
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(base / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
        env=_clean_env(),
        timeout=600,
    )
    (built,) = (base / "dist").glob("clearing-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel (and its dependencies) installed by pip."""
    target = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, timeout=300)
    subprocess.run(
        [
            str(target / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "constraints.txt"),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        env=_clean_env(),
        timeout=900,
    )
    return target


def _run(args: list[str], cwd: Path, **kw: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=_clean_env() | kw,
        timeout=600,
    )


def test_the_wheel_carries_the_package_data_the_license_and_one_version(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        meta = whl.read(f"clearing-{clearing.__version__}.dist-info/METADATA").decode()
    # every shipped spec and template is in the wheel, byte for byte
    for folder in ("specs", "reports"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                member = f"clearing/_data/{path.relative_to(ROOT).as_posix()}"
                assert member in names, member
    assert f"clearing-{clearing.__version__}.dist-info/licenses/LICENSE" in names
    assert "clearing/py.typed" in names
    # PEP 639 licence, the version from clearing.__version__, classifiers
    assert "License-Expression: Apache-2.0" in meta
    assert f"Version: {clearing.__version__}\n" in meta
    assert "Classifier: Programming Language :: Python :: 3.11" in meta
    # the libraries whose output bytes we promise are bounded above
    for lib in ("polars", "pyarrow", "duckdb", "openpyxl"):
        (line,) = [x for x in meta.splitlines() if x.startswith(f"Requires-Dist: {lib}")]
        assert "<" in line, line
    assert "Requires-Dist: asn1tools==" in meta


def test_the_installed_command_runs_the_golden_scenario_from_outside_the_checkout(
    wheel: Path, venv: Path, tmp_path: Path
) -> None:
    bin_ = venv / "bin"
    # the version, both ways in
    for cmd in (
        [str(bin_ / "clearing"), "--version"],
        [str(bin_ / "python"), "-m", "clearing", "-V"],
    ):
        r = _run(cmd, tmp_path)
        assert (r.returncode, r.stdout) == (0, f"clearing {clearing.__version__}\n"), r.stderr
    # the specs are read from inside the installed package, not from any checkout
    r = _run(
        [str(bin_ / "python"), "-c", "from clearing import _paths; print(_paths.specs_root())"],
        tmp_path,
    )
    assert Path(r.stdout.strip()).is_relative_to(venv), r.stdout + r.stderr

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return _run([str(bin_ / "clearing"), *args], tmp_path)

    got = _scenario(tmp_path / "w", cli)
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert got["exit_codes"] == golden["exit_codes"]
    assert got["out"] == golden["out"]
    assert got["manifests"] == golden["manifests"]

    # the installed rating code knows itself (its fingerprint is read from the installed
    # modules): the month's rerate takes the files rated with today's reference data as they
    # are, and reports what a full re-rating reports
    part = cli("rerate", "--workdir", str(tmp_path / "w"), "--period", DAY1[:7])
    full = cli("rerate", "--workdir", str(tmp_path / "w"), "--period", DAY1[:7], "--full")
    assert part.returncode == full.returncode == 0, part.stderr + full.stderr
    counts = re.search(r"\((\d+) rated again, (\d+) rated with today's", part.stdout)
    assert counts is not None, part.stdout
    assert int(counts.group(2)) > 0, part.stdout
    assert part.stdout.splitlines()[1:] == full.stdout.splitlines()[1:]

    # a zip-safe install: the same wheel imported as a zip archive reads its specs out of it
    (tap,) = (tmp_path / "w" / "work" / DAY1 / "in").glob("CDFRAF9HKGCL*")
    installed = _run([str(bin_ / "clearing"), "inspect", str(tap), "--json"], tmp_path)
    zipped = _run(
        [str(bin_ / "python"), "-c", _ZIPPED, "inspect", str(tap), "--json"],
        tmp_path,
        PYTHONPATH=str(wheel),
    )
    assert zipped.returncode == installed.returncode == 0, zipped.stderr
    assert zipped.stdout == installed.stdout
    assert zipped.stderr.startswith(f"{wheel}{os.sep}clearing"), zipped.stderr


# runs the CLI and says (on stderr, first) where the package was imported from
_ZIPPED = (
    "import sys, clearing, clearing.cli; "
    "print(clearing.__file__, file=sys.stderr); "
    "sys.argv[0] = 'clearing'; clearing.cli.main(sys.argv[1:])"
)
