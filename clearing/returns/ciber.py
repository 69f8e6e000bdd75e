"""CIBER returns policy: which findings of a CIBER-in file go back, and in which files.

* :func:`ciber_returns` — the findings (plus any the caller adds, e.g. duplicates found
  against earlier files) → the CIBER files to send back: record-return batches (codec
  :func:`~clearing.codecs.ciber.record_returns`) and batch rejects
  (:func:`~clearing.codecs.ciber.batch_reject`), with their file names;
* :func:`write_ciber_returns` — the nightly's step for one validated file: its returns written
  under ``out/ciber_returns``.

The policy reads in three steps: each event's first finding and the batches rejected whole
(:func:`_first_findings`), the record returns (:func:`_record_returns`), the files per pair
(:func:`_files`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from clearing._io import write_atomic
from clearing.codecs.ciber import (
    DETAIL_TYPES,
    RecordReturn,
    batch_reject,
    layout,
    next_sequence,
    record_returns,
)
from clearing.names import CiberReturnName
from clearing.validate.ciber import ciber_rules, rows_by_batch

if TYPE_CHECKING:
    from collections.abc import Mapping

    from clearing.codecs.ciber import Decoded
    from clearing.config import Settings, WorkDir
    from clearing.validate.ciber import CiberChecked
    from clearing.validate.findings import Finding
    from clearing.validate.stage import CiberResult

__all__ = ["ciber_returns", "write_ciber_returns"]


def _line_ending(data: bytes) -> bytes:
    end = data.find(b"\n")
    return b"\r\n" if end > 0 and data[end - 1 : end] == b"\r" else b"\n"


def _sid(value: str | None) -> str | None:
    return value if value is not None and len(value) == 5 and value.isdigit() else None


def ciber_returns(
    checked: CiberChecked,
    findings: list[Finding],
    *,
    settings: Settings,
    sequence: int,
) -> list[tuple[str, bytes]]:
    """The CIBER files to send back for ``findings`` (``checked.findings`` plus the caller's).

    * every batch with a fatal finding goes back whole (codec :func:`batch_reject`: indicator
      3 and the Batch Reject Reason Code of its first fatal finding in rule order; a fatal
      finding without an event nor a byte offset rejects every batch);
    * in the other batches, every record with a severe (or fatal) finding goes back once, with
      the Return Code and Invalid Field Identifier of the first finding's rule (rules.csv; the
      field id of ``context`` for rules without a fixed one; return code 4 and the context's
      field id for rules not in rules.csv) and the finding's code as Return Reason Code
      (codec :func:`record_returns`: one return batch per original batch, indicator 2, SID/BIDs
      swapped, settlement period zero);
    * warnings are not returned.

    One file per (us, partner) pair: its record-return batches (numbered from ``sequence``,
    1-999, wrapping; consecutive over the whole call), then its rejected batches, named
    ``CIBER_<our SID/BID>_<partner>_<YYYYMMDD>_<first batch sequence>_RET.dat`` (``_RET`` keeps
    returns apart from our CIBER-out of the same day) with the
    processing date, in the input's line ending. Same inputs → same bytes.
    """
    if not 1 <= sequence <= 999:
        msg = f"batch sequence number {sequence} is not 001-999"
        raise ValueError(msg)
    decoded = checked.decoded
    if decoded is None:
        return []
    rules = ciber_rules()
    batches = decoded.batches.to_pylist()
    headers = rows_by_batch(decoded, ("01", "02"))
    header_offsets = np.asarray(
        [headers[i]["byte_offset"] for i in range(len(batches))], dtype=np.int64
    )
    events = _Events.of(decoded)
    reject, first = _first_findings(findings, rules, header_offsets, events.line.size)
    returns = _record_returns(first, reject, rules, events)
    return _files(checked, batches, returns, reject, settings, sequence)


@dataclass(frozen=True)
class _Events:
    """Per event index of the file: its line, its batch and its record type."""

    line: np.ndarray[Any, Any]
    batch: np.ndarray[Any, Any]
    type: np.ndarray[Any, Any]

    @classmethod
    def of(cls, decoded: Decoded) -> _Events:
        parts = [
            (
                decoded.records[rt].column("line").to_numpy(),
                decoded.records[rt].column("batch_index").to_numpy(),
                rt,
            )
            for rt in DETAIL_TYPES
            if rt in decoded.records
        ]
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, np.zeros(0, dtype=object))
        lines = np.concatenate([p[0] for p in parts])
        order = np.argsort(lines, kind="stable")
        return cls(
            lines[order],
            np.concatenate([p[1] for p in parts])[order],
            np.concatenate([np.full(p[0].size, p[2], dtype=object) for p in parts])[order],
        )


_Rank = tuple[int, int]


def _first_findings(
    findings: list[Finding],
    rules: Mapping[str, Any],
    header_offsets: np.ndarray[Any, Any],
    n_events: int,
) -> tuple[dict[int, tuple[_Rank, int]], dict[int, tuple[_Rank, Finding]]]:
    """The batches rejected (with their reason code) and each event's first finding.

    A fatal finding without an event rejects the batch at its byte offset (every batch when it
    has none); "first" is in rule order (rules.csv), then in the order found.
    """
    nb = header_offsets.size
    reject: dict[int, tuple[_Rank, int]] = {}
    first: dict[int, tuple[_Rank, Finding]] = {}
    for pos, f in enumerate(findings):
        if f.severity == "warning":
            continue
        r = rules.get(f.rule)
        key = (r.order if r is not None else len(rules), pos)
        if f.event_index is None:
            if f.severity != "fatal":
                continue
            if f.byte_offset is None:
                targets = range(nb)
            else:
                at = int(np.searchsorted(header_offsets, f.byte_offset, side="right")) - 1
                targets = range(max(at, 0), max(at, 0) + 1)
            for bi in targets:
                if bi not in reject or key < reject[bi][0]:
                    reject[bi] = (key, f.code)
        elif 0 <= f.event_index < n_events and (
            f.event_index not in first or key < first[f.event_index][0]
        ):
            first[f.event_index] = (key, f)
    return reject, first


def _record_returns(
    first: dict[int, tuple[_Rank, Finding]],
    reject: dict[int, tuple[_Rank, int]],
    rules: Mapping[str, Any],
    events: _Events,
) -> dict[int, list[RecordReturn]]:
    """Per batch not rejected whole: one record return per event with a severe finding."""
    returns: dict[int, list[RecordReturn]] = {}
    for ev in sorted(first):
        bi = int(events.batch[ev])
        if bi in reject:
            continue
        f = first[ev][1]
        rule = rules.get(f.rule)
        field_id = rule.field_id if rule is not None else None
        if field_id is None:
            lf = layout(str(events.type[ev])).by_name.get(f.context)
            field_id = lf.field_id if lf is not None and lf.field_id is not None else 0
        return_code = rule.return_code if rule is not None and rule.return_code else 4
        returns.setdefault(bi, []).append(
            RecordReturn(int(events.line[ev]), return_code, f.code, field_id)
        )
    return returns


def _files(
    checked: CiberChecked,
    batches: list[dict[str, Any]],
    returns: dict[int, list[RecordReturn]],
    reject: dict[int, tuple[_Rank, int]],
    settings: Settings,
    sequence: int,
) -> list[tuple[str, bytes]]:
    """One file per (us, partner) pair: its record-return batches, then its rejected batches."""
    home = settings.home.sid_bid
    # one output file per pair, keyed as the codec's record_returns keys its sequences
    pairs: dict[tuple[str | None, str | None], list[int]] = {}
    for bi in sorted(set(returns) | set(reject)):
        batch = batches[bi]
        pairs.setdefault((batch["receiving_sid_bid"], batch["sending_sid_bid"]), []).append(bi)
    le = _line_ending(checked.data)
    out: list[tuple[str, bytes]] = []
    current = sequence
    for pair, group in pairs.items():
        body: list[bytes] = []
        name_seq: int | None = None
        rets = [r for bi in group for r in returns.get(bi, [])]
        if rets:
            sequences: dict[Any, int] = {pair: current - 1 if current > 1 else 999}
            body.append(
                record_returns(
                    checked.data,
                    rets,
                    creation_date=checked.today,
                    sequences=sequences,
                    file=checked.file,
                    line_ending=le,
                )
            )
            name_seq = current
            current = next_sequence(sequences[pair])
        for bi in group:
            if bi in reject:
                body.append(
                    batch_reject(checked.data, bi, reject[bi][1], file=checked.file, line_ending=le)
                )
                if name_seq is None:
                    name_seq = batches[bi]["batch_sequence_number"]
        us = _sid(pair[0]) or home or "00000"
        partner = _sid(pair[1]) or "00000"
        name = str(CiberReturnName(us, partner, checked.today, name_seq or 0))
        out.append((name, b"".join(body)))
    return out


def write_ciber_returns(
    workdir: WorkDir,
    checked: CiberChecked,
    result: CiberResult,
    settings: Settings,
    sequence: int,
) -> None:
    """Write the CIBER returns of one validated file under ``out/ciber_returns``.

    Nothing goes back for an unreadable file or a file with warnings only. The names written
    are added to ``result.returns``.

    Args:
        workdir: the work folder.
        checked: the file as checked (:func:`clearing.validate.ciber.check_ciber`).
        result: the file's validation result (its findings).
        settings: the run's settings.
        sequence: the first batch sequence number of the returns (1-999).
    """
    if not checked.unreadable and any(f.severity != "warning" for f in result.findings):
        for name, blob in ciber_returns(
            checked, result.findings, settings=settings, sequence=sequence
        ):
            write_atomic(workdir.out / "ciber_returns" / name, blob)
            result.returns.append(name)
