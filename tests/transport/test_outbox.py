"""The outbox ledger: registered once, sent, resent with the same bytes, never other bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from clearing.errors import ConfigError, PermanentTransportError
from clearing.transport import LedgerError, LocalFolderTransport, Transport
from clearing.transport.outbox import Outbox, OutboxState

from .conftest import TransportFactory

Made = tuple[TransportFactory, Path]


def _file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "var" / "clearing.duckdb")


def test_register_is_idempotent_and_binds_the_name_to_its_bytes(
    outbox: Outbox, tmp_path: Path
) -> None:
    path = _file(tmp_path / "out" / "CDHKGCLFRAF900001", b"tap-out")
    entry = outbox.register(path, "FRAF9", "tap")
    assert entry.state is OutboxState.GENERATED
    assert (entry.sha256, entry.size) == (hashlib.sha256(b"tap-out").hexdigest(), 7)
    assert (entry.attempts, entry.sent_at, entry.last_error) == (0, None, None)
    assert outbox.register(path, "FRAF9", "tap") == entry  # no-op

    copy = _file(tmp_path / "elsewhere" / "CDHKGCLFRAF900001", b"tap-out")
    assert outbox.register(copy, "FRAF9", "tap") == entry  # same name, same bytes

    path.write_bytes(b"TAP-OUT")
    with pytest.raises(LedgerError, match="other bytes") as err:
        outbox.register(path, "FRAF9", "tap")
    assert "new name" in str(err.value)
    path.write_bytes(b"tap-out")
    with pytest.raises(LedgerError, match="partner FRAF9"):
        outbox.register(path, "DEUD9", "tap")
    assert outbox.entries() == [entry]


def test_register_of_a_missing_file(outbox: Outbox, tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="cannot read outbound file"):
        outbox.register(tmp_path / "nope", "FRAF9", "tap")


def test_the_table_is_called_outbox_and_survives_reopening(outbox: Outbox, tmp_path: Path) -> None:
    outbox.register(_file(tmp_path / "A1", b"a"), "FRAF9", "rap")
    again = Outbox(outbox.path)
    assert [e.name for e in again.due()] == ["A1"]
    with duckdb.connect(str(outbox.path), read_only=True) as con:
        assert con.execute("SELECT name, partner, kind, state FROM outbox").fetchall() == [
            ("A1", "FRAF9", "rap", "generated")
        ]


def test_send_due_then_resend_same_bytes(
    make_transport: Made, outbox: Outbox, tmp_path: Path
) -> None:
    factory, remote = make_transport
    a = outbox.register(_file(tmp_path / "out" / "CDHKGCLFRAF900001", b"A" * 5000), "FRAF9", "tap")
    outbox.register(_file(tmp_path / "out" / "RCHKGCLFRAF900001", b"R" * 300), "FRAF9", "rap")
    asked: list[str] = []

    def transport_for(partner: str) -> Transport:
        asked.append(partner)
        return factory()

    report = outbox.send_due(transport_for)
    assert report.ok
    assert report.sent == ("CDHKGCLFRAF900001", "RCHKGCLFRAF900001")
    assert asked == ["FRAF9"]  # one transport per partner
    assert (remote / "CDHKGCLFRAF900001").read_bytes() == b"A" * 5000
    sent = outbox.get(a.name)
    assert sent.state is OutboxState.SENT
    assert sent.attempts == 1
    assert sent.sent_at is not None
    assert sent.destination is not None
    assert outbox.due() == []
    assert outbox.send_due(transport_for).sent == ()

    (remote / "CDHKGCLFRAF900001").write_bytes(b"damaged on the partner's side")
    again = outbox.resend(a.name, factory())
    assert (remote / "CDHKGCLFRAF900001").read_bytes() == b"A" * 5000
    assert (again.state, again.attempts) == (OutboxState.SENT, 2)


def test_resend_refuses_changed_bytes(make_transport: Made, outbox: Outbox, tmp_path: Path) -> None:
    factory, remote = make_transport
    path = _file(tmp_path / "out" / "CDHKGCLFRAF900001", b"original")
    outbox.register(path, "FRAF9", "tap")
    assert outbox.send_due(lambda _: factory()).ok
    path.write_bytes(b"regenerated")
    with pytest.raises(LedgerError, match="refusing to send") as err:
        outbox.resend(path.name, factory())
    assert str(path) in str(err.value)
    assert (remote / path.name).read_bytes() == b"original"
    entry = outbox.get(path.name)
    assert entry.state is OutboxState.SENT  # it was sent; that stays true
    assert entry.last_error is not None
    assert "refusing" in entry.last_error


def test_send_due_refuses_changed_bytes_and_keeps_them_due(outbox: Outbox, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    path = _file(tmp_path / "out" / "CDHKGCLFRAF900001", b"original")
    outbox.register(path, "FRAF9", "tap")
    path.write_bytes(b"changed!")
    report = outbox.send_due(lambda _: LocalFolderTransport(remote))
    assert report.sent == ()
    assert [name for name, _ in report.failed] == [path.name]
    assert list(remote.iterdir()) == []
    assert outbox.get(path.name).state is OutboxState.FAILED
    path.write_bytes(b"original")  # restored: now it goes
    assert outbox.send_due(lambda _: LocalFolderTransport(remote)).sent == (path.name,)
    assert (remote / path.name).read_bytes() == b"original"


def test_failures_are_recorded_and_retried_by_the_next_send(
    make_transport: Made, outbox: Outbox, tmp_path: Path
) -> None:
    factory, remote = make_transport
    outbox.register(_file(tmp_path / "out" / "F1", b"f"), "FRAF9", "tap")
    outbox.register(_file(tmp_path / "out" / "D1", b"d"), "DEUD9", "tap")
    outbox.register(_file(tmp_path / "out" / "X1", b"x"), "XXXX9", "tap")

    def broken(partner: str) -> Transport:
        if partner == "XXXX9":
            raise ConfigError("no transport for partner `XXXX9`")
        if partner == "DEUD9":
            return factory(remote_out=str(remote / "missing"))
        return factory()

    report = outbox.send_due(broken)
    assert report.sent == ("F1",)
    failed = dict(report.failed)
    assert set(failed) == {"D1", "X1"}
    assert "missing" in failed["D1"]
    assert "XXXX9" in failed["X1"]
    d1 = outbox.get("D1")
    assert (d1.state, d1.attempts, d1.last_error) == (OutboxState.FAILED, 1, failed["D1"])
    assert [e.name for e in outbox.due()] == ["D1", "X1"]

    (remote / "missing").mkdir()
    report = outbox.send_due(lambda _: factory(remote_out=str(remote / "missing")))
    assert report.sent == ("D1", "X1")
    d1 = outbox.get("D1")
    assert (d1.state, d1.attempts, d1.last_error) == (OutboxState.SENT, 2, None)


def test_resend_failure_is_raised_and_recorded(outbox: Outbox, tmp_path: Path) -> None:
    path = _file(tmp_path / "out" / "F1", b"f")
    outbox.register(path, "FRAF9", "tap")
    with pytest.raises(PermanentTransportError):
        outbox.resend("F1", LocalFolderTransport(tmp_path / "nowhere"))
    entry = outbox.get("F1")
    assert (entry.state, entry.attempts) == (OutboxState.FAILED, 1)
    with pytest.raises(LedgerError, match="not in the outbox"):
        outbox.resend("F2", LocalFolderTransport(tmp_path))


def test_mark_follows_the_life_cycle(outbox: Outbox, tmp_path: Path) -> None:
    outbox.register(_file(tmp_path / "A1", b"a"), "FRAF9", "tap")
    (tmp_path / "sent").mkdir()
    assert outbox.send_due(lambda _: LocalFolderTransport(tmp_path, remote_out="sent")).ok
    with pytest.raises(LedgerError, match="cannot go from sent to generated"):
        outbox.mark("A1", "generated")
    acked = outbox.mark("A1", OutboxState.ACKNOWLEDGED)
    assert acked.state is OutboxState.ACKNOWLEDGED
    assert acked.acknowledged_at is not None
    closed = outbox.mark("A1", "closed")
    assert (closed.state, closed.closed_at is not None) == (OutboxState.CLOSED, True)
    assert outbox.mark("A1", "closed") == closed  # staying put is fine
    with pytest.raises(LedgerError, match="cannot go from closed to failed"):
        outbox.mark("A1", "failed")
    with pytest.raises(LedgerError, match="unknown outbox state `lost`"):
        outbox.mark("A1", "lost")
    with pytest.raises(LedgerError, match="not in the outbox"):
        outbox.mark("B1", "closed")
    failed = outbox.mark(
        outbox.register(_file(tmp_path / "B1", b"b"), "FRAF9", "tap").name,
        "failed",
        error="partner asked us to hold it",
    )
    assert (failed.state, failed.last_error) == (OutboxState.FAILED, "partner asked us to hold it")
    assert [e.name for e in outbox.entries(OutboxState.CLOSED)] == ["A1"]


def test_only_a_fatally_returned_file_resubmitted_is_replaced_once(
    outbox: Outbox, tmp_path: Path
) -> None:
    from datetime import date

    from clearing.store import open_store

    path = _file(tmp_path / "out" / "tap" / "CDHKGCLFRAF900001", b"returned")
    old = outbox.register(path, "FRAF9", "transferBatch")
    outbox.mark(path.name, OutboxState.SENT)
    path.write_bytes(b"corrected")
    with pytest.raises(LedgerError, match="other bytes"):  # no fatal return: refused
        outbox.register(path, "FRAF9", "transferBatch")

    day = date(2026, 11, 23)
    with open_store(outbox.path) as store:
        store.returns_in.record_return(
            day, rap_file="RCFRAF9HKGCL00007", kind="fatal", fsn="00001", event_kind=None,
            item=0, partner="FRAF9", rap_fsn=7, tap_file=path.name, tap_date=date(2026, 11, 22),
        )  # fmt: skip
        store.returns_in.request_resubmit("RCFRAF9HKGCL00007", [0])
    with pytest.raises(LedgerError, match="other bytes"):  # requested, not claimed by a night
        outbox.register(path, "FRAF9", "transferBatch")
    with open_store(outbox.path) as store:
        store.returns_in.claim_resubmissions(date(2026, 11, 24))
    with pytest.raises(LedgerError, match="not kept at"):  # the returned bytes must be kept
        outbox.register(path, "FRAF9", "transferBatch")

    kept = _file(
        tmp_path / "out" / "tap" / "returned" / f"{path.name}.{old.sha256[:12]}", b"returned"
    )
    new = outbox.register(path, "FRAF9", "transferBatch")
    assert (new.sha256, new.state, new.attempts) == (
        hashlib.sha256(b"corrected").hexdigest(),
        OutboxState.GENERATED,
        0,
    )
    assert outbox.register(path, "FRAF9", "transferBatch") == new  # same bytes: a no-op
    with open_store(outbox.path) as store:
        (v,) = store.outbox.versions(path.name)
    assert (v.version, v.sha256, v.state, v.local_path) == (1, old.sha256, "sent", kept.resolve())
    assert (v.replaced_by, v.rap_file, v.item) == (new.sha256, "RCFRAF9HKGCL00007", 0)

    path.write_bytes(b"corrected twice")  # one replacement per fatal return
    with pytest.raises(LedgerError, match="other bytes"):
        outbox.register(path, "FRAF9", "transferBatch")
