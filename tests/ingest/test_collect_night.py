"""One misdelivered file never stops the night: a generated world, the nightly through the CLI.

Another partner's file name in FRAF9's exchange folder, with other bytes than that partner's
own file of the name (before: a LedgerError in collect, nothing else ran, every night after).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from clearing import config
from clearing.ingest import day_fates
from clearing.samples.workdir import generate_world

from ..cli_run import run_cli as _cli

ROOT = Path(__file__).parents[2]
DAY = date(2026, 11, 22)


def test_another_partners_file_in_a_channel_is_quarantined_and_the_night_goes_on(
    tmp_path: Path,
) -> None:
    world = generate_world(tmp_path / "w", day=DAY, events=200, seed=5).root
    exchange = world / "exchange"
    deud9 = next((exchange / "DEUD9" / "to_hkgcl").iterdir())
    assert deud9.name.startswith("CDDEUD9HKGCL")
    delivered = sorted(p.name for p in exchange.glob("*/to_hkgcl/*"))
    misdelivered = exchange / "FRAF9" / "to_hkgcl" / deud9.name
    misdelivered.write_bytes(b"not DEUD9's batch")

    r = _cli("nightly", "--workdir", str(world), "--date", DAY.isoformat(), "--json")

    assert r.returncode == 1, r.stderr  # an anomaly, not a stopped night
    manifest = json.loads(r.stdout.splitlines()[-1])
    stages = {s["name"]: s for s in manifest["stages"]}
    assert stages["collect"]["status"] == "warning"
    assert stages["collect"]["detail"] == {
        "partners": 9,
        "fetched": 9,
        "quarantined": 1,
        "refused": 0,
        "unreachable": [],
    }
    assert all(s["status"] != "failed" for s in manifest["stages"])
    assert stages["rate"]["status"] in {"ok", "warning"}
    line = (
        f"quarantined `{deud9.name}` (delivered by FRAF9's channel, claims "
        f"DEUD9): failed/{DAY.isoformat()}/{deud9.name}"
    )
    assert line in manifest["problems"]
    # every partner's own file was claimed, DEUD9's with its own bytes
    claimed = world / "work" / DAY.isoformat() / "in"
    assert sorted(p.name for p in claimed.iterdir()) == delivered
    assert (claimed / deud9.name).read_bytes() == deud9.read_bytes()
    failed = world / "failed" / DAY.isoformat()
    assert (failed / deud9.name).read_bytes() == b"not DEUD9's batch"
    assert (
        "ask FRAF9 why it delivered DEUD9's file"
        in (failed / f"{deud9.name}.reason.txt").read_text()
    )
    fates = day_fates(config.WorkDir(world), DAY)
    assert [(f.name, f.partner, f.fate) for f in fates if f.stage == "collect"] == [
        (deud9.name, "FRAF9", "quarantined")
    ]

    # the next night's collect: the file still on FRAF9's server is not taken again
    nxt = (DAY + timedelta(days=1)).isoformat()
    r = _cli("collect", "--workdir", str(world), "--date", nxt)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert not (world / "failed" / nxt).exists()
