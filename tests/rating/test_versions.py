"""Reference data keeps its history: import versions, `rates versions`, `rate explain`.

The tiny world of ``conftest``: R1 is TSTA1's 95 s peak call of Monday 2026-11-23, priced by the
row ``TSTA1,inbound,moc_local,852,peak`` at 0.120000 SDR per 60 s (30/1, min 30) → 0.19000 SDR.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date
from typing import TYPE_CHECKING, Any

import polars as pl
from typer.testing import CliRunner

from clearing import lake
from clearing.cli import app
from clearing.rating import read_table
from tests.rating.conftest import IOT, PROCESSING_DAY

if TYPE_CHECKING:
    from pathlib import Path

RUN = CliRunner()
PEAK_OLD = "TSTA1,inbound,moc_local,852,peak,12345,08:00,20:00,60,120000,6,"
PEAK_NEW = "TSTA1,inbound,moc_local,852,peak,12345,08:00,20:00,60,150000,6,"


def _cli(*args: str) -> Any:
    return RUN.invoke(app, list(args))


def _json(*args: str) -> Any:
    r = _cli(*args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _rated_row(workdir: Path, record_id: str) -> dict[str, Any]:
    rows = pl.DataFrame(lake.read(workdir / "lake", lake.RATED_VISITORS, [date(2026, 11, 24)]))
    return rows.filter(pl.col("record_id") == record_id).row(0, named=True)


def _edit_peak_price(workdir: Path) -> None:
    src = workdir / "rates" / "sources" / "iot.csv"
    text = src.read_text(encoding="utf-8")
    assert text.count(PEAK_OLD) == 1
    src.write_text(text.replace(PEAK_OLD, PEAK_NEW), encoding="utf-8")


def test_an_edit_in_place_is_a_new_version_and_the_first_night_still_explains(
    tiny_workdir: Path,
) -> None:
    w = str(tiny_workdir)
    r = _cli("rate", "--workdir", w, "--date", PROCESSING_DAY)
    assert r.exit_code == 0, r.output
    r1 = _rated_row(tiny_workdir, "R1")
    assert (r1["price"], r1["charge"]) == (120000, 19000)
    old_row = r1["iot_version"]

    _edit_peak_price(tiny_workdir)
    r = _cli("rates", "import", "--workdir", w)
    assert r.exit_code == 0, r.output
    assert "version v2 (new): content sha256 " in r.output

    versions = _json("rates", "versions", "--workdir", w)
    assert [v["version"] for v in versions] == ["v1", "v2"]
    assert versions[1]["previous"] == "v1"
    assert versions[0]["content_sha256"] != versions[1]["content_sha256"]
    # the source file hashes, worked out from the texts written
    edited = IOT.replace(PEAK_OLD, PEAK_NEW)
    assert versions[0]["tables"]["iot"]["source_sha256"] == hashlib.sha256(IOT.encode()).hexdigest()
    assert versions[1]["tables"]["iot"]["source_sha256"] == (
        hashlib.sha256(edited.encode()).hexdigest()
    )
    assert versions[1]["tables"]["fx"] == versions[0]["tables"]["fx"]  # unchanged table: shared
    assert _json("rates", "list-versions", "--workdir", w) == versions

    # the rated row of the first night still explains, with its old price, from v1 only
    out = _json("rate", "explain", "--workdir", w, "--iot-version", old_row)
    assert out["kind"] == "tariff_row"
    assert [v["version"] for v in out["versions"]] == ["v1"]
    (row,) = out["rows"]
    assert row["iot_key"] == "TSTA1/inbound/moc_local/852/peak@2026-01-01" == r1["iot_key"]
    assert (row["price"], row["price_scale"], row["unit"], row["currency"]) == (
        120000,
        6,
        60,
        "SDR",
    )
    assert row["band_start"] == 8 * 3600
    assert row["band_end"] == 20 * 3600
    text = _cli("rate", "explain", "--workdir", w, "--iot-version", old_row).output
    assert "0.120000 SDR per 60" in text
    assert "held by reference-data version(s) v1:" in text

    # the same through the record
    out = _json("rate", "explain", "--workdir", w, "--date", PROCESSING_DAY, "--record", "R1")
    (rec,) = out["records"]
    assert (rec["iot_version"], rec["charge"], rec["price"]) == (old_row, 19000, 120000)
    assert rec["explained"]["rows"][0]["price"] == 120000
    text = _cli("rate", "explain", "-w", w, "--date", PROCESSING_DAY, "--record", "R1").output
    assert "charge 0.19000 SDR at 0.120000 per 60" in text

    # an import version shows its rows: v1 the old price, v2 the new one
    args = ["--partner", "TSTA1", "--service", "moc_local"]
    for version, price in (("v1", 120000), ("v2", 150000)):
        out = _json("rate", "explain", "--workdir", w, "--iot-version", version, *args)
        assert out["kind"] == "import_version"
        # three inbound bands and the outbound row (the partner's tariff for our subscribers)
        bands = sorted((r["direction"], r["time_band"]) for r in out["rows"])
        assert bands == [
            ("inbound", "offpeak"),
            ("inbound", "peak"),
            ("inbound", "weekend"),
            ("outbound", "all"),
        ]
        peak = next(r for r in out["rows"] if r["time_band"] == "peak")
        assert peak["price"] == price
    # a row that did not change is held by both versions
    offpeak = next(r for r in out["rows"] if r["time_band"] == "offpeak")
    out = _json("rate", "explain", "--workdir", w, "--iot-version", offpeak["version"])
    assert [v["version"] for v in out["versions"]] == ["v1", "v2"]

    # rating uses the latest version: 95 s at 0.15/min (30/1) = 0.2375 SDR
    r = _cli(
        "rate", "what-if", "-w", w, "--partner", "TSTA1", "--service", "moc",
        "--start", "2026-11-23T10:00:00", "--duration", "95", "--destination", "85291234567",
    )  # fmt: skip
    assert "charge 0.23750 SDR" in r.output
    # and only it: the current tables hold each row once
    assert read_table(tiny_workdir / "rates", "iot").height == IOT.count("\n") - 1


def test_an_identical_reimport_records_no_new_version(tiny_workdir: Path) -> None:
    w = str(tiny_workdir)
    r = _cli("rates", "import", "--workdir", w)
    assert r.exit_code == 0, r.output
    assert "unchanged: the content is that of version v1" in r.output
    # a comment or a reordering is not a change of content either
    src = tiny_workdir / "rates" / "sources" / "iot.csv"
    header, *rows = IOT.splitlines(keepends=True)
    src.write_text(header + "# reordered\n" + "".join(reversed(rows)), encoding="utf-8")
    r = _cli("rates", "import", "--workdir", w)
    assert "unchanged: the content is that of version v1" in r.output
    assert [v["version"] for v in _json("rates", "versions", "--workdir", w)] == ["v1"]
    text = _cli("rates", "versions", "--workdir", w).output
    assert text.startswith("version v1: imported ")
    assert "(current)" in text.splitlines()[0]


def test_explaining_what_is_not_there_is_a_clear_error(tiny_workdir: Path) -> None:
    w = str(tiny_workdir)
    _cli("rate", "--workdir", w, "--date", PROCESSING_DAY)
    r = _cli("rate", "explain", "--workdir", w, "--iot-version", "v9")
    assert r.exit_code == 2
    assert "no reference-data version `v9`" in r.output
    assert "(versions: v1)" in r.output
    r = _cli("rate", "explain", "--workdir", w, "--iot-version", "0123456789abcdef")
    assert r.exit_code == 2
    assert "no tariff row with iot_version 0123456789abcdef" in r.output
    r = _cli("rate", "explain", "--workdir", w, "--iot-version", "latest")
    assert r.exit_code == 2
    assert "is not a reference-data version" in r.output
    r = _cli("rate", "explain", "--workdir", w, "--date", PROCESSING_DAY, "--record", "R99")
    assert r.exit_code == 2
    assert "no record R99 among the rated visitor rows of 2026-11-24" in r.output
    # R8 is of no partner: unrated, nothing priced it
    r = _cli("rate", "explain", "--workdir", w, "--date", PROCESSING_DAY, "--record", "R8")
    assert r.exit_code == 2
    assert "record R8 of 2026-11-24 was not rated (no partner for this subscriber" in r.output
    r = _cli("rate", "explain", "--workdir", w)
    assert r.exit_code == 2


def test_tables_imported_before_versions_are_kept_as_the_first_version(
    tiny_workdir: Path,
) -> None:
    w = str(tiny_workdir)
    _cli("rate", "--workdir", w, "--date", PROCESSING_DAY)
    old_row = _rated_row(tiny_workdir, "R1")["iot_version"]
    shutil.rmtree(tiny_workdir / "rates" / "versions")  # a folder of before versions
    r = _cli("rate", "explain", "--workdir", w, "--iot-version", old_row)
    assert r.exit_code == 2
    assert "no reference-data versions recorded" in r.output
    _edit_peak_price(tiny_workdir)
    r = _cli("rates", "import", "--workdir", w)
    assert r.exit_code == 0, r.output
    assert "version v1 (tables imported before versions were kept)" in r.output
    assert "version v2 (new)" in r.output
    versions = _json("rates", "versions", "--workdir", w)
    assert [(v["version"], v["adopted"]) for v in versions] == [("v1", True), ("v2", False)]
    out = _json("rate", "explain", "--workdir", w, "--iot-version", old_row)
    assert [v["version"] for v in out["versions"]] == ["v1"]
    assert out["rows"][0]["price"] == 120000
