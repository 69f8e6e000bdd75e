"""A fatally returned TAP-out, resubmitted: sent again under its own name and FSN (TD.57).

A partner's RAP may return one of our TAP-out files whole (a fatal return). Once an analyst
resubmits it (``clearing returns resubmit``), the night that claims it (the rating stage gives
it to one processing date, :meth:`~clearing.store.returns_in.ReturnsIn.claim_resubmissions`)
writes the file again here:

* from the rated rows it was made of (``lake/rated_visitors`` of the date it was first sent,
  never rewritten): the same events and money, with the reference data (agreement, exchange
  rate) of that date;
* under the same name and file sequence number, with ``rapFileSequenceNumber`` (the RAP's FSN)
  in its BatchControlInfo, and its fileCreation / fileAvailable timestamps of the night that
  resends it;
* the returned bytes are first kept at ``out/tap/returned/<name>.<sha12>``
  (:func:`~clearing.store.returned_copy`), then the new bytes take the file's place, its row of
  ``outbound_files`` (still of the date it was first sent) takes the new hash, and the item is
  ``resubmitted``. The ``outbox`` stage registers it in place of the returned version (which
  the outbox keeps, :mod:`clearing.transport.outbox`), the ``send`` stage sends it.

Exactly once: a replay of the night finds the item done and leaves the file as it is.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import polars as pl

from clearing import lake
from clearing._io import write_atomic
from clearing.codecs.facts import tap_header_facts
from clearing.config import WorkDir
from clearing.errors import ClearingError, LedgerError
from clearing.outbound.run import OutboundFile, _agreements, _kept, tap_header
from clearing.outbound.tap import (
    encode_tap_file,
    tap_file_name,
)
from clearing.rating import Rates
from clearing.store import FileRecord, open_store, returned_copy, sent_files

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from clearing.config import Settings
    from clearing.store import SentFile, Store
    from clearing.store.returns_in import ReturnItem

__all__ = ["resend_fatal"]


def resend_fatal(
    workdir: Path, day: date, settings: Settings, *, rates_dir: Path | None = None
) -> tuple[list[OutboundFile], list[str]]:
    """Write again the fatally returned files resubmitted on ``day``; return them and problems.

    A file already written again by an earlier run of ``day`` is checked and returned as it is.
    An item that cannot be carried out is given back (open for the next night) with a problem.

    Raises:
        LedgerError: the returned bytes are neither in the file's place nor kept.
    """
    wd = WorkDir(workdir)
    if not wd.db.exists():
        return [], []
    out: list[OutboundFile] = []
    problems: list[str] = []
    with open_store(wd.db) as state:
        todo = state.returns_in.fatal_resends(day)
        if not todo:
            return [], []
        rates = Rates.load(rates_dir or workdir / "rates")
        for i in todo:
            if i.out_file is not None:  # written by an earlier run of the day: as it is
                out += [_kept(f) for f in _sent(state, i) if f.name == i.out_file]
                continue
            try:
                out.append(_resend(wd, day, i, state, rates, settings))
            except LedgerError:
                raise
            except ClearingError as exc:
                problems.append(f"resubmit: {i.rap_file} item {i.item} (fatal): {exc}")
                state.returns_in.release(i.rap_file, i.item)
    return sorted(out, key=lambda f: f.path.name), problems


def _sent(state: Store, i: ReturnItem) -> list[SentFile]:
    if i.tap_date is None or i.partner is None:
        return []
    return sent_files(state, i.tap_date, i.partner)


def _resend(
    wd: WorkDir, day: date, i: ReturnItem, state: Store, rates: Rates, settings: Settings
) -> OutboundFile:
    if i.tap_file is None or i.tap_date is None or i.partner is None or i.fsn is None:
        msg = "the returned file is not one of our TAP-out files; write it off"
        raise ClearingError(msg)
    name, first_day, partner = i.tap_file, i.tap_date, i.partner
    found = state.returns_in.tap_out(partner, int(i.fsn))
    if found is None or found[0] != name:
        msg = f"our TAP-out `{name}` is not in outbound_files; write it off"
        raise ClearingError(msg)
    path = lake.path(wd.lake, lake.RATED_VISITORS, first_day, partner=partner)
    rows = pl.read_parquet(path, hive_partitioning=False) if path.is_file() else pl.DataFrame()
    a = _agreements(rates, first_day, [partner])[partner]
    test = name.startswith("TD")
    header = tap_header(
        settings,
        rates,
        partner,
        a,
        first_day,
        fsn=int(i.fsn),
        test=test,
        rap_fsn=i.rap_fsn,
        made_on=day,
    )
    if tap_file_name(header) != name:
        msg = f"`{name}` would be written again as `{tap_file_name(header)}`; write it off"
        raise ClearingError(msg)
    data, kind, totals = encode_tap_file(rows, header)
    events, charge, tax = totals.events, totals.total_charge, totals.total_tax
    target = wd.out / "tap" / name
    _keep_returned(state, target, name)
    write_atomic(target, data)
    sha = hashlib.sha256(data).hexdigest()
    facts = tap_header_facts(data)
    with state.transaction():
        state.outbound.register_file(
            FileRecord(
                name,
                kind,
                partner,
                "tap",
                "test" if test else "live",
                first_day,
                int(i.fsn),
                events,
                charge,
                tax,
                header.tap_decimal_places,
                a["tap_currency"],
                sha,
                str(target),
                audit_charge=facts.total_charge
                if facts is not None and facts.kind == "tap"
                else None,
                file_available=facts.file_available if facts is not None else None,
            )
        )
        state.returns_in.mark_file_resent(i.rap_file, i.item, name)
    return OutboundFile(
        target,
        kind,
        partner,
        int(i.fsn),
        events,
        charge,
        tax,
        header.tap_decimal_places,
        a["tap_currency"],
        True,
    )


def _keep_returned(state: Store, target: Path, name: str) -> None:
    """Copy the returned bytes to ``returned/<name>.<sha12>`` before they are replaced.

    Raises:
        LedgerError: neither the file's place nor the copy holds the returned bytes.
    """
    entry = state.outbox.find(name)
    current = target.read_bytes() if target.is_file() else None
    if entry is not None:
        returned_sha = entry.sha256
    elif current is not None:
        returned_sha = hashlib.sha256(current).hexdigest()
    else:
        msg = f"`{target}` (returned by a fatal return) is gone and not in the outbox"
        raise LedgerError(msg)
    kept = returned_copy(target, returned_sha)
    returned_here = current is not None and hashlib.sha256(current).hexdigest() == returned_sha
    if returned_here and current is not None and not kept.is_file():
        write_atomic(kept, current)
    if not kept.is_file() or hashlib.sha256(kept.read_bytes()).hexdigest() != returned_sha:
        msg = (
            f"the returned bytes of `{name}` (sha256 {returned_sha[:12]}…) are neither at "
            f"`{target}` nor kept at `{kept}`: put them back (a backup, the partner's copy) "
            "and run again; a sent file is never lost"
        )
        raise LedgerError(msg)
