"""File sequence numbers: partners' streams to us (inbound) and ours to them (outbound).

Inbound (over ``files`` and ``rap_out``; TD.57, tap3-rap.md §4.1): one FSN sequence per
sender → recipient, test and live apart; copies, reused numbers, gaps, silent partners, and
the RAP FSN of the RAPs we send.

Outbound (``outbound_sequences``, ``outbound_files``): a number is allocated once per
(partner, standard, file type, processing date) and reused by every re-run of the day; every
file written is registered with its hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clearing.names import next_fsn

if TYPE_CHECKING:
    import datetime as dt
    from datetime import date, datetime

    import duckdb

__all__ = [
    "FileRecord",
    "InboundSequences",
    "OutboundSequences",
    "SequenceCheck",
    "next_fsn",
]


@dataclass(frozen=True)
class SequenceCheck:
    """What the sequence history says about one incoming file."""

    copy_of: str | None = None  # an identical file already processed (ignore this one)
    reused: str | None = None  # same FSN, different content, already processed (fatal 201)
    expected: int | None = None  # the next FSN we expected (None: first file ever)
    missing: tuple[int, int] | None = None  # a gap before this file (start, end)
    previously_fatal: bool = False  # this FSN was rejected as fatal before (resubmission)


class InboundSequences:
    """Partners' FSN streams as the file register records them, and our RAP FSNs."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def check(
        self,
        day: dt.date,
        *,
        sender: str,
        recipient: str,
        test: bool,
        fsn: int,
        sha256: str,
    ) -> SequenceCheck:
        """Compare a file with the history of its sender → recipient stream (TD.57 FSN).

        Reads only the rows that decide: the stream's files of this FSN, its latest file and,
        for a gap, the FSNs seen in the gap's range (not the stream's whole history).
        """
        stream = (
            "sender = ? AND recipient = ? AND test = ? AND outcome <> 'copy' "
            "AND format IN ('tap', 'notification') AND regexp_full_match(fsn, '[0-9]{5}') "
            "AND processing_date <= ?"
        )
        of_stream: list[object] = [sender, recipient, test, day]
        same = self._con.execute(
            f"SELECT sha256, file, outcome FROM files WHERE {stream} "
            "AND TRY_CAST(fsn AS INTEGER) = ? ORDER BY processing_date, rowid",
            [*of_stream, fsn],
        ).fetchall()
        for sha, file, _outcome in same:
            if sha == sha256:
                return SequenceCheck(copy_of=file)
        processed = [r for r in same if r[2] == "processed"]
        if processed:
            return SequenceCheck(reused=processed[-1][1])
        previously_fatal = any(r[2] == "fatal" for r in same)
        latest = self._con.execute(
            f"SELECT CAST(fsn AS INTEGER) FROM files WHERE {stream} "
            "ORDER BY processing_date DESC, rowid DESC LIMIT 1",
            of_stream,
        ).fetchone()
        if latest is None:
            return SequenceCheck(previously_fatal=previously_fatal)
        # expected: after the highest FSN seen, allowing for the wrap 99999 → 1
        expected = next_fsn(int(latest[0]))
        missing = None
        if not previously_fatal and fsn != expected:
            ahead = (fsn - expected) % 99_999
            if 0 < ahead < 50_000:  # ahead of the stream: files in between are missing
                seen = {
                    int(r[0])
                    for r in self._con.execute(
                        f"SELECT DISTINCT TRY_CAST(fsn AS INTEGER) FROM files WHERE {stream} "
                        "AND TRY_CAST(fsn AS INTEGER) BETWEEN ? AND ?",
                        [*of_stream, expected, expected + ahead - 1],
                    ).fetchall()
                }
                gap = [expected + i for i in range(ahead) if (expected + i) not in seen]
                if gap:
                    missing = (gap[0], gap[-1])
        return SequenceCheck(expected=expected, missing=missing, previously_fatal=previously_fatal)

    def silent_partners(self, day: dt.date, silent_days: dict[str, int]) -> list[tuple[str, int]]:
        """Partners whose last file is more than their limit old: (sender, last FSN)."""
        out: list[tuple[str, int]] = []
        rows = self._con.execute(
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
            sent = self._con.execute(
                "SELECT count(*) FROM rap_out WHERE partner = ? AND stop > 0 "
                "AND processing_date > ? AND processing_date < ?",
                [sender, last_day, day],
            ).fetchone()
            if sent and sent[0]:
                continue
            out.append((sender, int(last_fsn)))
        return out

    def next_rap_fsn(self, day: dt.date, partner: str, test: bool) -> int:
        """The RAP FSN for a new RAP to ``partner`` (from RAPs of earlier dates and today's)."""
        row = self._con.execute(
            "SELECT max(rap_fsn) FROM rap_out WHERE partner = ? AND test = ? "
            "AND processing_date <= ?",
            [partner, test, day],
        ).fetchone()
        last = row[0] if row and row[0] is not None else 0
        return next_fsn(int(last))

    def status(self) -> list[dict[str, Any]]:
        """Per stream: last FSN, files, copies, gaps reported, fatal files, RAPs, ACKs owed."""
        rows = self._con.execute(
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


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One outbound file, as registered in ``outbound_files``."""

    file_name: str
    kind: str  # transferBatch | notification | ciber
    partner: str
    standard: str
    file_type: str
    processing_date: date
    sequence_number: int
    events: int
    total_charge: int
    total_tax: int
    charge_scale: int | None
    currency: str | None
    sha256: str
    path: str
    content_changed: bool = False
    audit_charge: int | None = None  # TAP-out totalCharge / CIBER-out Σ batch totals written
    file_available: datetime | None = None  # fileAvailableTimeStamp written (naive UTC)


class OutboundSequences:
    """Typed access to ``outbound_sequences`` and ``outbound_files``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def allocation(
        self, partner: str, standard: str, file_type: str, day: date
    ) -> tuple[int | None, int | None, int | None]:
        """``(first, last, previous)`` stored for the day, or ``(None, None, latest)``."""
        row = self._con.execute(
            "SELECT first_number, last_number, previous_number FROM outbound_sequences "
            "WHERE partner = ? AND standard = ? AND file_type = ? AND processing_date = ?",
            [partner, standard, file_type, day],
        ).fetchone()
        if row is not None:
            return int(row[0]), int(row[1]), None if row[2] is None else int(row[2])
        latest = self._con.execute(
            "SELECT last_number FROM outbound_sequences WHERE partner = ? AND standard = ? "
            "AND file_type = ? ORDER BY allocation DESC LIMIT 1",
            [partner, standard, file_type],
        ).fetchone()
        return None, None, None if latest is None else int(latest[0])

    def save(
        self,
        partner: str,
        standard: str,
        file_type: str,
        day: date,
        *,
        first: int,
        last: int,
        previous: int | None,
    ) -> None:
        """Record (or update the end of) the day's numbers."""
        con = self._con
        exists = con.execute(
            "SELECT allocation FROM outbound_sequences WHERE partner = ? AND standard = ? "
            "AND file_type = ? AND processing_date = ?",
            [partner, standard, file_type, day],
        ).fetchone()
        if exists is not None:
            con.execute(
                "UPDATE outbound_sequences SET first_number = ?, last_number = ? "
                "WHERE partner = ? AND standard = ? AND file_type = ? AND processing_date = ?",
                [first, last, partner, standard, file_type, day],
            )
            return
        nxt = con.execute(
            "SELECT coalesce(max(allocation), 0) + 1 FROM outbound_sequences"
        ).fetchone()
        assert nxt is not None
        con.execute(
            "INSERT INTO outbound_sequences (partner, standard, file_type, processing_date, "
            "allocation, first_number, last_number, previous_number) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [partner, standard, file_type, day, int(nxt[0]), first, last, previous],
        )

    def register_file(self, record: FileRecord) -> bool:
        """Store a written file; True when a file of that name had other content before."""
        con = self._con
        old = con.execute(
            "SELECT sha256, content_changed FROM outbound_files WHERE file_name = ?",
            [record.file_name],
        ).fetchone()
        changed = old is not None and (old[0] != record.sha256 or bool(old[1]))
        con.execute("DELETE FROM outbound_files WHERE file_name = ?", [record.file_name])
        con.execute(
            "INSERT INTO outbound_files (file_name, kind, partner, standard, file_type, "
            "processing_date, sequence_number, events, total_charge, total_tax, charge_scale, "
            "currency, sha256, path, content_changed, audit_charge, file_available) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                record.file_name,
                record.kind,
                record.partner,
                record.standard,
                record.file_type,
                record.processing_date,
                record.sequence_number,
                record.events,
                record.total_charge,
                record.total_tax,
                record.charge_scale,
                record.currency,
                record.sha256,
                record.path,
                changed,
                record.audit_charge,
                record.file_available,
            ],
        )
        return changed

    def files_of(self, day: date) -> list[tuple[str, str, str]]:
        """``(partner, kind, path)`` of the files written for ``day``, by file name."""
        rows = self._con.execute(
            "SELECT partner, kind, path FROM outbound_files "
            "WHERE processing_date = ? ORDER BY file_name",
            [day],
        ).fetchall()
        return [(str(p), str(k), str(path)) for p, k, path in rows]
