"""The findings table's ``path`` column (the RAP ErrorContext of each finding).

Built from flat arrays of the findings' path items (a dense day has over a million duplicate
suspects); expected here as pyarrow builds it from one list of dicts per finding, the route
it replaced, for paths of every shape: none, one item, several, the event's occurrence.
"""

from __future__ import annotations

import pyarrow as pa

from clearing.codecs.rap.records import PathItem
from clearing.validate.findings import REGISTER_FINDINGS_SCHEMA, Finding, findings_table


def _finding(event_index: int | None, path: tuple[PathItem, ...], rule: str) -> Finding:
    return Finding(
        rule=rule,
        code=1,
        severity="warning" if event_index is not None else "fatal",
        context="CallEventDetail",
        message=f"m{event_index}",
        event_index=event_index,
        path=path,
    )


def test_paths_are_the_findings_error_contexts_in_table_order() -> None:
    findings = [
        _finding(7, (PathItem(1, 1, 1), PathItem(3, 1, 2), PathItem(9, 8, 3)), "event.b"),
        _finding(None, (), "tb.syntax"),
        _finding(2, (PathItem(1, 1, 1),), "event.a"),
        _finding(
            2,
            (PathItem(1, 1, 1), PathItem(3, 1, 2), PathItem(9, 3, 3), PathItem(5, 1, 4)),
            "event.c",
        ),
    ]
    table = findings_table(findings, file="F", source_format="tap", structured=True)
    # the table's order: severity, event, rule
    ordered = [findings[1], findings[2], findings[3], findings[0]]
    expected = pa.array(
        [
            [{"item_id": p.item_id, "occurrence": p.occurrence, "level": p.level} for p in f.path]
            for f in ordered
        ],
        REGISTER_FINDINGS_SCHEMA.field("path").type,
    )
    assert table.column("path").combine_chunks().equals(expected)
    assert table.column("path").to_pylist()[0] == []
    assert table.column("path").to_pylist()[2][2] == {"item_id": 9, "occurrence": 3, "level": 3}
    assert table.column("rule").to_pylist() == ["tb.syntax", "event.a", "event.c", "event.b"]


def test_no_findings_is_an_empty_table_of_the_schema() -> None:
    table = findings_table([], file="F", source_format="tap", structured=True)
    assert table.num_rows == 0
    assert table.schema.equals(REGISTER_FINDINGS_SCHEMA)


def _kinds(release: int) -> list[str]:
    from clearing.codecs import asn1

    g = asn1.grammar("tap", release)
    return [c.name for c in g.children["CallEventDetailList"].values()]


def test_findings_made_in_bulk_are_the_findings_made_one_by_one() -> None:
    """:meth:`RuleSet.make_many` (a dense day's duplicate suspects) against :meth:`make`.

    Every event kind of two releases, an unknown kind, events far into a file; then the
    findings table of the bulk rows against the table of the same findings as objects, and
    the file's report (``finding_rows``) against the objects.
    """
    from clearing.validate.findings import finding_rows
    from clearing.validate.rules import rules_for

    for release in (10, 12):
        rs = rules_for(release)
        kinds = [*_kinds(release), "no such kind"]
        index = [i * 7919 for i in range(len(kinds))]
        messages = [f"close to event {i} in `X` (±2 s)" for i in index]
        bulk = rs.make_many(
            "event.duplicate_suspect", pa.array(messages), pa.array(index), pa.array(kinds)
        )
        assert bulk is not None
        one_by_one = [
            rs.make("event.duplicate_suspect", m, event_index=i, event_kind=k)
            for m, i, k in zip(messages, index, kinds, strict=True)
        ]
        assert finding_rows([], bulk) == one_by_one
        # the event's own item carries its position: APPLICATION tag, occurrence i + 1, level 3
        moc = one_by_one[kinds.index("mobileOriginatedCall")]
        assert moc is not None
        assert PathItem(9, index[kinds.index("mobileOriginatedCall")] + 1, 3) in moc.path
        hard = rs.make(
            "event.duplicate", "same as event 0 in `X`", event_index=3, event_kind="gprsCall"
        )
        assert hard is not None
        objects = [hard, *(f for f in one_by_one if f is not None)]
        as_objects = findings_table(objects, file="F", source_format="tap", sender="FRAF9")
        in_bulk = findings_table([hard], file="F", source_format="tap", sender="FRAF9", bulk=bulk)
        assert in_bulk.equals(as_objects)
    # a rule switched off makes nothing, in bulk too
    off = rules_for(12, {"event.duplicate_suspect": "off"})
    assert (
        off.make_many(
            "event.duplicate_suspect", pa.array(["m"]), pa.array([0]), pa.array(["gprsCall"])
        )
        is None
    )
