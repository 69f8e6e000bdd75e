"""Opening the transport's DuckDB ledgers, with errors an operator can act on."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import duckdb

from clearing.errors import ClearingError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["LedgerError", "connect"]


class LedgerError(ClearingError):
    """A ledger (outbox or fetch ledger) cannot do what was asked, or cannot be opened."""


@contextmanager
def connect(path: Path, schema: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the DuckDB file ``path`` (created if missing), ensure ``schema``, commit on exit.

    Each call opens and closes its own connection, so a ledger never holds the file locked
    between operations.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
    except (OSError, duckdb.Error) as exc:
        msg = (
            f"cannot open the ledger `{path}` ({exc}); if another clearing process is using "
            "it, wait for it to finish and run again"
        )
        raise LedgerError(msg) from None
    try:
        con.execute(schema)
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    except duckdb.Error as exc:
        msg = f"the ledger `{path}` failed: {exc}"
        raise LedgerError(msg) from exc
    finally:
        con.close()
