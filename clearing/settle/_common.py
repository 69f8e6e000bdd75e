"""Pieces shared by the daily and monthly workbooks: inputs on disk, audit facts, labels."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import clearing
from clearing.config import WorkDir
from clearing.errors import ClearingError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from clearing.config import Settings

__all__ = [
    "KIND_LABEL",
    "AuditFacts",
    "file_sha256",
    "find_input",
    "header_summary",
    "hours",
    "inspect_file",
    "parse_tap_stamp",
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


def find_input(workdir: Path, day: date, name: str, sha256: str | None) -> Path | None:
    """Where an input file of ``day`` is now: ``work/D/in``, ``done/``, ``inbox/``, ``failed/``.

    A candidate counts only when its bytes hash to ``sha256`` (the register's), so a later
    file under the same name is never read in its place.
    """
    candidates = [WorkDir(workdir).work(day) / "in" / name]
    for folder in ("done", "inbox", "failed", "work"):
        root = workdir / folder
        if root.is_dir():
            candidates += sorted(root.rglob(name))
    seen: set[Path] = set()
    for p in candidates:
        if p in seen or not p.is_file():
            continue
        seen.add(p)
        if sha256 is None or file_sha256(p) == sha256:
            return p
    return None


def header_summary(path: Path | None) -> dict[str, Any] | None:
    """The header facts of a TAP file or Notification, decoding only its header groups.

    ``{"kind", "audit": {"total_charge"}, "file_available", "tap_decimal_places",
    "tap_currency"}`` — what the registers need, without decoding the call events again (the
    validate stage did; the recomputed totals come from its rows in the lake). Other kinds
    (CIBER, RAP) get :func:`inspect_file`'s full summary. None when missing or unreadable.
    """
    if path is None or not path.is_file():
        return None
    from clearing.codecs import asn1
    from clearing.codecs.ber import element_at, iter_children

    data = path.read_bytes()
    try:
        info = asn1.sniff(data)
    except ClearingError:  # CIBER, or unreadable: the full summary says which
        return inspect_file(path)
    if info.kind not in ("tap", "notification") or info.tap_release is None:
        return inspect_file(path)
    try:
        spec = asn1.spec("tap", info.tap_release)
        grammar = asn1.grammar("tap", info.tap_release)
        root = "TransferBatch" if info.kind == "tap" else "Notification"
        groups: dict[str, Any] = {}
        for child in iter_children(data, element_at(data, 0)):
            meaning = grammar.child(root, child.key)
            if meaning is None or not meaning.name or meaning.name == "callEventDetails":
                continue
            if meaning.type_name and meaning.constructed:
                groups[meaning.name] = spec.decode(
                    meaning.type_name, data[child.offset : child.end]
                )
    except (ClearingError, ValueError, KeyError, IndexError, TypeError):
        return None
    except Exception as exc:  # asn1tools' own errors
        if type(exc).__module__.startswith("asn1tools"):
            return None
        raise
    from clearing.codecs.tap3.values import stamp_text, text

    bci = groups.get("batchControlInfo") or {}
    acc = groups.get("accountingInfo") or {}
    aci = groups.get("auditControlInfo") or {}
    stamp = bci.get("fileAvailableTimeStamp") or groups.get("fileAvailableTimeStamp")
    return {
        "kind": info.kind,
        "audit": {"total_charge": aci.get("totalCharge")},
        "file_available": stamp_text(stamp),
        "tap_decimal_places": acc.get("tapDecimalPlaces"),
        "tap_currency": text(acc.get("tapCurrency")),
    }


def inspect_file(path: Path | None) -> dict[str, Any] | None:
    """``clearing inspect``'s summary of a file (None when missing or unreadable)."""
    if path is None or not path.is_file():
        return None
    from clearing import inspect

    try:
        return inspect.summarize(path.read_bytes(), file=path.name)
    except ClearingError:
        return None


_STAMP = re.compile(r"(\d{14})([+-]\d{4})?")


def parse_tap_stamp(text: str | None) -> datetime | None:
    """``CCYYMMDDhhmmss±hhmm`` (TAP DateTimeLong) → naive UTC datetime."""
    if not text:
        return None
    m = _STAMP.fullmatch(text)
    if m is None:
        return None
    local = datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    off = m.group(2) or "+0000"
    sign = 1 if off[0] == "+" else -1
    delta = timedelta(hours=int(off[1:3]), minutes=int(off[3:5]))
    return local - sign * delta


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
    config_hash: str
    rates: list[tuple[str, str]]  # (table, source sha256)

    @classmethod
    def collect(cls, settings: Settings, rates_dir: Path) -> AuditFacts:
        """Read the facts of a work folder."""
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
        return cls(software_version(), settings.fingerprint(), rates)


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
