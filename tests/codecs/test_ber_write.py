"""The columnar BER writer against a plain recursive encoder, on random trees.

Random shapes (nesting, optional elements, tags of one to three octets, contents of any length
so that every length form appears, integers of every width) and random rows: each row's bytes
must be the tag-length-value of its present elements, members in order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.codecs import ber_write as ber

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@st.composite
def trees(draw: Any, rows: int, depth: int = 0) -> tuple[ber.Node, list[bytes | None]]:
    """A node for ``rows`` rows and, per row, its expected encoding (None: absent)."""
    tag_number = draw(st.sampled_from([1, 9, 30, 31, 44, 127, 128, 199, 427, 16383]))
    optional = draw(st.booleans()) if depth else False
    present = draw(st.lists(st.booleans(), min_size=rows, max_size=rows)) if optional else None
    kind = draw(st.sampled_from(["int", "octets", "cons"] if depth < 4 else ["int", "octets"]))
    expected: list[bytes | None] = []
    if kind == "cons":
        tag = ber.app_tag(tag_number, constructed=True)
        members = [draw(trees(rows, depth + 1)) for _ in range(draw(st.integers(0, 4)))]
        node = ber.Node(tag, members=[m for m, _ in members], present=_mask(present))
        for i in range(rows):
            body = b"".join(e[i] or b"" for _, e in members)
            expected.append(tag + ber.length_octets(len(body)) + body)
    else:
        tag = ber.app_tag(tag_number, constructed=False)
        if kind == "int":
            values = draw(st.lists(INT64, min_size=rows, max_size=rows))
            content = ber.int_col(np.array(values, dtype=np.int64))
            bodies = [
                v.to_bytes((8 + (v + (v < 0)).bit_length()) // 8, "big", signed=True)
                for v in values
            ]
        else:
            same = draw(st.booleans())  # every row the same size: a fixed block
            size = st.just(draw(st.integers(0, 300))) if same else st.integers(0, 300)
            bodies = [
                draw(st.binary(min_size=n, max_size=n))
                for n in draw(st.lists(size, min_size=rows, max_size=rows))
            ]
            content = ber.string_col(pa.array(bodies, pa.binary()))
        node = ber.Node(tag, content=content, present=_mask(present))
        expected = [tag + ber.length_octets(len(b)) + b for b in bodies]
    if present is not None:
        expected = [e if p else None for e, p in zip(expected, present, strict=True)]
    return node, expected


def _mask(present: list[bool] | None) -> Any:
    return None if present is None else np.array(present, dtype=bool)


# cheap examples (a few small trees each): 2.5 times the profile's number
@settings(parent=settings.default, max_examples=settings().max_examples * 5 // 2)
@given(st.data())
def test_random_trees(data: st.DataObject) -> None:
    rows = data.draw(st.integers(1, 12))
    shapes = [data.draw(trees(rows)) for _ in range(data.draw(st.integers(1, 3)))]
    # the rows spread over the trees in any order
    owner = data.draw(st.lists(st.integers(0, len(shapes) - 1), min_size=rows, max_size=rows))
    parts = []
    expected = []
    for i in range(rows):
        _node, rows_bytes = shapes[owner[i]]
        row = rows_bytes[i]
        assert row is not None  # roots are never optional
        expected.append(row)
    for t, (node, _) in enumerate(shapes):
        where = np.array([i for i in range(rows) if owner[i] == t], dtype=np.int64)
        if where.size:
            parts.append((_restrict(node, where), where))
    assert ber.encode(parts, rows) == b"".join(expected)


def _restrict(node: ber.Node, where: np.ndarray[Any, Any]) -> ber.Node:
    """The node for the rows ``where`` only (each tree encodes its own rows)."""
    return ber.Node(
        node.tag,
        content=None if node.content is None else node.content.take(where),
        members=[_restrict(m, where) for m in node.members],
        present=None if node.present is None else node.present[where],
    )
