"""A fast BER writer for the sample generator: asn1tools' bytes, without asn1tools' encoder.

The sample TAP-in files are asn1tools' value form (dicts, ``(name, value)`` tuples for
CHOICEs) encoded by :func:`clearing.codecs.asn1.encode`, then, for two partners, re-encoded
with indefinite lengths (:func:`clearing.codecs.indefinite.to_indefinite`). At hundreds of
thousands of call events that is most of the generator's time, so this module writes the same
bytes directly: it reads the compiled asn1tools type tree of a root type once and generates
the source of one Python function writing it, every element of the tree inline (tags and
headers as constants, small INTEGER elements kept once written), with the length form of every
constructed element decided when the code is made (``definite``; ``indefinite-all``: every
constructed element; ``indefinite-some``: the constructed elements down to depth 2, the
TransferBatch, its groups and every call event).

The bytes are those of the asn1tools encoding (minimal definite lengths, minimal two's-complement
integers, members in definition order, present members only), and, for the indefinite forms,
those of :func:`~clearing.codecs.indefinite.to_indefinite` of it. Types this writer does not
know (anything but SEQUENCE, SEQUENCE OF, CHOICE, explicit tags, INTEGER and OCTET STRING,
or members with DEFAULT values) make :func:`encoder` return None: the caller then takes the
asn1tools path; a CHOICE alternative it does not know raises ValueError. No type checks: the
values are the generator's own (``tests/samples/test_encoder.py`` compares the two writers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from asn1tools.codecs import ber as _ber

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Mode", "encoder"]

Mode = Literal["definite", "indefinite-some", "indefinite-all"]

_SOME_DEPTH = 2  # indefinite-some: constructed elements at depth <= 2 (the top level is 0)
_SHORT = 128  # contents shorter than this have a one-octet length
_LONG_LIST_DEPTH = 1  # lists down to this depth may be long: their entries are joined once
_INT_CACHE = 1 << 16

_LENS: tuple[bytes, ...] = tuple(bytes((n,)) for n in range(_SHORT))


def _length(n: int) -> bytes:
    """The length octets of ``n`` content octets (the minimal form asn1tools writes)."""
    return bytes(_ber.encode_length_definite(n))


# per INTEGER tag, its small elements written so far (shared by every generated function)
_INTEGERS: dict[bytes, dict[int, bytes]] = {}


def _integer(cache: dict[int, bytes], tag: bytes, x: int) -> bytes:
    """An INTEGER element (minimal two's complement), kept in ``cache`` when small."""
    content = x.to_bytes((8 + (x + (x < 0)).bit_length()) // 8, "big", signed=True)
    out = tag + _LENS[len(content)] + content
    if 0 <= x < _INT_CACHE:
        cache[x] = out
    return out


class _Unsupported(Exception):
    pass


class _Gen:
    """Generates the source of one function writing a root type, every element inline.

    ``emit`` writes the statements that hand the element of value ``var`` to ``sink`` (what
    adds it to the enclosing element's content); each constructed element builds its content
    in a variable of its own (names numbered, one per position in the type tree).
    """

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.consts: dict[bytes, str] = {}
        self.caches: dict[bytes, str] = {}  # INTEGER tag -> name of its cache of elements
        # tag -> name of its headers (tag and one-octet length) by content length
        self.headers: dict[bytes, str] = {}
        self.lines: list[str] = []
        self.count = 0

    def const(self, value: bytes) -> str:
        name = self.consts.get(value)
        if name is None:
            name = f"_K{len(self.consts)}"
            self.consts[value] = name
        return name

    def header(self, tag: bytes, var: str) -> str:
        """An expression: tag and length of content ``var`` (headers of short ones kept)."""
        headers = self.headers.setdefault(tag, f"_H{len(self.headers)}")
        return f"({headers}[n] if (n := len({var})) < {_SHORT} else {self.const(tag)} + _length(n))"

    def indefinite(self, depth: int) -> bool:
        if self.mode == "indefinite-all":
            return True
        return self.mode == "indefinite-some" and depth <= _SOME_DEPTH

    def emit(self, t: Any, depth: int, var: str, sink: tuple[str, str], pad: str) -> None:
        """Statements (indented ``pad``) handing the element of ``var`` as ``t`` to ``sink``.

        ``sink`` wraps the expression of the element into a statement: ``(prefix, suffix)``,
        e.g. ``("b3 += ", "")`` or ``("a3(", ")")``.
        """
        out = self.lines
        put, end = sink
        if getattr(t, "has_default", None) is not None and t.has_default():
            raise _Unsupported(repr(t))
        if type(t) is _ber.Integer:
            tag = self.const(bytes(t.tag))
            cache = self.caches.setdefault(bytes(t.tag), f"_C{len(self.caches)}")
            out.append(f"{pad}{put}({cache}.get({var}) or _integer({cache}, {tag}, {var})){end}")
            return
        if type(t) is _ber.OctetString:
            out.append(f"{pad}{put}{self.header(bytes(t.tag), var)} + {var}{end}")
            return
        self.count += 1
        n = self.count
        if isinstance(t, _ber.Choice):
            key, value = f"k{n}", f"x{n}"
            out.append(f"{pad}{key}, {value} = {var}")
            for i, member in enumerate(t.members):
                out.append(f"{pad}{'if' if i == 0 else 'elif'} {key} == {member.name!r}:")
                self.emit(member, depth, value, sink, pad + "    ")
            out.append(f"{pad}else:")
            out.append(f"{pad}    raise ValueError({key})")
            return
        if not isinstance(t, _ber.MembersType | _ber.ArrayType | _ber.ExplicitTag):
            raise _Unsupported(repr(t))
        body = f"b{n}"
        # a few parts: added to the content one by one; the entries of a list that may be long
        # (the TransferBatch's call events): joined once
        joined = isinstance(t, _ber.ArrayType) and depth <= _LONG_LIST_DEPTH
        if joined:
            parts = f"p{n}"
            out.append(f"{pad}{parts} = []")
            out.append(f"{pad}a{n} = {parts}.append")
            inner = (f"a{n}(", ")")
        else:
            out.append(f"{pad}{body} = b''")
            inner = (f"{body} += ", "")
        if isinstance(t, _ber.MembersType):
            if t.additions:
                raise _Unsupported(repr(t))
            for member in t.root_members:
                if member.has_default():
                    raise _Unsupported(repr(member))
                value = f"x{n}_{len(out)}"
                out.append(f"{pad}if {member.name!r} in {var}:")
                out.append(f"{pad}    {value} = {var}[{member.name!r}]")
                self.emit(member, depth + 1, value, inner, pad + "    ")
        elif isinstance(t, _ber.ArrayType):
            value = f"x{n}"
            out.append(f"{pad}for {value} in {var}:")
            self.emit(t.element_type, depth + 1, value, inner, pad + "    ")
        else:  # an explicit tag around its inner type
            self.emit(t.inner, depth + 1, var, inner, pad)
        if joined:
            out.append(f"{pad}{body} = b''.join(p{n})")
        tag = self.const(bytes(t.tag))
        if self.indefinite(depth):
            out.append(f"{pad}{put}{tag} + b'\\x80' + {body} + b'\\x00\\x00'{end}")
        else:
            out.append(f"{pad}{put}{self.header(bytes(t.tag), body)} + {body}{end}")

    def build(self, t: Any) -> Callable[[Any], bytes]:
        self.lines.append("def write(v):")
        self.lines.append("    top = []")
        self.emit(t, 0, "v", ("top.append(", ")"), "    ")
        self.lines.append("    return top[0]")
        namespace: dict[str, Any] = {"_length": _length, "_integer": _integer, "_LENS": _LENS}
        for value, name in self.consts.items():
            namespace[name] = value
        for tag, name in self.caches.items():
            namespace[name] = _INTEGERS.setdefault(tag, {})
        for tag, name in self.headers.items():
            namespace[name] = tuple(tag + length for length in _LENS)
        source = "\n".join(self.lines)
        exec(compile(source, f"<sample encoder {t.name}>", "exec"), namespace)
        fn: Callable[[Any], bytes] = namespace["write"]
        return fn


_CACHE: dict[tuple[Any, str], Callable[[Any], bytes] | None] = {}


def encoder(compiled: Any, mode: Mode) -> Callable[[Any], bytes] | None:
    """A function writing values of the compiled asn1tools (BER) type ``compiled``.

    Args:
        compiled: ``spec.types[name]`` of an asn1tools BER specification.
        mode: the length form of the constructed elements (see the module docstring).

    Returns:
        ``f(value) -> bytes``, or None when the type uses what this writer does not know.
    """
    key = (compiled, mode)
    if key not in _CACHE:
        try:
            _CACHE[key] = _Gen(mode).build(compiled._type)
        except _Unsupported:
            _CACHE[key] = None
    return _CACHE[key]
