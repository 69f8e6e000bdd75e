"""The history of the reference data: every ``rates import`` that changed something is a version.

The imported tables in ``rates/<table>/`` are always the *current* version (rating reads only
them, as before). Each import that changes their content also records an **import version**,
append-only, under ``rates/versions/``::

    rates/versions/v1/version.json           id, import time, content hash, per table: rows,
    rates/versions/v2/version.json           source file and its SHA-256, snapshot
    rates/versions/tables/<hash16>/<table>/  a copy of the table as imported (Parquet,
                                             _manifest.json, source.csv), shared by every
                                             version in which the table did not change

* The **content hash** of a table is the SHA-256 of its name and of the sorted ``version`` of
  its rows (the content hash of each row, :func:`~clearing.rating.row_version`): it changes
  when a row changes, not when a source file is only reordered or commented. The content hash
  of a version is that of its tables' hashes.
* Importing sources whose content equals the latest version's records nothing; an edit in place
  (a price changed on an existing line) gives a new version; the older versions stay readable
  (:func:`version_table`).
* A folder imported before versions existed has its tables recorded as ``v1`` (``adopted``,
  with the time of the table files) by the first import that runs here, before it replaces them.

A rated row's ``iot_version`` is the content hash of the tariff row that priced it, so it is
found in every version that holds that row (:func:`find_rows`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from clearing._io import write_atomic
from clearing.errors import ConfigError
from clearing.rating._refdata import SOURCES, read_table
from clearing.rating._schema import schemas

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "VERSIONS",
    "TableVersion",
    "Version",
    "adopt_current",
    "current_version",
    "find_rows",
    "get_version",
    "list_versions",
    "record_version",
    "version_table",
]

VERSIONS = "versions"
_MANIFEST = "version.json"
_ID = re.compile(r"v([1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class TableVersion:
    """One table as a version holds it.

    Attributes:
        content_sha256: the table's content hash (its name and its rows' versions).
        rows: its number of rows.
        source: the source file, relative to the rates folder (``sources/iot.csv``).
        source_sha256: the SHA-256 of the source file as imported.
        snapshot: the folder of its copy, relative to ``rates/versions``.
    """

    content_sha256: str
    rows: int
    source: str
    source_sha256: str
    snapshot: str


@dataclass(frozen=True, slots=True)
class Version:
    """One import version of a rates folder.

    Attributes:
        id: ``v1``, ``v2``… in the order of import.
        imported_at: when it was imported (UTC, ISO 8601).
        content_sha256: the hash of its tables' content hashes.
        previous: the version before it (None for the first).
        adopted: recorded from tables imported before versions existed.
        tables: per table name, what the version holds.
    """

    id: str
    imported_at: str
    content_sha256: str
    previous: str | None
    adopted: bool
    tables: dict[str, TableVersion]

    def as_dict(self) -> dict[str, Any]:
        """The version as JSON-ready data (what ``version.json`` holds)."""
        return {
            "version": self.id,
            "imported_at": self.imported_at,
            "content_sha256": self.content_sha256,
            "previous": self.previous,
            "adopted": self.adopted,
            "tables": {
                name: {
                    "content_sha256": t.content_sha256,
                    "rows": t.rows,
                    "source": t.source,
                    "source_sha256": t.source_sha256,
                    "snapshot": t.snapshot,
                }
                for name, t in sorted(self.tables.items())
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Version:
        """The version of a ``version.json``."""
        return cls(
            id=str(data["version"]),
            imported_at=str(data["imported_at"]),
            content_sha256=str(data["content_sha256"]),
            previous=data.get("previous"),
            adopted=bool(data.get("adopted", False)),
            tables={name: TableVersion(**t) for name, t in data["tables"].items()},
        )


def _number(vid: str) -> int:
    m = _ID.fullmatch(vid)
    return int(m.group(1)) if m else 0


def list_versions(rates_dir: Path) -> list[Version]:
    """Every recorded version of ``rates_dir``, oldest first (empty: none recorded)."""
    root = rates_dir / VERSIONS
    if not root.is_dir():
        return []
    found: list[Version] = []
    for folder in root.iterdir():
        manifest = folder / _MANIFEST
        if _number(folder.name) and manifest.is_file():
            found.append(Version.from_dict(json.loads(manifest.read_text(encoding="utf-8"))))
    return sorted(found, key=lambda v: _number(v.id))


def current_version(rates_dir: Path) -> Version | None:
    """The latest version (the one ``rates/<table>/`` holds), or None before any import."""
    found = list_versions(rates_dir)
    return found[-1] if found else None


def get_version(rates_dir: Path, vid: str) -> Version:
    """The version ``vid`` (``v3``).

    Raises:
        ConfigError: no such version.
    """
    found = list_versions(rates_dir)
    for v in found:
        if v.id == vid:
            return v
    known = ", ".join(v.id for v in found) or "none"
    msg = (
        f"no reference-data version `{vid}` in `{rates_dir / VERSIONS}` (versions: {known}); "
        "see `clearing rates versions`"
    )
    raise ConfigError(msg)


def version_table(
    rates_dir: Path, version: Version, table: str, *, specs: Path | None = None
) -> pl.DataFrame:
    """The table ``table`` as ``version`` holds it (:func:`read_table` of its snapshot).

    Raises:
        ConfigError: the version has no such table.
    """
    if table not in version.tables:
        msg = (
            f"reference-data version {version.id} has no table `{table}` "
            f"(tables: {', '.join(sorted(version.tables)) or 'none'})"
        )
        raise ConfigError(msg)
    return read_table(rates_dir / VERSIONS / version.tables[table].snapshot, table, specs=specs)


def find_rows(
    rates_dir: Path, row_version: str, table: str = "iot", *, specs: Path | None = None
) -> tuple[pl.DataFrame, list[Version]]:
    """The rows of ``table`` whose ``version`` is ``row_version``, and the versions holding them.

    The row is the same in every version that holds it (its version is its content hash); the
    row returned is that of the latest of them (its resolved ``valid_to`` may have been set by
    a later row of its key). Empty when no version holds it.
    """
    holding: list[Version] = []
    rows: pl.DataFrame | None = None
    read: dict[str, pl.DataFrame] = {}
    for v in list_versions(rates_dir):
        t = v.tables.get(table)
        if t is None:
            continue
        if t.snapshot not in read:
            df = version_table(rates_dir, v, table, specs=specs)
            read[t.snapshot] = df.filter(pl.col("version") == row_version)
        hit = read[t.snapshot]
        if hit.height:
            holding.append(v)
            rows = hit
    return (rows if rows is not None else pl.DataFrame()), holding


def _live_tables(rates_dir: Path, specs: Path | None) -> dict[str, dict[str, Any]]:
    """Per imported table in ``rates_dir``: its content hash, rows and source (from its files)."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(schemas(specs)):
        folder = rates_dir / name
        files = sorted(folder.glob("**/*.parquet")) if folder.is_dir() else []
        if not files:
            continue
        versions = sorted(pl.read_parquet(files, columns=["version"])["version"].to_list())
        digest = hashlib.sha256("\n".join([name, *versions]).encode()).hexdigest()
        manifest_path = folder / "_manifest.json"
        manifest = (
            json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
        )
        out[name] = {
            "content_sha256": digest,
            "rows": len(versions),
            "source": str(manifest.get("source", f"{SOURCES}/{name}.csv")),
            "source_sha256": str(manifest.get("source_sha256", "")),
            "folder": folder,
            "mtime": max(p.stat().st_mtime for p in files),
        }
    return out


def _snapshot(rates_dir: Path, name: str, live: dict[str, Any]) -> str:
    """Copy a live table into ``versions/tables/<hash16>/<name>`` (once); return its folder."""
    rel = f"tables/{live['content_sha256'][:16]}"
    target = rates_dir / VERSIONS / rel / name
    if target.is_dir():
        return rel
    tmp = target.with_name(f".{name}.copying-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(live["folder"], tmp)
    source = rates_dir / live["source"]
    if (
        source.is_file()
        and hashlib.sha256(source.read_bytes()).hexdigest() == live["source_sha256"]
    ):
        shutil.copy2(source, tmp / "source.csv")
    tmp.rename(target)
    return rel


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_version(
    rates_dir: Path,
    *,
    imported_at: datetime | None = None,
    adopted: bool = False,
    specs: Path | None = None,
) -> tuple[Version | None, bool]:
    """Record the tables now in ``rates_dir`` as a new version, unless the latest holds them.

    Args:
        rates_dir: the reference-data folder.
        imported_at: the import time to record (default: now).
        adopted: the tables were imported before versions existed.
        specs: the folder of schema files (default: the project's ``specs/rates``).

    Returns:
        ``(version, new)``: the version holding the tables (None: no table imported) and
        whether it was recorded now.
    """
    live = _live_tables(rates_dir, specs)
    if not live:
        return None, False
    content = hashlib.sha256(
        "\n".join(f"{n}:{t['content_sha256']}" for n, t in sorted(live.items())).encode()
    ).hexdigest()
    latest = current_version(rates_dir)
    if latest is not None and latest.content_sha256 == content:
        return latest, False
    tables = {
        name: TableVersion(
            content_sha256=t["content_sha256"],
            rows=t["rows"],
            source=t["source"],
            source_sha256=t["source_sha256"],
            snapshot=_snapshot(rates_dir, name, t),
        )
        for name, t in live.items()
    }
    when = imported_at or datetime.now(UTC)
    number = _number(latest.id) + 1 if latest else 1
    while True:
        folder = rates_dir / VERSIONS / f"v{number}"
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            number += 1  # another import took this number
            continue
        break
    version = Version(
        id=f"v{number}",
        imported_at=_utc(when),
        content_sha256=content,
        previous=latest.id if latest else None,
        adopted=adopted,
        tables=tables,
    )
    write_atomic(folder / _MANIFEST, json.dumps(version.as_dict(), indent=1) + "\n")
    return version, True


def adopt_current(rates_dir: Path, *, specs: Path | None = None) -> Version | None:
    """Record tables imported before versions existed as the first version (``adopted``).

    Does nothing when a version is already recorded or nothing is imported. The import time
    recorded is that of the newest table file.
    """
    if list_versions(rates_dir):
        return None
    live = _live_tables(rates_dir, specs)
    if not live:
        return None
    when = datetime.fromtimestamp(max(t["mtime"] for t in live.values()), UTC)
    version, _ = record_version(rates_dir, imported_at=when, adopted=True, specs=specs)
    return version
