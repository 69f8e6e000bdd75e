"""A sample work folder run through two real nightly runs (the settle tests' world).

Day 1: ``clearing samples generate`` (:func:`generate_world`) and ``clearing nightly``. Day 2:
the partners' next files with the generator's planted faults (a copy, a reused FSN, a gap, a
bad audit total, a wrong file name, a duplicate, a late record, tax mismatches...), the day's
visitor CDRs, a partner's RAP about our first TAP-out and a partner's ACK of one of our RAPs,
all delivered to the partners' exchange folders, then ``clearing nightly`` again (collect,
claim, validate, receive, rate, retail, outbox, send, settle). On top of the generator, one
outbound IOT price is halved so that the IOT check has breaches to report.

Both days fall in period 2026-11 for TAP partners (the calendar month) and for CIBER partners
(the settlement period 2026-10-16 to 2026-11-15).
"""

from __future__ import annotations

import shutil
from datetime import date
from typing import TYPE_CHECKING

from clearing.codecs import fast
from clearing.codecs.rap import ErrorDetail, PathItem, RapHeader, SevereItem, write_ack, write_rap
from clearing.pipeline.nightly import run_nightly
from clearing.rating._refdata import import_rates
from clearing.samples.ciber import CIBER_PARTNERS, generate_ciber
from clearing.samples.faults import plant_faults
from clearing.samples.tap import generate_tap
from clearing.samples.workdir import REMOTE_IN, generate_world, split_world
from clearing.samples.world import write_visitor_cdrs

if TYPE_CHECKING:
    from pathlib import Path

DAY1 = date(2026, 11, 14)
DAY2 = date(2026, 11, 15)
HOME = "HKGCL"
BREACH = ("FRAF9", "sms_mo")  # the outbound IOT row whose price is halved


def _breach_iot(rates: Path) -> None:
    src = rates / "sources" / "iot.csv"
    out = []
    partner, service = BREACH
    for line in src.read_text(encoding="utf-8").splitlines():
        cells = line.split(",")
        if cells[:3] == [partner, "outbound", service]:
            cells[9] = str(int(cells[9]) // 2)
        out.append(",".join(cells))
    src.write_text("\n".join(out) + "\n", encoding="utf-8")
    import_rates(rates)


def _deliver(root: Path, partner: str, path: Path) -> None:
    target = root / "exchange" / partner / REMOTE_IN / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)


def build_world(root: Path, *, events: int = 2000, seed: int = 1) -> Path:
    """Write the world into ``root`` and run both nightly runs; return ``root``."""
    generate_world(root, day=DAY1, events=events, seed=seed)
    _breach_iot(root / "rates")
    run_nightly(root, DAY1)
    tap_events, cdrs = split_world(events)
    gen = root.parent / f".{root.name}-day2"
    files = generate_tap(gen, events=tap_events, seed=seed, day=DAY2)
    faults = plant_faults(gen, seed=seed, day=DAY2, events=tap_events)
    files += sorted({gen / f.file for f in faults})
    for p in files:
        _deliver(root, p.name[2:7], p)
    for p in generate_ciber(gen / "ciber", seed=seed, day=DAY2):
        code = next(c.sid_bid for c in CIBER_PARTNERS if c.sid_bid in p.name)
        _deliver(root, code, p)
    write_visitor_cdrs(root / "inbox" / "cdr", events=cdrs, seed=seed, day=DAY2)
    rap, ack = _partner_rap_and_ack(root)
    _deliver(root, "FRAF9", rap)
    _deliver(root, "DEUD9", ack)
    shutil.rmtree(gen)
    run_nightly(root, DAY2)
    return root


def _partner_rap_and_ack(root: Path) -> tuple[Path, Path]:
    """FRAF9 returns two events of our first TAP-out; DEUD9 acknowledges our RAP 00001."""
    out = sorted((root / "out" / "tap").glob("CDHKGCLFRAF9*"))[0]
    data = out.read_bytes()
    ev = fast.decode_tap(data, file=out.name).events
    items = []
    for i in (0, 1):
        off = ev.column("byte_offset")[i].as_py()
        length = ev.column("byte_length")[i].as_py()
        items.append(
            SevereItem(
                fsn=out.name[-5:],
                event_bytes=data[off : off + length],
                errors=[ErrorDetail(code=200, path=(PathItem(3, 1, 1),))],
                charge=ev.column("charge")[i].as_py() or 0,
                tax=ev.column("tax")[i].as_py() or 0,
            )
        )
    header = RapHeader(
        sender="FRAF9",
        recipient=HOME,
        rap_fsn=1,
        test=False,
        created_local=f"{DAY2:%Y%m%d}080000",
        utc_offset="+0100",
        tap_decimal_places=5,
    )
    folder = root.parent / f".{root.name}-returns"
    folder.mkdir(exist_ok=True)
    rap = folder / "RCFRAF9HKGCL00001"
    rap.write_bytes(write_rap(header, items))
    ack = folder / "ACDEUD9HKGCL00001"
    ack.write_bytes(write_ack("DEUD9", HOME, 1, False, f"{DAY2:%Y%m%d}090000", "+0100"))
    return rap, ack
