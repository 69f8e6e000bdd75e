"""A fast BER writer for the sample generator: asn1tools' bytes, without asn1tools' encoder.

The sample TAP-in files are asn1tools' value form (dicts, ``(name, value)`` tuples for
CHOICEs) encoded by :func:`clearing.codecs.asn1.encode`, then, for two partners, re-encoded
with indefinite lengths (:func:`clearing.codecs.indefinite.to_indefinite`). At hundreds of
thousands of call events that is most of the generator's time, so this module writes the same
bytes directly: it reads the compiled asn1tools type tree of a root type once and generates a
Python function per constructed element of that tree (tags as constants, primitive members
written inline), with the length form of every constructed element decided when the code is
made (``definite``; ``indefinite-all``: every constructed element; ``indefinite-some``: the
constructed elements down to depth 2, the TransferBatch, its groups and every call event).

The bytes are those of the asn1tools encoding (minimal definite lengths, minimal two's-complement
integers, members in definition order, absent members left out), and, for the indefinite forms,
those of :func:`~clearing.codecs.indefinite.to_indefinite` of it. Types this writer does not
know (anything but SEQUENCE, SEQUENCE OF, CHOICE, explicit tags, INTEGER and OCTET STRING,
or members with DEFAULT values) make :func:`encoder` return None: the caller then takes the
asn1tools path. No type checks: the values are the generator's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from asn1tools.codecs import ber as _ber

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Mode", "encoder"]

Mode = Literal["definite", "indefinite-some", "indefinite-all"]

_SOME_DEPTH = 2  # indefinite-some: constructed elements at depth <= 2 (the top level is 0)
_LEN_CACHE = 1 << 14
_INT_CACHE = 1 << 16

# the length octets of every short content (the minimal form asn1tools writes)
_LENS: tuple[bytes, ...] = tuple(bytes(_ber.encode_length_definite(n)) for n in range(_LEN_CACHE))


def _length(n: int) -> bytes:
    if n < _LEN_CACHE:
        return _LENS[n]
    return bytes(_ber.encode_length_definite(n))


_INTS: dict[int, bytes] = {}


def _integer(x: int) -> bytes:
    """Length and content octets of an INTEGER (minimal two's complement)."""
    got = _INTS.get(x)
    if got is not None:
        return got
    content = x.to_bytes((8 + (x + (x < 0)).bit_length()) // 8, "big", signed=True)
    out: bytes = _length(len(content)) + content
    if 0 <= x < _INT_CACHE:
        _INTS[x] = out
    return out


class _Unsupported(Exception):
    pass


class _Gen:
    """Generates the source of one root type's functions."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.consts: dict[bytes, str] = {}
        self.lines: list[str] = []
        self.count = 0

    def const(self, value: bytes) -> str:
        name = self.consts.get(value)
        if name is None:
            name = f"_K{len(self.consts)}"
            self.consts[value] = name
        return name

    def indefinite(self, depth: int) -> bool:
        if self.mode == "indefinite-all":
            return True
        return self.mode == "indefinite-some" and depth <= _SOME_DEPTH

    def function(self, t: Any, depth: int) -> str:
        """The name of a function ``f(value) -> bytes`` writing ``t`` (header included)."""
        if getattr(t, "has_default", None) is not None and t.has_default():
            raise _Unsupported(repr(t))
        if isinstance(t, _ber.Choice):
            return self.choice(t, depth)
        if isinstance(t, _ber.Recursive):
            raise _Unsupported(repr(t))
        self.count += 1
        name = f"_f{self.count}"
        body: list[str] = [f"def {name}(v):"]
        if isinstance(t, _ber.MembersType):
            if t.additions:
                raise _Unsupported(repr(t))
            body.append("    p = []")
            for member in t.root_members:
                if member.has_default():
                    raise _Unsupported(repr(t))
                body.append(f"    x = v.get({member.name!r})")
                body.append("    if x is not None:")
                body.append(f"        p.append({self.expression(member, depth + 1, 'x')})")
            body.append("    b = b''.join(p)")
        elif isinstance(t, _ber.ArrayType):
            item = self.expression(t.element_type, depth + 1, "x")
            body.append(f"    b = b''.join([{item} for x in v])")
        elif isinstance(t, _ber.ExplicitTag):
            body.append(f"    b = {self.expression(t.inner, depth + 1, 'v')}")
        else:
            raise _Unsupported(repr(t))
        tag = self.const(bytes(t.tag))
        if self.indefinite(depth):
            body.append(f"    return {tag} + b'\\x80' + b + b'\\x00\\x00'")
        else:
            body.append(f"    return {tag} + _length(len(b)) + b")
        self.lines.extend(body)
        return name

    def choice(self, t: Any, depth: int) -> str:
        self.count += 1
        name = f"_f{self.count}"
        table = f"_T{self.count}"
        entries = []
        for member in t.members:
            entries.append(f"{member.name!r}: {self.lambda_(member, depth)}")
        self.lines.append(f"{table} = {{{', '.join(entries)}}}")
        self.lines.append(f"def {name}(v):")
        self.lines.append(f"    return {table}[v[0]](v[1])")
        return name

    def lambda_(self, t: Any, depth: int) -> str:
        return f"lambda x: {self.expression(t, depth, 'x')}"

    def expression(self, t: Any, depth: int, var: str) -> str:
        """A Python expression writing value ``var`` as ``t`` (header included)."""
        if type(t) is _ber.Integer:
            return f"{self.const(bytes(t.tag))} + _integer({var})"
        if type(t) is _ber.OctetString:
            return f"{self.const(bytes(t.tag))} + _length(len({var})) + {var}"
        if isinstance(t, _ber.MembersType | _ber.ArrayType | _ber.ExplicitTag | _ber.Choice):
            return f"{self.function(t, depth)}({var})"
        raise _Unsupported(repr(t))

    def build(self, t: Any) -> Callable[[Any], bytes]:
        top = self.function(t, 0)
        namespace: dict[str, Any] = {"_length": _length, "_integer": _integer}
        for value, name in self.consts.items():
            namespace[name] = value
        source = "\n".join(self.lines)
        exec(compile(source, f"<sample encoder {t.name}>", "exec"), namespace)
        fn: Callable[[Any], bytes] = namespace[top]
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
