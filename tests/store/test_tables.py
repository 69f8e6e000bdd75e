"""The store's typed methods: what goes in comes back out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from clearing.store import FileRecord, OutboxState, SequenceCheck, next_fsn, open_ledger, open_store

if TYPE_CHECKING:
    from pathlib import Path

DAY1, DAY2 = date(2026, 11, 22), date(2026, 11, 23)


def _tap(file: str, fsn: str, sha: str, outcome: str = "processed") -> dict[str, object]:
    return {
        "file": file,
        "sha256": sha,
        "format": "tap",
        "sender": "FRAF9",
        "recipient": "HKGCL",
        "fsn": fsn,
        "test": False,
        "outcome": outcome,
    }


def test_register_and_inbound_sequences(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.register.record_file(DAY1, _tap("CDFRAF9HKGCL00001", "00001", "a"))
        store.register.record_file(
            DAY1,
            {"file": "CIBER_1.dat", "sha256": "c", "format": "ciber", "outcome": "processed",
             "rap_file": "R1_RET.dat, R2_RET.dat"},
        )  # fmt: skip
        store.register.set_rap_file(DAY1, "CDFRAF9HKGCL00001", "RCHKGCLFRAF900001")
        check = store.inbound.check
        kw: dict[str, Any] = {"sender": "FRAF9", "recipient": "HKGCL", "test": False}
        assert check(DAY2, **kw, fsn=1, sha256="a") == SequenceCheck(copy_of="CDFRAF9HKGCL00001")
        assert check(DAY2, **kw, fsn=1, sha256="b") == SequenceCheck(reused="CDFRAF9HKGCL00001")
        assert check(DAY2, **kw, fsn=4, sha256="d") == SequenceCheck(expected=2, missing=(2, 3))
        assert store.register.ciber_returns_of(DAY1) == ["R1_RET.dat", "R2_RET.dat"]
        findings = pa.table(
            {
                "file": ["CDFRAF9HKGCL00001"],
                "source_format": ["tap"],
                "sender": ["FRAF9"],
                "rule": ["fsn.gap"],
                "code": pa.array([200], pa.int32()),
                "severity": ["warning"],
                "context": ["file"],
                "message": ["gap"],
            }
        )
        store.register.record_findings(DAY1, findings)
        store.register.record_rap(
            DAY1,
            {"file": "RCHKGCLFRAF900001", "partner": "FRAF9", "test": False, "rap_fsn": 1,
             "sha256": "r", "stop": 0},
        )  # fmt: skip
        assert store.register.raps_of(DAY1) == [("RCHKGCLFRAF900001", "FRAF9")]
        assert store.inbound.next_rap_fsn(DAY2, "FRAF9", False) == 2
        (status,) = store.inbound.status()
        assert (status["last_fsn"], status["gaps"], status["acks_owed"]) == ("00001", 1, 1)
        assert store.inbound.silent_partners(date(2026, 12, 30), {"FRAF9": 30}) == [("FRAF9", 1)]
        store.register.forget(DAY1)
        assert store.register.raps_of(DAY1) == []
        assert store.inbound.status() == []
    assert [next_fsn(n) for n in (1, 99_998, 99_999)] == [2, 99_999, 1]


def test_returns_in(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        for _ in range(2):  # a re-run replaces the rows of the same file
            store.returns_in.record_rap_received(
                DAY1, file="RCFRAF9HKGCL00007", sha256="s", sender="FRAF9", recipient="HKGCL",
                rap_fsn=7, test=False, ack_file="ACHKGCLFRAF900007",
            )  # fmt: skip
            store.returns_in.record_return(
                DAY1, rap_file="RCFRAF9HKGCL00007", kind="fatal", fsn="00003",
                event_kind="transferBatch", error_codes="20,30",
            )  # fmt: skip
            store.returns_in.record_ack_received(
                DAY1, file="ACFRAF9HKGCL00002", sender="FRAF9", rap_fsn=2, test=False
            )
        assert store.returns_in.acks_written(DAY1) == [("ACHKGCLFRAF900007", "FRAF9")]
        rows = store.con.execute("SELECT kind, fsn, charge, status FROM returns_in").fetchall()
        assert rows == [("fatal", "00003", 0, "to_correct")]
        assert store.con.execute("SELECT count(*) FROM acks_in").fetchone() == (1,)


def test_outbound_sequences(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        seq = store.outbound
        assert seq.allocation("FRAF9", "tap", "live", DAY1) == (None, None, None)
        seq.save("FRAF9", "tap", "live", DAY1, first=5, last=5, previous=4)
        seq.save("FRAF9", "tap", "live", DAY1, first=5, last=6, previous=4)
        assert seq.allocation("FRAF9", "tap", "live", DAY1) == (5, 6, 4)
        assert seq.allocation("FRAF9", "tap", "live", DAY2) == (None, None, 6)
        record = FileRecord(
            "CDHKGCLFRAF900005", "transferBatch", "FRAF9", "tap", "live", DAY1, 5, 10, 100, 7,
            3, "EUR", "h1", "/out/CDHKGCLFRAF900005",
        )  # fmt: skip
        assert seq.register_file(record) is False
        assert seq.register_file(record) is False
        assert seq.register_file(replace(record, sha256="h2")) is True
        assert seq.files_of(DAY1) == [("FRAF9", "transferBatch", "/out/CDHKGCLFRAF900005")]


def test_outbox_table(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        box = store.outbox
        box.insert(name="A", partner="FRAF9", kind="rap", sha256="h", size=3, local_path=tmp_path)
        assert [e.name for e in box.due()] == ["A"]
        box.record_sent("A", OutboxState.SENT, destination="folder:/x")
        box.set_state("A", OutboxState.ACKNOWLEDGED)
        entry = box.find("A")
        assert entry is not None
        assert (entry.state, entry.attempts, entry.destination) == ("acknowledged", 1, "folder:/x")
        assert entry.registered_at.tzinfo == UTC
        assert entry.acknowledged_at is not None
        box.record_failure("A", OutboxState.ACKNOWLEDGED, error="boom")
        assert box.entries(OutboxState.ACKNOWLEDGED)[0].last_error == "boom"
        assert box.due() == []
        assert box.find("B") is None


def test_fetch_ledger(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        rows = ledger.fetched
        rows.record("FRAF9", "f", 3, "h", 100, tmp_path / "f")
        rows.record("FRAF9", "f", 3, "h", 200, tmp_path / "f")  # touched: new mtime
        assert rows.seen("FRAF9", "f", 3, 200)
        assert not rows.seen("FRAF9", "f", 3, 100)
        assert rows.has("FRAF9", "f", 3, "h")
        assert not rows.has("DEUD9", "f", 3, "h")
        (entry,) = rows.entries("FRAF9")
        assert (entry.mtime, entry.local_path, entry.fetched_at.tzinfo) == (
            200,
            tmp_path / "f",
            UTC,
        )
        assert entry.fetched_at <= datetime.now(UTC)
