"""Validation state in the work folder's DuckDB file: file register, sequences, findings, RAPs.

Every table is keyed by the processing date, and a stage run for a date first deletes what an
earlier run of the same date wrote, so a re-run ends in the same state as the first run (no
duplicate rows). What a date *reads* (sequence history, RAP sequence numbers) comes from
earlier dates only, so re-running an old date does not see its own later effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from clearing.names import next_fsn

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    import pyarrow as pa

__all__ = ["SequenceCheck", "State", "next_fsn"]

_SCHEMA = """
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
"""

_DATED = ("files", "findings", "rap_out", "acks_in", "raps_in", "returns_in")


@dataclass(frozen=True)
class SequenceCheck:
    """What the sequence history says about one incoming file."""

    copy_of: str | None = None  # an identical file already processed (ignore this one)
    reused: str | None = None  # same FSN, different content, already processed (fatal 201)
    expected: int | None = None  # the next FSN we expected (None: first file ever)
    missing: tuple[int, int] | None = None  # a gap before this file (start, end)
    previously_fatal: bool = False  # this FSN was rejected as fatal before (resubmission)


class State:
    """The DuckDB file of a work folder (``clearing.duckdb``)."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = str(path)
        self.con = duckdb.connect(self.path, read_only=read_only)
        if not read_only:
            self.con.execute(_SCHEMA)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- re-runs --------------------------------------------------------------------------
    def forget(self, day: dt.date, tables: tuple[str, ...] = _DATED) -> None:
        """Delete what an earlier run of ``day`` wrote (a re-run then starts clean)."""
        for t in tables:
            self.con.execute(f"DELETE FROM {t} WHERE processing_date = ?", [day])

    # --- file register & sequences --------------------------------------------------------
    def record_file(self, day: dt.date, row: dict[str, Any]) -> None:
        cols = ["processing_date", *row]
        marks = ", ".join("?" for _ in cols)
        self.con.execute(
            f"INSERT INTO files ({', '.join(cols)}) VALUES ({marks})", [day, *row.values()]
        )

    def check_sequence(
        self,
        day: dt.date,
        *,
        sender: str,
        recipient: str,
        test: bool,
        fsn: int,
        sha256: str,
    ) -> SequenceCheck:
        """Compare a file with the history of its sender → recipient stream (TD.57 FSN)."""
        rows = self.con.execute(
            """
            SELECT CAST(fsn AS INTEGER) AS n, sha256, file, outcome, processing_date
            FROM files
            WHERE sender = ? AND recipient = ? AND test = ? AND outcome <> 'copy'
              AND format IN ('tap', 'notification') AND regexp_full_match(fsn, '[0-9]{5}')
              AND processing_date <= ?
            ORDER BY processing_date, rowid
            """,
            [sender, recipient, test, day],
        ).fetchall()
        same = [r for r in rows if r[0] == fsn]
        for _n, sha, file, _outcome, _d in same:
            if sha == sha256:
                return SequenceCheck(copy_of=file)
        processed = [r for r in same if r[3] == "processed"]
        if processed:
            return SequenceCheck(reused=processed[-1][2])
        previously_fatal = any(r[3] == "fatal" for r in same)
        if not rows:
            return SequenceCheck(previously_fatal=previously_fatal)
        # expected: after the highest FSN seen, allowing for the wrap 99999 → 1
        last = rows[-1][0]
        expected = next_fsn(last)
        missing = None
        if not previously_fatal and fsn != expected:
            ahead = (fsn - expected) % 99_999
            if 0 < ahead < 50_000:  # ahead of the stream: files in between are missing
                seen = {r[0] for r in rows}
                gap = [expected + i for i in range(ahead) if (expected + i) not in seen]
                if gap:
                    missing = (gap[0], gap[-1])
        return SequenceCheck(expected=expected, missing=missing, previously_fatal=previously_fatal)

    def silent_partners(self, day: dt.date, silent_days: dict[str, int]) -> list[tuple[str, int]]:
        """Partners whose last file is more than their limit old: (sender, last FSN)."""
        out: list[tuple[str, int]] = []
        rows = self.con.execute(
            """
            SELECT sender, max(processing_date) AS last_day,
                   arg_max(CAST(fsn AS INTEGER), processing_date) AS last_fsn
            FROM files
            WHERE processing_date < ? AND test = false AND outcome <> 'copy'
              AND format IN ('tap', 'notification') AND regexp_full_match(fsn, '[0-9]{5}')
            GROUP BY sender
            """,
            [day],
        ).fetchall()
        for sender, last_day, last_fsn in rows:
            limit = silent_days.get(sender)
            if limit is None or (day - last_day).days <= limit:
                continue
            # one StopReturn per silence: not again if one was sent since the last file
            sent = self.con.execute(
                "SELECT count(*) FROM rap_out WHERE partner = ? AND stop > 0 "
                "AND processing_date > ? AND processing_date < ?",
                [sender, last_day, day],
            ).fetchone()
            if sent and sent[0]:
                continue
            out.append((sender, int(last_fsn)))
        return out

    # --- findings -------------------------------------------------------------------------
    def record_findings(self, day: dt.date, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.con.register("_new_findings", table)
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        self.con.execute(
            f"INSERT INTO findings (processing_date, {cols}) SELECT ?, {cols} FROM _new_findings",
            [day],
        )
        self.con.unregister("_new_findings")

    # --- RAP sequence ---------------------------------------------------------------------
    def next_rap_fsn(self, day: dt.date, partner: str, test: bool) -> int:
        """The RAP FSN for a new RAP to ``partner`` (from RAPs of earlier dates and today's)."""
        row = self.con.execute(
            "SELECT max(rap_fsn) FROM rap_out WHERE partner = ? AND test = ? "
            "AND processing_date <= ?",
            [partner, test, day],
        ).fetchone()
        last = row[0] if row and row[0] is not None else 0
        return next_fsn(int(last))

    def record_rap(self, day: dt.date, row: dict[str, Any]) -> None:
        cols = ["processing_date", *row]
        marks = ", ".join("?" for _ in cols)
        self.con.execute(
            f"INSERT INTO rap_out ({', '.join(cols)}) VALUES ({marks})", [day, *row.values()]
        )

    def sequence_status(self) -> list[dict[str, Any]]:
        """Per stream: last FSN, files, copies, gaps reported, fatal files, RAPs, ACKs owed."""
        rows = self.con.execute(
            """
            WITH f AS (
                SELECT * FROM files WHERE format IN ('tap', 'notification')
            ), gaps AS (
                SELECT sender, count(*) AS gaps FROM findings
                WHERE rule = 'fsn.gap' GROUP BY sender
            ), raps AS (
                SELECT partner, test, max(rap_fsn) AS last_rap_fsn, count(*) AS raps,
                       count(*) FILTER (WHERE NOT EXISTS (
                           SELECT 1 FROM acks_in a WHERE a.sender = r.partner
                           AND a.rap_fsn = r.rap_fsn AND a.test = r.test)) AS acks_owed
                FROM rap_out r GROUP BY partner, test
            )
            SELECT f.sender, f.recipient, f.test,
                   max(f.fsn) FILTER (WHERE f.outcome <> 'copy') AS last_fsn,
                   max(f.processing_date) AS last_date,
                   count(*) FILTER (WHERE f.outcome = 'processed') AS processed,
                   count(*) FILTER (WHERE f.outcome = 'fatal') AS fatal,
                   count(*) FILTER (WHERE f.outcome = 'copy') AS copies,
                   coalesce(any_value(g.gaps), 0) AS gaps,
                   any_value(r.last_rap_fsn) AS last_rap_fsn,
                   coalesce(any_value(r.acks_owed), 0) AS acks_owed
            FROM f LEFT JOIN gaps g ON g.sender = f.sender
                   LEFT JOIN raps r ON r.partner = f.sender AND r.test = f.test
            GROUP BY f.sender, f.recipient, f.test
            ORDER BY f.sender, f.test
            """
        ).fetchall()
        names = [
            "sender",
            "recipient",
            "test",
            "last_fsn",
            "last_date",
            "processed",
            "fatal",
            "copies",
            "gaps",
            "last_rap_fsn",
            "acks_owed",
        ]
        out = []
        for r in rows:
            d = dict(zip(names, r, strict=True))
            d["last_date"] = d["last_date"].isoformat() if d["last_date"] else None
            out.append(d)
        return out
