"""A hostile night: odd entries beside the good files of a generated world, each given a fate.

The expected fates are worked out from what each entry is (the claim's and validate's rules,
issue 14); the good files' outputs are compared with a clean night of the same world.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import TYPE_CHECKING, Any

import duckdb

from .conftest import DAY

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Cli

FAILED = f"failed/{DAY.isoformat()}"
ARABIC = "CDFRAF9HKGCL\u0661\u0662\u0663\u0664\u0665"

#: name → (stage, words of its reason) of every hostile entry
EXPECTED = {
    "CDFRAF9HKGCL01507": ("claim", "empty file"),
    "README.txt": ("claim", "not a partner file name"),
    "NRFRAF9HKGCL00001": ("claim", "NRTRDE is not processed by clearing"),
    "CDFRAF9HKGCL\\u0661\\u0662\\u0663\\u0664\\u0665": ("claim", "not a partner file name"),
    "somedir": ("claim", "a directory"),
    "CIBER_04172_60099_20261122_952.dat": ("claim", "bytes are not CIBER"),
    "CIBER_16425_60099_20261122_028.dat": ("validate", "nothing can be returned"),
    "CDDEUD9HKGCL00739": ("collect", "delivered by FRAF9's channel, claims DEUD9"),
    "CDFRAF9HKGCL01508": ("validate", "its header sender is DEUD9"),
    "CDZZZZ9HKGCL00001": ("validate", "ZZZZ9 is not a configured partner"),
    "RCFRAF9HKGCL00001": ("receive", "cannot be decoded"),
}


def _plant(world: Path) -> None:
    """Drop every hostile entry (in inbox/, or in FRAF9's exchange folder)."""
    inbox = world / "inbox"
    fraf9 = world / "exchange" / "FRAF9" / "to_hkgcl"
    deud9 = world / "exchange" / "DEUD9" / "to_hkgcl" / "CDDEUD9HKGCL00738"
    noise = hashlib.sha256(b"noise").digest() * 16  # 512 bytes that are no format
    (inbox / "CDFRAF9HKGCL01507").write_bytes(b"")
    (inbox / "README.txt").write_text("hello\n", encoding="utf-8")
    (inbox / "NRFRAF9HKGCL00001").write_bytes(b"\x61\x00")
    shutil.copy(fraf9 / "CDFRAF9HKGCL01506", inbox / ARABIC)
    (inbox / "somedir").mkdir()
    (inbox / "somedir" / "CDFRAF9HKGCL01509").write_bytes(b"inside")
    (inbox / "CIBER_04172_60099_20261122_952.dat").write_bytes(noise)
    # starts like a CIBER header record, then cannot be decoded (no trailer)
    (inbox / "CIBER_16425_60099_20261122_028.dat").write_bytes(b"01000000garbage\n")
    # DEUD9's file delivered through FRAF9's channel (name and header say DEUD9)
    shutil.copy(deud9, fraf9 / "CDDEUD9HKGCL00739")
    # an operator's drop: FRAF9's name, DEUD9's header
    shutil.copy(deud9, inbox / "CDFRAF9HKGCL01508")
    (inbox / "CDZZZZ9HKGCL00001").write_bytes(noise)
    (inbox / "RCFRAF9HKGCL00001").write_bytes(noise)


def _nightly(clearing: Cli, world: Path) -> tuple[int, dict[str, Any]]:
    r = clearing("nightly", "--workdir", str(world), "--date", DAY.isoformat(), "--json")
    last = json.loads(r.stdout.splitlines()[-1])
    assert last["event"] == "manifest", r.stderr
    manifest = json.loads((world / "runs" / last["run_id"] / "manifest.json").read_text())
    return r.returncode, manifest


def _outputs(world: Path) -> dict[str, str]:
    """SHA-256 of the partner-facing outputs (TAP-out, RAPs, CIBER returns, ACKs)."""
    return {
        str(p.relative_to(world)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((world / "out").rglob("*"))
        if p.is_file() and p.suffix != ".xlsx"
    }


def _files_rows(world: Path) -> list[str]:
    con = duckdb.connect(str(world / "clearing.duckdb"), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT file FROM files ORDER BY file").fetchall()]
    finally:
        con.close()


def test_every_hostile_entry_is_quarantined_with_its_reason(
    world: Path, tmp_path: Path, clearing: Cli
) -> None:
    clean = tmp_path / "clean"
    shutil.copytree(world, clean)
    _plant(world)
    _clean_code, clean_manifest = _nightly(clearing, clean)
    code, manifest = _nightly(clearing, world)

    # a quarantined entry is an anomaly (exit 1), the night went on
    assert code == 1
    # collect set DEUD9's file aside (a warning); every other stage as on the clean night
    assert {s["name"]: s["status"] for s in manifest["stages"]} == {
        s["name"]: s["status"] for s in clean_manifest["stages"]
    } | {"collect": "warning"}
    entries = {e["name"]: e for e in manifest["entries"]}
    set_aside = {n: e for n, e in entries.items() if e["fate"] == "quarantined"}
    assert set(set_aside) == set(EXPECTED)
    for name, (stage, words) in EXPECTED.items():
        e = set_aside[name]
        assert e["stage"] == stage, name
        assert words in e["reason"], (name, e["reason"])
        assert e["path"].startswith(f"{FAILED}/"), name
        assert (world / e["path"]).exists(), name
        assert (world / f"{e['path']}.reason.txt").is_file(), name
        # one anomaly line per entry, saying what, why and where
        assert any(
            p.startswith(f"quarantined `{name}` (") and p.endswith(e["path"])
            for p in manifest["problems"]
        ), name
    assert set_aside["CDDEUD9HKGCL00739"]["partner"] == "FRAF9"
    assert set_aside["CDFRAF9HKGCL01508"]["partner"] is None  # no channel: an operator's drop
    assert set_aside["somedir"]["path"] == f"{FAILED}/somedir"
    assert (world / FAILED / "somedir" / "CDFRAF9HKGCL01509").read_bytes() == b"inside"

    # the good files: the same fates and the same outputs as on a clean night
    good = {e["name"]: e["fate"] for e in clean_manifest["entries"]}
    assert {n: entries[n]["fate"] for n in good} == good
    assert sorted(set(good.values())) == ["processed", "returned"]
    assert _outputs(world) == _outputs(clean)
    assert manifest["reconciliation"] == clean_manifest["reconciliation"]
    # nothing of a quarantined TAP file is used: no register row (no FSN consumed)
    assert _files_rows(world) == _files_rows(clean)

    # nothing is left in the inbox but the CDR exports and the collect staging folder
    assert sorted(p.name for p in (world / "inbox").iterdir()) == [".partial", "cdr"]

    # the summary lists them and does not say "No anomalies"
    summary = (world / "runs" / manifest["run_id"] / "summary.txt").read_text()
    assert "No anomalies" not in summary
    assert f"quarantined {len(EXPECTED)}" in summary
    assert (
        f"quarantined `CDDEUD9HKGCL00739` (delivered by FRAF9's channel, claims DEUD9): "
        f"{FAILED}/CDDEUD9HKGCL00739"
    ) in summary

    # a re-run of the date converges: the same fates, nothing doubled in failed/
    before = sorted(p.name for p in (world / FAILED).iterdir())
    code2, again = _nightly(clearing, world)
    assert code2 == 1
    assert again["entries"] == manifest["entries"]
    assert sorted(p.name for p in (world / FAILED).iterdir()) == before
    assert _outputs(world) == _outputs(clean)


def test_the_dry_run_says_what_the_claim_would_quarantine(world: Path, clearing: Cli) -> None:
    (world / "inbox" / "NRFRAF9HKGCL00001").write_bytes(b"\x61\x00")
    (world / "inbox" / "CDFRAF9HKGCL00001").write_bytes(b"")
    r = clearing(
        "backfill", "--workdir", str(world), "--from", DAY.isoformat(), "--to", DAY.isoformat(),
        "--dry-run", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout.splitlines()[0])
    assert [q["name"] for q in line["quarantine"]] == ["CDFRAF9HKGCL00001", "NRFRAF9HKGCL00001"]
    assert "empty file" in line["quarantine"][0]["reason"]
    # nothing moved
    assert (world / "inbox" / "NRFRAF9HKGCL00001").is_file()
    assert not (world / "failed").exists()
    assert os.listdir(world / "inbox")
