"""RAP policy: which findings of a validated TAP file become which RAP return details.

* :func:`rap_items` — a file's fatal findings (one FatalReturn per group), or its severe
  findings (one SevereReturn per event) and its FSN gap (a MissingReturn);
* :func:`rap_header` — our RAP to a partner, its time stamp derived from the processing date;
* :func:`write_raps` — the day's RAPs: one per partner (and test/live) with the details of its
  files and a StopReturn for a partner silent too long, written under ``out/rap`` and
  recorded (``rap_out``).

The bytes are the codec's (:mod:`clearing.codecs.rap`).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pyarrow.compute as pc

from clearing._io import write_atomic
from clearing.codecs.rap import (
    ErrorDetail,
    FatalItem,
    MissingItem,
    RapHeader,
    SevereItem,
    StopItem,
    rap_file_name,
    write_rap,
)

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence
    from pathlib import Path

    from clearing.codecs.rap import RapItem
    from clearing.config import Settings, WorkDir
    from clearing.store import Store
    from clearing.validate.findings import Finding
    from clearing.validate.stage import FileResult
    from clearing.validate.tap import TapChecked

__all__ = ["rap_header", "rap_items", "write_raps"]


def _errors(findings: Sequence[Finding]) -> list[ErrorDetail]:
    return [ErrorDetail(code=f.code, path=f.path, item_offset=f.item_offset) for f in findings]


def rap_items(result: FileResult) -> list[RapItem]:
    """The RAP return details of one file (fatal, or severe + missing)."""
    c = result.checked
    items: list[RapItem] = []
    fsn = c.fsn or "00000"
    if result.outcome == "copy":
        return items
    if result.fatal:
        by_group: dict[str, list[Finding]] = {}
        for f in result.findings:
            if f.severity == "fatal":
                by_group.setdefault(f.group or "transferBatch", []).append(f)
        for group, fs in sorted(by_group.items()):
            raw = b"" if group == "transferBatch" else c.group_bytes.get(group, b"")
            if group != "transferBatch" and not raw:
                group, raw = "transferBatch", b""
            items.append(FatalItem(fsn=fsn, group=group, group_bytes=raw, errors=_errors(fs)))  # type: ignore[arg-type]
        return _merge_transfer_batch(items)
    ev = c.events
    per_event: dict[int, list[Finding]] = {}
    for f in result.findings:
        if f.severity == "severe" and f.event_index is not None:
            per_event.setdefault(f.event_index, []).append(f)
    if per_event:
        # a file shrunk once its rows were in the lake keeps only its returned events, their
        # positions in the file in `event_index` (:func:`clearing.validate.stage.validate_day`)
        if "event_index" in ev.column_names:
            row = {int(e): j for j, e in enumerate(ev.column("event_index").to_pylist())}
        else:
            row = {i: i for i in range(ev.num_rows)}
        offs = ev.column("byte_offset").to_pylist()
        lens = ev.column("byte_length").to_pylist()
        charge = pc.fill_null(ev.column("charge"), 0).to_pylist()
        camel = pc.fill_null(ev.column("camel_fee"), 0).to_pylist()
        tax = pc.fill_null(ev.column("tax"), 0).to_pylist()
        refund = ev.column("refund").to_pylist()
        for e, fs in sorted(per_event.items()):
            i = row[e]
            value = 0 if refund[i] else charge[i] + camel[i]
            items.append(
                SevereItem(
                    fsn=fsn,
                    event_bytes=c.data[offs[i] : offs[i] + lens[i]],
                    errors=_errors(fs),
                    charge=value,
                    tax=0 if refund[i] else tax[i],
                )
            )
    if result.missing is not None:
        items.append(MissingItem(start=result.missing[0], end=result.missing[1]))
    return items


def _merge_transfer_batch(items: list[RapItem]) -> list[RapItem]:
    tb = [i for i in items if isinstance(i, FatalItem) and i.group == "transferBatch"]
    if len(tb) <= 1:
        return items
    rest = [i for i in items if not (isinstance(i, FatalItem) and i.group == "transferBatch")]
    errors = [e for i in tb for e in i.errors]
    return [FatalItem(fsn=tb[0].fsn, group="transferBatch", group_bytes=b"", errors=errors), *rest]


def rap_header(
    settings: Settings,
    partner: str,
    test: bool,
    rap_fsn: int,
    day: dt.date,
    checked: TapChecked | None,
) -> RapHeader:
    """Our RAP to ``partner`` (sender and recipient swapped relative to its TAP file)."""
    return RapHeader(
        sender=settings.home.tadig,
        recipient=partner,
        rap_fsn=rap_fsn,
        test=test,
        # derived from the processing date, never "now": re-runs write the same bytes
        created_local=f"{day:%Y%m%d}060000",
        utc_offset=settings.home.timezone_offset,
        tap_decimal_places=checked.tap_decimal_places if checked else None,
        tap_currency=checked.tap_currency if checked else None,
    )


def write_raps(
    workdir: WorkDir,
    day: dt.date,
    results: Sequence[FileResult],
    state: Store,
    settings: Settings,
) -> list[Path]:
    """Write and record the RAPs of ``day``: one per partner (and test/live).

    A partner gets a RAP when one of its files has return details (:func:`rap_items`) or when
    it has been silent longer than its limit (a StopReturn). Each RAP takes the partner's next
    RAP FSN, is written under ``out/rap`` and recorded in ``rap_out``; every file it answers
    gets its name as ``rap_file``.

    Args:
        workdir: the work folder.
        day: the processing date (the RAPs' creation stamp).
        results: the day's TAP files after validation, in processing order.
        state: the open state store.
        settings: the run's settings.

    Returns:
        The RAP files written, in the order written.
    """
    rap_dir = workdir.out / "rap"
    written: list[Path] = []
    by_partner: dict[tuple[str, bool], list[FileResult]] = {}
    for r in results:
        if r.checked.sender and rap_items(r):
            by_partner.setdefault((r.checked.sender, r.checked.test), []).append(r)
    silent = state.inbound.silent_partners(
        day,
        {
            p: settings.silent_days(p)
            for p in settings.partners
            if settings.partners[p].standard == "tap"
        },
    )
    stops = {(p, False): last for p, last in silent}
    for key in sorted(set(by_partner) | set(stops)):
        partner, test = key
        rs = by_partner.get(key, [])
        items: list[RapItem] = [i for r in rs for i in rap_items(r)]
        if key in stops:
            items.append(StopItem(last_seq=stops[key]))
        rap_fsn = state.inbound.next_rap_fsn(day, partner, test)
        header = rap_header(settings, partner, test, rap_fsn, day, rs[0].checked if rs else None)
        data = write_rap(header, items)
        path = rap_dir / rap_file_name(header)
        write_atomic(path, data)
        written.append(path)
        for r in rs:
            r.rap_file = path.name
        state.register.record_rap(
            day,
            {
                "file": path.name,
                "partner": partner,
                "test": test,
                "rap_fsn": rap_fsn,
                "sha256": hashlib.sha256(data).hexdigest(),
                "fatal": sum(isinstance(i, FatalItem) for i in items),
                "severe": sum(isinstance(i, SevereItem) for i in items),
                "missing": sum(isinstance(i, MissingItem) for i in items),
                "stop": sum(isinstance(i, StopItem) for i in items),
                "severe_value": sum(i.charge for i in items if isinstance(i, SevereItem)),
                "severe_tax": sum(i.tax for i in items if isinstance(i, SevereItem)),
                # totalSevereReturnValue as write_rap declares it (Σ severe charges)
                "audit_severe_value": sum(i.charge for i in items if isinstance(i, SevereItem)),
            },
        )
    return written
