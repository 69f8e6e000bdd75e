"""Where the data shipped with the package lies: the ``specs/`` and ``reports/`` folders.

Both are package data: inside an installed wheel they are ``clearing/_data/specs`` and
``clearing/_data/reports``; in a checkout those two names are links to the top-level ``specs/``
and ``reports/`` folders, so an editable install and a ``PYTHONPATH`` checkout read the same files
the same way. They are found with :mod:`importlib.resources`, never from ``__file__``. When the
package is imported from a zip archive (a zip-safe install), the folder is extracted once into a
private temporary folder, since the ASN.1 compiler and DuckDB read real files.

The one place that knows where the package's data is; the folders actually used (which
``CLEARING_SPECS_DIR`` and ``CLEARING_REPORTS_DIR`` may override) are
:func:`clearing.environment.environment`'s.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["reports_root", "specs_root"]


def specs_root() -> Path:
    """The shipped ``specs/`` folder: ASN.1 modules, CIBER layouts, table schemas, CDR format."""
    return _shipped("specs")


def reports_root() -> Path:
    """The shipped ``reports/`` folder: the run summary templates and workbook documentation."""
    return _shipped("reports")


@cache
def _shipped(name: str) -> Path:
    folder = resources.files("clearing") / "_data" / name
    if isinstance(folder, Path):
        return folder.resolve()  # in a checkout: the top-level folder itself
    # imported from a zip: copy the folder out once (removed when the process ends)
    target = Path(tempfile.mkdtemp(prefix="clearing-data-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    _copy(folder, target / name)
    return target / name


def _copy(source: Traversable, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.is_dir():
            _copy(entry, target / entry.name)
        else:
            (target / entry.name).write_bytes(entry.read_bytes())
