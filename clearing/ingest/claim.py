"""Claim the partner files of a processing date: ``inbox/`` → ``work/<D>/in/``, once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearing.ingest.classify import input_kind

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from clearing import config

__all__ = ["claim_inputs", "is_claimed"]


def is_claimed(wd: config.WorkDir, day: date) -> bool:
    """Whether ``day`` has its inputs already (``work/<D>/in/`` exists)."""
    return (wd.work(day) / "in").exists()


def claim_inputs(wd: config.WorkDir, day: date, *, dry_run: bool = False) -> list[Path]:
    """The partner files of ``day``: ``work/<D>/in/``, claimed from ``inbox/`` on first use.

    The first run of a date moves every partner file waiting in ``inbox/`` (TAP, CIBER, RAP,
    ACK; not the mediation CDRs of ``inbox/cdr``) to ``work/<D>/in.partial/`` and then renames
    that folder to ``work/<D>/in/``: a killed claim is finished by the next run, and once a
    date has its inputs, later runs of that date read exactly those (re-runs are repeatable,
    and a file is never processed on two dates).

    Args:
        wd: the work folder.
        day: the processing date.
        dry_run: move nothing; return the files a claim would give (sorted by name).
    """
    day_dir = wd.work(day)
    final = day_dir / "in"
    if dry_run and not final.exists():
        partial = day_dir / "in.partial"
        waiting = [p for d in (partial, wd.inbox) if d.is_dir() for p in d.iterdir()]
        return sorted((p for p in waiting if input_kind(p) is not None), key=lambda p: p.name)
    if not final.exists():
        partial = day_dir / "in.partial"
        partial.mkdir(parents=True, exist_ok=True)
        if wd.inbox.is_dir():
            for p in sorted(wd.inbox.iterdir()):
                if input_kind(p) is not None:
                    p.replace(partial / p.name)
        partial.replace(final)
    return sorted(p for p in final.iterdir() if input_kind(p) is not None)
