"""The store's schema: created once, migrated in order, a newer file refused, one error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import duckdb
import pytest

from clearing.errors import ClearingError, StoreError
from clearing.store import LEDGER, STATE, Migration, open_ledger, open_store
from clearing.store.schema import migrate, stored_version

if TYPE_CHECKING:
    from pathlib import Path


def _tables(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def test_every_table_is_created_on_open_once(tmp_path: Path) -> None:
    with open_store(tmp_path):
        pass
    with open_store(tmp_path / "clearing.duckdb"):
        pass
    assert _tables(tmp_path / "clearing.duckdb") == sorted([*STATE.tables, "schema_version"])
    con = duckdb.connect(str(tmp_path / "clearing.duckdb"), read_only=True)
    versions = con.execute("SELECT version, description FROM schema_version").fetchall()
    con.close()
    assert [v for v, _ in versions] == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
    ]  # 3 returns, 4 held, 5 CIBER batches, 6 IOT breaches, 7 outbox versions, 8 entry fates
    assert versions[0] == (1, "the schema before versioning")
    with open_ledger(tmp_path):
        pass
    assert _tables(tmp_path / "fetch_ledger.duckdb") == ["fetched", "schema_version"]
    assert LEDGER.version == 1
    assert STATE.version == 8


def test_a_folder_from_before_versioning_opens_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "clearing.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE files (processing_date DATE NOT NULL, file VARCHAR NOT NULL, "
                "sha256 VARCHAR NOT NULL, format VARCHAR NOT NULL, sender VARCHAR, "
                "recipient VARCHAR, fsn VARCHAR, test BOOLEAN, rap_fsn VARCHAR, "
                "outcome VARCHAR NOT NULL, copy_of VARCHAR, events BIGINT, accepted BIGINT, "
                "returned BIGINT, duplicate BIGINT, late BIGINT, quarantined BIGINT, "
                "charge BIGINT, charge_scale INTEGER, currency VARCHAR, audit_charge BIGINT, "
                "findings BIGINT, rap_file VARCHAR)")  # fmt: skip
    con.execute(
        "INSERT INTO files (processing_date, file, sha256, format, outcome) "
        "VALUES (DATE '2026-11-22', 'CDFRAF9HKGCL00001', 'ab', 'tap', 'processed')"
    )
    con.close()
    with open_store(db) as store:
        (n,) = store.con.execute("SELECT count(*) FROM files").fetchone() or (0,)
        assert n == 1
        assert stored_version(store.con) == STATE.version
        # migration 2 adds the header facts as NULL to a row written before it
        (kind, available) = store.con.execute(
            "SELECT header_kind, file_available FROM files"
        ).fetchone() or (0, 0)
        assert kind is None
        assert available is None
    assert set(STATE.tables) <= set(_tables(db))


def test_migrations_run_in_order_once(tmp_path: Path) -> None:
    steps = (
        Migration(1, "a table", "CREATE TABLE t (a INTEGER)"),
        Migration(2, "a column", "ALTER TABLE t ADD COLUMN b INTEGER; INSERT INTO t VALUES (1, 2)"),
        Migration(3, "another row", "INSERT INTO t VALUES (3, 4)"),
    )
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    assert migrate(con, STATE, path="x", migrations=steps[:2]) == 2
    assert migrate(con, STATE, path="x", migrations=steps[:2]) == 2  # nothing again
    assert migrate(con, STATE, path="x", migrations=steps) == 3  # only the new step
    assert migrate(con, STATE, path="x", migrations=steps) == 3
    assert con.execute("SELECT * FROM t ORDER BY a").fetchall() == [(1, 2), (3, 4)]
    assert con.execute("SELECT version FROM schema_version ORDER BY version").fetchall() == [
        (1,),
        (2,),
        (3,),
    ]
    con.close()


def test_a_failed_migration_leaves_the_last_whole_step(tmp_path: Path) -> None:
    steps = (
        Migration(1, "a table", "CREATE TABLE t (a INTEGER)"),
        Migration(2, "broken", "INSERT INTO t VALUES (1); INSERT INTO nowhere VALUES (1)"),
    )
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    with pytest.raises(duckdb.Error):
        migrate(con, STATE, path="x", migrations=steps)
    assert stored_version(con) == 1
    assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)
    con.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.con.execute(
            "INSERT INTO schema_version VALUES (99, 'from the future', TIMESTAMP '2030-01-01')"
        )
    for read_only in (False, True):
        with pytest.raises(StoreError, match="schema version 99, newer than") as err:
            open_store(tmp_path, read_only=read_only)
        assert str(tmp_path / "clearing.duckdb") in str(err.value)
    assert err.value.exit_code == 2
    assert isinstance(err.value, ClearingError)


_HOLDER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])
    print("holding", flush=True)
    sys.stdin.read()
    """
)


def test_a_file_held_by_another_process_is_one_store_error(tmp_path: Path) -> None:
    db = tmp_path / "clearing.duckdb"
    with open_store(db):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        for read_only in (False, True):
            with pytest.raises(StoreError) as err:
                open_store(db, read_only=read_only)
            message = str(err.value)
            assert f"cannot open `{db}`" in message
            assert "another clearing process may hold it" in message
            assert err.value.exit_code == 2
        with pytest.raises(StoreError, match="another clearing process"):
            open_ledger(db.parent / "clearing.duckdb")
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        assert holder.stdout is not None
        holder.stdout.close()
    with open_store(db):  # free again
        pass


def test_reading_a_missing_file_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        open_store(tmp_path / "clearing.duckdb", read_only=True)
