"""Writing files so that a reader (or a re-run after a crash) never sees half of one.

Everything the pipeline writes goes to a temporary name in the same folder first, is flushed
to the disk (``fsync``), then renamed over the final name (atomic on POSIX) and the folder is
flushed too, so that after a power cut the name holds either the old bytes or the new ones.
The temporary name carries the process id, so two processes never share one; it is removed
whatever goes wrong (disk full, permission denied), so no half-written file is left behind.

Files are created with the work folder's private modes (:data:`FILE_MODE`, :data:`DIR_MODE`;
``[output]`` of ``clearing.toml`` changes them for a run, see :func:`set_modes`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path
    from typing import BinaryIO

    import pyarrow as pa

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "ROW_GROUP",
    "atomic_writer",
    "file_sha256",
    "fsync_dir",
    "make_dirs",
    "private_files",
    "private_umask",
    "row_groups",
    "set_modes",
    "write_atomic",
    "write_row_groups_atomic",
    "write_table_atomic",
]

#: The rows of a row group of the Parquet files we write (lake, spool, key index): the most
#: rows of a file held at once while it is made from parts (a 10M-record night's rated rows:
#: ~250 MB a group, against ~1 GB at pyarrow's default of 1 Mi rows); DuckDB reads a group
#: a thread.
ROW_GROUP: Final = 1 << 18

FILE_MODE = 0o640
"""Mode of the files the pipeline writes (outputs, lake, state): not world-readable."""
DIR_MODE = 0o750
"""Mode of the folders the pipeline creates."""

_modes = {"file": FILE_MODE, "dir": DIR_MODE}


def set_modes(file_mode: int, dir_mode: int) -> None:
    """Use these modes for the files and folders written from now on (``[output]``)."""
    _modes["file"], _modes["dir"] = file_mode, dir_mode


def private_umask() -> int:
    """Set the process umask so that nothing created is more open than the modes; return it.

    Everything a library creates (DuckDB's state file, Arrow's datasets) then gets at most
    the configured modes too. Returns the previous umask.
    """
    mask = (~_modes["file"] & 0o666) | (~_modes["dir"] & 0o777)
    return os.umask(mask)


@contextlib.contextmanager
def private_files(file_mode: int | None = None, dir_mode: int | None = None) -> Iterator[None]:
    """Within the block, write with these modes (default: the current ones) and their umask.

    The previous modes and umask are back after the block (a run inside a test process, or
    a verb calling the nightly, leaves the process as it found it).
    """
    before = dict(_modes)
    set_modes(file_mode or _modes["file"], dir_mode or _modes["dir"])
    mask = private_umask()
    try:
        yield
    finally:
        os.umask(mask)
        _modes.update(before)


def make_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents with the folder mode."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True, mode=_modes["dir"])


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename in it) to the disk (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some file systems cannot fsync a folder
            os.fsync(fd)
    finally:
        os.close(fd)


def _tmp(path: Path) -> Path:
    make_dirs(path.parent)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _commit(tmp: Path, path: Path) -> None:
    """Fsync ``tmp``, set its mode, rename it over ``path``, fsync the folder."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.chmod(_modes["file"])
    tmp.replace(path)
    fsync_dir(path.parent)


def _discard(tmp: Path, exc: OSError, path: Path) -> None:
    """Remove the temporary file; name the final path on an error that names none."""
    with contextlib.suppress(OSError):
        tmp.unlink()
    if exc.errno is not None and (exc.filename is None or str(exc.filename) == str(tmp)):
        exc.filename = str(path)  # a real OS error (errno set) names the file it failed on


@contextlib.contextmanager
def _staged(path: Path) -> Iterator[Path]:
    """The temporary name to write ``path`` under; removed if the block fails.

    An ``OSError`` (disk full, permission denied) is re-raised naming ``path``.
    """
    tmp = _tmp(path)
    try:
        yield tmp
    except OSError as exc:
        _discard(tmp, exc, path)
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` under a temporary name, fsync, then rename.

    Raises:
        OSError: the write failed (disk full, permission denied); the temporary file is
            removed and the error names ``path``.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with _staged(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _modes["file"])
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        _commit(tmp, path)


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s bytes to in pieces (never held whole), atomically.

    :func:`write_atomic` of bytes written in the block: they go to a temporary name, which is
    flushed to the disk and renamed over ``path`` when the block ends, and removed if it fails.

    Raises:
        OSError: the write failed; the temporary file is removed and the error names ``path``.
    """
    with _staged(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _modes["file"])
        with os.fdopen(fd, "wb") as fh:
            yield fh
        _commit(tmp, path)


def write_table_atomic(table: pa.Table, path: Path, *, compression: str = "zstd") -> None:
    """Write ``table`` as Parquet to ``path`` under a temporary name, fsync, then rename.

    Raises:
        OSError: the write failed (disk full, permission denied); the temporary file is
            removed and the error names ``path``.
    """
    import pyarrow.parquet as pq

    with _staged(path) as tmp:
        pq.write_table(table, tmp, compression=compression, row_group_size=ROW_GROUP)
        _commit(tmp, path)


def row_groups(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, rows: int = ROW_GROUP
) -> Iterator[pa.Table]:
    """``batches`` regrouped in tables of ``rows`` rows (the last one fewer), one chunk each.

    Given to :func:`write_row_groups_atomic`: the bytes of one file of all the rows, written
    while one row group of them is held.
    """
    import pyarrow as pa

    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        at = 0
        while at < batch.num_rows:
            take = min(rows - count, batch.num_rows - at)
            held.append(batch.slice(at, take))
            count += take
            at += take
            if count == rows:
                table = pa.Table.from_batches(held, schema).combine_chunks()
                held, count = [], 0  # the batches go: one copy of the rows while it is written
                yield table
                del table
    if count:
        table = pa.Table.from_batches(held, schema).combine_chunks()
        held = []
        yield table


def write_row_groups_atomic(
    tables: Iterable[pa.Table], schema: pa.Schema, path: Path, *, compression: str = "zstd"
) -> None:
    """Write ``tables`` as the row groups of one Parquet file ``path`` (atomic, as above).

    Each table is one row group: given tables of at most :data:`ROW_GROUP` rows, each in
    one chunk per column, the bytes are those :func:`write_table_atomic`
    writes for their concatenation in one chunk, without holding it whole. An empty
    ``tables`` writes the file of an empty table of ``schema``.

    Raises:
        OSError: the write failed; the temporary file is removed and the error names ``path``.
    """
    import pyarrow.parquet as pq

    with _staged(path) as tmp:
        writer = pq.ParquetWriter(tmp, schema, compression=compression)
        try:
            wrote = False
            for table in tables:
                writer.write_table(table)
                wrote = True
            if not wrote:
                writer.write_table(schema.empty_table())
        finally:
            writer.close()
        _commit(tmp, path)


def file_sha256(path: Path) -> tuple[str, int]:
    """The hex SHA-256 and the size of a local file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
