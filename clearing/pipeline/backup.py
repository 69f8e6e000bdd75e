"""Backup and restore of a work folder: a consistent copy, verifiable by checksums.

A backup is a folder: ``files/`` (every file of the work folder, as it was) and
``backup.json`` (format, when, from where, and each file's path, size and SHA-256), written
last, so that a backup without it is an unfinished one. It is taken while the caller holds the
work folder's lock (the CLI takes it shared: no run can change the folder meanwhile, readers
may still read), so the state store, the fetch ledger, the lake, the reference-data history,
the runs and the outputs are of one moment.

A restore checks every file of the backup against ``backup.json`` before it copies anything,
copies into the new work folder (which must be empty: its lock file aside) and writes
``clearing.toml`` last: until the restore has finished, no verb takes the folder for a work
folder. The next night on the restored folder does what it would have done on the original.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clearing import __version__
from clearing._io import file_sha256, fsync_dir, write_atomic
from clearing.errors import ConfigError, FaultError
from clearing.pipeline.lock import LOCK_NAME

__all__ = ["FORMAT", "MANIFEST", "BackupReport", "backup", "restore", "verify"]

FORMAT = 1
"""The layout of a backup folder (``backup.json`` ``format``)."""
MANIFEST = "backup.json"
"""The backup's list of files, written last."""
_FILES = "files"
_STAGING = re.compile(r"\..+\.\d+\.tmp")  # clearing._io's staging name of an atomic write
_CONFIG = "clearing.toml"


@dataclass(frozen=True)
class BackupReport:
    """What a backup or a restore copied: files and bytes, and where."""

    source: Path
    target: Path
    files: int
    bytes: int


def _members(workdir: Path) -> list[Path]:
    """The work folder's files to copy, relative, in a stable order (no lock, no staging)."""
    out: list[Path] = []
    for path in sorted(workdir.rglob("*")):
        rel = path.relative_to(workdir)
        if path.is_symlink() or not path.is_file():
            continue
        if rel.as_posix() == LOCK_NAME or _STAGING.fullmatch(path.name):
            continue  # the lock, and a write that a killed process left unfinished
        out.append(rel)
    return out


def _copy(source: Path, target: Path) -> tuple[str, int]:
    """Copy ``source`` to ``target`` (times kept), hashing what was read: (SHA-256, size)."""
    digest = hashlib.sha256()
    size = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    shutil.copystat(source, target)
    return digest.hexdigest(), size


def _empty(folder: Path) -> bool:
    return not folder.exists() or all(p.name == LOCK_NAME for p in folder.iterdir())


def backup(workdir: Path, target: Path) -> BackupReport:
    """Copy every file of ``workdir`` into the new backup folder ``target``.

    Hold the work folder's lock (shared at least) around the call.

    Raises:
        ConfigError: ``workdir`` is no work folder, or ``target`` exists and is not empty.
        FaultError: the disk is full or the target not writable (the path and the fix).
    """
    if not (workdir / _CONFIG).is_file():
        msg = f"`{workdir}` is no work folder (no {_CONFIG}): nothing to back up"
        raise ConfigError(msg)
    if not _empty(target):
        msg = f"`{target}` exists and is not empty: back up into a new folder"
        raise ConfigError(msg)
    if target.resolve().is_relative_to(workdir.resolve()):
        msg = f"`{target}` is inside the work folder `{workdir}`: back up to another folder"
        raise ConfigError(msg)
    entries = []
    total = 0
    try:
        for rel in _members(workdir):
            sha, size = _copy(workdir / rel, target / _FILES / rel)
            entries.append({"path": rel.as_posix(), "size": size, "sha256": sha})
            total += size
        manifest = {
            "format": FORMAT,
            "software": f"clearing {__version__}",
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "workdir": str(workdir.resolve()),
            "files": entries,
        }
        write_atomic(target / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        fsync_dir(target)
    except OSError as exc:
        msg = f"backup into `{target}` failed: {exc.strerror} (`{exc.filename}`)"
        raise FaultError(msg, path=exc.filename) from None
    return BackupReport(workdir, target, len(entries), total)


def _manifest(source: Path) -> list[dict[str, object]]:
    path = source / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"`{source}` is no finished backup (no {MANIFEST}): take the backup again"
        raise ConfigError(msg) from None
    except (OSError, ValueError) as exc:
        msg = f"`{path}` cannot be read ({exc}): the backup is damaged"
        raise ConfigError(msg) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        msg = f"`{path}` is not a backup of format {FORMAT} (made by another version?)"
        raise ConfigError(msg)
    files = manifest.get("files")
    if not isinstance(files, list):
        msg = f"`{path}` lists no files: the backup is damaged"
        raise ConfigError(msg)
    return files


def verify(source: Path) -> list[str]:
    """Every file of the backup ``source`` against its ``backup.json``: the problems, or [].

    Raises:
        ConfigError: ``source`` is no finished backup.
    """
    problems = []
    for entry in _manifest(source):
        rel = str(entry.get("path", ""))
        path = source / _FILES / rel
        if not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
            problems.append(f"`{rel}`: not a path inside the backup")
            continue
        try:
            sha, size = file_sha256(path)
        except OSError as exc:
            problems.append(f"`{rel}`: {exc.strerror}")
            continue
        if size != entry.get("size") or sha != entry.get("sha256"):
            problems.append(f"`{rel}`: content differs from {MANIFEST} (size {size})")
    return problems


def restore(source: Path, workdir: Path) -> BackupReport:
    """Make the new work folder ``workdir`` a copy of the backup ``source``.

    Every file is checked first; ``clearing.toml`` is written last. Hold ``workdir``'s lock.

    Raises:
        ConfigError: the backup is unfinished or damaged (each bad file named: nothing is
            copied), or ``workdir`` is not empty.
        FaultError: the disk is full or ``workdir`` not writable.
    """
    problems = verify(source)
    if problems:
        more = f"; … {len(problems) - 5} more" if len(problems) > 5 else ""
        listed = "; ".join(problems[:5]) + more
        msg = f"backup `{source}` is damaged, nothing restored: {listed}"
        raise ConfigError(msg)
    if not _empty(workdir):
        msg = f"`{workdir}` is not empty: restore into a new folder"
        raise ConfigError(msg)
    entries = _manifest(source)
    order = sorted(entries, key=lambda e: str(e["path"]) == _CONFIG)  # the config last
    total = 0
    try:
        for entry in order:
            rel = str(entry["path"])
            _sha, size = _copy(source / _FILES / rel, workdir / rel)
            total += size
        fsync_dir(workdir)
    except OSError as exc:
        msg = (
            f"restore into `{workdir}` failed: {exc.strerror} (`{exc.filename}`); "
            "remove the folder and restore again"
        )
        raise FaultError(msg, path=exc.filename) from None
    return BackupReport(source, workdir, len(entries), total)
