"""Whose file is it: the claim's verdicts, the sender check failing closed, earlier reports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearing import config
from clearing.ingest import Fate, classify, first_reported, quarantine, record_fate
from clearing.validate.tap import check_tap

from .test_stage import day_file

if TYPE_CHECKING:
    import pytest

DAY = dt.date(2026, 11, 23)


def test_names_are_ascii_full_matches(tmp_path: Path) -> None:
    for name in ("CDFRAF9HKGCL0150\u0667", "CDFRAF9HKGCL01506\n", "cdfraf9hkgcl01506"):
        (tmp_path / "x").write_bytes(b"\x61\x01\x00")
        path = (tmp_path / "x").rename(tmp_path / name)
        v = classify(path)
        assert v.kind is None, name
        assert "not a partner file name" in v.reason
        path.unlink()
    ok = tmp_path / "CDFRAF9HKGCL01506"
    ok.write_bytes(b"\x61\x01\x00")
    assert classify(ok).kind == "tap"
    assert classify(ok).sender == "FRAF9"


def test_a_link_is_not_followed_and_an_unreadable_file_is_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"private")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    link = inbox / "CDFRAF9HKGCL01506"
    link.symlink_to(secret)
    assert "symbolic link" in classify(link).reason
    wd = config.WorkDir(tmp_path)
    fate = quarantine(wd, DAY, link, partner=None, reason="link", hint="h", stage="claim")
    moved = tmp_path / fate.path  # type: ignore[operator]
    assert moved.is_symlink()
    assert not link.exists()
    assert secret.read_bytes() == b"private"  # the target was neither moved nor copied

    unreadable = inbox / "CDFRAF9HKGCL01507"
    unreadable.write_bytes(b"\x61\x01\x00")
    real_open = Path.open

    def denied(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "CDFRAF9HKGCL01507":
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    v = classify(unreadable)
    assert v.kind is None
    assert "cannot be read: Permission denied" in v.reason
    # moved by a rename (no read needed): its fate recorded, its reason file says so
    fate = quarantine(
        wd, DAY, unreadable, partner=None, reason=v.reason, hint=v.hint, stage="claim"
    )
    monkeypatch.undo()
    assert fate.path == f"failed/{DAY}/CDFRAF9HKGCL01507"
    assert not unreadable.exists()
    reason = (tmp_path / f"failed/{DAY}/CDFRAF9HKGCL01507.reason.txt").read_text()
    assert "a file that cannot be read, moved as it is" in reason


def test_an_empty_partners_table_no_longer_turns_the_sender_check_off() -> None:
    name, data = day_file(DAY)
    settings = config.Settings(home=config.Home(tadig=name[7:12]))
    checked = check_tap(data, file=name, settings=settings)
    assert checked.header_sender == name[2:7]
    unknown = [f for f in checked.findings if f.rule == "sender.unknown"]
    assert [f.severity for f in unknown] == ["fatal"]
    partner = config.Settings(
        home=config.Home(tadig=name[7:12]), partners={name[2:7]: config.Partner()}
    )
    assert not [
        f
        for f in check_tap(data, file=name, settings=partner).findings
        if f.rule == "sender.unknown"
    ]


def test_an_entry_is_reported_once_for_one_reason(tmp_path: Path) -> None:
    wd = config.WorkDir(tmp_path)
    fate = Fate("CD" + "X" * 300, "FRAF9", "refused", "collect", reason="name too long")
    day2 = DAY + dt.timedelta(days=1)
    record_fate(wd, DAY, fate)
    assert first_reported(wd, DAY, fate) is None  # new on its first date (and on a re-run)
    record_fate(wd, day2, fate)
    assert first_reported(wd, day2, fate) == DAY
    other = Fate(fate.name, "FRAF9", "refused", "collect", reason="a symlink loop")
    assert first_reported(wd, day2, other) is None  # a new reason is a new anomaly
