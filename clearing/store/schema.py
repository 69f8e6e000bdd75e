"""Every table of the state databases, versioned: the only place that holds DDL.

Two DuckDB files live in a work folder:

* ``clearing.duckdb`` (:data:`STATE`): the file register (``files``, ``findings``,
  ``rap_out``), partners' RAPs and ACKs (``raps_in``, ``acks_in``, ``returns_in``), the
  outbound sequences and files (``outbound_sequences``, ``outbound_files``), the
  ``outbox``, partners' returns worked (``return_actions``), the held records
  (``held_records``, ``held_recycles``), CIBER-in batch sequences (``ciber_batches_in``),
  the IOT breaches held from the payable and their decisions (``iot_breaches``), the
  replaced versions of fatally returned files resent under their name (``outbox_versions``)
  and the fate of every delivered entry (``entry_fates``);
* ``fetch_ledger.duckdb`` (:data:`LEDGER`): what was fetched from whom (``fetched``).

Each file has a ``schema_version`` table and a list of numbered migrations, applied in order
when the file is opened for writing (:func:`migrate`). Version 1 is the schema as it was
before versioning (``CREATE TABLE IF NOT EXISTS``), so an existing work folder opens
unchanged. A file whose version is newer than this code knows is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from clearing.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import duckdb

__all__ = [
    "LEDGER",
    "STATE",
    "VERSION_TABLE",
    "Migration",
    "Schema",
    "check_version",
    "migrate",
    "stored_version",
]

VERSION_TABLE = "schema_version"

_VERSION_DDL = f"""
CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    version INTEGER NOT NULL,
    description VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL  -- UTC
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of a schema: its number, what it does, and its SQL (one or more statements)."""

    version: int
    description: str
    sql: str


@dataclass(frozen=True, slots=True)
class Schema:
    """The tables of one DuckDB file and the migrations that build them.

    Attributes:
        name: what the file is, for messages.
        file: the file's name inside the work folder.
        tables: every table the migrations create (settle reads each of them).
        migrations: numbered 1, 2, … in order.
    """

    name: str
    file: str
    tables: tuple[str, ...]
    migrations: tuple[Migration, ...]

    @property
    def version(self) -> int:
        """The newest version this code knows."""
        return self.migrations[-1].version if self.migrations else 0

    def ddl(self) -> str:
        """Every migration's SQL in order (for empty stand-in tables of the same shape)."""
        return ";\n".join(m.sql.strip().rstrip(";") for m in self.migrations)


_STATE_V1 = """
CREATE TABLE IF NOT EXISTS files (
    processing_date DATE NOT NULL,
    file VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    format VARCHAR NOT NULL,          -- tap | notification | ciber | unreadable
    sender VARCHAR, recipient VARCHAR, fsn VARCHAR, test BOOLEAN, rap_fsn VARCHAR,
    outcome VARCHAR NOT NULL,         -- processed | fatal | copy
    copy_of VARCHAR,
    events BIGINT, accepted BIGINT, returned BIGINT, duplicate BIGINT, late BIGINT,
    quarantined BIGINT,
    charge BIGINT, charge_scale INTEGER, currency VARCHAR,
    audit_charge BIGINT,
    findings BIGINT,
    rap_file VARCHAR
);
CREATE TABLE IF NOT EXISTS findings (
    processing_date DATE NOT NULL,
    file VARCHAR NOT NULL, file_sha256 VARCHAR, source_format VARCHAR NOT NULL,
    sender VARCHAR, recipient VARCHAR, file_sequence_number VARCHAR,
    event_index BIGINT, rule VARCHAR NOT NULL, code INTEGER NOT NULL,
    severity VARCHAR NOT NULL, context VARCHAR NOT NULL, "group" VARCHAR,
    message VARCHAR NOT NULL,
    path STRUCT(item_id INTEGER, occurrence INTEGER, level INTEGER)[],
    item_offset BIGINT, byte_offset BIGINT
);
CREATE TABLE IF NOT EXISTS rap_out (
    processing_date DATE NOT NULL,
    file VARCHAR NOT NULL, partner VARCHAR NOT NULL, test BOOLEAN NOT NULL,
    rap_fsn INTEGER NOT NULL, sha256 VARCHAR NOT NULL,
    fatal INTEGER, severe INTEGER, missing INTEGER, stop INTEGER,
    severe_value BIGINT, severe_tax BIGINT
);
CREATE TABLE IF NOT EXISTS acks_in (
    processing_date DATE NOT NULL, file VARCHAR NOT NULL, sender VARCHAR NOT NULL,
    rap_fsn INTEGER NOT NULL, test BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS raps_in (
    processing_date DATE NOT NULL, file VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
    sender VARCHAR NOT NULL, recipient VARCHAR NOT NULL, rap_fsn INTEGER NOT NULL,
    test BOOLEAN NOT NULL, ack_file VARCHAR
);
CREATE TABLE IF NOT EXISTS returns_in (
    processing_date DATE NOT NULL, rap_file VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    fsn VARCHAR, event_kind VARCHAR, event_sha256 VARCHAR, charge BIGINT, tax BIGINT,
    error_codes VARCHAR, status VARCHAR NOT NULL   -- to_correct | resubmitted | written_off
);
CREATE TABLE IF NOT EXISTS outbound_sequences (
    partner VARCHAR NOT NULL,
    standard VARCHAR NOT NULL,
    file_type VARCHAR NOT NULL,
    processing_date DATE NOT NULL,
    allocation BIGINT NOT NULL,
    first_number INTEGER NOT NULL,
    last_number INTEGER NOT NULL,
    previous_number INTEGER,
    PRIMARY KEY (partner, standard, file_type, processing_date)
);
CREATE TABLE IF NOT EXISTS outbound_files (
    file_name VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    partner VARCHAR NOT NULL,
    standard VARCHAR NOT NULL,
    file_type VARCHAR NOT NULL,
    processing_date DATE NOT NULL,
    sequence_number INTEGER NOT NULL,
    events BIGINT NOT NULL,
    total_charge BIGINT NOT NULL,
    total_tax BIGINT NOT NULL,
    charge_scale INTEGER,
    currency VARCHAR,
    sha256 VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    content_changed BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    name VARCHAR PRIMARY KEY,
    partner VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    local_path VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    attempts INTEGER NOT NULL,
    last_error VARCHAR,
    destination VARCHAR,              -- where it was last sent (transport.where)
    registered_at TIMESTAMP NOT NULL, -- UTC, like every timestamp here
    sent_at TIMESTAMP,
    acknowledged_at TIMESTAMP,
    closed_at TIMESTAMP
);
"""

_LEDGER_V1 = """
CREATE TABLE IF NOT EXISTS fetched (
    partner VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL,
    mtime BIGINT NOT NULL,          -- remote mtime when last seen, seconds since the epoch
    local_path VARCHAR NOT NULL,
    fetched_at TIMESTAMP NOT NULL,  -- UTC
    PRIMARY KEY (partner, name, size, sha256)
);
"""

_STATE_V2 = """
ALTER TABLE files ADD COLUMN header_kind VARCHAR;
ALTER TABLE files ADD COLUMN file_available TIMESTAMP;
ALTER TABLE files ADD COLUMN file_created TIMESTAMP;
ALTER TABLE files ADD COLUMN tap_currency VARCHAR;
ALTER TABLE files ADD COLUMN tap_decimal_places INTEGER;
ALTER TABLE files ADD COLUMN audit_tax BIGINT;
ALTER TABLE files ADD COLUMN audit_discount BIGINT;
ALTER TABLE files ADD COLUMN audit_events BIGINT;
ALTER TABLE files ADD COLUMN recomputed_charge BIGINT;
ALTER TABLE files ADD COLUMN recomputed_tax BIGINT;
ALTER TABLE files ADD COLUMN recomputed_discount BIGINT;
ALTER TABLE findings ADD COLUMN expected_fsn INTEGER;
ALTER TABLE findings ADD COLUMN gap_start INTEGER;
ALTER TABLE findings ADD COLUMN gap_end INTEGER;
ALTER TABLE rap_out ADD COLUMN audit_severe_value BIGINT;
ALTER TABLE outbound_files ADD COLUMN audit_charge BIGINT;
ALTER TABLE outbound_files ADD COLUMN file_available TIMESTAMP;
CREATE TABLE IF NOT EXISTS ciber_returns_out (
    processing_date DATE NOT NULL,
    file VARCHAR NOT NULL,
    input_file VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    events BIGINT,
    currency VARCHAR,
    audit_charge BIGINT,
    recomputed_charge BIGINT
);
"""

_STATE_V2_DOC = (
    "facts recorded once: file header facts and audit totals in files, FSN gap fields in "
    "findings, audit totals of the files we write, ciber_returns_out"
)
"""Migration 2: what a file declares, recorded by the stage that decodes or writes it.

Settlement used to find every input file again on disk and decode its header (or all of it);
from version 2 it reads these columns only (architecture review #3):

* ``files``: ``header_kind`` (what the header decode found: tap | notification | ciber; NULL
  when the header could not be read), ``file_available`` and ``file_created`` (naive UTC; a
  CIBER file's first batch creation date in ``file_created``), ``tap_currency`` and
  ``tap_decimal_places`` as declared, the audit totals as declared (``audit_charge``, already
  there and unused before, ``audit_tax``, ``audit_discount``, ``audit_events``; a CIBER file's
  Σ batch trailer totals in ``audit_charge``) and as recomputed from the events
  (``recomputed_charge``, ``recomputed_tax``, ``recomputed_discount``; a CIBER file's Σ detail
  totals in ``recomputed_charge``). A CIBER row now also has ``charge`` (Σ record charges) and
  ``currency`` (the first batch's);
* ``findings``: ``expected_fsn``, ``gap_start``, ``gap_end`` of an FSN gap, next to the
  message (the Sequences sheet reads these, not the message text);
* ``rap_out.audit_severe_value``: totalSevereReturnValue as written in the RAP;
* ``outbound_files``: ``audit_charge`` (TAP-out totalCharge; CIBER-out Σ batch totals) and
  ``file_available`` (naive UTC) as written;
* ``ciber_returns_out``: one row per CIBER return file written, with its totals.

A work folder written before this migration has NULL in every new column (and no
``ciber_returns_out`` rows); settlement then shows these facts as unavailable (blank cells;
a CIBER input's charge identity "not checked"), as it did for a file it could not find.
"""

_STATE_V3 = """
ALTER TABLE returns_in ADD COLUMN item INTEGER;
ALTER TABLE returns_in ADD COLUMN partner VARCHAR;
ALTER TABLE returns_in ADD COLUMN rap_fsn INTEGER;
ALTER TABLE returns_in ADD COLUMN tap_file VARCHAR;
ALTER TABLE returns_in ADD COLUMN tap_date DATE;
ALTER TABLE returns_in ADD COLUMN event_index BIGINT;
ALTER TABLE returns_in ADD COLUMN imsi VARCHAR;
ALTER TABLE returns_in ADD COLUMN start_time TIMESTAMP;
ALTER TABLE returns_in ADD COLUMN fsn_end VARCHAR;
ALTER TABLE returns_in ADD COLUMN charge_scale INTEGER;
ALTER TABLE returns_in ADD COLUMN currency VARCHAR;
CREATE TABLE IF NOT EXISTS return_actions (
    rap_file VARCHAR NOT NULL,
    item INTEGER NOT NULL,
    action VARCHAR NOT NULL,          -- resubmit | write_off
    requested_at TIMESTAMP NOT NULL,  -- UTC
    for_date DATE,                    -- resubmit: the processing date asked for (NULL: next)
    out_date DATE,                    -- resubmit: the processing date that carries it
    out_file VARCHAR,                 -- resubmit: our TAP-out that carried it, once written
    reason VARCHAR,                   -- write_off: why
    amount BIGINT,                    -- write_off: the loss (charge + tax, TAP units)
    charge_scale INTEGER,
    currency VARCHAR,
    PRIMARY KEY (rap_file, item)
);
"""

_STATE_V3_DOC = "partners' returns worked: returns_in items, return_actions (resubmit, write-off)"
"""Migration 3: the returns of partners' RAPs about our TAP-out are worked (issue 13, item 6).

* ``returns_in`` gains the item's number in its RAP (``item``, 0-based, one per returned event
  or file), the RAP's ``partner`` and ``rap_fsn``, our returned TAP-out (``tap_file``,
  ``tap_date``), the event's place in it (``event_index``), its ``imsi`` and local
  ``start_time``, the last FSN of a MissingReturn range (``fsn_end``) and the money's
  ``charge_scale`` / ``currency``; ``kind`` is now also ``missing`` or ``stop``;
* ``return_actions``: what was decided for an item: ``resubmit`` (the night that carries it,
  ``out_date``, and its TAP-out, ``out_file``) or ``write_off`` (``reason`` and the lost
  ``amount``; ``for_date``: the date of the write-off, by which the monthly workbook lists
  it). An item's status is ``written_off`` / ``resubmitted`` (its TAP-out is written) /
  ``to_correct``.
"""

_STATE_V4 = """
CREATE TABLE IF NOT EXISTS held_records (
    kind VARCHAR NOT NULL,          -- cdr (a visitor CDR) | payable (a partner event)
    origin_date DATE NOT NULL,      -- processing date of the first rating
    file VARCHAR NOT NULL,
    position BIGINT NOT NULL,       -- cdr: line in the mediation file; payable: event index
    record_id VARCHAR,
    partner VARCHAR NOT NULL,
    service VARCHAR,
    reason VARCHAR NOT NULL,
    released_date DATE              -- processing date whose rated rows carry it; NULL: held
);
CREATE TABLE IF NOT EXISTS held_recycles (
    processing_date DATE NOT NULL,  -- this date has recycled: its releases are fixed
    kind VARCHAR NOT NULL
);
"""

_STATE_V4_DOC = (
    "held records (no IOT row, FX rate or currency) and the processing date that released each"
)

_STATE_V5 = """
CREATE TABLE IF NOT EXISTS ciber_batches_in (
    processing_date DATE NOT NULL,
    file VARCHAR NOT NULL,
    batch_index INTEGER NOT NULL,      -- position of the batch in the file, from 0
    sender VARCHAR NOT NULL,           -- sending SID/BID
    recipient VARCHAR NOT NULL,        -- receiving SID/BID
    sequence INTEGER NOT NULL,         -- batch sequence number 1-999
    original_return_indicator VARCHAR,
    sha256 VARCHAR NOT NULL,           -- the batch's lines, line endings and trailing blanks cut
    records BIGINT NOT NULL,
    outcome VARCHAR NOT NULL,          -- accepted | rejected | copy | reused
    copy_of VARCHAR,                   -- copy / reused: the file of the accepted batch
    copy_of_date DATE
);
"""

_STATE_V5_DOC = "ciber_batches_in: CIBER-in batch sequence control per SID/BID pair"
"""Migration 5: every CIBER-in batch with its sequence, content hash and outcome.

The validate stage checks each batch of a partner's CIBER file against the accepted batches of
its sending → receiving SID/BID pair (:mod:`clearing.store.ciber_batches`): an exact copy is
ignored, a reused sequence with other content is rejected, a gap is reported.
"""


_STATE_V6 = """
CREATE TABLE IF NOT EXISTS iot_breaches (
    processing_date DATE NOT NULL,    -- the date the partner's file was received (validated)
    partner VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    event_index BIGINT NOT NULL,
    service VARCHAR,
    currency VARCHAR, charge_scale INTEGER,
    charged BIGINT, expected BIGINT, difference BIGINT,
    settlement_currency VARCHAR, settlement_scale INTEGER,
    settlement_amount BIGINT,         -- what the event would add to the payable
    over_settlement BIGINT,           -- the overcharge, in the settlement currency
    status VARCHAR NOT NULL,          -- held | accepted | disputed
    detected_at TIMESTAMP NOT NULL,   -- UTC
    decided_at TIMESTAMP,             -- UTC
    reason VARCHAR,
    PRIMARY KEY (processing_date, file, event_index)
);
"""

_STATE_V6_DOC = (
    "iot_breaches: partners' charges above the IOT beyond the configured thresholds, held "
    "from the payable until accepted or disputed"
)

_STATE_V7 = """
CREATE TABLE IF NOT EXISTS outbox_versions (
    name VARCHAR NOT NULL,
    version INTEGER NOT NULL,         -- 1: the first bytes registered under the name
    partner VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,          -- the bytes replaced (kept at local_path)
    size BIGINT NOT NULL,
    local_path VARCHAR NOT NULL,      -- where the replaced bytes are kept (out/tap/returned/)
    state VARCHAR NOT NULL,           -- its outbox state when it was replaced
    attempts INTEGER NOT NULL,
    destination VARCHAR,
    registered_at TIMESTAMP NOT NULL, -- UTC
    sent_at TIMESTAMP,
    replaced_at TIMESTAMP NOT NULL,   -- UTC
    replaced_by VARCHAR NOT NULL,     -- sha256 of the bytes registered in its place
    rap_file VARCHAR NOT NULL,        -- the partner's RAP that returned it (fatal)
    item INTEGER NOT NULL,            -- its item in that RAP
    PRIMARY KEY (name, version)
);
"""

_STATE_V7_DOC = (
    "outbox_versions: the bytes of a fatally returned file replaced in the outbox when it is "
    "resent under its FSN (kept, with the RAP item that returned it)"
)
"""Migration 7: an outbox name is bound to its bytes, except a fatally returned TAP-out.

A partner's fatal return (RAP) rejects our whole file; resubmitted, it is sent again under its
own name and FSN with ``rapFileSequenceNumber`` (TD.57). The ``outbox`` row then holds the new
bytes, and the replaced version (its hash, where its bytes are kept, its state and stamps, the
RAP item) is a row of ``outbox_versions``. One replacement per fatal return item.
"""

_STATE_V8 = """
CREATE TABLE IF NOT EXISTS entry_fates (
    processing_date DATE NOT NULL,
    stage VARCHAR NOT NULL,           -- the stage that decided: collect, claim, validate
    name VARCHAR NOT NULL,            -- the entry's name as delivered (escaped when unsafe)
    partner VARCHAR NOT NULL,         -- the channel that delivered it ('' = none known)
    fate VARCHAR NOT NULL,            -- processed | copy_ignored | returned | quarantined | refused
    reason VARCHAR NOT NULL,
    hint VARCHAR NOT NULL,            -- what to do
    path VARCHAR,                     -- where it is now, relative to the work folder
    recorded_at TIMESTAMP NOT NULL    -- UTC
);
"""

_STATE_V8_DOC = (
    "entry_fates: what became of every entry a partner delivered (processed, copy ignored, "
    "returned, quarantined into failed/<D>/, refused on the server)"
)
"""Migration 8: every delivered entry gets a fate.

A file or folder entry delivered through a partner's channel (or dropped in ``inbox/``) is
processed, ignored as a copy, returned whole, quarantined into ``failed/<D>/`` with a reason
file, or refused (left on the server: it cannot be fetched). One row per entry, stage and
processing date; a re-run of a stage replaces its rows of the date.
"""

#: ``clearing.duckdb``: the state of the stages.
STATE = Schema(
    name="state database",
    file="clearing.duckdb",
    tables=(  # every table of the file, in the order settle makes its views
        "files",
        "findings",
        "rap_out",
        "acks_in",
        "raps_in",
        "returns_in",
        "outbound_sequences",
        "outbound_files",
        "outbox",
        "ciber_returns_out",
        "return_actions",
        "held_records",
        "held_recycles",
        "ciber_batches_in",
        "iot_breaches",
        "outbox_versions",
        "entry_fates",
    ),
    migrations=(
        Migration(1, "the schema before versioning", _STATE_V1),
        Migration(2, _STATE_V2_DOC, _STATE_V2),
        Migration(3, _STATE_V3_DOC, _STATE_V3),
        Migration(4, _STATE_V4_DOC, _STATE_V4),
        Migration(5, _STATE_V5_DOC, _STATE_V5),
        Migration(6, _STATE_V6_DOC, _STATE_V6),
        Migration(7, _STATE_V7_DOC, _STATE_V7),
        Migration(8, _STATE_V8_DOC, _STATE_V8),
    ),
)

#: ``fetch_ledger.duckdb``: the transport's record of fetched files.
LEDGER = Schema(
    name="fetch ledger",
    file="fetch_ledger.duckdb",
    tables=("fetched",),
    migrations=(Migration(1, "the schema before versioning", _LEDGER_V1),),
)


def stored_version(con: duckdb.DuckDBPyConnection, *, database: str | None = None) -> int:
    """The version recorded in ``schema_version`` (0 when the table is missing or empty).

    Args:
        con: the connection.
        database: an attached database's alias (None: the connection's own).
    """
    where = "database_name = current_database()" if database is None else "database_name = ?"
    params = [] if database is None else [database]
    found = con.execute(
        f"SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND {where}",
        [VERSION_TABLE, *params],
    ).fetchone()
    if not found or not found[0]:
        return 0
    table = VERSION_TABLE if database is None else f"{database}.main.{VERSION_TABLE}"
    row = con.execute(f"SELECT max(version) FROM {table}").fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def check_version(schema: Schema, found: int, path: Path | str) -> None:
    """Refuse a file whose schema is newer than the code (:class:`StoreError`)."""
    if found > schema.version:
        msg = (
            f"the {schema.name} `{path}` has schema version {found}, newer than this clearing "
            f"knows ({schema.version}): it was written by a newer release; upgrade clearing "
            "to open it"
        )
        raise StoreError(msg)


def migrate(
    con: duckdb.DuckDBPyConnection,
    schema: Schema,
    *,
    path: Path | str,
    migrations: Sequence[Migration] | None = None,
) -> int:
    """Apply the migrations newer than the file's version, in order; return the version.

    Each migration runs in its own transaction with its ``schema_version`` row, so a crash
    leaves the file at the last whole step. Running it again applies nothing.

    Raises:
        StoreError: the file's version is newer than the last migration.
    """
    steps = tuple(schema.migrations if migrations is None else migrations)
    con.execute(_VERSION_DDL)
    current = stored_version(con)
    latest = steps[-1].version if steps else 0
    if current > latest:
        check_version(Schema(schema.name, schema.file, schema.tables, steps), current, path)
    for step in steps:
        if step.version <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(step.sql)
            con.execute(
                f"INSERT INTO {VERSION_TABLE} VALUES (?, ?, ?)",
                [step.version, step.description, datetime.now(UTC).replace(tzinfo=None)],
            )
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        current = step.version
    return current
