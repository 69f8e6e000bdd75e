"""Partners' RAPs about our TAP-out and their ACKs of our RAPs, and how their returns are worked.

The tables: ``raps_in``, ``acks_in``, ``returns_in`` and ``return_actions``.

A re-run of a date replaces what it recorded for the same file (delete, then insert);
``return_actions`` (what was decided for an item: resubmit, write-off, resend) is not dated and
survives it. An item's status is worked out from its action: ``written_off``, ``resubmitted``
(the TAP-out that carries it is written, or the missing file was sent again) or
``to_correct``; ``returns_in.status`` is kept equal to it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    import duckdb

__all__ = ["ReturnItem", "ReturnsIn"]

#: The status of a ``returns_in`` row ``r`` with its action ``a`` (LEFT JOIN).
STATUS_SQL = (
    "CASE WHEN a.action = 'write_off' THEN 'written_off' "
    "WHEN a.action IN ('resubmit', 'resend') AND a.out_file IS NOT NULL THEN 'resubmitted' "
    "ELSE 'to_correct' END"
)

_ITEM_SQL = f"""
SELECT r.rap_file, r.item, r.kind, r.partner, r.rap_fsn, r.fsn, r.fsn_end, r.tap_file,
       r.tap_date, r.event_index, r.imsi, r.start_time, r.error_codes,
       CASE WHEN r.kind = 'fatal' THEN o.total_charge ELSE r.charge END,
       CASE WHEN r.kind = 'fatal' THEN o.total_tax ELSE r.tax END,
       coalesce(o.charge_scale, r.charge_scale), coalesce(o.currency, r.currency),
       r.processing_date, {STATUS_SQL} AS status, a.action,
       a.for_date, a.out_date, a.out_file, a.reason, a.amount
FROM returns_in r LEFT JOIN return_actions a ON a.rap_file = r.rap_file AND a.item = r.item
LEFT JOIN outbound_files o ON o.file_name = r.tap_file
WHERE r.item IS NOT NULL
"""


@dataclass(frozen=True, slots=True)
class ReturnItem:
    """One returned event (severe) or file (fatal, missing, stop) of a partner's RAP.

    Attributes:
        rap_file: the partner's RAP.
        item: its number in the RAP (0-based, one per returned event or file).
        kind: ``severe`` | ``fatal`` | ``missing`` | ``stop``.
        partner: who sent the RAP (the recipient of our TAP-out).
        rap_fsn: the RAP's file sequence number.
        fsn: the FSN of our returned TAP-out (missing: the first of the range; stop: the last
            the partner takes).
        fsn_end: missing: the last FSN of the range (None: one file).
        tap_file, tap_date: our returned TAP-out and its processing date (None: not found).
        event_index: severe: the event's place in ``tap_file`` (0-based).
        imsi, start_time: severe: the event's IMSI and local start.
        error_codes: the TD.57 error codes, comma-separated.
        charge, tax: the returned money (TAP units, ``charge_scale`` decimals): the event's
            (severe), our file's totals (fatal).
        received: the processing date the RAP was received on.
        status: ``to_correct`` | ``resubmitted`` | ``written_off``.
        action, for_date, out_date, out_file, reason, amount: the decision (None: none).
    """

    rap_file: str
    item: int
    kind: str
    partner: str | None
    rap_fsn: int | None
    fsn: str | None
    fsn_end: str | None
    tap_file: str | None
    tap_date: dt.date | None
    event_index: int | None
    imsi: str | None
    start_time: dt.datetime | None
    error_codes: str | None
    charge: int | None
    tax: int | None
    charge_scale: int | None
    currency: str | None
    received: dt.date
    status: str
    action: str | None
    for_date: dt.date | None
    out_date: dt.date | None
    out_file: str | None
    reason: str | None
    amount: int | None

    @property
    def money(self) -> int:
        """Charge + tax (TAP units)."""
        return int(self.charge or 0) + int(self.tax or 0)


class ReturnsIn:
    """Typed access to ``raps_in``, ``acks_in`` and ``returns_in``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def record_ack_received(
        self, day: dt.date, *, file: str, sender: str, rap_fsn: int, test: bool
    ) -> None:
        """An ACK of one of our RAPs arrived (replaces the same file's row of ``day``)."""
        self._con.execute("DELETE FROM acks_in WHERE file = ? AND processing_date = ?", [file, day])
        self._con.execute(
            "INSERT INTO acks_in (processing_date, file, sender, rap_fsn, test) "
            "VALUES (?, ?, ?, ?, ?)",
            [day, file, sender, rap_fsn, test],
        )

    def record_rap_received(
        self,
        day: dt.date,
        *,
        file: str,
        sha256: str,
        sender: str,
        recipient: str,
        rap_fsn: int,
        test: bool,
        ack_file: str | None,
    ) -> None:
        """A partner's RAP arrived: its row, and none of its returns yet (replaces a re-run's)."""
        self._con.execute("DELETE FROM raps_in WHERE file = ? AND processing_date = ?", [file, day])
        self._con.execute(
            "DELETE FROM returns_in WHERE rap_file = ? AND processing_date = ?", [file, day]
        )
        self._con.execute(
            "INSERT INTO raps_in (processing_date, file, sha256, sender, recipient, rap_fsn, "
            "test, ack_file) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [day, file, sha256, sender, recipient, rap_fsn, test, ack_file],
        )

    def record_return(
        self,
        day: dt.date,
        *,
        rap_file: str,
        kind: str,
        fsn: str | None,
        event_kind: str | None,
        event_sha256: str | None = None,
        charge: int | None = 0,
        tax: int | None = 0,
        error_codes: str | None = None,
        status: str = "to_correct",
        **item: Any,
    ) -> None:
        """One return of a partner's RAP: fatal, severe, missing (an FSN range) or stop.

        ``item`` holds the columns of migration 5 (``item``, ``partner``, ``rap_fsn``,
        ``tap_file``, ``tap_date``, ``event_index``, ``imsi``, ``start_time``, ``fsn_end``,
        ``charge_scale``, ``currency``). With an ``item``, the status is its action's (a re-run
        of the date keeps what was decided).
        """
        unknown = set(item) - set(_ITEM_COLUMNS)
        if unknown:
            msg = f"returns_in has no column {', '.join(sorted(unknown))}"
            raise TypeError(msg)
        columns = ["processing_date", "rap_file", "kind", "fsn", "event_kind", "event_sha256"]
        columns += ["charge", "tax", "error_codes", "status", *item]
        values = [day, rap_file, kind, fsn, event_kind, event_sha256, charge, tax, error_codes]
        values += [status, *item.values()]
        marks = ", ".join("?" for _ in columns)
        self._con.execute(f"INSERT INTO returns_in ({', '.join(columns)}) VALUES ({marks})", values)
        if item.get("item") is not None:
            self._sync_status(rap_file)

    # -- the items and what is decided for them --------------------------------------------

    def items(
        self, *, status: str | None = None, partner: str | None = None, rap_file: str | None = None
    ) -> list[ReturnItem]:
        """The returned items (of the latest receipt of each RAP), by RAP then item."""
        where, params = [], []
        for column, value in (("partner", partner), ("rap_file", rap_file)):
            if value is not None:
                where.append(f"r.{column} = ?")
                params.append(value)
        sql = _ITEM_SQL + "".join(f" AND {w}" for w in where)
        sql = f"SELECT * FROM ({sql}) WHERE status = coalesce(?, status) ORDER BY rap_file, item"
        rows = self._con.execute(sql, [*params, status]).fetchall()
        latest: dict[tuple[str, int], ReturnItem] = {}
        for row in rows:
            got = ReturnItem(*row)
            key = (got.rap_file, got.item)
            if key not in latest or latest[key].received < got.received:
                latest[key] = got
        return list(latest.values())

    def request_resubmit(
        self, rap_file: str, items: Sequence[int], *, for_date: dt.date | None = None
    ) -> int:
        """Ask for ``items`` of ``rap_file`` to be resubmitted; return how many.

        A request not carried out yet is replaced; a decided item is left as it is.
        """
        n = 0
        for item in items:
            self._con.execute(
                "DELETE FROM return_actions WHERE rap_file = ? AND item = ? "
                "AND action = 'resubmit' AND out_date IS NULL",
                [rap_file, item],
            )
            self._con.execute(
                "INSERT INTO return_actions (rap_file, item, action, requested_at, for_date) "
                "SELECT ?, ?, 'resubmit', ?, ? WHERE NOT EXISTS (SELECT 1 FROM return_actions "
                "WHERE rap_file = ? AND item = ?)",
                [rap_file, item, _now(), for_date, rap_file, item],
            )
            n += 1
        self._sync_status(rap_file)
        return n

    def write_off(
        self,
        rap_file: str,
        item: int,
        *,
        reason: str,
        amount: int,
        charge_scale: int | None,
        currency: str | None,
        on: dt.date | None = None,
    ) -> None:
        """Record the loss of one item (replaces a resubmit request not yet carried out).

        ``on``: the date of the write-off (kept in ``for_date``; the monthly workbook lists the
        write-offs of its period by it; None: the UTC date of the decision).
        """
        self._con.execute(
            "DELETE FROM return_actions WHERE rap_file = ? AND item = ? AND out_file IS NULL",
            [rap_file, item],
        )
        now = _now()
        self._con.execute(
            "INSERT INTO return_actions (rap_file, item, action, requested_at, for_date, reason, "
            "amount, charge_scale, currency) VALUES (?, ?, 'write_off', ?, ?, ?, ?, ?, ?)",
            [rap_file, item, now, on or now.date(), reason, amount, charge_scale, currency],
        )
        self._sync_status(rap_file)

    def claim_resubmissions(self, day: dt.date) -> list[ReturnItem]:
        """The resubmitted items that go out on ``day`` (they are given to it).

        Those already given to ``day``, and the open requests for ``day`` or for the next
        night after their RAP arrived.

        A request is given to one day only, so a replay of ``day`` takes the same items and no
        other day takes them again.
        """
        self._con.execute(
            "UPDATE return_actions a SET out_date = ? FROM returns_in r "
            "WHERE a.action = 'resubmit' AND a.out_date IS NULL AND r.rap_file = a.rap_file "
            "AND r.item = a.item AND (a.for_date = ? OR (a.for_date IS NULL AND "
            "r.processing_date < ?))",
            [day, day, day],
        )
        return [i for i in self.items() if i.action == "resubmit" and i.out_date == day]

    def release(self, rap_file: str, item: int) -> None:
        """A claimed resubmission that could not go out: open again (for the next night)."""
        self._con.execute(
            "UPDATE return_actions SET out_date = NULL WHERE rap_file = ? AND item = ? "
            "AND out_file IS NULL",
            [rap_file, item],
        )

    def mark_resubmitted(
        self, day: dt.date, partner: str, out_file: str, *, kind: str = "severe"
    ) -> int:
        """The TAP-out ``out_file`` of ``day`` for ``partner`` carries its resubmitted items."""
        found = [i for i in self.items(partner=partner) if i.out_date == day and i.kind == kind]
        for i in found:
            self._con.execute(
                "UPDATE return_actions SET out_file = ? WHERE rap_file = ? AND item = ?",
                [out_file, i.rap_file, i.item],
            )
            self._sync_status(i.rap_file)
        return len(found)

    def fatal_resends(self, day: dt.date) -> list[ReturnItem]:
        """The fatally returned files of ours resubmitted on ``day`` (sent again whole)."""
        return [
            i
            for i in self.items()
            if i.kind == "fatal" and i.action == "resubmit" and i.out_date == day
        ]

    def mark_file_resent(self, rap_file: str, item: int, out_file: str) -> None:
        """The fatally returned file of ``item`` is written again as ``out_file``."""
        self._con.execute(
            "UPDATE return_actions SET out_file = ? WHERE rap_file = ? AND item = ? "
            "AND action = 'resubmit'",
            [out_file, rap_file, item],
        )
        self._sync_status(rap_file)

    def replacing(self, name: str) -> ReturnItem | None:
        """The fatal return whose resubmission may replace our file ``name`` in the outbox.

        A fatal item about ``name``, resubmitted (claimed by a night), whose replacement is not
        in ``outbox_versions`` yet: one replacement per fatal return, never more.
        """
        found = [
            i
            for i in self.items()
            if i.kind == "fatal"
            and i.tap_file == name
            and i.action == "resubmit"
            and i.out_date is not None
        ]
        for i in found:
            done = self._con.execute(
                "SELECT count(*) FROM outbox_versions WHERE name = ? AND rap_file = ? AND item = ?",
                [name, i.rap_file, i.item],
            ).fetchone()
            if not (done and done[0]):
                return i
        return None

    def record_resend(self, rap_file: str, item: int, files: Sequence[str], day: dt.date) -> None:
        """A MissingReturn was answered by sending ``files`` again on ``day``."""
        self._con.execute(
            "INSERT INTO return_actions (rap_file, item, action, requested_at, out_date, out_file) "
            "SELECT ?, ?, 'resend', ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM return_actions "
            "WHERE rap_file = ? AND item = ?)",
            [rap_file, item, _now(), day, ",".join(files), rap_file, item],
        )
        self._sync_status(rap_file)

    def _sync_status(self, rap_file: str) -> None:
        self._con.execute(
            f"UPDATE returns_in r SET status = coalesce((SELECT {STATUS_SQL} FROM return_actions a "
            "WHERE a.rap_file = r.rap_file AND a.item = r.item), 'to_correct') "
            "WHERE r.rap_file = ? AND r.item IS NOT NULL",
            [rap_file],
        )

    def tap_out(self, partner: str, fsn: int) -> tuple[str, dt.date, str] | None:
        """Our TAP-out to ``partner`` with ``fsn``: (file name, processing date, path)."""
        row = self._con.execute(
            "SELECT file_name, processing_date, path FROM outbound_files WHERE partner = ? "
            "AND standard = 'tap' AND sequence_number = ? ORDER BY processing_date DESC LIMIT 1",
            [partner, fsn],
        ).fetchone()
        return None if row is None else (str(row[0]), row[1], str(row[2]))

    def acks_written(self, day: dt.date) -> list[tuple[str, str]]:
        """``(ack file, partner)`` of the ACKs we wrote for partners' RAPs of ``day``."""
        rows = self._con.execute(
            "SELECT ack_file, sender FROM raps_in WHERE processing_date = ? "
            "AND ack_file IS NOT NULL ORDER BY ack_file",
            [day],
        ).fetchall()
        return [(str(a), str(s)) for a, s in rows]


_ITEM_COLUMNS = (
    "item",
    "partner",
    "rap_fsn",
    "tap_file",
    "tap_date",
    "event_index",
    "imsi",
    "start_time",
    "fsn_end",
    "charge_scale",
    "currency",
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
