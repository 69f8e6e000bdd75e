"""Every delivered entry's fate: quarantine into failed/<D>/ with a reason file, recorded once."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import TYPE_CHECKING

from clearing import config
from clearing.ingest import Fate, day_fates, quarantine, record_fate
from clearing.names import printable_name, stored_name

if TYPE_CHECKING:
    from pathlib import Path

DAY = date(2026, 11, 23)


def test_a_quarantined_file_is_moved_with_its_reason_beside_it(tmp_path: Path) -> None:
    wd = config.WorkDir(tmp_path)
    wd.inbox.mkdir()
    src = wd.inbox / "CDDEUD9HKGCL00007"
    src.write_bytes(b"\x61\x03\x01\x02\x03")
    fate = quarantine(
        wd,
        DAY,
        src,
        partner="FRAF9",
        reason="delivered by FRAF9's channel, claims DEUD9",
        hint="ask FRAF9 why it sent DEUD9's file",
        stage="collect",
    )
    target = tmp_path / "failed" / "2026-11-23" / "CDDEUD9HKGCL00007"
    assert not src.exists()
    assert target.read_bytes() == b"\x61\x03\x01\x02\x03"
    reason = (target.parent / "CDDEUD9HKGCL00007.reason.txt").read_text()
    assert "delivered by FRAF9's channel, claims DEUD9" in reason
    assert "ask FRAF9 why" in reason
    assert hashlib.sha256(b"\x61\x03\x01\x02\x03").hexdigest() in reason
    assert fate.path == "failed/2026-11-23/CDDEUD9HKGCL00007"
    assert day_fates(wd, DAY) == [fate]


def test_quarantining_the_same_bytes_again_records_one_fate_and_one_file(tmp_path: Path) -> None:
    wd = config.WorkDir(tmp_path)
    for _ in range(2):
        src = tmp_path / "CDFRAF9HKGCL00001"
        src.write_bytes(b"garbage")
        quarantine(wd, DAY, src, partner="FRAF9", reason="r", hint="h", stage="claim")
    assert sorted(p.name for p in (tmp_path / "failed" / "2026-11-23").iterdir()) == [
        "CDFRAF9HKGCL00001",
        "CDFRAF9HKGCL00001.reason.txt",
    ]
    assert len(day_fates(wd, DAY)) == 1
    # other bytes under the same name are kept beside, not written over
    src.write_bytes(b"other garbage")
    quarantine(wd, DAY, src, partner="FRAF9", reason="r", hint="h", stage="claim")
    assert (tmp_path / "failed" / "2026-11-23" / "CDFRAF9HKGCL00001.2").read_bytes() == (
        b"other garbage"
    )


def test_a_kept_input_is_copied_and_stays(tmp_path: Path) -> None:
    wd = config.WorkDir(tmp_path)
    src = tmp_path / "CDFRAF9HKGCL00002"
    src.write_bytes(b"x")
    quarantine(wd, DAY, src, partner=None, reason="r", hint="h", stage="validate", keep=True)
    assert src.read_bytes() == b"x"
    assert (tmp_path / "failed" / "2026-11-23" / "CDFRAF9HKGCL00002").read_bytes() == b"x"


def test_an_unsafe_name_is_stored_escaped_and_short(tmp_path: Path) -> None:
    wd = config.WorkDir(tmp_path)
    arabic = "CDFRAF9HKGCL\u0661\u0662\u0663\u0664\u0665"
    long = "CD" + "9" * 253
    for name in (arabic, long):
        src = tmp_path / "x"
        src.write_bytes(name.encode())
        quarantine(wd, DAY, src, partner="FRAF9", reason="r", hint="h", stage="collect", name=name)
    stored = sorted(p.name for p in (tmp_path / "failed" / "2026-11-23").iterdir())
    assert all(n.isascii() and len(n) <= 255 for n in stored)
    names = {f.name for f in day_fates(wd, DAY)}
    # the escaped name says which characters were there (U+0661 is ARABIC-INDIC DIGIT ONE)
    assert "CDFRAF9HKGCL\\u0661\\u0662\\u0663\\u0664\\u0665" in names
    assert long in names
    assert stored_name(long) != stored_name(long[:-1] + "8")
    assert printable_name("CDFRAF9HKGCL00001\n") == "CDFRAF9HKGCL00001\\n"


def test_a_stage_rerun_replaces_its_own_fates(tmp_path: Path) -> None:
    from clearing.ingest import record_fates

    wd = config.WorkDir(tmp_path)
    record_fate(wd, DAY, Fate("a", "FRAF9", "refused", "collect", reason="too long"))
    record_fates(wd, DAY, "validate", [Fate("b", "FRAF9", "processed", "validate")])
    record_fates(wd, DAY, "validate", [Fate("c", "FRAF9", "returned", "validate")])
    assert [(f.name, f.fate) for f in day_fates(wd, DAY)] == [
        ("a", "refused"),
        ("c", "returned"),
    ]
