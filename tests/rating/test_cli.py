"""The rating commands as the analyst runs them (typer's runner on the `clearing` app)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from clearing.cli import app

if TYPE_CHECKING:
    from pathlib import Path

RUN = CliRunner()


def test_rate_prints_the_day_and_writes_files(tiny_workdir: Path) -> None:
    r = RUN.invoke(app, ["rate", "--workdir", str(tiny_workdir), "--date", "2026-11-24"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == (
        "rate 2026-11-24: 1 CDR file(s), 8 records: 7 rated, 1 unrated, 0 held, 0 quarantined "
        "(in = rated + unrated + held + quarantined: ok)"
    )
    assert "  receivable TSTA1: 3.83039 SDR" in lines
    assert "  CDHKGCLTSTA100001: 4 events, total 3.83039 SDR, tax 0.00275" in lines
    assert "  CDHKGCLTSTC300001: Notification, total 0.00000 SDR, tax 0.00000" in lines
    assert "  CIBER_60099_01234_20261124_001.dat: 2 events, total 1.35 USD, tax 0.00" in lines
    r = RUN.invoke(app, ["rate", "-w", str(tiny_workdir), "--date", "2026-11-24", "--json"])
    out = json.loads(r.output)
    assert out["identity_ok"] is True
    assert next(f["file"] for f in out["outbound"]) == "CDHKGCLTSTA100001"


def test_what_if_prints_each_step(tiny_workdir: Path) -> None:
    args = ["rate", "what-if", "--workdir", str(tiny_workdir), "--partner", "TSTA1"]
    args += ["--service", "moc", "--start", "2026-11-23T10:00:00", "--duration", "95"]
    args += ["--destination", "+85291234567"]
    r = RUN.invoke(app, args)
    assert r.exit_code == 0, r.output
    text = r.output
    assert "destination 85291234567: longest IOT prefix 852 → service moc_local" in text
    assert "time band peak (weekdays 12345, 08:00-20:00) holds Mon 10:00:00" in text
    assert "units: 95 s, charging 30/1, minimum 30: 30 + ceil((95 - 30) / 1) × 1" in text
    assert "price 0.120000 SDR per 60 s: 0.120000 × 95 / 60 = 0.19 SDR" in text
    assert "rounding once (half_up) to 5 decimal places: 0.19000 SDR (TAP charge 19000)" in text
    assert "charge 0.19000 SDR + tax 0.00000" in text
    # 60/60 on the same call home to +33: 120 s charged, 0.40 SDR
    args[-1] = "33612345678"
    r = RUN.invoke(app, args)
    assert "→ 120 charged" in r.output
    assert "charge 0.40000 SDR" in r.output
    # data in 1 KiB blocks
    r = RUN.invoke(
        app,
        [
            "rate", "what-if", "-w", str(tiny_workdir), "--partner", "TSTA1", "--service",
            "gprs", "--start", "2026-11-23T10:00:00", "--volume", "1500000",
        ],
    )  # fmt: skip
    assert "1024 + ceil((1500000 - 1024) / 1024) × 1024 = 1024 + 1464 × 1024 → 1500160" in r.output
    assert "= 3.57666015625 SDR" in r.output  # exact: 1 500 160 / 1 048 576 × 2.5
    assert "charge 3.57666 SDR" in r.output


def test_rerate_and_errors(tiny_workdir: Path) -> None:
    RUN.invoke(app, ["rate", "--workdir", str(tiny_workdir), "--date", "2026-11-24"])
    r = RUN.invoke(app, ["rerate", "--workdir", str(tiny_workdir), "--period", "2026-11"])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == (
        "rerate 2026-11: 8 receivable and 0 payable rows re-rated, 0 changed "
        "(0 rated again, 8 rated with today's reference data already)"
    )
    # bad reference data: a clear message and exit code 2
    src = tiny_workdir / "rates" / "sources" / "fx.csv"
    src.write_text(src.read_text() + "EUR,2026-01-01,117510,5,again\n", encoding="utf-8")
    r = RUN.invoke(app, ["rates", "import", "--workdir", str(tiny_workdir)])
    assert r.exit_code == 2
    assert "rates table `fx`" in r.output
    assert "key (currency='EUR'): overlapping validity: lines 2 and 5 both start" in r.output
    r = RUN.invoke(app, ["rate", "--workdir", str(tiny_workdir), "--date", "2026-02-30"])
    assert r.exit_code == 2
    assert "--date `2026-02-30` is not a day of the calendar: 2026-02 has 28 days" in r.output
    r = RUN.invoke(
        app,
        [
            "rate", "what-if", "-w", str(tiny_workdir), "--partner", "NOPE1", "--service",
            "mtc", "--start", "2026-11-23T10:00:00", "--duration", "5",
        ],
    )  # fmt: skip
    assert r.exit_code == 2
    assert "no agreement with partner `NOPE1` valid on 2026-11-23" in r.output
