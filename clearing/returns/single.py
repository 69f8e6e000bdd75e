"""One file validated on its own (``clearing validate FILE``), and the RAP it would get.

The day stage validates every input of a date and records it; this validates a single TAP,
Notification or CIBER file against a work folder's history when one is given (read-only:
nothing is recorded), or as whoever the file is addressed to when none is. It lives in
``returns`` because it may write the RAP of the file, and ``returns`` sits above ``validate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from clearing import config
from clearing._io import write_atomic
from clearing.codecs.ciber import looks_like_ciber
from clearing.codecs.rap import rap_file_name, write_rap
from clearing.names import CiberName
from clearing.returns.rap import rap_header, rap_items
from clearing.validate.stage import (
    CiberResult,
    FileResult,
    validate_ciber_file,
    validate_one,
)
from clearing.validate.state import State
from clearing.validate.tap import TapChecked, check_tap, parse_tap_name

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

__all__ = ["validate_file"]

_NOBODY = "XXXXX"
"""Our TADIG when no work folder says it and the file does not name a recipient we can use."""


def validate_file(
    data: bytes,
    *,
    file: str,
    day: date,
    workdir: Path | None = None,
    rap_dir: Path | None = None,
) -> FileResult | CiberResult:
    """Validate one file (TAP, Notification or CIBER) on its own; nothing is recorded.

    Args:
        data: the file's bytes.
        file: its name (TD.57 reads sender, recipient and FSN from it too).
        day: the processing date.
        workdir: a work folder: its configuration, and its sequence state and lake as the
            history (duplicates, FSN gaps, copies). Without one the file is checked as if we
            were its recipient.
        rap_dir: where to write the RAP of a TAP file that needs one (written atomically; the
            result's ``rap_file`` names it).

    Returns:
        The file's result: ``summary()`` for printing, ``fatal`` when it is rejected whole.
    """
    wd = config.WorkDir(workdir) if workdir is not None else None
    if looks_like_ciber(data[:64]):
        return _ciber(data, file, day, wd)
    state = State(wd.db, read_only=True) if wd is not None and wd.db.exists() else None
    # the duplicate search runs its queries on a connection of its own (as the nightly's does)
    con = duckdb.connect() if state is not None else None
    try:
        if wd is not None:
            settings = wd.settings()
            checked = check_tap(data, file=file, settings=settings)
        else:
            settings, checked = _as_recipient(data, file)
        result = validate_one(
            data,
            file=file,
            settings=settings,
            day=day,
            state=state,
            lake=wd.lake if wd is not None else None,
            con=con,
            checked=checked,
        )
        items = rap_items(result)
        sender = result.checked.sender
        if rap_dir is not None and items and sender:
            test = result.checked.test
            rap_fsn = state.next_rap_fsn(day, sender, test) if state is not None else 1
            header = rap_header(settings, sender, test, rap_fsn, day, result.checked)
            path = rap_dir / rap_file_name(header)
            write_atomic(path, write_rap(header, items))
            result.rap_file = str(path)
    finally:
        if state is not None:
            state.close()
        if con is not None:
            con.close()
    return result


def _as_recipient(data: bytes, file: str) -> tuple[config.Settings, TapChecked]:
    """Settings making us the file's recipient, and the file checked with them (one decode).

    The recipient comes from the file name; failing that from the header, which is only known
    once the file is decoded: the file is then checked as ``XXXXX``, and the one finding that
    depends on who we are (``recipient.not_us``) is dropped when the header's recipient is
    taken as our TADIG. Its sender (the name's, else the header's) is taken as a partner of
    ours: with no work folder there is no ``[partners]`` table to check it against.
    """
    named = parse_tap_name(file)
    if named is not None:
        settings = _settings(named[2], named[1])
        return settings, check_tap(data, file=file, settings=settings)
    probe = _settings(_NOBODY)
    checked = check_tap(data, file=file, settings=probe)
    checked.findings = [f for f in checked.findings if f.rule != "sender.unknown"]
    home = checked.recipient
    if home is None or not (len(home) == 5 and home.isalnum()) or home == _NOBODY:
        return probe, checked
    checked.findings = [f for f in checked.findings if f.rule != "recipient.not_us"]
    return _settings(home, checked.sender), checked


def _settings(tadig: str, sender: str | None = None) -> config.Settings:
    ok = len(tadig) == 5 and tadig.isalnum()
    partners = (
        {sender: config.Partner()} if sender and len(sender) == 5 and sender.isalnum() else {}
    )
    return config.Settings(home=config.Home(tadig=tadig if ok else _NOBODY), partners=partners)


def _ciber(data: bytes, file: str, day: date, wd: config.WorkDir | None) -> CiberResult:
    if wd is not None:
        settings = wd.settings()
    else:
        parsed = CiberName.parse(file)
        sid_bid = parsed.recipient if parsed else None
        settings = config.Settings(home=config.Home(tadig=_NOBODY, sid_bid=sid_bid))
    result, _checked = validate_ciber_file(data, file=file, settings=settings, day=day)
    return result
