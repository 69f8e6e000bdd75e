"""Full-fidelity TAP / Notification / RAP / ACK / NRT codec over asn1tools, one schema per release.

The kind and release are read from the header bytes first (:func:`sniff`); the matching module
from ``specs/asn1`` is compiled once and cached: in the process, and between runs as a pickle in
the user's cache folder (:func:`clearing.environment.cache_dir`), keyed by the modules' text, the
asn1tools and Python versions. That file is safe to delete; a missing, corrupt or unwritable one
means compiling as without it (about half a second), never an error. Decoding then:

* refuses trailing bytes after the top-level element (asn1tools' ``decode`` ignores them);
* checks every tag against the release's grammar, so a file of another release or with
  unknown extensions is reported instead of silently losing fields;
* turns asn1tools' errors into :class:`~clearing.errors.DecodeError` with offset and path.

Values are asn1tools' Python representation (dicts, ``(name, value)`` tuples for CHOICEs).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import os
import pickle
import re
import sys
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import asn1tools

from clearing.codecs.ber import (
    APPLICATION,
    TLV,
    LimitError,
    element_at,
    iter_children,
    locate,
    read_header,
    tag_key,
    tag_name,
)
from clearing.codecs.grammar import Grammar, build_grammar
from clearing.environment import cache_dir, environment
from clearing.errors import DecodeError, EncodeError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "Decoded",
    "FileInfo",
    "Kind",
    "check_tags",
    "decode",
    "encode",
    "grammar",
    "sniff",
    "spec",
    "specs_dir",
    "trailing_error",
]

Kind = Literal["tap", "notification", "rap", "ack", "nrt"]

TAP_RELEASES = (9, 10, 11, 12)
RAP_TAP_RELEASES = (9, 10, 11, 12)

# header tags (tap3-rap.md §4.2)
_T_TRANSFER_BATCH = tag_key(APPLICATION, 1)
_T_NOTIFICATION = tag_key(APPLICATION, 2)
_T_BATCH_CONTROL = tag_key(APPLICATION, 4)
_T_SPEC = tag_key(APPLICATION, 201)
_T_RELEASE = tag_key(APPLICATION, 189)
_T_RETURN_BATCH = tag_key(APPLICATION, 534)
_T_ACK = tag_key(APPLICATION, 535)
_T_RAP_BATCH_CONTROL = tag_key(APPLICATION, 537)
_T_RAP_SPEC = tag_key(APPLICATION, 544)
_T_RAP_RELEASE = tag_key(APPLICATION, 543)
_T_NRT_SPEC = tag_key(APPLICATION, 41)
_T_NRT_RELEASE = tag_key(APPLICATION, 37)
# every member a TransferBatch of any release may hold (BatchControlInfo included)
_TRANSFER_BATCH_GROUPS = frozenset(tag_key(APPLICATION, n) for n in (3, 4, 5, 6, 7, 8, 15))


def specs_dir() -> Path:
    """Folder of the ASN.1 modules (``asn1/`` of ``$CLEARING_SPECS_DIR`` or the shipped tree)."""
    return environment().specs_dir


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What :func:`sniff` learnt from the header.

    Attributes:
        kind: tap | notification | rap | ack | nrt.
        version: "3.12" (TAP, Notification), "1.5" (RAP), "2.1" (NRT), None (ACK).
        tap_release: the TAP release the schema is picked for (TAP, Notification, RAP).
        length: bytes covered by the top-level element (trailing bytes are beyond it).
    """

    kind: Kind
    version: str | None
    tap_release: int | None
    length: int


def _int(data: bytes, node: TLV) -> int:
    return int.from_bytes(data[node.content_start : node.content_end], "big", signed=True)


def _children_map(data: bytes, node: TLV) -> dict[int, TLV]:
    out: dict[int, TLV] = {}
    for child in iter_children(data, node):
        out.setdefault(child.key, child)
    return out


def sniff(data: bytes, *, lenient: bool = False) -> FileInfo:
    """Tell the kind and version of a file from its header bytes.

    Args:
        data: the file's bytes.
        lenient: for validation, which reports a broken header as its own TD.57 rule rather
            than as an undecodable file: a TAP TransferBatch or Notification whose header does
            not tell its release the usual way (SpecificationVersionNumber missing or not 3)
            is taken as of its ReleaseVersionNumber, and a TransferBatch without
            BatchControlInfo (whose members are all TransferBatch groups) as TAP 3.12.

    Raises:
        DecodeError: not a TAP, RAP or NRT file, or its header is unreadable.
    """
    if len(data) < 2:
        msg = "file is empty or shorter than a BER header"
        raise DecodeError(msg, offset=0)
    top, kids = _top(data)
    if top.key == _T_TRANSFER_BATCH and _T_BATCH_CONTROL in kids:
        bci = _children_map(data, kids[_T_BATCH_CONTROL])
        return _tap_info("tap", data, bci, top, lenient=lenient)
    if top.key == _T_TRANSFER_BATCH and (_T_NRT_SPEC in kids or _T_NRT_RELEASE in kids):
        spec = _int(data, kids[_T_NRT_SPEC]) if _T_NRT_SPEC in kids else None
        rel = _int(data, kids[_T_NRT_RELEASE]) if _T_NRT_RELEASE in kids else None
        if (spec, rel) != (2, 1):
            msg = f"unsupported NRTRDE version {spec}.{rel}"
            raise DecodeError(msg, offset=0, path="nrtrde", hint="only NRT 2.1 is supported")
        return FileInfo("nrt", "2.1", None, top.end)
    if lenient and top.key == _T_TRANSFER_BATCH and kids and kids.keys() <= _TRANSFER_BATCH_GROUPS:
        # no BatchControlInfo, so no release to read: the current one (TD.57 Transfer Batch 30)
        return FileInfo("tap", f"3.{TAP_RELEASES[-1]}", TAP_RELEASES[-1], top.end)
    if top.key == _T_NOTIFICATION:
        return _tap_info("notification", data, kids, top, lenient=lenient)
    if top.key == _T_RETURN_BATCH:
        if _T_RAP_BATCH_CONTROL not in kids:
            msg = "RAP ReturnBatch without rapBatchControlInfoRap"
            raise DecodeError(msg, offset=0, path="returnBatch")
        rbc = _children_map(data, kids[_T_RAP_BATCH_CONTROL])
        rap = (
            _int(data, rbc[_T_RAP_SPEC]) if _T_RAP_SPEC in rbc else None,
            _int(data, rbc[_T_RAP_RELEASE]) if _T_RAP_RELEASE in rbc else None,
        )
        if rap != (1, 5):
            msg = f"unsupported RAP version {rap[0]}.{rap[1]}"
            raise DecodeError(msg, offset=0, path="returnBatch.rapBatchControlInfoRap")
        tap = _tap_info("rap", data, rbc, top)
        return FileInfo("rap", "1.5", tap.tap_release, top.end)
    if top.key == _T_ACK:
        return FileInfo("ack", None, None, top.end)
    if top.end < len(data):
        raise trailing_error(data, top.end)
    msg = f"not a TAP, RAP or NRT file: top-level tag {tag_name(top.key)}"
    raise DecodeError(
        msg, offset=0, hint="expected TransferBatch, Notification, ReturnBatch or Acknowledgement"
    )


_XML_ROOT = re.compile(rb"<([A-Za-z_][\w.:-]*)")
_XML_START = re.compile(rb"\s*<[?!A-Za-z_]")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def _xml_root(data: bytes) -> str | None:
    """``<root>`` of a file that is XML (None: it is not); UTF-8 or UTF-16 alike."""
    head = data[:4096]
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom) :]
            break
    if head[:1] == b"\x00" or head[1:2] == b"\x00":  # UTF-16 without a BOM, or after it
        head = head.replace(b"\x00", b"")
    if not _XML_START.match(head):
        return None
    body = re.sub(rb"<\?.*?\?>|<!--.*?-->|<!.*?>", b"", head, flags=re.DOTALL)
    m = _XML_ROOT.search(body)
    return f"<{m.group(1).decode('ascii', 'replace')}>" if m else "no root element"


_NAMED_ROOTS: dict[int, Kind] = {
    _T_TRANSFER_BATCH: "tap",
    _T_NOTIFICATION: "tap",
    _T_RETURN_BATCH: "rap",
    _T_ACK: "rap",
}


def _element_path(data: bytes, offset: int) -> str:
    """The elements enclosing ``offset`` by their ASN.1 names, tag names where not known.

    The names are those of TAP 3.12 (TransferBatch, Notification), RAP 1.5 or NRT 2.1, after the
    top-level tag (a broken header tells no release): a message aid, not a verdict.
    """
    chain = locate(data, offset)
    if not chain:
        return "(no element)"
    kind = _NAMED_ROOTS.get(chain[0][0])
    if kind == "tap" and _first_member(data) in (_T_NRT_SPEC, _T_NRT_RELEASE):
        kind = "nrt"  # NRTRDE's top-level tag is TransferBatch's too
    try:
        g = grammar(kind) if kind else None
    except Exception:  # a message aid: names or not, never a new error
        g = None
    out = ""
    type_name: str | None = None
    for i, (key, _pos, index) in enumerate(chain):
        meaning = None
        if g is not None:
            if i == 0:
                meaning = g.roots.get(key)
            elif type_name is not None:
                meaning = g.child(type_name, key)
        # the entries of a list (TAP names its SEQUENCE OF types ...List) carry their index
        listed = i > 0 and (type_name is None or type_name.endswith("List") or not meaning)
        if listed:
            out += f"[{index}]"
        if meaning is None:
            out += f".{tag_name(key)}" if i else tag_name(key)
            type_name = None
            continue
        if meaning.name:
            out += f".{meaning.name}" if i else meaning.name
        type_name = meaning.type_name
    return out


def _first_member(data: bytes) -> int | None:
    """The tag of the top-level element's first member (None: unreadable)."""
    try:
        start = read_header(data, 0)[2]
        return read_header(data, start)[0]
    except DecodeError:
        return None


def _stopped(data: bytes, exc: DecodeError) -> DecodeError:
    """``exc`` (a BER fault found while reading the header) told with where decoding stopped.

    A length that runs past the end of the file is a truncated file: decoding stopped at the
    file's end, inside the elements that enclose it.
    """
    at = exc.offset or 0
    reason = exc.reason
    try:
        key, _c, start, length = read_header(data, at)
    except DecodeError:
        length = None
    if length is not None and start + length > len(data):
        where = _element_path(data, len(data) - 1)
        msg = (
            f"decoding stopped at the end of the file (offset {len(data)}) in `{where}`: "
            f"{tag_name(key)} at offset {at} declares {length} byte(s) of content, "
            f"only {len(data) - start} follow"
        )
        hint = "the file is truncated (or that length is damaged); ask the sender for a copy"
        return DecodeError(msg, offset=len(data), hint=hint)
    where = _element_path(data, at)
    msg = f"decoding stopped at offset {at} in `{where}`: {reason}"
    hint = "the file is damaged there; ask the sender for a clean copy"
    return DecodeError(msg, offset=at, hint=hint)


def trailing_error(data: bytes, end: int) -> DecodeError:
    """The error for bytes after the top-level element, which ends at ``end``.

    A second constructed APPLICATION element there (e.g. a second TransferBatch) is named as
    such: a file holds one top-level element.
    """
    top = element_at(data, 0)
    first = ("an empty" if top.content_start == top.content_end else "the") + " top-level"
    try:
        second = element_at(data, end)
        is_element = second.constructed and second.key >> 24 == APPLICATION
    except DecodeError:
        is_element = False
    if is_element:
        msg = (
            f"a second top-level element {tag_name(second.key)} at offset {end}, after "
            f"{first} {tag_name(top.key)} ({end} bytes): a file holds one top-level element"
        )
        hint = "two files were joined, or the first element is a stub; ask the sender"
        return DecodeError(msg, offset=end, hint=hint)
    msg = f"{len(data) - end} trailing byte(s) after the top-level element"
    return DecodeError(
        msg, offset=end, hint="the file is damaged or padded; ask the sender for a clean copy"
    )


def _top(data: bytes) -> tuple[TLV, dict[int, TLV]]:
    """The top-level element and its children by tag, or what the file is instead.

    Raises:
        DecodeError: XML, a primitive top-level element, or BER broken (the element and offset
            where decoding stopped).
    """
    root = _xml_root(data)
    if root is not None:
        msg = f"XML ({root}), not a TAP file: TAP, RAP and NRT files are BER-encoded ASN.1"
        raise DecodeError(
            msg,
            offset=0,
            hint="an XML rendering of a file is for reading only; ask the sender for the BER file",
        )
    try:
        top = element_at(data, 0)
        if not top.constructed:
            msg = f"not a TAP, RAP or NRT file: top-level {tag_name(top.key)} is not constructed"
            raise DecodeError(msg, offset=0, hint="the file is damaged or of another format")
        kids = _children_map(data, top)
    except DecodeError as exc:
        if exc.offset is None or isinstance(exc, LimitError) or exc.reason.startswith("not a"):
            raise
        raise _stopped(data, exc) from None
    return top, kids


def _tap_info(
    kind: Kind, data: bytes, fields: dict[int, TLV], top: TLV, *, lenient: bool = False
) -> FileInfo:
    spec = _int(data, fields[_T_SPEC]) if _T_SPEC in fields else None
    rel = _int(data, fields[_T_RELEASE]) if _T_RELEASE in fields else None
    if lenient and kind != "rap" and spec != 3 and rel in TAP_RELEASES:
        # SpecificationVersionNumber missing or wrong (TD.57 Batch Control 34 / 20): the
        # release is still told by ReleaseVersionNumber
        return FileInfo(kind, f"3.{rel}", rel, top.end)
    if spec is None or rel is None:
        what = "specificationVersionNumber" if spec is None else "releaseVersionNumber"
        msg = f"{what} missing from the header: the TAP release cannot be told"
        raise DecodeError(
            msg,
            offset=top.offset,
            path=kind,
            hint="TD.57 fatal error (Batch Control 34); the file must be rejected",
        )
    supported = RAP_TAP_RELEASES if kind == "rap" else TAP_RELEASES
    if spec != 3 or rel not in supported:
        msg = f"unsupported TAP release {spec}.{rel}"
        raise DecodeError(
            msg,
            offset=top.offset,
            path=kind,
            hint=f"supported TAP releases: {', '.join(f'3.{r:02d}' for r in supported)}",
        )
    return FileInfo(kind, f"3.{rel}", rel, top.end)


def _module_texts(kind: Kind, tap_release: int | None) -> list[str]:
    root = specs_dir()
    rel = tap_release or 12
    if kind == "nrt":
        return [(root / "NRT-0201.asn").read_text(encoding="utf-8")]
    tap = (root / f"TAP-03{rel:02d}.asn").read_text(encoding="utf-8")
    if kind in ("tap", "notification"):
        return [tap]
    rap = (root / "RAP-0105.asn").read_text(encoding="utf-8")
    rap = rap.replace("FROM TAP-0312;", f"FROM TAP-03{rel:02d};")
    if rel < 11:
        # RAP 1.5 returning TAP < 3.11 needs the VAS types (see the module's own comments)
        rap = re.sub(r"(?m)^--(\s*,VasCode, VasDescription, VasShortDescription)", r"\1", rap)
        rap = re.sub(r"(?m)^--(\s*vASInformationError\s)", r"\1", rap)
        # only the block after "uncomment the following 12 lines" (not the licence text)
        head, sep, block = rap.partition("uncomment the following 12 lines")
        block = re.sub(r"(?m)^--((?:Vas|VAS)\w+ ::=.*|\{|\}|\.\.\.|\s+\w+\s+\w+.*)$", r"\1", block)
        rap = head + sep + block
    return [tap, rap]


_ROOTS: dict[Kind, str] = {
    "tap": "DataInterChange",
    "notification": "DataInterChange",
    "rap": "RapDataInterChange",
    "ack": "RapDataInterChange",
    "nrt": "Nrtrde",
}


def _schema_key(kind: Kind, tap_release: int | None) -> tuple[str, int | None]:
    if kind in ("tap", "notification"):
        return ("tap", tap_release)
    if kind == "ack":
        return ("rap", 12)
    if kind == "nrt":
        return ("nrt", None)
    return ("rap", tap_release)


_CACHE_FORMAT = 1
"""Bumped when what the cache file holds changes shape (part of the key)."""


def _cache_path(family: str, tap_release: int | None, text: str) -> Path | None:
    """The cache file of one family and release's modules, or None when there is no folder."""
    folder = cache_dir()
    if folder is None:
        return None
    key = hashlib.sha256()
    for part in (
        f"format {_CACHE_FORMAT}",
        f"asn1tools {asn1tools.__version__}",
        f"python {sys.implementation.cache_tag} {sys.version}",
        f"pickle {pickle.HIGHEST_PROTOCOL}",
        text,
    ):
        key.update(part.encode("utf-8") + b"\0")
    return folder / f"asn1-{family}-{tap_release}-{key.hexdigest()[:32]}.pickle"


def _load_cached(path: Path) -> tuple[dict[str, Any], Any] | None:
    """The parsed modules and compiled specification stored at ``path``, or None.

    Any failure (missing, unreadable, truncated, of another asn1tools) is None: compile. So is
    a file another user owns or may write: unpickling runs code, only the user's own is read.
    """
    try:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
            value = pickle.loads(f.read())  # the user's own file, checked above
    except Exception:  # a cache never fails a run
        return None
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], dict)
        and callable(getattr(value[1], "decode_with_length", None))
    ):
        return value
    return None


def _store_cached(path: Path, value: tuple[dict[str, Any], Any]) -> None:
    """Write ``value`` to ``path`` (a temporary file renamed into place); never raises."""
    tmp: Path | None = None
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        tmp = path.parent / name
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        tmp.replace(path)
        tmp = None
    except Exception:  # a cache never fails a run: the next one compiles again
        return
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


@functools.cache
def _built(family: str, tap_release: int | None) -> tuple[dict[str, Any], Any]:
    """The modules parsed (for the grammar) and compiled, from the cache or done now."""
    kind: Kind = family  # type: ignore[assignment]
    text = "\n".join(_module_texts(kind, tap_release))
    path = _cache_path(family, tap_release, text)
    cached = _load_cached(path) if path is not None else None
    if cached is not None:
        return cached
    parsed: dict[str, Any] = asn1tools.parse_string(text)
    # compile_string is compile_dict(parse_string(...)); compile_dict changes what it is given
    compiled = asn1tools.compile_dict(copy.deepcopy(parsed), "ber")
    if path is not None:
        _store_cached(path, (parsed, compiled))
    return parsed, compiled


def _compiled(family: str, tap_release: int | None) -> Any:
    return _built(family, tap_release)[1]


@functools.cache
def _grammar(family: str, tap_release: int | None) -> Grammar:
    kind: Kind = family  # type: ignore[assignment]
    return build_grammar(copy.deepcopy(_built(family, tap_release)[0]), _ROOTS[kind])


def spec(kind: Kind, tap_release: int | None = 12) -> Any:
    """The compiled asn1tools specification for a kind and TAP release (cached)."""
    return _compiled(*_schema_key(kind, tap_release))


def grammar(kind: Kind, tap_release: int | None = 12) -> Grammar:
    """The tag grammar for a kind and TAP release (cached)."""
    return _grammar(*_schema_key(kind, tap_release))


def check_tags(data: bytes, info: FileInfo, *, start: int = 0) -> None:
    """Check every tag of the top-level element against the release's grammar.

    Raises:
        DecodeError: naming the first unknown tag, its offset and its element path.
    """
    g = grammar(info.kind, info.tap_release)
    top = element_at(data, start)
    root = g.roots.get(top.key)
    if root is None:
        msg = f"unknown top-level tag {tag_name(top.key)}"
        raise DecodeError(msg, offset=start)
    stack: list[tuple[TLV, str, str]] = [(top, root.type_name, root.name)]
    while stack:
        node, type_name, path = stack.pop()
        if not node.constructed:
            continue
        try:
            children = iter_children(data, node)
        except DecodeError as exc:
            raise _stopped(data, exc) from None
        counts: dict[str, int] = {}
        for child in children:
            meaning = g.child(type_name, child.key)
            if meaning is None:
                msg = f"unknown tag {tag_name(child.key)} inside `{type_name}`"
                raise DecodeError(
                    msg,
                    offset=child.offset,
                    path=path,
                    hint=f"not part of {_release_label(info)}; the file may be of another "
                    "release or carry extensions this release does not define",
                )
            if meaning.name:
                child_path = f"{path}.{meaning.name}"
            else:
                i = counts.get(type_name, 0)
                counts[type_name] = i + 1
                child_path = f"{path}[{i}]"
            if child.constructed != meaning.constructed:
                form = "constructed" if child.constructed else "primitive"
                msg = f"{tag_name(child.key)} is {form}, which `{meaning.type_name}` is not"
                raise DecodeError(msg, offset=child.offset, path=child_path)
            stack.append((child, meaning.type_name, child_path))


def _release_label(info: FileInfo) -> str:
    if info.kind in ("tap", "notification"):
        return f"TAP {info.version}"
    if info.kind == "rap":
        return f"RAP 1.5 for TAP {info.version}"
    return info.kind.upper()


@dataclass(frozen=True, slots=True)
class Decoded:
    """A whole file decoded with asn1tools."""

    info: FileInfo
    value: Any  # asn1tools value of the top-level type, e.g. ("transferBatch", {...})


_OFFSET_RE = re.compile(r"at offset (\d+)")


def asn1_error_parts(exc: Exception) -> tuple[str, int | None, str | None]:
    """A short reason, the offset and the element path of an asn1tools error.

    asn1tools puts whole codec trees (kilobytes of repr) into its messages; keep names only.
    """
    location = getattr(exc, "location", None) or []
    # asn1tools lists the location innermost first
    names = [str(getattr(x, "name", x)) for x in reversed(location)]
    path = ".".join(n for n in names if n and len(n) < 80) or None
    message = str(getattr(exc, "message", exc))
    offset = getattr(exc, "offset", None)
    if offset is None:
        m = _OFFSET_RE.search(message)
        offset = int(m.group(1)) if m else None
    if message.endswith("is missing and has no default value"):
        missing = names[-1] if names else "a mandatory element"
        reason = f"mandatory `{missing}` is missing"
    elif len(message) > 160:
        reason = message[:80] + " … " + message[-60:]
    else:
        reason = message
    return reason, offset if isinstance(offset, int) else None, path


def decode(
    data: bytes, *, file: str | None = None, check: bool = True, info: FileInfo | None = None
) -> Decoded:
    """Decode a whole TAP / Notification / RAP / ACK / NRT file.

    Args:
        data: the file's bytes.
        file: the file name, for error messages only.
        check: check every tag against the release grammar (recommended).
        info: the header as :func:`sniff` read it (e.g. leniently); sniffed here when None.

    Raises:
        DecodeError: with file, offset and path.
    """
    try:
        if info is None:
            info = sniff(data)
        if info.length != len(data):
            raise trailing_error(data, info.length)
        if check:
            check_tags(data, info)
        s = spec(info.kind, info.tap_release)
        root = _ROOTS[info.kind]
        try:
            value, _length = _decode_with_length(s, root, data)
        except asn1tools.Error as exc:
            reason, offset, path = asn1_error_parts(exc)
            msg = f"schema violation: {reason}"
            raise DecodeError(
                msg,
                offset=offset,
                path=path,
                hint="the file does not follow the ASN.1 module of its release",
            ) from None
        except (ValueError, IndexError, KeyError, TypeError, RecursionError) as exc:
            msg = f"undecodable content: {exc!r}"
            raise DecodeError(msg, offset=None) from None
    except DecodeError as exc:
        raise exc.with_file(file) if file else exc from None
    return Decoded(info, value)


def _decode_with_length(s: Any, root: str, data: bytes) -> tuple[Any, int]:
    try:
        value, length = s.decode_with_length(root, data)
    except asn1tools.Error as exc:
        # asn1tools cannot find the end of an indefinite-length SEQUENCE that has members
        # after its extension marker (eerimoq/asn1tools#183, e.g. NRT Moc/Mtc/Gprs); the
        # definite form of the same element decodes to the same value.
        if "end-of-contents" not in str(getattr(exc, "message", exc)):
            raise
        from clearing.codecs.indefinite import to_definite

        value, _ = s.decode_with_length(root, to_definite(data))
        length = len(data)
    return value, int(length)


def encode(kind: Kind, value: Any, *, tap_release: int | None = 12) -> bytes:
    """Encode an asn1tools value (definite lengths) for a kind and TAP release.

    Raises:
        EncodeError: the value does not fit the module.
    """
    s = spec(kind, tap_release)
    try:
        return bytes(s.encode(_ROOTS[kind], value))
    except (asn1tools.Error, ValueError, TypeError, KeyError) as exc:
        msg = f"cannot encode {kind}: {exc}"
        raise EncodeError(msg) from None
