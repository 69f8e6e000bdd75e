"""Pieces shared by the daily and monthly workbooks: audit facts, labels, durations.

Settlement never finds or decodes an input file again: what a file declares is in the
register (``clearing.duckdb``), recorded by the stage that decoded or wrote it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import clearing
from clearing.config import config_sha256

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = [
    "KIND_LABEL",
    "AuditFacts",
    "file_sha256",
    "hours",
    "software_version",
]

KIND_LABEL = {
    "tap": "TAP",
    "transferBatch": "TAP",
    "notification": "Notification",
    "ciber": "CIBER",
    "unreadable": "unreadable",
    "rap": "RAP",
    "ack": "ACK",
    "nrt": "NRTRDE",
    "ciber_return": "CIBER return",
}

# delivery limits (domain.md §1.3): TAP within 36 h of the call's end, NRTRDE within 4 h
LIMIT_HOURS = {"TAP": 36, "NRTRDE": 4}


def software_version() -> str:
    """The package version written into every workbook."""
    return f"clearing {clearing.__version__}"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hours(delta: timedelta) -> Decimal:
    """A duration in hours, one decimal (half up)."""
    seconds = int(delta.total_seconds())
    tenths = (abs(seconds) * 10 * 2 + 3600) // (2 * 3600)
    return Decimal(-tenths if seconds < 0 else tenths).scaleb(-1)


def naive_utc(value: datetime | None) -> datetime | None:
    """A datetime as naive UTC (Excel has no time zones)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


@dataclass(frozen=True)
class AuditFacts:
    """What produced a workbook: software, configuration, reference data, inputs, run."""

    software: str
    config_hash: str  # SHA-256 of clearing.toml: the manifest's ``config_sha256``
    rates: list[tuple[str, str]]  # (table, source sha256)

    @classmethod
    def collect(cls, workdir: Path) -> AuditFacts:
        """Read the facts of a work folder (config fingerprint, reference data versions)."""
        rates_dir = workdir / "rates"
        rates: list[tuple[str, str]] = []
        if rates_dir.is_dir():
            for manifest in sorted(rates_dir.glob("*/_manifest.json")):
                try:
                    doc = json.loads(manifest.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                rates.append(
                    (str(doc.get("table", manifest.parent.name)), doc.get("source_sha256", ""))
                )
        config = config_sha256(workdir) or "none (no clearing.toml in the work folder)"
        return cls(software_version(), config, rates)


def lake_file_rows(files: Iterable[Path], root: Path) -> list[dict[str, Any]]:
    """Audit rows for lake files read: path relative to the work folder and SHA-256."""
    out = []
    for f in sorted(set(files)):
        try:
            rel = str(f.relative_to(root))
        except ValueError:
            rel = str(f)
        out.append({"what": "lake file read", "name": rel, "sha256": file_sha256(f)})
    return out
