"""Writing files so that a reader (or a re-run after a crash) never sees half of one.

Everything the pipeline writes goes to a temporary name in the same folder first, then is
renamed over the final name (atomic on POSIX). The temporary name carries the process id, so
two processes never share one.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

__all__ = ["file_sha256", "write_atomic", "write_table_atomic"]


def _tmp(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` under a temporary name, then rename."""
    tmp = _tmp(path)
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    tmp.replace(path)


def write_table_atomic(table: pa.Table, path: Path, *, compression: str = "zstd") -> None:
    """Write ``table`` as Parquet to ``path`` under a temporary name, then rename."""
    import pyarrow.parquet as pq

    tmp = _tmp(path)
    pq.write_table(table, tmp, compression=compression)
    tmp.replace(path)


def file_sha256(path: Path) -> tuple[str, int]:
    """The hex SHA-256 and the size of a local file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
