"""Every delivered entry gets a fate: recorded in the store, quarantined into ``failed/<D>/``.

An entry a partner's channel delivers (or a file found in ``inbox/``) ends the night in
exactly one of :data:`~clearing.store.FATES`::

    processed     decoded and validated; its records are in the lake (some may be returned)
    copy_ignored  the same bytes as a file already processed (a TD.57 copy): nothing done
    returned      the whole file was returned (fatal RAP, CIBER batch reject / return)
    quarantined   moved to failed/<D>/<name>, a reason file beside it; an anomaly (exit 1)
    refused       a remote entry that cannot be fetched at all: left on the server

:func:`quarantine` is the one way a file leaves the flow: it is moved (or copied, when the
day's claimed inputs must stay as they are) to ``failed/<D>/`` under a safe name
(:func:`~clearing.names.stored_name`), with ``<name>.reason.txt`` saying what it is, why it
was set aside and what to do, and its fate is recorded. Quarantining the same bytes again (a
re-run) finds them there and records the same fate: nothing is doubled.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clearing._io import file_sha256, write_atomic
from clearing.names import printable_name, stored_name
from clearing.store import FATES, EntryFate, open_store

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import date
    from pathlib import Path

    from clearing import config

__all__ = [
    "FATES",
    "Fate",
    "day_fates",
    "first_reported",
    "quarantine",
    "record_fate",
    "record_fates",
    "refused_since",
]


@dataclass(frozen=True, slots=True)
class Fate:
    """What became of one delivered entry.

    Attributes:
        name: the entry's name as delivered (escaped by :func:`printable_name` when stored).
        partner: the channel that delivered it (None: not known, e.g. an operator's drop).
        fate: one of :data:`FATES`.
        stage: the stage that decided (``collect``, ``claim``, ``validate``).
        reason: why, in words (for ``quarantined`` / ``refused``: what is wrong).
        hint: what to do about it.
        path: where it is now, relative to the work folder (None: on the server).
    """

    name: str
    partner: str | None
    fate: str
    stage: str
    reason: str = ""
    hint: str = ""
    path: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """The fate as the run manifest lists it (``facts["entries"]``)."""
        return {
            "name": printable_name(self.name),
            "partner": self.partner,
            "fate": self.fate,
            "stage": self.stage,
            "reason": self.reason,
            "hint": self.hint,
            "path": self.path,
        }


def _row(day: date, fate: Fate) -> EntryFate:
    if fate.fate not in FATES:
        msg = f"unknown fate `{fate.fate}`: one of {', '.join(FATES)}"
        raise ValueError(msg)
    return EntryFate(
        processing_date=day,
        stage=fate.stage,
        name=printable_name(fate.name),
        partner=fate.partner or "",
        fate=fate.fate,
        reason=fate.reason,
        hint=fate.hint,
        path=fate.path,
    )


def _fate(row: EntryFate) -> Fate:
    return Fate(
        name=row.name,
        partner=row.partner or None,
        fate=row.fate,
        stage=row.stage,
        reason=row.reason,
        hint=row.hint,
        path=row.path,
    )


def record_fate(wd: config.WorkDir, day: date, fate: Fate) -> Fate:
    """Record one entry's fate on ``day`` (a re-run replaces the entry's row); return it."""
    with open_store(wd.root) as store, store.transaction():
        store.fates.record(_row(day, fate))
    return fate


def record_fates(wd: config.WorkDir, day: date, stage: str, fates: Iterable[Fate]) -> None:
    """The fates ``stage`` decided on ``day`` become exactly ``fates`` (re-runs replace)."""
    rows = [_row(day, f) for f in fates]
    with open_store(wd.root) as store, store.transaction():
        store.fates.replace_stage(day, stage, rows)


def day_fates(wd: config.WorkDir, day: date) -> list[Fate]:
    """Every entry's fate of processing date ``day`` (collect, claim, validate order)."""
    if not (wd.root / "clearing.duckdb").exists():
        return []
    with open_store(wd.root) as store:
        return [_fate(r) for r in store.fates.of_day(day)]


def refused_since(wd: config.WorkDir, day: date, name: str, partner: str) -> date | None:
    """Since when ``partner``'s channel has kept refusing the entry ``name``, before ``day``.

    The first date of the unbroken run of ``refused`` fates that ends on the entry's last fate
    before ``day`` (None: it was not refused on the last date it was seen, or never seen), so
    an entry still on the server night after night is reported new only the first night.
    """
    if not (wd.root / "clearing.duckdb").exists():
        return None
    with open_store(wd.root) as store:
        rows = [
            r for r in store.fates.of_name(printable_name(name), partner) if r.processing_date < day
        ]
    since: date | None = None
    for row in reversed(rows):
        if row.fate != "refused":
            break
        since = row.processing_date
    return since


def first_reported(wd: config.WorkDir, day: date, fate: Fate) -> date | None:
    """The earliest date before ``day`` on which this entry got this fate for this reason.

    None when the fate is new on ``day`` (a re-run of ``day`` itself does not count): the
    run reports a quarantined or refused entry as an anomaly once, not every night it is
    seen again.
    """
    if not (wd.root / "clearing.duckdb").exists():
        return None
    with open_store(wd.root) as store:
        rows = store.fates.of_name(printable_name(fate.name), fate.partner or "")
    earlier = [
        r.processing_date
        for r in rows
        if r.processing_date < day and r.fate == fate.fate and r.reason == fate.reason
    ]
    return min(earlier) if earlier else None


def _free_name(folder: Path, want: str, sha256: str) -> tuple[Path, bool]:
    """Where bytes with ``sha256`` go in ``folder``: (path, already there with these bytes)."""
    candidate = folder / want
    n = 1
    while candidate.exists() or candidate.is_symlink():
        if candidate.is_file() and file_sha256(candidate)[0] == sha256:
            return candidate, True
        n += 1
        candidate = folder / f"{want}.{n}"
    return candidate, False


def _content(source: Path) -> tuple[str, int] | None:
    """(sha256, size) of a regular file we can read; None for anything else."""
    if source.is_symlink() or not source.is_file():
        return None
    try:
        return file_sha256(source)
    except OSError:
        return None


def _set_aside(folder: Path, source: Path, entry: str) -> tuple[Path, str | None, str]:
    """Move an entry that cannot be read or is not a file; (reason file's entry, path, what)."""
    kind = (
        "a symbolic link"
        if source.is_symlink()
        else "a directory"
        if source.is_dir()
        else "a file that cannot be read"
        if source.is_file()
        else "not a regular file"
    )
    want = stored_name(entry)
    target, n = folder / want, 1
    while target.exists() or target.is_symlink():
        n += 1
        target = folder / f"{want}.{n}"
    try:
        source.rename(target)
    except OSError as exc:
        # cannot even be moved (another file system, no permission on inbox/): left in place
        note = f"{kind}; could not be moved ({exc.strerror or exc}), left at {source}"
        return folder / want, None, note
    return target, target.relative_to(folder.parents[1]).as_posix(), f"{kind}, moved as it is"


def quarantine(
    wd: config.WorkDir,
    day: date,
    source: Path,
    *,
    partner: str | None,
    reason: str,
    hint: str,
    stage: str,
    keep: bool = False,
    name: str | None = None,
) -> Fate:
    """Set ``source`` aside in ``failed/<day>/`` with a reason file; record and return its fate.

    Args:
        wd: the work folder.
        day: the processing date (the folder under ``failed/``).
        source: the local file (a fetched entry, a file of the inbox or of the day's inputs).
        partner: the channel that delivered it (None: not known).
        reason: what is wrong with it (the manifest, the summary and the reason file say it).
        hint: what to do (the reason file and the summary say it).
        stage: the stage that decided.
        keep: copy instead of moving (the day's claimed inputs stay as they were, so that a
            re-run of the date reads the same files and decides the same).
        name: the entry's name as delivered, when ``source`` is stored under another.
    """
    entry = name or source.name
    folder = wd.failed / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    content = _content(source)
    if content is None:
        # a directory, a link, a FIFO, or a file we may not read: moved as it is (a rename
        # needs no read), never copied nor hashed; if even that fails it stays where it is
        # and its fate says so
        target, rel, what = _set_aside(folder, source, entry)
    else:
        sha256, size = content
        what = f"{size} bytes, sha256 {sha256}"
        target, there = _free_name(folder, stored_name(entry), sha256)
        if not there:
            partial = folder / f".{target.name}.partial"
            if keep:
                shutil.copyfile(source, partial)
            else:
                shutil.move(source, partial)
            partial.replace(target)
        elif not keep:
            source.unlink()
        rel = target.relative_to(wd.root).as_posix()
    write_atomic(
        target.with_name(f"{target.name}.reason.txt"),
        "\n".join(
            [
                f"entry:     {printable_name(entry)}",
                f"delivered: {'by ' + partner + ' channel' if partner else 'no channel known'}",
                f"date:      {day.isoformat()} (processing date; when: the run's manifest)",
                f"stage:     {stage}",
                f"size:      {what}",
                f"why:       {reason}",
                f"what to do: {hint}",
                "",
            ]
        ),
    )
    return record_fate(
        wd,
        day,
        Fate(entry, partner, "quarantined", stage, reason=reason, hint=hint, path=rel),
    )
