"""Retention: ``clearing archive`` moves old lake partitions and inputs into ``archive/``.

What a work folder keeps for ever grows every night: the lake's partitions and the day's inputs.
:func:`archive` moves those of the processing dates before ``D`` into a compressed archive in
the work folder, still readable by DuckDB for audits::

    archive/archive.json                                   what was moved (written before removal)
    archive/lake/<dataset>/month=<YYYY-MM>/<dataset>.parquet
        every row of the dataset's processing dates of that month (zstd, level 19), with the
        columns ``processing_date``, ``partner`` (a dataset partitioned by partner, where its
        files do not carry it) and ``start_day`` (the duplicate key indexes: the ``start=``
        folder; null for ``start=none``)
    archive/inputs/<YYYY-MM>.tar.xz
        the inputs of that month's processing dates, under their paths in the work folder:
        ``work/<D>/`` (the claimed partner files), ``failed/<D>/`` (quarantined entries and
        their reasons), ``inbox/cdr/CDR_*_<yyyymmdd>_*`` and ``lake/cdr/date=<D>/`` (mediation
        CDRs) — ``tar -xJf archive/inputs/2026-08.tar.xz`` gives them back

Read the archive with DuckDB::

    SELECT processing_date, count(*) FROM read_parquet(
        'W/archive/lake/events_in/*/*.parquet', union_by_name = true) GROUP BY ALL

Settlement results (``out/``), the state store, the fetch ledger, ``runs/`` and the reference
data stay where they are. ``D`` may not be later than the last processing date (never later
than today) minus the largest duplicate window minus ``[retention] dispute_days``: the lake
keeps what the duplicate search of the next nights reads (the key indexes, ``events_in``) and
what a dispute may need. ``force`` lifts the dispute period, never the duplicate window.

Nothing is lost if the process is killed at any point: every archive file is written whole
under a temporary name, read back and counted (rows per processing date; each input's SHA-256)
before it replaces the previous one; ``archive.json`` is written next; only then are the
partitions and inputs removed, each by one rename out of the lake into ``archive/.trash/``. A
month's archive file is always rebuilt as "its rows of the dates no longer in the lake + the
lake's rows of the dates still there", so a run again after a kill finishes the job and never
writes a row twice.

Compaction (:func:`compact`, run by ``archive`` for the dates it keeps): a dataset written as one
file per input file (``events_in``, ``keys_in``, ``keys_ciber``) gets one file per partition
folder (``compacted.parquet``: the same rows, the same columns and types; every reader lists a
partition's files by glob, none by the input file's name). A re-run of a date clears the date's
partition first (validate, the key indexes), so a compacted date is replayed as before. The old
files and the new one are swapped in one ``renameat2(RENAME_EXCHANGE)``: a reader sees either.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clearing import __version__, lake
from clearing._io import file_sha256, fsync_dir, make_dirs, write_atomic
from clearing.config import WorkDir
from clearing.errors import ConfigError, FaultError
from clearing.names import CdrName
from clearing.rating import rated_with

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from clearing.config import Settings

__all__ = [
    "ARCHIVE",
    "COMPACTED",
    "FORMAT",
    "MANIFEST",
    "ArchiveReport",
    "Limits",
    "archive",
    "archived_before",
    "compact",
    "limits",
    "refuse_archived",
]

FORMAT = 1
"""The layout of ``archive/`` (``archive.json`` ``format``)."""
ARCHIVE = "archive"
"""The archive's folder in the work folder."""
MANIFEST = "archive.json"
"""What the archive holds: every archive file's SHA-256, rows per dataset and date, inputs."""
COMPACTED = "compacted.parquet"
"""The one file of a compacted partition folder."""

_ZSTD_LEVEL = 19
_BATCH = 131_072  # rows read and written at a time (memory stays flat)
_TRASH = ".trash"
_STAGING = ".staging"


@dataclass(frozen=True)
class Limits:
    """The latest ``--before`` allowed, and why.

    Attributes:
        last: the last processing date of the lake (never later than today).
        window: the largest duplicate window, days.
        dispute: ``[retention] dispute_days``.
    """

    last: date
    window: int
    dispute: int

    @property
    def window_limit(self) -> date:
        """The latest ``--before`` that leaves the next nights' duplicate window whole."""
        return self.last - timedelta(days=self.window)

    @property
    def dispute_limit(self) -> date:
        """The latest ``--before`` that keeps the dispute period too."""
        return self.window_limit - timedelta(days=self.dispute)


@dataclass
class ArchiveReport:
    """What :func:`archive` did.

    Attributes:
        before: processing dates before it were archived.
        rows: per dataset and processing date, the rows moved into the archive by this run.
        inputs: input files moved into the archive by this run.
        files: the archive files written (relative to ``archive/``).
        removed: lake partitions and input folders / files removed from the work folder.
        compacted: partition folders compacted into one file.
    """

    before: date
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    inputs: int = 0
    files: list[str] = field(default_factory=list)
    removed: int = 0
    compacted: int = 0


def archived_before(workdir: Path) -> date | None:
    """The latest ``--before`` of the archive runs of ``workdir`` (None: nothing archived).

    The processing dates before it have their lake partitions and inputs in ``archive/``: a
    night for one of them would find no inputs of its own and take whatever waits in the
    inbox. A manifest that cannot be read counts as nothing archived (``clearing archive``
    itself reports it).
    """
    path = workdir / "archive" / MANIFEST
    try:
        runs = json.loads(path.read_text(encoding="utf-8")).get("runs", [])
        days = [date.fromisoformat(r["before"]) for r in runs]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return max(days, default=None)


def refuse_archived(workdir: Path, day: date) -> None:
    """Raise `ConfigError` when processing date ``day`` was archived (see :func:`archived_before`).

    Every verb that writes a processing date's inputs, lake or outputs asks first: a run for
    an archived date would take whatever waits in the inbox into it, or leave empty partitions
    beside the archive.
    """
    gone = archived_before(workdir)
    if gone is not None and day < gone:
        msg = (
            f"processing date {day} was archived (`clearing archive --before {gone}`): its lake "
            f"partitions and inputs are in `{workdir / 'archive'}`, and a run for it would "
            "take whatever waits in the inbox; nothing was run. Audit it from the archive "
            "(DuckDB reads its Parquet), or restore a backup taken before the archive to "
            "replay it"
        )
        raise ConfigError(msg)


def _lake_dates(root: Path) -> list[date]:
    return sorted({d for ds in lake.DATASETS for d in lake.dates(root, ds)})


def limits(workdir: Path, settings: Settings, *, today: date | None = None) -> Limits:
    """The limits of ``--before`` for the work folder ``workdir`` (see :class:`Limits`)."""
    today = today or date.today()
    seen = _lake_dates(WorkDir(workdir).lake)
    last = min(today, seen[-1]) if seen else today
    return Limits(last, settings.largest_duplicate_window_days(), settings.retention.dispute_days)


def _check(before: date, lim: Limits, *, force: bool) -> None:
    if before > lim.window_limit:
        msg = (
            f"--before {before} is inside the duplicate window: the nights from {lim.last} (the "
            f"last processing date) look back {lim.window} days (the largest "
            f"duplicate_window_days) to {lim.window_limit}, so the lake keeps those partitions; "
            f"archive with --before {lim.window_limit} or earlier (--force does not lift this)"
        )
        raise ConfigError(msg)
    if before > lim.dispute_limit and not force:
        msg = (
            f"--before {before} is inside the dispute period: the last processing date "
            f"{lim.last} minus the duplicate window ({lim.window} days) minus [retention] "
            f"dispute_days ({lim.dispute}) is {lim.dispute_limit}; archive with --before "
            f"{lim.dispute_limit} or earlier, or give --force to archive the dispute period too"
        )
        raise ConfigError(msg)


# --- small helpers ---------------------------------------------------------------------------


def _month(day: date) -> str:
    return day.strftime("%Y-%m")


def _exchange(a: Path, b: Path) -> None:
    """Swap the folders ``a`` and ``b`` in one step (Linux ``renameat2``); else two renames."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        at_fdcwd, rename_exchange = -100, 2
        if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), str(b))
    spare = b.with_name(b.name + ".swap")  # beside b: out of the lake's globs
    a.replace(spare)
    b.replace(a)
    spare.replace(b)


class _Trash:
    """``archive/.trash/``: what was archived is moved there in one rename, then deleted."""

    def __init__(self, root: Path) -> None:
        self.folder = root / _TRASH
        self._n = 0

    def empty(self) -> None:
        """Delete what a killed run left (everything in it is archived already)."""
        if self.folder.exists():
            shutil.rmtree(self.folder)

    def take(self, path: Path) -> None:
        """Move ``path`` (a file or a folder) out of the work folder, then delete it."""
        make_dirs(self.folder)
        self._n += 1
        target = self.folder / f"{self._n:06d}-{path.name}"
        path.replace(target)
        fsync_dir(path.parent)
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.exists():
        return {"format": FORMAT, "runs": [], "files": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"`{path}` cannot be read ({exc}): restore it from a backup before archiving"
        raise ConfigError(msg) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        msg = f"`{path}` is not an archive manifest of format {FORMAT} (made by another version?)"
        raise ConfigError(msg)
    return manifest


# --- the lake --------------------------------------------------------------------------------


def _extra_fields(ds: lake.Dataset, names: set[str]) -> list[pa.Field]:
    extra = [pa.field("processing_date", pa.date32())]
    if ds.partitioning == lake.Partitioning.DATE_PARTNER and "partner" not in names:
        extra.append(pa.field("partner", pa.string()))
    if ds.partitioning == lake.Partitioning.DATE_START and "start_day" not in names:
        extra.append(pa.field("start_day", pa.date32()))
    return extra


def _nullable(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in schema])


def _conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """``table``'s columns in ``schema``'s order and types; the missing ones null."""
    cols = []
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            cols.append(col if col.type == f.type else col.cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def _hive(path: Path, key: str) -> str | None:
    for part in path.parts:
        if part.startswith(f"{key}="):
            return part.split("=", 1)[1]
    return None


def _lake_batches(ds: lake.Dataset, f: Path) -> Iterator[pa.Table]:
    """The rows of the lake file ``f`` with the archive's extra columns, a batch at a time."""
    day = date.fromisoformat(_hive(f, "date") or "")
    partner = _hive(f, "partner")
    start = _hive(f, "start")
    reader = pq.ParquetFile(f)
    names = set(reader.schema_arrow.names)
    extra = {x.name for x in _extra_fields(ds, names)}
    for batch in reader.iter_batches(batch_size=_BATCH):
        t = pa.Table.from_batches([batch])
        n = t.num_rows
        t = t.append_column("processing_date", pa.array([day] * n, pa.date32()))
        if "partner" in extra:
            t = t.append_column("partner", pa.array([partner] * n, pa.string()))
        if "start_day" in extra:
            s = None if start in (None, lake.NO_START) else date.fromisoformat(str(start))
            t = t.append_column("start_day", pa.array([s] * n, pa.date32()))
        yield t


def _date_counts(path: Path) -> dict[str, int]:
    """Rows per ``processing_date`` of an archive file, read back from it."""
    counts: dict[str, int] = defaultdict(int)
    reader = pq.ParquetFile(path)
    for batch in reader.iter_batches(batch_size=_BATCH, columns=["processing_date"]):
        for d, n in zip(*_value_counts(batch.column(0)), strict=True):
            counts[d] += n
    return dict(sorted(counts.items()))


def _value_counts(col: pa.Array) -> tuple[list[str], list[int]]:
    vc = pc.value_counts(col)
    values = [v.isoformat() for v in vc.field("values").to_pylist()]
    return values, vc.field("counts").to_pylist()


def _write_month(ds: lake.Dataset, target: Path, files: list[Path]) -> dict[str, int]:
    """Write ``target``: its earlier rows of dates not in ``files`` + the rows of ``files``.

    Returns the rows per processing date, read back from the file written (checked against
    the rows kept and the lake files' own counts before it replaces the earlier file).
    """
    pending = {_hive(f, "date") or "" for f in files}
    schemas: list[pa.Schema] = []
    old = target if target.exists() else None
    if old is not None:
        schemas.append(pq.read_schema(old))
    for f in files:
        s = pq.read_schema(f)
        schemas.append(pa.schema([*s, *_extra_fields(ds, set(s.names))]))
    schema = _nullable(
        pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
    )
    expected: dict[str, int] = defaultdict(int)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    make_dirs(target.parent)
    try:
        with pq.ParquetWriter(
            tmp, schema, compression="zstd", compression_level=_ZSTD_LEVEL
        ) as writer:
            if old is not None:
                keep = pa.array(sorted(date.fromisoformat(d) for d in pending), pa.date32())
                for batch in pq.ParquetFile(old).iter_batches(batch_size=_BATCH):
                    t = pa.Table.from_batches([batch])
                    t = t.filter(pc.invert(pc.is_in(t.column("processing_date"), keep)))
                    if t.num_rows:
                        for d, n in zip(*_value_counts(t.column("processing_date")), strict=True):
                            expected[d] += n
                        writer.write_table(_conform(t, schema))
            for f in files:
                expected[_hive(f, "date") or ""] += pq.ParquetFile(f).metadata.num_rows
                for t in _lake_batches(ds, f):
                    writer.write_table(_conform(t, schema))
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        got = _date_counts(tmp)
        want = {d: n for d, n in sorted(expected.items()) if n}
        if got != want:
            msg = (
                f"archive file `{target}` read back with other rows than written "
                f"({got} ≠ {want}): nothing was removed from the lake; run again"
            )
            raise FaultError(msg, path=str(target))
        tmp.replace(target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return got


# --- the inputs ------------------------------------------------------------------------------


def _date_of(name: str) -> date | None:
    try:
        return date.fromisoformat(name.removeprefix("date="))
    except ValueError:
        return None


def _inputs(wd: WorkDir, before: date) -> dict[str, list[Path]]:
    """Per month, the inputs of the processing dates before ``before``: folders and files."""
    out: dict[str, list[Path]] = defaultdict(list)
    for parent in (wd.root / "work", wd.failed, wd.lake / "cdr"):
        if not parent.is_dir():
            continue
        for p in sorted(parent.iterdir()):
            day = _date_of(p.name)
            if day is not None and day < before and p.is_dir():
                out[_month(day)].append(p)
    cdr = wd.inbox / "cdr"
    if cdr.is_dir():
        for p in sorted(cdr.rglob("*")):
            name = CdrName.parse(p.name)
            if name is not None and name.day < before and p.is_file():
                out[_month(name.day)].append(p)
    return dict(sorted(out.items()))


def _files_under(path: Path) -> list[Path]:
    if not path.is_dir() or path.is_symlink():
        return [path]
    return sorted(p for p in path.rglob("*") if not p.is_dir() or p.is_symlink())


def _sha256_stream(fh: Any) -> str:
    h = hashlib.sha256()
    while chunk := fh.read(1 << 20):
        h.update(chunk)
    return h.hexdigest()


def _write_inputs(root: Path, target: Path, entries: list[Path]) -> dict[str, dict[str, Any]]:
    """Write the tar ``target``: its earlier members not under ``entries`` + ``entries``.

    Returns every member's size and SHA-256, read back from the file written and checked
    against the sources before it replaces the earlier file.
    """
    prefixes = [e.relative_to(root).as_posix() for e in entries]

    def replaced(name: str) -> bool:
        return any(name == p or name.startswith(p + "/") for p in prefixes)

    expected: dict[str, dict[str, Any]] = {}
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    make_dirs(target.parent)
    try:
        # xz -6: ~100 MB to compress (-9: ~700 MB)
        with tarfile.open(tmp, "w:xz", preset=6) as out:
            if target.exists():
                with tarfile.open(target, "r:xz") as old:
                    for m in old:
                        if replaced(m.name):
                            continue
                        data = old.extractfile(m) if m.isfile() else None
                        if data is not None:
                            digest = _sha256_stream(data)
                            data = old.extractfile(m)
                            expected[m.name] = {"size": m.size, "sha256": digest}
                        out.addfile(m, data)
            for entry in entries:
                for p in _files_under(entry):
                    name = p.relative_to(root).as_posix()
                    if p.is_file() and not p.is_symlink():
                        sha, size = file_sha256(p)
                        expected[name] = {"size": size, "sha256": sha}
                    out.add(p, arcname=name, recursive=False)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        got: dict[str, dict[str, Any]] = {}
        with tarfile.open(tmp, "r:xz") as back:
            for m in back:
                data = back.extractfile(m) if m.isfile() else None
                if data is not None:
                    got[m.name] = {"size": m.size, "sha256": _sha256_stream(data)}
        if got != expected:
            bad = sorted(n for n in {*got, *expected} if got.get(n) != expected.get(n))[:3]
            msg = (
                f"archive file `{target}` read back with other contents than written "
                f"({', '.join(bad)}): "
                "nothing was removed from the work folder; run again"
            )
            raise FaultError(msg, path=str(target))
        tmp.replace(target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return dict(sorted(got.items()))


# --- compaction ------------------------------------------------------------------------------


def _compactable(ds: lake.Dataset) -> bool:
    """A dataset written as one file per input file: a partition folder holds many."""
    return "{source}" in ds.file


def _compact_folder(ds: lake.Dataset, folder: Path, staging: Path) -> bool:
    """Make the partition folder ``folder`` one file; False when it has one already."""
    files = sorted(folder.glob("*.parquet"))
    if len(files) < 2:
        return False
    schemas = [pq.read_schema(f).remove_metadata() for f in files]
    schema = pa.unify_schemas(schemas, promote_options="permissive")
    schema = _nullable(schema) if any(s != schema for s in schemas) else schema
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if staging.exists():
        shutil.rmtree(staging)
    make_dirs(staging)
    target = staging / COMPACTED
    with pq.ParquetWriter(target, schema, compression=ds.compression) as writer:
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=_BATCH):
                writer.write_table(_conform(batch, schema))
    with target.open("rb") as fh:
        os.fsync(fh.fileno())
    got = pq.ParquetFile(target).metadata.num_rows
    if got != rows:
        msg = f"compacted `{folder}` read back with {got} rows, not {rows}: left as it was"
        raise FaultError(msg, path=str(folder))
    fsync_dir(staging)
    _exchange(folder, staging)  # the folder now holds the one file; staging the old files
    fsync_dir(folder.parent)
    shutil.rmtree(staging)
    return True


def compact(workdir: Path, days: Iterable[date] | None = None) -> int:
    """Compact the partitions of ``days`` (None: every date) of the datasets written per file.

    Each partition folder (``events_in``: ``date=<D>/partner=<P>/``; the key indexes:
    ``date=<D>/start=<S>/``) with more than one file becomes one ``compacted.parquet``: the
    same rows, columns and types. Hold the work folder's lock (exclusive) around the call.

    Returns:
        The folders compacted.
    """
    wd = WorkDir(workdir)
    staging = workdir / ARCHIVE / _STAGING
    wanted = None if days is None else set(days)
    done = 0
    for ds in lake.DATASETS:
        if not _compactable(ds):
            continue
        for d in lake.dates(wd.lake, ds):
            if wanted is not None and d not in wanted:
                continue
            folders = sorted({f.parent for f in lake.files(wd.lake, ds, [d])})
            for folder in folders:
                done += _compact_folder(ds, folder, staging / f"{ds.name}-{d}-{folder.name}")
    if staging.exists():
        shutil.rmtree(staging)
    return done


# --- the whole run ---------------------------------------------------------------------------


def archive(
    workdir: Path,
    before: date,
    *,
    force: bool = False,
    compact_kept: bool = True,
    today: date | None = None,
) -> ArchiveReport:
    """Move the lake partitions and inputs of the processing dates before ``before`` away.

    Hold the work folder's lock (exclusive) around the call. See the module's docstring for
    the layout, the limits and why a kill at any point loses nothing.

    Args:
        workdir: the work folder.
        before: processing dates before it are archived.
        force: archive inside the dispute period (never inside the duplicate window).
        compact_kept: compact the partitions of the dates kept (:func:`compact`).
        today: the day the limits count from at the latest (default: today).

    Raises:
        ConfigError: no work folder; ``before`` inside the duplicate window or (without
            ``force``) the dispute period; ``archive.json`` unreadable.
        FaultError: the disk is full or not writable, or an archive file did not read back
            as written (nothing removed then).
    """
    wd = WorkDir(workdir)
    settings = wd.settings()
    _check(before, limits(workdir, settings, today=today), force=force)
    root = workdir / ARCHIVE
    trash = _Trash(root)
    report = ArchiveReport(before)
    try:
        trash.empty()  # a killed run's leftovers: archived already
        manifest = _read_manifest(root)
        files: dict[str, Any] = manifest.setdefault("files", {})
        partitions: list[Path] = []
        for ds in lake.DATASETS:
            days = [d for d in lake.dates(wd.lake, ds) if d < before]
            by_month: dict[str, list[date]] = defaultdict(list)
            for d in days:
                by_month[_month(d)].append(d)
                partitions.append(lake.partition(wd.lake, ds, d))
            for month, mdays in sorted(by_month.items()):
                found = lake.files(wd.lake, ds, mdays)
                if not found:
                    continue
                rel = f"lake/{ds.name}/month={month}/{ds.name}.parquet"
                counts = _write_month(ds, root / rel, found)
                sha, size = file_sha256(root / rel)
                files[rel] = {"sha256": sha, "size": size, "rows": counts}
                report.files.append(rel)
                moved = report.rows.setdefault(ds.name, {})
                for d in mdays:
                    moved[d.isoformat()] = counts.get(d.isoformat(), 0)
        inputs = _inputs(wd, before)
        for month, entries in inputs.items():
            rel = f"inputs/{month}.tar.xz"
            members = _write_inputs(workdir, root / rel, entries)
            sha, size = file_sha256(root / rel)
            files[rel] = {"sha256": sha, "size": size, "members": members}
            report.files.append(rel)
            report.inputs += sum(
                1 for e in entries for p in _files_under(e) if p.is_file() and not p.is_symlink()
            )
        manifest["files"] = dict(sorted(files.items()))
        manifest["runs"] = [
            *manifest.get("runs", []),
            {
                "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "software": f"clearing {__version__}",
                "before": before.isoformat(),
                "force": force,
                "rows": report.rows,
                "inputs": report.inputs,
            },
        ]
        if report.files:
            write_atomic(root / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        # everything is in the archive and listed: now, and only now, remove it
        for p in dict.fromkeys(partitions):
            if p.exists():
                trash.take(p)
                report.removed += 1
        for entries in inputs.values():
            for e in entries:
                trash.take(e)
                report.removed += 1
        rated_with.forget_before(wd.lake, before)  # what rated the files moved out
        trash.empty()
        if compact_kept:
            report.compacted = compact(workdir, [d for d in _lake_dates(wd.lake) if d >= before])
    except OSError as exc:
        msg = f"archive in `{root}` failed: {exc.strerror} (`{exc.filename}`); run it again"
        raise FaultError(msg, path=exc.filename) from None
    return report
