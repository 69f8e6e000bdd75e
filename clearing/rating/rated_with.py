"""Which reference data rated each rated lake file: the monthly rerate re-rates only what changed.

Re-rating a month (:mod:`clearing.rating.rerate`) rates every row of the period again with
today's reference data. A row whose file was rated with the *same* reference data for its
partner and direction, by the same rating code, re-rates to itself: rating is a function of
the record, the reference tables and the code. So the rate stage records, per processing date,
what rated each file it wrote (``lake/_rated_with/date=YYYY-MM-DD.json``)::

    {"references": {"<id>": {"code": "...", "tables": {"agreements": "<sha256>", ...},
                             "iot": {"inbound": {"<partner>": "<sha256>"}, "outbound": {...}}}},
     "files": {"rated_visitors/date=.../partner=X/part-0.parquet":
               {"sha256": "<of the file>", "reference": "<id>"}}}

and the rerate trusts a file's record only when the file still has those bytes (SHA-256: a file
rewritten by any path with other rows — a replay, an edit — is re-rated; a restored or copied
file with the same bytes is the same file) and the reference is still current for it:

* the code fingerprint and the ``agreements``, ``imsi_ranges`` and ``fx`` tables equal;
* the IOT rows of the file's partner and direction equal (each is hashed on its own: a
  tariff change of one partner leaves the others' files as they were). A file of no partner
  (``unrated_visitors``) needs the whole direction unchanged.

No record, another file or a changed reference: the rows are re-rated, as before. The record is
an optimisation only; ``clearing rerate --full`` ignores it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearing._io import file_sha256, write_atomic

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import date

    import polars as pl

    from clearing.rating._book import Rates

__all__ = ["Reference", "current", "fingerprint", "forget_before", "record", "reference_of"]

FOLDER = "_rated_with"
#: the modules whose code decides a rated row (their source is part of the fingerprint)
_RATING_CODE = (
    "clearing.money",
    "clearing.rating._book",
    "clearing.rating._iot",
    "clearing.rating.cdr",
    "clearing.rating.check",
    "clearing.rating.inbound",
    "clearing.rating.validity",
)
#: the IOT direction a dataset's rows are rated in
DIRECTION = {
    "rated_visitors": "inbound",
    "unrated_visitors": "inbound",
    "rated_partner": "outbound",
}

Reference = dict[str, Any]


def _code() -> str:
    """A hash of the rating code's source (empty when a module's source cannot be read)."""
    digest = hashlib.sha256()
    for name in _RATING_CODE:
        file = getattr(importlib.import_module(name), "__file__", None)
        try:
            digest.update(Path(str(file)).read_bytes())
        except OSError:
            return ""
    return digest.hexdigest()


def _hash(name: str, versions: Iterable[str]) -> str:
    return hashlib.sha256("\n".join([name, *sorted(versions)]).encode()).hexdigest()


def _versions(df: pl.DataFrame) -> list[str]:
    return [str(v) for v in df["version"].to_list()]


def fingerprint(rates: Rates) -> Reference:
    """What a rating with ``rates`` depends on, as hashes (see the module docstring)."""
    iot: dict[str, dict[str, str]] = {}
    for (direction, partner), rows in rates.iot.group_by(["direction", "partner"]):
        iot.setdefault(str(direction), {})[str(partner)] = _hash(
            f"{direction}/{partner}", _versions(rows)
        )
    return {
        "code": _code(),
        "tables": {
            name: _hash(name, _versions(getattr(rates, name)))
            for name in ("agreements", "imsi_ranges", "fx")
        },
        "iot": {d: dict(sorted(p.items())) for d, p in sorted(iot.items())},
    }


def _record_path(lake: Path, day: date) -> Path:
    return lake / FOLDER / f"date={day.isoformat()}.json"


def _sha256(path: Path) -> str | None:
    try:
        return file_sha256(path)[0]
    except OSError:
        return None


def _load(lake: Path, day: date) -> dict[str, Any]:
    try:
        data = json.loads(_record_path(lake, day).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"references": {}, "files": {}}
    if not isinstance(data, dict):
        return {"references": {}, "files": {}}
    return data


def record(lake: Path, day: date, paths: Iterable[Path], reference: Reference) -> None:
    """Record that ``paths`` (lake files of ``day``, just written) were rated with ``reference``.

    The day's other files keep their entries while they are the files recorded (a sent
    partner's file, kept by a replay, stays rated with what rated it then).
    """
    lake = Path(lake)
    ref_id = hashlib.sha256(json.dumps(reference, sort_keys=True).encode()).hexdigest()[:16]
    old = _load(lake, day)
    written: dict[str, Any] = {}
    for p in paths:
        with contextlib.suppress(ValueError):
            rel = Path(p).relative_to(lake).as_posix()
            if rel.split("/", 1)[0] in DIRECTION and (sha := _sha256(Path(p))) is not None:
                written[rel] = {"sha256": sha, "reference": ref_id}
    # the day's other files: as recorded (checked when read: a file since changed is not trusted)
    files = {
        rel: entry
        for rel, entry in dict(old.get("files", {})).items()
        if isinstance(entry, dict) and rel not in written and (lake / rel).is_file()
    }
    files.update(written)
    refs = {**dict(old.get("references", {})), ref_id: reference}
    used = {e.get("reference") for e in files.values()}
    data = {
        "references": {k: v for k, v in sorted(refs.items()) if k in used},
        "files": dict(sorted(files.items())),
    }
    target = _record_path(lake, day)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def reference_of(
    lake: Path, day: date, files: Iterable[Path] | None = None
) -> dict[str, Reference]:
    """Per file of ``day`` (relative to the lake) still as recorded: the reference that rated it.

    ``files``: only these (the others' bytes are not read).
    """
    data = _load(lake, day)
    refs = data.get("references", {})
    wanted: set[str] | None = None
    if files is not None:
        wanted = set()
        for f in files:
            with contextlib.suppress(ValueError):
                wanted.add(Path(f).relative_to(lake).as_posix())
    out: dict[str, Reference] = {}
    for rel, entry in dict(data.get("files", {})).items():
        if wanted is not None and rel not in wanted:
            continue
        if not isinstance(entry, dict) or entry.get("reference") not in refs:
            continue
        if entry.get("sha256") and _sha256(lake / rel) == entry["sha256"]:
            out[rel] = refs[entry["reference"]]
    return out


def current(file: Path, lake: Path, recorded: dict[str, Reference], now: Reference) -> bool:
    """Whether ``file`` (of :data:`DIRECTION`'s datasets) was rated as ``now`` would rate it."""
    try:
        rel = file.relative_to(lake).as_posix()
    except ValueError:
        return False
    then = recorded.get(rel)
    if then is None or not now["code"] or then.get("code") != now["code"]:
        return False
    if then.get("tables") != now["tables"]:
        return False
    direction = DIRECTION.get(rel.split("/", 1)[0])
    if direction is None:
        return False
    old_iot, new_iot = then.get("iot", {}).get(direction, {}), now["iot"].get(direction, {})
    partner = next(
        (part.split("=", 1)[1] for part in rel.split("/") if part.startswith("partner=")), None
    )
    if partner is None or partner == "None":
        return bool(old_iot == new_iot)
    return bool(old_iot.get(partner) == new_iot.get(partner))


def forget_before(lake: Path, before: date) -> int:
    """Remove the records of the days before ``before`` (their files archived); how many."""
    removed = 0
    for f in sorted((Path(lake) / FOLDER).glob("date=*.json")):
        if f.stem.removeprefix("date=") < before.isoformat():
            f.unlink(missing_ok=True)
            removed += 1
    return removed
