"""A tag grammar derived from an ASN.1 module: which tags may appear inside which type.

asn1tools skips unknown tags silently (they look like extension additions), so a file decoded
with the wrong release "succeeds" with fields missing. This grammar lets the package check every
tag of a file against the module of its release and report the first tag that does not belong,
with its offset and element path. It also names the nodes for the fast decoder.

TAP, RAP and NRT use IMPLICIT TAGS and give (nearly) every type an APPLICATION tag; a tagged
CHOICE is encoded as an explicit wrapper (X.680 §31.2.7).

C901: ``build_grammar`` resolves asn1tools' parsed types (tags, CHOICEs, references) with small
closures over one type table; mccabe counts the closures' branches as the function's, and lifting
them out would only pass the table around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clearing.codecs.ber import APPLICATION, CONTEXT, PRIVATE, UNIVERSAL, tag_key

__all__ = ["Child", "Grammar", "build_grammar"]

_CLASSES = {"UNIVERSAL": UNIVERSAL, "APPLICATION": APPLICATION, "CONTEXT": CONTEXT}
_CLASSES["PRIVATE"] = PRIVATE

_UNIVERSAL_TAGS = {
    "BOOLEAN": 1,
    "INTEGER": 2,
    "BIT STRING": 3,
    "OCTET STRING": 4,
    "NULL": 5,
    "OBJECT IDENTIFIER": 6,
    "ENUMERATED": 10,
    "UTF8String": 12,
    "SEQUENCE": 16,
    "SEQUENCE OF": 16,
    "SET": 17,
    "SET OF": 17,
    "NumericString": 18,
    "PrintableString": 19,
    "IA5String": 22,
    "GraphicString": 25,
    "VisibleString": 26,
}
_CONSTRUCTED = {"SEQUENCE", "SEQUENCE OF", "SET", "SET OF", "CHOICE"}


@dataclass(frozen=True, slots=True)
class Child:
    """What a tag means inside a given parent type."""

    name: str  # member name, or "" for an element of a SEQUENCE OF
    type_name: str  # the named ASN.1 type of the child
    constructed: bool  # whether its encoding is constructed


@dataclass
class Grammar:
    """Tag grammar of one compiled module set.

    Attributes:
        roots: tag → top-level alternative (e.g. ``[APPLICATION 1]`` → transferBatch).
        children: type name → {tag → Child}.
    """

    roots: dict[int, Child]
    children: dict[str, dict[int, Child]] = field(default_factory=dict)

    def child(self, parent_type: str, key: int) -> Child | None:
        """The meaning of tag ``key`` inside a ``parent_type`` element, or None if unknown."""
        return self.children.get(parent_type, {}).get(key)


def build_grammar(modules: dict[str, Any], root_type: str) -> Grammar:
    """Build the grammar of ``root_type`` (an untagged CHOICE or a tagged type).

    Args:
        modules: the output of ``asn1tools.parse_files``.
        root_type: the top-level type, e.g. ``DataInterChange``.
    """
    types: dict[str, dict[str, Any]] = {}
    for module in modules.values():
        types.update(module["types"])

    def base(name: str) -> dict[str, Any]:
        """The first definition along the reference chain that is a builtin type."""
        d = types[name]
        seen = 0
        while d["type"] in types and seen < 64:
            d = types[d["type"]]
            seen += 1
        return d

    def is_constructed(name: str) -> bool:
        return base(name)["type"] in _CONSTRUCTED or _explicit_choice(name)

    def _explicit_choice(name: str) -> bool:
        d = types[name]
        return "tag" in d and base(name)["type"] == "CHOICE"

    def outer_tags(name: str) -> list[int]:
        d = types[name]
        if "tag" in d:
            t = d["tag"]
            return [tag_key(_CLASSES[t.get("class", "CONTEXT")], t["number"])]
        if d["type"] in types:
            return outer_tags(d["type"])
        if d["type"] == "CHOICE":
            out: list[int] = []
            for m in d["members"]:
                if m is not None:
                    out.extend(outer_tags(m["type"]))
            return out
        return [tag_key(UNIVERSAL, _UNIVERSAL_TAGS.get(d["type"], 4))]

    def structure(name: str) -> dict[str, Any]:
        """The definition whose members/element describe the content of ``name``."""
        d = types[name]
        if "tag" in d and base(name)["type"] == "CHOICE":
            return base(name)  # explicit wrapper: content is one alternative
        while d["type"] in types:
            d = types[d["type"]]
        return d

    grammar = Grammar(roots={})
    todo = [root_type]
    root_def = types[root_type]
    if "tag" not in root_def and root_def["type"] == "CHOICE":
        for m in root_def["members"]:
            if m is None:
                continue
            for key in outer_tags(m["type"]):
                grammar.roots[key] = Child(m["name"], m["type"], is_constructed(m["type"]))
            todo.append(m["type"])
    else:
        for key in outer_tags(root_type):
            grammar.roots[key] = Child(root_type, root_type, is_constructed(root_type))

    done: set[str] = set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        s = structure(name)
        kids: dict[int, Child] = {}
        if s["type"] in ("SEQUENCE", "SET", "CHOICE"):
            members = [(m["name"], m["type"]) for m in s["members"] if m is not None]
        elif s["type"] in ("SEQUENCE OF", "SET OF"):
            members = [("", s["element"]["type"])]
        else:
            members = []
        for member_name, member_type in members:
            if member_type not in types:
                continue  # inline builtin: no tag of interest below it
            todo.append(member_type)
            if "tag" not in types[member_type] and base(member_type)["type"] == "CHOICE":
                # an untagged CHOICE is transparent: its alternatives appear directly
                for m in base(member_type)["members"]:
                    if m is not None:
                        todo.append(m["type"])
                        for key in outer_tags(m["type"]):
                            kids[key] = Child(m["name"], m["type"], is_constructed(m["type"]))
            else:
                for key in outer_tags(member_type):
                    kids[key] = Child(member_name, member_type, is_constructed(member_type))
        if kids:
            grammar.children[name] = kids
    return grammar
