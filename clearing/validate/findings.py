"""Findings: what validation found, as rows (never exceptions).

A finding names the file, the event (or none for a file-level finding), the TD.57 context and
error code, the severity that decides what happens (fatal → the whole file is returned, severe →
the event is returned, warning → reported only) and the RAP ErrorContext path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from clearing import lake
from clearing.codecs.rap.records import PathItem

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import numpy as np

__all__ = [
    "BULK_SCHEMA",
    "FINDINGS_SCHEMA",
    "PATH_TYPE",
    "REGISTER_FINDINGS_SCHEMA",
    "SEVERITIES",
    "STRUCTURED_FIELDS",
    "Finding",
    "PathItem",
    "finding_rows",
    "findings_table",
    "path_array",
]

Severity = Literal["fatal", "severe", "warning"]
SEVERITIES: tuple[Severity, ...] = ("fatal", "severe", "warning")


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule.

    Attributes:
        rule: the rule id of ``specs/td57/rules.csv`` (or ``specs/ciber/rules.csv``).
        code: the TD.57 error code (relative to ``context``) / CIBER return reason code.
        severity: "fatal", "severe" or "warning" (after per-partner overrides).
        context: the TD.57 context (e.g. ``FileSequenceNumber``, ``AuditControlInfo``).
        message: what is wrong, for a person: the values seen and expected.
        event_index: 0-based position of the event in the file; None for file-level findings.
        group: for a fatal finding, the TAP group returned in the FatalReturn
            (``batchControlInfo``, ``accountingInfo``, ``networkInfo``, ``auditControlInfo``,
            ``transferBatch``, ``notification``, ``messageDescriptionInfo``).
        path: the RAP ErrorContext (outermost first).
        item_offset: the offset of the item in error, when known.
        byte_offset: where in the file the problem is, when known.
        expected_fsn: for an FSN finding, the FSN the stream expected.
        gap_start, gap_end: for an FSN gap, the first and last FSN missing.
    """

    rule: str
    code: int
    severity: Severity
    context: str
    message: str
    event_index: int | None = None
    group: str | None = None
    path: tuple[PathItem, ...] = field(default=())
    item_offset: int | None = None
    byte_offset: int | None = None
    expected_fsn: int | None = None
    gap_start: int | None = None
    gap_end: int | None = None


FINDINGS_SCHEMA = lake.FINDINGS_SCHEMA

#: The structured fields the register's ``findings`` table keeps next to the message (the
#: lake's findings dataset keeps :data:`FINDINGS_SCHEMA`).
STRUCTURED_FIELDS: tuple[pa.Field, ...] = (
    pa.field("expected_fsn", pa.int32()),
    pa.field("gap_start", pa.int32()),
    pa.field("gap_end", pa.int32()),
)

#: :data:`FINDINGS_SCHEMA` plus :data:`STRUCTURED_FIELDS`: the rows of the register's table.
REGISTER_FINDINGS_SCHEMA = pa.schema([*FINDINGS_SCHEMA, *STRUCTURED_FIELDS])

#: The per-finding columns of :data:`FINDINGS_SCHEMA` (not the file's): findings made in bulk
#: as a table (:meth:`clearing.validate.rules.RuleSet.make_many`) instead of one
#: :class:`Finding` each, for a rule that fires on a large share of a dense day's events.
BULK_SCHEMA = pa.schema(
    [
        FINDINGS_SCHEMA.field(n)
        for n in (
            "event_index",
            "rule",
            "code",
            "severity",
            "context",
            "group",
            "message",
            "path",
            "item_offset",
            "byte_offset",
        )
    ]
)

#: The type of the ``path`` column: the RAP ErrorContext items of a finding.
PATH_TYPE: pa.ListType = FINDINGS_SCHEMA.field("path").type

_FILE_FIELDS = (
    "file",
    "file_sha256",
    "source_format",
    "sender",
    "recipient",
    "file_sequence_number",
)


def findings_table(
    findings: Iterable[Finding],
    *,
    file: str,
    source_format: str,
    sender: str | None = None,
    recipient: str | None = None,
    file_sequence_number: str | None = None,
    file_sha256: str | None = None,
    structured: bool = False,
    bulk: pa.Table | None = None,
) -> pa.Table:
    """Findings as an Arrow table (:data:`FINDINGS_SCHEMA`), in a stable order.

    With ``structured``, the table has the :data:`STRUCTURED_FIELDS` too
    (:data:`REGISTER_FINDINGS_SCHEMA`, for the register). ``bulk``: more findings, as rows
    of :data:`BULK_SCHEMA`; the table is in the same order as if they were objects.
    """
    schema = REGISTER_FINDINGS_SCHEMA if structured else FINDINGS_SCHEMA
    rows = sorted(
        findings,
        key=lambda f: (
            SEVERITIES.index(f.severity),
            -1 if f.event_index is None else f.event_index,
            f.rule,
            f.message,
        ),
    )
    cols: dict[str, list[object]] = {name: [] for name in schema.names}
    for f in rows:
        cols["file"].append(file)
        cols["file_sha256"].append(file_sha256)
        cols["source_format"].append(source_format)
        cols["sender"].append(sender)
        cols["recipient"].append(recipient)
        cols["file_sequence_number"].append(file_sequence_number)
        cols["event_index"].append(f.event_index)
        cols["rule"].append(f.rule)
        cols["code"].append(f.code)
        cols["severity"].append(f.severity)
        cols["context"].append(f.context)
        cols["group"].append(f.group)
        cols["message"].append(f.message)
        cols["item_offset"].append(f.item_offset)
        cols["byte_offset"].append(f.byte_offset)
        if structured:
            cols["expected_fsn"].append(f.expected_fsn)
            cols["gap_start"].append(f.gap_start)
            cols["gap_end"].append(f.gap_end)
    arrays = {n: _paths(rows, schema.field(n).type) if n == "path" else cols[n] for n in cols}
    table = pa.table(arrays, schema=schema)
    if bulk is None or bulk.num_rows == 0:
        return table
    given = dict(
        zip(
            _FILE_FIELDS,
            (file, file_sha256, source_format, sender, recipient, file_sequence_number),
            strict=True,
        )
    )
    n = bulk.num_rows
    more = pa.table(
        [
            pa.repeat(pa.scalar(given[f.name], f.type), n)
            if f.name in given
            else bulk.column(f.name)
            if f.name in bulk.column_names
            else pa.nulls(n, f.type)
            for f in schema
        ],
        schema=schema,
    )
    return _in_order(pa.concat_tables([table, more]))


def _in_order(table: pa.Table) -> pa.Table:
    """``table``'s rows by severity, event (file-level first), rule, message: stable."""
    rank = pc.index_in(table.column("severity"), value_set=pa.array(SEVERITIES))
    event = pc.fill_null(table.column("event_index"), -1)
    keys = pa.table(
        {"r": rank, "e": event, "u": table.column("rule"), "m": table.column("message")}
    )
    order = pc.sort_indices(
        keys,
        sort_keys=[("r", "ascending"), ("e", "ascending"), ("u", "ascending"), ("m", "ascending")],
    )
    return table.take(order)


def finding_rows(findings: Sequence[Finding], bulk: pa.Table | None = None) -> list[Finding]:
    """``findings`` and the ``bulk`` rows as :class:`Finding` objects (a report of a file)."""
    out = list(findings)
    if bulk is None:
        return out
    for r in bulk.to_pylist():
        out.append(
            Finding(
                rule=r["rule"],
                code=r["code"],
                severity=r["severity"],
                context=r["context"],
                message=r["message"],
                event_index=r["event_index"],
                group=r["group"],
                path=tuple(
                    PathItem(p["item_id"], p["occurrence"], p["level"]) for p in r["path"] or ()
                ),
                item_offset=r["item_offset"],
                byte_offset=r["byte_offset"],
            )
        )
    return out


def path_array(
    item_ids: Sequence[int] | np.ndarray[Any, Any],
    occurrences: Sequence[int] | np.ndarray[Any, Any],
    levels: Sequence[int] | np.ndarray[Any, Any],
    offsets: Sequence[int] | np.ndarray[Any, Any],
    path_type: pa.ListType = PATH_TYPE,
) -> pa.ListArray:
    """A ``path`` column from its flat item fields and the offsets of each finding's items."""
    fields = list(path_type.value_type)
    items = pa.StructArray.from_arrays(
        [
            pa.array(values, field.type)
            for values, field in zip((item_ids, occurrences, levels), fields, strict=True)
        ],
        fields=fields,
    )
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), items, type=path_type)


def _paths(findings: Sequence[Finding], path_type: pa.ListType) -> pa.ListArray:
    """The ``path`` column of ``findings``: flat item arrays and offsets, not a dict per item.

    (A dense day has over a million duplicate suspects; pyarrow converts nested Python dicts
    one by one.)
    """
    item_ids: list[int] = []
    occurrences: list[int] = []
    levels: list[int] = []
    offsets = [0]
    for f in findings:
        for p in f.path:
            item_ids.append(p.item_id)
            occurrences.append(p.occurrence)
            levels.append(p.level)
        offsets.append(len(item_ids))
    return path_array(item_ids, occurrences, levels, offsets, path_type)
