"""Where the data shipped with the package lies: the ``specs/`` and ``reports/`` folders.

The one place that knows the package's location on disk; the folders actually used (which the
``CLEARING_*`` variables may override) are :func:`clearing.config.environment`'s.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["reports_root", "specs_root"]

_ROOT = Path(__file__).resolve().parents[1]


def specs_root() -> Path:
    """The ``specs/`` folder: ASN.1 modules, CIBER layouts, table schemas, the CDR format."""
    return _ROOT / "specs"


def reports_root() -> Path:
    """The ``reports/`` folder: the run summary templates and workbook documentation."""
    return _ROOT / "reports"
