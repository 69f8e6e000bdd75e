"""Writing workbooks: idempotent daily files, versioned monthly issues.

Each workbook carries the hash of its content (every cell value of every sheet, except the run
id and the issue number) as the custom document property ``clearing.content_hash``.

* **Daily**: one file per processing date. A re-run whose content is unchanged leaves the file
  untouched (same bytes, the first run's id); changed content replaces it.
* **Monthly**: ``…_<period>_v<N>.xlsx``. A workbook once written is never overwritten: a
  re-run with the same content returns the latest issue as is (the same issue: a re-run with
  a new run id is not a new issue), a re-run with other content writes ``v<N+1>``, which says
  which issue it replaces.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from clearing.errors import ClearingError
from clearing.settle._book import read_properties, write_book

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from clearing.settle._book import Book

__all__ = ["HASH_PROPERTY", "issues", "write_daily", "write_issue"]

HASH_PROPERTY = "clearing.content_hash"
SKIP = ("Run id", "run_id", "Issue", "issue", "Replaces", "replaces", "content_hash")


def write_daily(book: Book, path: Path) -> Path:
    """Write a daily workbook unless the same content is already there."""
    digest = book.content_hash(skip_keys=SKIP)
    if path.exists() and read_properties(path).get(HASH_PROPERTY) == digest:
        return path
    book.properties[HASH_PROPERTY] = digest
    write_book(book, path)
    return path


def issues(folder: Path, stem: str) -> list[tuple[int, Path]]:
    """The issues ``<stem>_v<N>.xlsx`` in ``folder``, by N."""
    pattern = re.compile(re.escape(stem) + r"_v(\d+)\.xlsx")
    found = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = pattern.fullmatch(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return sorted(found)


def write_issue(folder: Path, stem: str, make: Callable[[int, Path | None], Book]) -> Path:
    """Write the next issue of a monthly workbook, or return the latest if unchanged.

    ``make(version, replaces)`` builds the workbook of issue ``version`` (replacing the issue at
    ``replaces``, None for the first); its content hash must not depend on those two.
    """
    existing = issues(folder, stem)
    latest = existing[-1] if existing else None
    book = make(latest[0] + 1 if latest else 1, latest[1] if latest else None)
    digest = book.content_hash(skip_keys=SKIP)
    if latest is not None and read_properties(latest[1]).get(HASH_PROPERTY) == digest:
        return latest[1]
    book.properties[HASH_PROPERTY] = digest
    version = latest[0] + 1 if latest else 1
    path = folder / f"{stem}_v{version}.xlsx"
    if path.exists():  # a file appeared meanwhile: never overwrite an issued workbook
        msg = (
            f"`{path}` appeared while this issue was being made (another monthly run?): an "
            "issued workbook is never overwritten; run the monthly close again"
        )
        raise ClearingError(msg)
    write_book(book, path)
    return path
