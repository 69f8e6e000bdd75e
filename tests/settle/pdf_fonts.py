"""What a PDF prints: page sizes and the size of every piece of text shown (pure Python).

Enough of PDF for what LibreOffice writes: objects found by ``N 0 obj``, page objects with a
``/MediaBox`` and ``/Contents`` (one stream or an array), Flate-compressed or plain content
streams, and form XObjects drawn with ``Do``. The printed size of a text run is the font size
of ``Tf`` times the vertical scale of the text matrix (``Tm``) times the current transformation
matrix (``cm``, kept across ``q`` / ``Q``): what a ruler on the paper would measure, in points.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Page", "TextRun", "read_pdf"]

Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


@dataclass(frozen=True)
class TextRun:
    """One text-showing operator: its text (through the font's ToUnicode map) and its size."""

    size: float  # points on the paper
    text: str


@dataclass
class Page:
    """One page: its size in points (width, height) and the text runs drawn on it."""

    number: int
    width: float
    height: float
    runs: list[TextRun] = field(default_factory=list)

    @property
    def is_a4(self) -> bool:
        """A4 portrait or landscape (210 x 297 mm, to half a point)."""
        a4 = (595.28, 841.89)
        return sorted((self.width, self.height)) == sorted(a4) or all(
            abs(a - b) < 0.5 for a, b in zip(sorted((self.width, self.height)), a4, strict=True)
        )

    @property
    def smallest(self) -> float | None:
        """The smallest printed text size on the page (None: no text)."""
        sizes = [r.size for r in self.runs if r.text.strip()]
        return min(sizes) if sizes else None

    @property
    def text(self) -> str:
        """The page's text runs, one per line."""
        return "\n".join(r.text for r in self.runs)


_OBJ = re.compile(rb"(\d+)\s+(\d+)\s+obj\b")
_REF = re.compile(rb"(\d+)\s+\d+\s+R")


def _objects(data: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Object number → (dictionary text, raw stream bytes or None)."""
    out: dict[int, tuple[bytes, bytes | None]] = {}
    for m in _OBJ.finditer(data):
        end = data.find(b"endobj", m.end())
        body = data[m.end() : end]
        stream = None
        s = body.find(b"stream")
        if s >= 0 and body[:s].rstrip().endswith(b">>"):
            head = body[:s]
            start = s + len(b"stream")
            if body[start : start + 2] == b"\r\n":
                start += 2
            elif body[start : start + 1] in (b"\n", b"\r"):
                start += 1
            stop = body.rfind(b"endstream")
            stream = body[start:stop]
            body = head
        out[int(m.group(1))] = (body, stream)
    return out


def _decoded(objs: dict[int, tuple[bytes, bytes | None]], num: int) -> bytes:
    head, raw = objs[num]
    if raw is None:
        return b""
    length = re.search(rb"/Length\s+(\d+)(\s+\d+\s+R)?", head)
    if length is not None:
        n = int(length.group(1))
        if length.group(2):
            n = int(objs[n][0].strip())
        raw = raw[:n]
    if b"/FlateDecode" in head:
        return zlib.decompress(raw)
    return raw


_DELIM = b"()<>[]{}/%"
_WS = b" \t\r\n\f\x00"


def _tokens(data: bytes) -> list[object]:
    """Content-stream tokens: floats, names (``/X`` as str), strings (bytes), operators (str)."""
    out: list[object] = []
    i, n = 0, len(data)
    while i < n:
        c = data[i : i + 1]
        if c in (b"",) or c in [bytes([x]) for x in _WS]:
            i += 1
        elif c == b"%":
            while i < n and data[i : i + 1] not in (b"\n", b"\r"):
                i += 1
        elif c == b"(":
            depth, i, buf = 1, i + 1, bytearray()
            while i < n and depth:
                ch = data[i : i + 1]
                if ch == b"\\":
                    buf += data[i : i + 2]
                    i += 2
                    continue
                if ch == b"(":
                    depth += 1
                elif ch == b")":
                    depth -= 1
                    if not depth:
                        i += 1
                        break
                buf += ch
                i += 1
            out.append(b"(" + bytes(buf))
        elif c == b"<" and data[i + 1 : i + 2] == b"<":
            out.append("<<")
            i += 2
        elif c == b">" and data[i + 1 : i + 2] == b">":
            out.append(">>")
            i += 2
        elif c == b"<":
            j = data.index(b">", i)
            hexdigits = re.sub(rb"\s", b"", data[i + 1 : j])
            out.append(b"<" + bytes.fromhex((hexdigits + b"0" * (len(hexdigits) % 2)).decode()))
            i = j + 1
        elif c in (b"[", b"]", b"{", b"}"):
            out.append(c.decode())
            i += 1
        else:
            j = i + 1
            while j < n and data[j] not in _WS and data[j] not in _DELIM:
                j += 1
            word = data[i:j].decode("latin-1")
            if c == b"/":
                j = i + 1
                while j < n and data[j] not in _WS and data[j] not in _DELIM:
                    j += 1
                out.append("/" + data[i + 1 : j].decode("latin-1"))
            else:
                try:
                    out.append(float(word))
                except ValueError:
                    out.append(word)
            i = j
    return out


def _mul(a: Matrix, b: Matrix) -> Matrix:
    """``a`` then ``b`` (PDF row-vector convention: a × b)."""
    return (
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    )


_HEX = rb"<([0-9A-Fa-f]+)>"


def _cmap(data: bytes) -> tuple[int, dict[bytes, str]]:
    """A ToUnicode CMap: (code length in bytes, code → text)."""
    out: dict[bytes, str] = {}
    width = 1

    def text(hexdigits: bytes) -> str:
        return bytes.fromhex(hexdigits.decode()).decode("utf-16-be", errors="replace")

    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for src, dst in re.findall(_HEX + rb"\s*" + _HEX, block):
            width = len(src) // 2
            out[bytes.fromhex(src.decode())] = text(dst)
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for lo, hi, dst in re.findall(_HEX + rb"\s*" + _HEX + rb"\s*" + _HEX, block):
            width = len(lo) // 2
            a, b, start = int(lo, 16), int(hi, 16), int(dst, 16)
            for k in range(a, b + 1):
                out[k.to_bytes(width, "big")] = chr(start + k - a)
    return width, out


def _fonts(objs: dict[int, tuple[bytes, bytes | None]], resources: bytes) -> dict[str, Any]:
    """Font resource name → its ToUnicode map (fonts without one: None)."""
    fonts = re.search(rb"/Font\s*(<<.*?>>|\d+\s+\d+\s+R)", resources, re.S)
    if fonts is None:
        return {}
    table = fonts.group(1)
    ref = re.fullmatch(rb"(\d+)\s+\d+\s+R", table)
    if ref is not None:
        table = objs[int(ref.group(1))][0]
    out: dict[str, Any] = {}
    for name, num in re.findall(rb"/([^\s/<>\[\]]+)\s+(\d+)\s+\d+\s+R", table):
        head = objs[int(num)][0]
        tu = re.search(rb"/ToUnicode\s+(\d+)\s+\d+\s+R", head)
        out["/" + name.decode()] = _cmap(_decoded(objs, int(tu.group(1)))) if tu else None
    return out


def _unescape(raw: bytes) -> bytes:
    """A literal string's bytes (backslash escapes resolved)."""
    out, i = bytearray(), 0
    while i < len(raw):
        c = raw[i]
        if c == 0x5C and i + 1 < len(raw):
            nxt = raw[i + 1 : i + 2]
            simple = {b"n": 10, b"r": 13, b"t": 9, b"b": 8, b"f": 12}
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
            elif nxt.isdigit():
                m = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4])
                assert m is not None
                out.append(int(m.group(0), 8) & 0xFF)
                i += 1 + len(m.group(0))
            elif nxt in (b"\n", b"\r"):
                i += 2
            else:
                out += nxt
                i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


def _text(raw: bytes, cmap: Any) -> str:
    if cmap is None:
        return raw.decode("latin-1")
    width, table = cmap
    return "".join(
        table.get(raw[i : i + width], "?") for i in range(0, len(raw) - width + 1, width)
    )


def _run(
    objs: dict[int, tuple[bytes, bytes | None]],
    content: bytes,
    resources: bytes,
    ctm: Matrix,
    runs: list[TextRun],
    depth: int = 0,
) -> None:
    fonts = _fonts(objs, resources)
    font: Any = None
    stack: list[Matrix] = []
    tm: Matrix = _IDENTITY
    tlm: Matrix = _IDENTITY
    size = 0.0
    leading = 0.0
    operands: list[object] = []
    for tok in _tokens(content):
        if not isinstance(tok, str) or tok.startswith("/") or tok in ("[", "]", "<<", ">>"):
            operands.append(tok)
            continue
        nums = [x for x in operands if isinstance(x, float)]
        if tok == "q":
            stack.append(ctm)
        elif tok == "Q" and stack:
            ctm = stack.pop()
        elif tok == "cm" and len(nums) >= 6:
            ctm = _mul(tuple(nums[-6:]), ctm)  # type: ignore[arg-type]
        elif tok == "BT":
            tm = tlm = _IDENTITY
        elif tok == "Tf" and nums:
            size = nums[-1]
            name = next((x for x in operands if isinstance(x, str) and x.startswith("/")), "")
            font = fonts.get(name)
        elif tok == "Tm" and len(nums) >= 6:
            tm = tlm = tuple(nums[-6:])  # type: ignore[assignment]
        elif tok in ("Td", "TD") and len(nums) >= 2:
            tlm = _mul((1.0, 0.0, 0.0, 1.0, nums[-2], nums[-1]), tlm)
            tm = tlm
            if tok == "TD":
                leading = -nums[-1]
        elif tok == "TL" and nums:
            leading = nums[-1]
        elif tok in ("T*", "'", '"'):
            tlm = _mul((1.0, 0.0, 0.0, 1.0, 0.0, -leading), tlm)
            tm = tlm
        if tok in ("Tj", "TJ", "'", '"'):
            raw = b"".join(
                _unescape(x[1:]) if x[:1] == b"(" else x[1:]
                for x in operands
                if isinstance(x, bytes)
            )
            m = _mul(tm, ctm)
            scale = math.hypot(m[2], m[3])  # length of the text space's unit y vector
            runs.append(TextRun(round(abs(size) * scale, 3), _text(raw, font)))
        elif tok == "Do" and depth < 8:
            name = next((x for x in reversed(operands) if isinstance(x, str)), "")
            ref = re.search(re.escape(name.encode()) + rb"\s+(\d+)\s+\d+\s+R", resources)
            if ref is not None:
                num = int(ref.group(1))
                head = objs[num][0]
                if b"/Form" in head:
                    mat = re.search(rb"/Matrix\s*\[([^\]]*)\]", head)
                    form: Matrix = (
                        tuple(float(x) for x in mat.group(1).split())  # type: ignore[assignment]
                        if mat
                        else _IDENTITY
                    )
                    _run(objs, _decoded(objs, num), head, _mul(form, ctm), runs, depth + 1)
        operands = []


def read_pdf(data: bytes) -> list[Page]:
    """Every page of a PDF in document order, with its size and text runs."""
    objs = _objects(data)
    pages: list[Page] = []
    # the page tree order: /Kids arrays of /Pages objects, from the root /Pages
    kids: dict[int, list[int]] = {}
    for num, (head, _) in objs.items():
        if re.search(rb"/Type\s*/Pages\b", head):
            k = re.search(rb"/Kids\s*\[([^\]]*)\]", head)
            kids[num] = [int(x) for x in _REF.findall(k.group(1))] if k else []
    children = {c for cs in kids.values() for c in cs}
    roots = [n for n in kids if n not in children]
    order: list[int] = []

    def walk(n: int) -> None:
        if n in kids:
            for c in kids[n]:
                walk(c)
        else:
            order.append(n)

    for r in sorted(roots):
        walk(r)
    for i, num in enumerate(order, start=1):
        head = objs[num][0]
        box = re.search(rb"/MediaBox\s*\[([^\]]*)\]", head)
        if box is None:  # inherited from the tree: take the first one found
            box = re.search(rb"/MediaBox\s*\[([^\]]*)\]", data)
        assert box is not None
        x0, y0, x1, y1 = (float(x) for x in box.group(1).split())
        page = Page(i, x1 - x0, y1 - y0)
        res = re.search(rb"/Resources\s+(\d+)\s+\d+\s+R", head)
        resources = head if res is None else objs[int(res.group(1))][0]
        # the XObject dictionary may itself be an indirect object
        xo = re.search(rb"/XObject\s+(\d+)\s+\d+\s+R", resources)
        if xo is not None:
            resources += objs[int(xo.group(1))][0]
        contents = re.search(rb"/Contents\s*(\[[^\]]*\]|\d+\s+\d+\s+R)", head)
        if contents is not None:
            for ref in _REF.findall(contents.group(1)):
                _run(objs, _decoded(objs, int(ref)), resources, _IDENTITY, page.runs)
        pages.append(page)
    return pages
