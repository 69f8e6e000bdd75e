"""The FSN check reads only the rows that decide, and answers as over the whole history.

:meth:`InboundSequences.check` (issue 16, item 2) reads the stream's files of the FSN, its
latest file and the FSNs inside a gap, not the stream's whole history. Here random histories
(several streams, test and live, copies, fatal and processed files, FSNs around the wrap
99999 → 1, numbers that are no FSN, other formats, several dates) are checked against the
TD.57 rule stated over the whole history: the stream's files (no copies, TAP or Notification,
a five-digit FSN, processed up to the day) in order of processing date and registration;
an identical file is a copy; another processed file of the FSN a reuse; the next FSN expected
after the latest file (99999 → 1); up to 49 999 ahead of it, the numbers never seen are a gap
— unless the FSN was rejected as fatal before (a resubmission).
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from clearing.store import SequenceCheck, open_store

if TYPE_CHECKING:
    from pathlib import Path

    import duckdb

DAY0 = date(2026, 11, 1)
_STREAMS = [("FRAF9", "HKGCL", False), ("FRAF9", "HKGCL", True), ("DEUD9", "HKGCL", False)]
_FSNS = [99_990, 99_995, 99_997, 99_998, 99_999, 1, 2, 3, 4, 6, 10, 40_000, 60_000]


def _whole_history(
    con: duckdb.DuckDBPyConnection, day: date, stream: tuple[str, str, bool], fsn: int, sha: str
) -> SequenceCheck:
    sender, recipient, test = stream
    rows = [
        (int(n), s, f, o)
        for n, s, f, o, fmt, ty in con.execute(
            "SELECT fsn, sha256, file, outcome, format, test FROM files "
            "WHERE sender = ? AND recipient = ? AND processing_date <= ? "
            "ORDER BY processing_date, rowid",
            [sender, recipient, day],
        ).fetchall()
        if ty == test
        and o != "copy"
        and fmt in ("tap", "notification")
        and re.fullmatch("[0-9]{5}", n)
    ]
    same = [r for r in rows if r[0] == fsn]
    for _n, s, f, _o in same:
        if s == sha:
            return SequenceCheck(copy_of=f)
    processed = [f for _n, _s, f, o in same if o == "processed"]
    if processed:
        return SequenceCheck(reused=processed[-1])
    fatal = any(o == "fatal" for *_x, o in same)
    if not rows:
        return SequenceCheck(previously_fatal=fatal)
    expected = 1 if rows[-1][0] == 99_999 else rows[-1][0] + 1
    missing = None
    ahead = (fsn - expected) % 99_999
    if not fatal and fsn != expected and 0 < ahead < 50_000:
        seen = {r[0] for r in rows}
        gap = [n for n in range(expected, expected + ahead) if n not in seen]
        missing = (gap[0], gap[-1]) if gap else None
    return SequenceCheck(expected=expected, missing=missing, previously_fatal=fatal)


def _history(rng: random.Random) -> list[tuple[date, dict[str, Any]]]:
    out = []
    for i in range(rng.randrange(0, 25)):
        sender, recipient, test = rng.choice(_STREAMS)
        n = rng.choice(_FSNS)
        fsn = rng.choice([f"{n:05d}"] * 8 + [str(n), "ABCDE"])
        row = {
            "file": f"F{i:03d}",
            "sha256": rng.choice("abc"),
            "format": rng.choice(["tap"] * 4 + ["notification", "ciber"]),
            "sender": sender,
            "recipient": recipient,
            "fsn": fsn,
            "test": test,
            "outcome": rng.choice(["processed"] * 4 + ["fatal", "copy"]),
        }
        out.append((DAY0 + timedelta(days=rng.randrange(0, 6)), row))
    return out


def test_check_answers_as_over_the_whole_history(tmp_path: Path) -> None:
    rng = random.Random(16)
    checked = {"copy": 0, "reused": 0, "gap": 0, "fatal": 0}
    for k in range(40):
        with open_store(tmp_path / f"h{k}") as store:
            for day, row in _history(rng):
                store.register.record_file(day, row)
            for _ in range(40):
                day = DAY0 + timedelta(days=rng.randrange(0, 7))
                stream = rng.choice(_STREAMS)
                fsn, sha = rng.choice([*_FSNS, 5, 99_996]), rng.choice("abcd")
                want = _whole_history(store.con, day, stream, fsn, sha)
                sender, recipient, test = stream
                got = store.inbound.check(
                    day, sender=sender, recipient=recipient, test=test, fsn=fsn, sha256=sha
                )
                assert got == want, (k, day, stream, fsn, sha)
                checked["copy"] += want.copy_of is not None
                checked["reused"] += want.reused is not None
                checked["gap"] += want.missing is not None
                checked["fatal"] += want.previously_fatal
    assert min(checked.values()) >= 10, checked  # every answer was exercised


def test_the_wrap(tmp_path: Path) -> None:
    # by hand: after 99999 comes 1; FSN 3 then leaves 1 and 2 missing
    with open_store(tmp_path) as store:
        store.register.record_file(
            DAY0,
            {"file": "A", "sha256": "a", "format": "tap", "sender": "FRAF9",
             "recipient": "HKGCL", "fsn": "99999", "test": False, "outcome": "processed"},
        )  # fmt: skip
        kw: dict[str, Any] = {"sender": "FRAF9", "recipient": "HKGCL", "test": False}
        assert store.inbound.check(DAY0, **kw, fsn=1, sha256="b") == SequenceCheck(expected=1)
        got = store.inbound.check(DAY0, **kw, fsn=3, sha256="b")
        assert got == SequenceCheck(expected=1, missing=(1, 2))
