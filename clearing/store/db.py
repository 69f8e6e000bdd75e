"""Opening the state databases: the one place that connects to ``clearing.duckdb``.

:func:`open_store` opens a work folder's ``clearing.duckdb`` (:class:`Store`), applying the
schema's migrations when opened for writing; :func:`open_ledger` does the same for the fetch
ledger (:class:`LedgerStore`); :func:`attach_read_only` attaches either file to another
connection for reading (settle). Every failure to open is one :class:`StoreError` naming the
file and what to do (exit code 2).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from clearing.errors import StoreError
from clearing.store.schema import LEDGER, STATE, Schema, check_version, migrate, stored_version

if TYPE_CHECKING:
    from collections.abc import Iterator

    from clearing.store.ciber_batches import CiberBatches
    from clearing.store.fates import EntryFates
    from clearing.store.iot_breaches import IotBreaches
    from clearing.store.ledger import Fetched
    from clearing.store.outbox import OutboxTable
    from clearing.store.register import Register
    from clearing.store.returns_in import ReturnsIn
    from clearing.store.sequences import InboundSequences, OutboundSequences

__all__ = [
    "Database",
    "LedgerStore",
    "Store",
    "attach_read_only",
    "open_ledger",
    "open_store",
]


def _busy(path: Path, exc: BaseException) -> StoreError:
    msg = (
        f"cannot open `{path}` ({exc}): another clearing process may hold it; wait for it to "
        "finish and run again, or check the file"
    )
    return StoreError(msg)


class Database:
    """One open DuckDB state file (close it, or use it as a context manager).

    Attributes:
        path: the file.
        read_only: opened for reading only (no migration is applied).
        con: the connection, for the table modules of :mod:`clearing.store` (and tests);
            stages use the typed methods instead.
    """

    schema: Schema = STATE

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except (OSError, duckdb.Error) as exc:
            raise _busy(self.path, exc) from None
        try:
            if read_only:
                check_version(self.schema, stored_version(self.con), self.path)
            else:
                migrate(self.con, self.schema, path=self.path)
        except BaseException:
            self.con.close()
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the calls inside as one transaction (rolled back on an error).

        Raises:
            StoreError: DuckDB failed (the message names the file).
        """
        try:
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")
        except duckdb.Error as exc:
            msg = f"the {self.schema.name} `{self.path}` failed: {exc}"
            raise StoreError(msg) from exc


class Store(Database):
    """A work folder's ``clearing.duckdb``, with typed methods per table.

    Attributes:
        register: ``files``, ``findings``, ``rap_out``.
        inbound: the FSN history of partners' files (over ``files`` and ``rap_out``).
        outbound: ``outbound_sequences`` and ``outbound_files``.
        returns_in: ``raps_in``, ``acks_in``, ``returns_in``.
        outbox: ``outbox``.
        held: ``held_records``, ``held_recycles``.
        ciber_batches: ``ciber_batches_in`` (CIBER-in batch sequences).
        iot_breaches: ``iot_breaches`` (breaches above the thresholds, held or decided).
        fates: ``entry_fates`` (what became of every delivered entry).
    """

    schema = STATE

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        from clearing.store.ciber_batches import CiberBatches
        from clearing.store.fates import EntryFates
        from clearing.store.held import HeldRecords
        from clearing.store.iot_breaches import IotBreaches
        from clearing.store.outbox import OutboxTable
        from clearing.store.register import Register
        from clearing.store.returns_in import ReturnsIn
        from clearing.store.sequences import InboundSequences, OutboundSequences

        super().__init__(path, read_only=read_only)
        self.register: Register = Register(self.con)
        self.inbound: InboundSequences = InboundSequences(self.con)
        self.outbound: OutboundSequences = OutboundSequences(self.con)
        self.returns_in: ReturnsIn = ReturnsIn(self.con)
        self.outbox: OutboxTable = OutboxTable(self.con)
        self.held: HeldRecords = HeldRecords(self.con)
        self.ciber_batches: CiberBatches = CiberBatches(self.con)
        self.iot_breaches: IotBreaches = IotBreaches(self.con)
        self.fates: EntryFates = EntryFates(self.con)

    def __enter__(self) -> Store:
        return self


class LedgerStore(Database):
    """The transport's ``fetch_ledger.duckdb`` (table ``fetched``)."""

    schema = LEDGER

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        from clearing.store.ledger import Fetched

        super().__init__(path, read_only=read_only)
        self.fetched: Fetched = Fetched(self.con)

    def __enter__(self) -> LedgerStore:
        return self


def _file(where: Path | str, schema: Schema) -> Path:
    path = Path(where)
    return path / schema.file if path.is_dir() else path


def open_store(where: Path | str, *, read_only: bool = False) -> Store:
    """Open ``clearing.duckdb``: a work folder (its file) or the file itself.

    For writing, the file is created if missing and migrated to this code's schema.

    Raises:
        StoreError: the file cannot be opened (another process holds it, or it is missing
            for reading), or its schema is newer than this code.
    """
    return Store(_file(where, STATE), read_only=read_only)


def open_ledger(where: Path | str, *, read_only: bool = False) -> LedgerStore:
    """Open the fetch ledger: a folder (its ``fetch_ledger.duckdb``) or the file itself.

    Raises:
        StoreError: as :func:`open_store`.
    """
    return LedgerStore(_file(where, LEDGER), read_only=read_only)


def attach_read_only(
    con: duckdb.DuckDBPyConnection, path: Path, alias: str, schema: Schema = STATE
) -> set[str]:
    """Attach the state file ``path`` to ``con`` read-only as ``alias``; return its tables.

    A missing file attaches nothing (empty set): the caller reads empty stand-ins.

    Raises:
        StoreError: the file cannot be opened, or its schema is newer than this code.
    """
    if not path.exists():
        return set()
    lit = str(path).replace("'", "''")
    try:
        con.execute(f"ATTACH '{lit}' AS {alias} (READ_ONLY)")
    except duckdb.Error as exc:
        raise _busy(path, exc) from None
    check_version(schema, stored_version(con, database=alias), path)
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [alias]
    ).fetchall()
    return {r[0] for r in rows}
