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
