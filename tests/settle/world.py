"""A work folder with two processing dates run through validate, rate and retail.

Built from the samples (TAP-in with planted faults, CIBER-in, visitor CDRs, reference data,
subscribers), placed where the nightly leaves inputs (``work/D/in``), then run through the real
stages. On top of the generator: one outbound IOT price changed so that the IOT check finds
breaches, every outbound file registered in the outbox and sent, a partner's RAP about our
TAP-out (severe returns) and a partner's ACK of one of our RAPs.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from typing import TYPE_CHECKING

from clearing.codecs import fast
from clearing.config import WorkDir
from clearing.rating._refdata import import_rates
from clearing.rating.retail import write_retail
from clearing.rating.run import rate_day
from clearing.returns import ErrorDetail, RapHeader, SevereItem, write_ack, write_rap
from clearing.returns.incoming import receive
from clearing.samples.ciber import CIBER_PARTNERS, generate_ciber
from clearing.samples.faults import write_two_days
from clearing.samples.subscribers import write_subscriber_sources
from clearing.samples.tap import PARTNERS
from clearing.samples.world import write_reference_data, write_visitor_cdrs
from clearing.transport.outbox import Outbox
from clearing.validate.findings import PathItem
from clearing.validate.stage import validate_day
from clearing.validate.state import State

if TYPE_CHECKING:
    from pathlib import Path

DAY = date(2026, 11, 22)
DAY1 = DAY - timedelta(days=1)
HOME = "HKGCL"
BREACH = ("FRAF9", "sms_mo")  # the outbound IOT row whose price is changed


def _config(root: Path) -> None:
    lines = ['[home]\ntadig = "HKGCL"\nsid_bid = "60099"\ntimezone_offset = "+0800"\n']
    lines += [f"\n[partners.{p.tadig}]\nname = {p.tadig!r}\n" for p in PARTNERS]
    lines += [f'\n[partners.{p.sid_bid}]\nstandard = "ciber"\n' for p in CIBER_PARTNERS]
    (root / "clearing.toml").write_text("".join(lines).replace("'", '"'), encoding="utf-8")


def _breach_iot(rates: Path) -> None:
    """Halve one outbound price: FRAF9's SMS-MO charges then exceed the IOT."""
    src = rates / "sources" / "iot.csv"
    lines = src.read_text(encoding="utf-8").splitlines()
    out = []
    partner, service = BREACH
    for line in lines:
        cells = line.split(",")
        if cells[:3] == [partner, "outbound", service]:
            cells[9] = str(int(cells[9]) // 2)
        out.append(",".join(cells))
    src.write_text("\n".join(out) + "\n", encoding="utf-8")
    import_rates(rates)


def build_world(root: Path, *, events: int = 600, seed: int = 1) -> WorkDir:
    """Write and run the two-day world into ``root`` (see the module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    _config(root)
    write_reference_data(root / "rates", DAY)
    write_subscriber_sources(root / "rates")
    _breach_iot(root / "rates")
    gen = root / "generated"
    two = write_two_days(gen, seed=seed, day=DAY, events=events)
    wd = WorkDir(root)
    for d, tap_inputs in sorted(two.inputs.items()):
        ciber = generate_ciber(gen / f"ciber-{d}", seed=seed, day=d)
        write_visitor_cdrs(root / "inbox" / "cdr", events=events, seed=seed + 2, day=d)
        folder = root / "work" / d.isoformat() / "in"
        folder.mkdir(parents=True, exist_ok=True)
        inputs = []
        for p in [*tap_inputs, *ciber]:
            shutil.copy2(p, folder / p.name)
            inputs.append(folder / p.name)
        validate_day(wd, d, inputs)
        rate_day(root, d)
        write_retail(root, d)
        _send_outbox(root, d)
    _partner_rap_and_ack(root, DAY)
    return wd


def _send_outbox(root: Path, day: date) -> None:
    import duckdb

    con = duckdb.connect(str(root / "clearing.duckdb"))
    rows = con.execute(
        "SELECT file_name, partner, kind, path FROM outbound_files WHERE processing_date = ? "
        "ORDER BY file_name",
        [day],
    ).fetchall()
    con.close()
    box = Outbox(root / "clearing.duckdb")
    for name, partner, kind, path in rows:
        box.register(root / "out" / ("ciber" if kind == "ciber" else "tap") / name, partner, kind)
        if partner != "USAU9":  # one file stays generated (not sent yet)
            box.mark(name, "sent")
        del path


def _partner_rap_and_ack(root: Path, day: date) -> None:
    """FRAF9 returns two events of our first TAP-out; DEUD9 acknowledges our first RAP."""
    out = sorted((root / "out" / "tap").glob("CDHKGCLFRAF9*"))[0]
    data = out.read_bytes()
    batch = fast.decode_tap(data, file=out.name)
    ev = batch.events
    items = []
    for i in (0, 1):
        off = ev.column("byte_offset")[i].as_py()
        length = ev.column("byte_length")[i].as_py()
        charge = ev.column("charge")[i].as_py() or 0
        tax = ev.column("tax")[i].as_py() or 0
        items.append(
            SevereItem(
                fsn=out.name[-5:],
                event_bytes=data[off : off + length],
                errors=[ErrorDetail(code=200, path=(PathItem(3, 1, 1),))],
                charge=charge,
                tax=tax,
            )
        )
    header = RapHeader(
        sender="FRAF9",
        recipient=HOME,
        rap_fsn=1,
        test=False,
        created_local=f"{day:%Y%m%d}080000",
        utc_offset="+0100",
        tap_decimal_places=5,
    )
    rap = write_rap(header, items)
    ack = write_ack("DEUD9", HOME, 1, False, f"{day:%Y%m%d}090000", "+0100")
    inbox = root / "work" / day.isoformat() / "in"
    (inbox / "RCFRAF9HKGCL00001").write_bytes(rap)
    (inbox / "ACDEUD9HKGCL00001").write_bytes(ack)
    with State(root / "clearing.duckdb") as state:
        for name, blob in (("RCFRAF9HKGCL00001", rap), ("ACDEUD9HKGCL00001", ack)):
            receive(blob, file=name, out_dir=root / "out" / "ack", day=day, state=state)
