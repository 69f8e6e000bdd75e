"""Collect decides every listed entry on its own: fetched, quarantined or refused.

Real folder transports built from a ``clearing.toml`` (the ``[transport.partners.X]`` tables
of the sample world's shape), a real state DB and fetch ledger; a small fake source only for
the entries a folder cannot produce (a listed entry the transport marks as unfetchable, a
fetch that fails for one entry).
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest

from clearing import config
from clearing.errors import RemoteEntryError
from clearing.ingest import day_fates
from clearing.ingest.collect import Collected, FetchLedger, Provenance, collect, collect_partners
from clearing.ingest.stage import collect as collect_stage
from clearing.stage import StageContext
from clearing.transport.settings import Transports

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from pathlib import Path

DAY = date(2026, 11, 22)
NEXT = DAY + timedelta(days=1)

HOME = '[home]\ntadig = "HKGCL"\nsid_bid = "60099"\n\n'
PARTNERS = (
    '[partners.FRAF9]\nstandard = "tap"\n\n'
    '[partners.DEUD9]\nstandard = "tap"\n\n'
    '[partners.04172]\nstandard = "ciber"\n\n'
)


def _channel(code: str) -> str:
    return (
        f'[transport.partners.{code}]\nkind = "folder"\nroot = "exchange/{code}"\n'
        'remote_in = "to_hkgcl"\nremote_out = "from_hkgcl"\nafter_fetch = "keep"\n\n'
    )


def _workdir(root: Path, partners: str = PARTNERS, channels: tuple[str, ...] = ()) -> Path:
    """A work folder: us, ``partners``, a folder channel per code of ``channels``."""
    root.mkdir(parents=True)
    codes = channels or ("FRAF9", "DEUD9", "04172")
    (root / "clearing.toml").write_text(
        HOME + partners + "[transport]\nretry_attempts = 1\n\n" + "".join(map(_channel, codes))
    )
    for code in codes:
        (root / "exchange" / code / "to_hkgcl").mkdir(parents=True)
        (root / "exchange" / code / "from_hkgcl").mkdir(parents=True)
    return root


def _drop(root: Path, code: str, name: str, data: bytes) -> Path:
    path = root / "exchange" / code / "to_hkgcl" / name
    path.write_bytes(data)
    return path


def _collect(root: Path, day: date = DAY) -> Collected:
    settings = config.load(root)
    return collect_partners(root, Transports(settings.transport), day=day, settings=settings)


def _reason(root: Path, day: date, stored: str) -> str:
    return (root / "failed" / day.isoformat() / f"{stored}.reason.txt").read_text()


# --- provenance by name ----------------------------------------------------------------------


def test_another_partners_file_in_a_channel_is_quarantined_and_the_rest_fetched(
    tmp_path: Path,
) -> None:
    root = _workdir(tmp_path / "w")
    _drop(root, "DEUD9", "CDDEUD9HKGCL00738", b"DEUD9's own file")
    _drop(root, "FRAF9", "CDFRAF9HKGCL01506", b"FRAF9 one")
    _drop(root, "FRAF9", "CDFRAF9HKGCL01507", b"FRAF9 two")
    # the same name as DEUD9's file, other bytes: before, a LedgerError stopped every night
    _drop(root, "FRAF9", "CDDEUD9HKGCL00738", b"misdelivered")

    got = _collect(root)

    inbox = root / "inbox"
    assert sorted(p.name for p in got.fetched) == [
        "CDDEUD9HKGCL00738",
        "CDFRAF9HKGCL01506",
        "CDFRAF9HKGCL01507",
    ]
    assert (inbox / "CDDEUD9HKGCL00738").read_bytes() == b"DEUD9's own file"
    assert (inbox / "CDFRAF9HKGCL01507").read_bytes() == b"FRAF9 two"
    [fate] = got.quarantined
    assert (fate.name, fate.partner, fate.fate, fate.stage) == (
        "CDDEUD9HKGCL00738",
        "FRAF9",
        "quarantined",
        "collect",
    )
    assert fate.reason == "delivered by FRAF9's channel, claims DEUD9"
    assert fate.hint == (
        "ask FRAF9 why it delivered DEUD9's file; DEUD9's own channel is not affected"
    )
    assert fate.path == "failed/2026-11-22/CDDEUD9HKGCL00738"
    assert (root / fate.path).read_bytes() == b"misdelivered"
    reason = _reason(root, DAY, "CDDEUD9HKGCL00738")
    assert "claims DEUD9" in reason
    assert hashlib.sha256(b"misdelivered").hexdigest() in reason
    assert got.problems == [
        "collect: FRAF9: quarantined `CDDEUD9HKGCL00738` (delivered by FRAF9's channel, "
        "claims DEUD9): failed/2026-11-22/CDDEUD9HKGCL00738"
    ]
    assert day_fates(config.WorkDir(root), DAY) == [fate]
    assert not got.unreachable
    assert list((inbox / ".partial").iterdir()) == []

    # the next night: the misdelivered file is still on FRAF9's server; nothing happens again
    again = _collect(root, NEXT)
    assert (again.fetched, again.quarantined, again.refused, again.problems) == ([], [], [], [])
    assert not (root / "failed" / NEXT.isoformat()).exists()
    assert day_fates(config.WorkDir(root), NEXT) == []


@pytest.mark.parametrize(
    ("channel", "name", "reason"),
    [
        # TAP / RAP / ACK: the TADIG after the prefix is the sender, the next one the recipient
        ("FRAF9", "CDFRAF9DEUD900001", "addressed to DEUD9, not to us (HKGCL)"),
        ("FRAF9", "TDGBRG9HKGCL00001", "delivered by FRAF9's channel, claims GBRG9"),
        ("FRAF9", "RCDEUD9HKGCL00002", "delivered by FRAF9's channel, claims DEUD9"),
        ("FRAF9", "RCFRAF9HKGCM00002", "addressed to HKGCM, not to us (HKGCL)"),
        ("DEUD9", "ACFRAF9HKGCL00003", "delivered by DEUD9's channel, claims FRAF9"),
        # CIBER: CIBER_<from>_<to>_..., our SID/BID is [home] sid_bid
        (
            "04172",
            "CIBER_16425_60099_20261122_001.dat",
            "delivered by 04172's channel, claims 16425",
        ),
        ("04172", "CIBER_04172_60098_20261122_001.dat", "addressed to 60098, not to us (60099)"),
        (
            "FRAF9",
            "CIBER_04172_60099_20261122_001.dat",
            "delivered by FRAF9's channel, claims 04172",
        ),
    ],
)
def test_a_name_whose_sender_or_recipient_is_wrong_is_quarantined(
    tmp_path: Path, channel: str, name: str, reason: str
) -> None:
    root = _workdir(tmp_path / "w")
    _drop(root, channel, name, b"bytes")
    got = _collect(root)
    assert got.fetched == []
    assert [(f.name, f.partner, f.reason) for f in got.quarantined] == [(name, channel, reason)]
    assert (root / "failed" / DAY.isoformat() / name).read_bytes() == b"bytes"


def test_good_names_of_every_kind_and_names_of_no_kind_are_fetched(tmp_path: Path) -> None:
    root = _workdir(tmp_path / "w")
    good = {
        "FRAF9": ["CDFRAF9HKGCL01506", "TDFRAF9HKGCL00001", "RCFRAF9HKGCL00002"],
        "DEUD9": ["ACDEUD9HKGCL00003"],
        "04172": ["CIBER_04172_60099_20261122_951.dat"],
    }
    # not decided at collect: the claim step decides them by name and content
    other = {"FRAF9": ["NRFRAF9HKGCL00001", "notes.txt"], "04172": ["batch.dat"]}
    for code, names in (good | {k: good.get(k, []) + v for k, v in other.items()}).items():
        for name in names:
            _drop(root, code, name, name.encode())
    got = _collect(root)
    assert sorted(p.name for p in got.fetched) == sorted(
        [n for names in good.values() for n in names] + [n for v in other.values() for n in v]
    )
    assert (got.quarantined, got.refused, got.problems) == ([], [], [])


def test_without_a_home_sid_bid_a_ciber_file_is_not_for_us(tmp_path: Path) -> None:
    root = _workdir(tmp_path / "w")
    cfg = root / "clearing.toml"
    cfg.write_text(cfg.read_text().replace('sid_bid = "60099"\n', ""))
    _drop(root, "04172", "CIBER_04172_60099_20261122_951.dat", b"x")
    [fate] = _collect(root).quarantined
    assert fate.reason.startswith("addressed to 60099, not to us (no [home] sid_bid")


@pytest.mark.parametrize("partners", ['[partners.DEUD9]\nstandard = "tap"\n\n', ""])
def test_a_channel_that_is_not_a_partner_fails_closed(tmp_path: Path, partners: str) -> None:
    """FRAF9 has a channel but no [partners] entry; an empty [partners] turns nothing off."""
    root = _workdir(tmp_path / "w", partners=partners, channels=("FRAF9",))
    _drop(root, "FRAF9", "CDFRAF9HKGCL01506", b"tap")
    _drop(root, "FRAF9", "notes.txt", b"text")
    got = _collect(root)
    assert got.fetched == []
    assert not (root / "inbox" / "CDFRAF9HKGCL01506").exists()
    assert sorted(f.name for f in got.quarantined) == ["CDFRAF9HKGCL01506", "notes.txt"]
    for fate in got.quarantined:
        assert fate.reason == (
            "delivered by FRAF9's channel, and FRAF9 is not a partner "
            "(no [partners.FRAF9] in clearing.toml)"
        )
        assert "add [partners.FRAF9]" in fate.hint
    assert len(got.problems) == 2


# --- names that are no safe local file name -------------------------------------------------


def test_an_unsafe_name_is_refused_by_the_transport_and_the_rest_fetched(tmp_path: Path) -> None:
    """Names are checked once, by the transport: not ASCII, control characters, too long."""
    root = _workdir(tmp_path / "w")
    arabic = "CDFRAF9HKGCL\u0661\u0662\u0663\u0664\u0665"  # ARABIC-INDIC DIGITs one to five
    newline = "CDFRAF9HKGCL00001\n"
    long = "CDFRAF9HKGCL" + "0" * 199  # 211 characters
    for name in (arabic, newline, long):
        _drop(root, "FRAF9", name, name.encode())
    _drop(root, "FRAF9", "CDFRAF9HKGCL01506", b"good")

    got = _collect(root)

    assert [p.name for p in got.fetched] == ["CDFRAF9HKGCL01506"]
    assert got.quarantined == []
    by_name = {f.name: f for f in got.refused}
    assert set(by_name) == {arabic, newline, long}
    assert "name is not ASCII" in by_name[arabic].reason
    assert "U+000A" in by_name[newline].reason
    assert "name is too long (211 characters" in by_name[long].reason
    assert all(f.path is None for f in by_name.values())  # left on the server
    for name in (arabic, newline, long):
        assert (root / "exchange" / "FRAF9" / "to_hkgcl" / name).exists()
    assert sorted(p.name for p in root.joinpath("inbox").iterdir()) == [
        ".partial",
        "CDFRAF9HKGCL01506",
    ]
    # in the store under the escaped name
    stored_fates = {f.name for f in day_fates(config.WorkDir(root), DAY)}
    assert "CDFRAF9HKGCL00001\\n" in stored_fates
    # a problem the first night only
    assert len(got.problems) == 3
    again = _collect(root, NEXT)
    assert again.problems == []
    assert len(again.refused) == 3


def test_a_name_too_long_to_fetch_is_refused_and_the_rest_fetched(tmp_path: Path) -> None:
    root = _workdir(tmp_path / "w")
    name = "CDFRAF9HKGCL" + "1" * 240  # 252 bytes: `.{name}.part` would not fit 255
    _drop(root, "FRAF9", name, b"x")
    _drop(root, "FRAF9", "CDFRAF9HKGCL01506", b"good")
    got = _collect(root)
    assert [p.name for p in got.fetched] == ["CDFRAF9HKGCL01506"]
    [fate] = got.refused
    assert fate.fate == "refused"
    assert fate.path is None
    assert "name is too long (252 characters" in fate.reason
    assert (root / "exchange" / "FRAF9" / "to_hkgcl" / name).exists()  # left on the server


# --- a same name, other bytes, not processed yet --------------------------------------------


def test_a_newcomer_with_the_name_of_an_unprocessed_inbox_file_is_quarantined(
    tmp_path: Path,
) -> None:
    root = _workdir(tmp_path / "w")
    (root / "inbox").mkdir()
    (root / "inbox" / "notes.txt").write_bytes(b"DEUD9's notes")  # fetched earlier
    (root / "inbox" / "CDFRAF9HKGCL01507").write_bytes(b"same bytes")
    _drop(root, "FRAF9", "notes.txt", b"FRAF9's notes")
    _drop(root, "FRAF9", "CDFRAF9HKGCL01507", b"same bytes")
    got = _collect(root)
    assert [p.name for p in got.fetched] == ["CDFRAF9HKGCL01507"]  # the same bytes: no harm
    [fate] = got.quarantined
    assert fate.name == "notes.txt"
    assert (
        fate.reason == "inbox/ already holds a different file named `notes.txt`, not processed yet"
    )
    assert "let the file in inbox/ be processed first" in fate.hint
    assert (root / "inbox" / "notes.txt").read_bytes() == b"DEUD9's notes"
    assert (root / "failed" / DAY.isoformat() / "notes.txt").read_bytes() == b"FRAF9's notes"


# --- refused entries: a source the folder transport cannot be yet ---------------------------


@dataclass(frozen=True)
class _Entry:
    name: str
    size: int
    mtime: int
    problem: str | None = None


@dataclass
class _FakeSource:
    """A partner's server: files, entries listed with a problem, entries whose fetch fails."""

    files: dict[str, bytes]
    problems: dict[str, str] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)
    released: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return "fake://FRAF9"

    def poll(self, pattern: str) -> list[_Entry]:
        listed = [_Entry(n, len(b), 1_000) for n, b in self.files.items()]
        listed += [_Entry(n, 0, 1_000, problem=p) for n, p in self.problems.items()]
        return sorted(listed, key=lambda e: e.name)

    def fetch(self, name: str, local_dir: Path, *, release: bool = True) -> Path:
        assert name not in self.problems, "an entry with a problem is never fetched"
        if name in self.broken:
            msg = f"`{name}` on fake://FRAF9: permission denied"
            raise RemoteEntryError(msg, entry=name)
        local_dir.mkdir(parents=True, exist_ok=True)
        (local_dir / name).write_bytes(self.files[name])
        return local_dir / name

    def release(self, name: str) -> None:
        self.released.append(name)


@dataclass
class _FakeSources:
    source: _FakeSource
    pattern: str = "*"

    @property
    def partners(self) -> dict[str, object]:
        return {"FRAF9": self}

    def partner(self, partner: str) -> _FakeSources:
        return self

    def transport_for(
        self, partner: str, base_dir: Path | None = None
    ) -> AbstractContextManager[_FakeSource]:
        return nullcontext(self.source)


def _server() -> _FakeSource:
    return _FakeSource(
        files={
            "CDFRAF9HKGCL01506": b"one",
            "CDFRAF9HKGCL01507": b"unreadable",
            "CDFRAF9HKGCL01508": b"three",
        },
        problems={"CDFRAF9HKGCL09999": "a symbolic link that loops"},
        broken={"CDFRAF9HKGCL01507"},
    )


def test_refused_entries_stay_on_the_server_and_the_others_are_fetched(tmp_path: Path) -> None:
    root = _workdir(tmp_path / "w")
    wd = config.WorkDir(root)
    provenance = Provenance.of(config.load(root))
    ledger = FetchLedger(root)
    server = _server()

    got = Collected(["FRAF9"])
    fetched = collect(
        "FRAF9", server, "*", wd.inbox, ledger, day=DAY, provenance=provenance, into=got
    )

    assert [p.name for p in fetched] == ["CDFRAF9HKGCL01506", "CDFRAF9HKGCL01508"]
    assert sorted(server.released) == ["CDFRAF9HKGCL01506", "CDFRAF9HKGCL01508"]
    assert [(f.name, f.fate, f.path) for f in got.refused] == [
        ("CDFRAF9HKGCL01507", "refused", None),
        ("CDFRAF9HKGCL09999", "refused", None),
    ]
    assert got.refused[0].reason == "`CDFRAF9HKGCL01507` on fake://FRAF9: permission denied"
    assert got.refused[1].reason == "a symbolic link that loops"
    assert got.problems == [
        "collect: FRAF9: refused `CDFRAF9HKGCL01507` "
        "(`CDFRAF9HKGCL01507` on fake://FRAF9: permission denied)",
        "collect: FRAF9: refused `CDFRAF9HKGCL09999` (a symbolic link that loops)",
    ]
    assert got.quarantined == []
    assert [f.fate for f in day_fates(wd, DAY)] == ["refused", "refused"]

    # the next two nights they are still there: recorded each night, an anomaly only once
    for day in (NEXT, NEXT + timedelta(days=1)):
        later = Collected(["FRAF9"])
        assert (
            collect(
                "FRAF9", server, "*", wd.inbox, ledger, day=day, provenance=provenance, into=later
            )
            == []
        )
        assert later.problems == []
        assert len(later.refused) == 2
        assert all(f.reason.endswith("; still refused since 2026-11-22") for f in later.refused)
        assert later.still_refused == [
            "collect: FRAF9: refused `CDFRAF9HKGCL01507` (`CDFRAF9HKGCL01507` on "
            "fake://FRAF9: permission denied; still refused since 2026-11-22)",
            "collect: FRAF9: refused `CDFRAF9HKGCL09999` "
            "(a symbolic link that loops; still refused since 2026-11-22)",
        ]
        assert [f.fate for f in day_fates(wd, day)] == ["refused", "refused"]

    # one fixed on the server (a night skipped): fetched; the other still refused, still old
    server.broken.clear()
    fixed = Collected(["FRAF9"])
    fifth = DAY + timedelta(days=4)
    collect("FRAF9", server, "*", wd.inbox, ledger, day=fifth, provenance=provenance, into=fixed)
    assert [p.name for p in fixed.fetched] == ["CDFRAF9HKGCL01507"]
    assert [f.name for f in fixed.refused] == ["CDFRAF9HKGCL09999"]
    assert len(fixed.problems) == 0


def test_a_refused_entry_is_a_warning_of_the_collect_step_not_a_transport_problem(
    tmp_path: Path,
) -> None:
    """The step warns; the night reports the entry (exit 1) with every fate at its end."""
    root = _workdir(tmp_path / "w")
    ctx = StageContext(
        workdir=config.WorkDir(root),
        settings=config.load(root),
        day=DAY,
        sources=_FakeSources(_server()),
    )
    result = collect_stage.run(ctx)
    assert result.problems == []  # no transport problem (3): nobody is unreachable
    assert result.status == "warning"
    assert result.detail == {
        "partners": 1,
        "fetched": 2,
        "quarantined": 0,
        "refused": 2,
        "unreachable": [],
    }
    assert len(result.value.problems) == 2
    assert [f.fate for f in day_fates(ctx.workdir, DAY)] == ["refused", "refused"]
    # the next night: recorded, not an anomaly, said in the detail
    later = collect_stage.run(
        StageContext(workdir=ctx.workdir, settings=ctx.settings, day=NEXT, sources=ctx.sources)
    )
    assert (later.status, later.problems) == ("ok", [])
    assert later.detail["refused"] == 2
    assert len(later.detail["still_refused"]) == 2


def test_the_collect_verb_takes_a_date_and_exits_1_for_a_new_anomaly(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from clearing.cli import app

    root = _workdir(tmp_path / "w")
    _drop(root, "FRAF9", "CDFRAF9HKGCL01506", b"good")
    _drop(root, "FRAF9", "CDDEUD9HKGCL00738", b"misdelivered")
    runner = CliRunner()
    r = runner.invoke(app, ["collect", "--workdir", str(root), "--date", "2026-11-22"])
    assert r.exit_code == 1, r.output
    assert r.stdout == f"fetched {root / 'inbox' / 'CDFRAF9HKGCL01506'}\n"
    anomaly = (
        "anomaly: collect: FRAF9: quarantined `CDDEUD9HKGCL00738` (delivered by FRAF9's "
        "channel, claims DEUD9): failed/2026-11-22/CDDEUD9HKGCL00738"
    )
    # the transport's lines (what it fetched, what it set aside) come first; then the verb's
    assert r.stderr.splitlines() == [
        "FRAF9: quarantined `CDDEUD9HKGCL00738`: delivered by FRAF9's channel, claims DEUD9",
        f"FRAF9: fetched `CDFRAF9HKGCL01506` (4 bytes) from folder://{root / 'exchange/FRAF9'}",
        anomaly,
    ]
    # -q: the problems only
    again = runner.invoke(app, ["-q", "collect", "--workdir", str(root), "--date", "2026-11-23"])
    assert (again.exit_code, again.stdout, again.stderr) == (0, "", "")
    bad = runner.invoke(app, ["collect", "--workdir", str(root), "--date", "23.11.2026"])
    assert bad.exit_code == 2
