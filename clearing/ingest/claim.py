"""Claim the partner files of a processing date: ``inbox/`` → ``work/<D>/in/``, once.

Nothing is left in ``inbox/`` by a claim (but ``inbox/cdr/``, the mediation exports, and
hidden staging folders such as ``inbox/.partial``): every other entry is either a partner
file the night can process (claimed) or is quarantined into ``failed/<D>/`` with a reason
file (:func:`~clearing.ingest.fates.quarantine`, stage ``claim``).

The channel that delivered a file is the fetch ledger's (:func:`delivered_by`); a file an
operator dropped into ``inbox/`` has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from clearing._io import file_sha256
from clearing.ingest.classify import Verdict, classify, input_kind
from clearing.ingest.fates import quarantine

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from clearing import config
    from clearing.ingest.fates import Fate

__all__ = [
    "CDR_FOLDER",
    "Waiting",
    "claim_inputs",
    "delivered_by",
    "delivery_channels",
    "is_claimed",
    "waiting",
]

#: The mediation exports' folder in ``inbox/`` (not partner files: the rating reads them).
CDR_FOLDER = "cdr"


@dataclass(frozen=True, slots=True)
class Waiting:
    """An entry of ``inbox/`` (or of a killed claim) and what a claim would do with it."""

    path: Path
    verdict: Verdict

    @property
    def taken(self) -> bool:
        """Whether the claim takes it (else it is quarantined)."""
        return self.verdict.kind is not None


def is_claimed(wd: config.WorkDir, day: date) -> bool:
    """Whether ``day`` has its inputs already (``work/<D>/in/`` exists)."""
    return (wd.work(day) / "in").exists()


def _skipped(wd: config.WorkDir, p: Path) -> bool:
    """Entries of ``inbox/`` a claim never looks at: hidden ones and ``inbox/cdr/``."""
    return p.name.startswith(".") or (
        p.parent == wd.inbox and p.name == CDR_FOLDER and p.is_dir() and not p.is_symlink()
    )


def waiting(wd: config.WorkDir, day: date) -> list[Waiting]:
    """What the first claim of ``day`` would find (a killed claim's files first), by name."""
    partial = wd.work(day) / "in.partial"
    found = [
        p for d in (partial, wd.inbox) if d.is_dir() for p in d.iterdir() if not _skipped(wd, p)
    ]
    return [Waiting(p, classify(p)) for p in sorted(found, key=lambda p: (p.name, str(p)))]


def delivery_channels(wd: config.WorkDir) -> dict[tuple[str, str], str]:
    """(name, sha256) → the partner whose channel delivered those bytes under that name.

    From the fetch ledger (the last delivery wins); empty when nothing was ever collected.
    """
    from clearing.ingest.collect import FetchLedger

    if not (wd.root / FetchLedger.FILE_NAME).exists():
        return {}
    return {(r.name, r.sha256): r.partner for r in FetchLedger(wd.root).entries()}


def delivered_by(wd: config.WorkDir, name: str, sha256: str | None = None) -> str | None:
    """The partner whose channel delivered ``name`` (with these bytes), from the fetch ledger.

    None for a file that came in without collect (an operator's drop into ``inbox/``). Of
    several deliveries, the last one (with these bytes, when ``sha256`` is given).
    """
    found = [p for (n, h), p in delivery_channels(wd).items() if n == name and sha256 in (None, h)]
    return found[-1] if found else None


def _channel(wd: config.WorkDir, path: Path) -> str | None:
    try:
        sha256 = file_sha256(path)[0] if path.is_file() and not path.is_symlink() else None
    except OSError:
        sha256 = None
    return delivered_by(wd, path.name, sha256)


def _quarantine(wd: config.WorkDir, day: date, entry: Waiting) -> Fate:
    return quarantine(
        wd,
        day,
        entry.path,
        partner=_channel(wd, entry.path),
        reason=entry.verdict.reason,
        hint=entry.verdict.hint,
        stage="claim",
    )


def claim_inputs(wd: config.WorkDir, day: date, *, dry_run: bool = False) -> list[Path]:
    """The partner files of ``day``: ``work/<D>/in/``, claimed from ``inbox/`` on first use.

    The first run of a date moves every partner file waiting in ``inbox/`` (TAP, CIBER, RAP,
    ACK; not the mediation CDRs of ``inbox/cdr``) to ``work/<D>/in.partial/`` and then renames
    that folder to ``work/<D>/in/``: a killed claim is finished by the next run, and once a
    date has its inputs, later runs of that date read exactly those (re-runs are repeatable,
    and a file is never processed on two dates). Every other entry of ``inbox/`` (an empty
    file, an unknown name, an NRTRDE file, a directory, a file that cannot be read...) is
    quarantined into ``failed/<D>/`` with its reason, its fate recorded (stage ``claim``).

    Args:
        wd: the work folder.
        day: the processing date.
        dry_run: move nothing; return the files a claim would give (sorted by name); what
            it would quarantine is :func:`waiting`'s.
    """
    day_dir = wd.work(day)
    final = day_dir / "in"
    if dry_run and not final.exists():
        return [w.path for w in waiting(wd, day) if w.taken]
    if not final.exists():
        partial = day_dir / "in.partial"
        partial.mkdir(parents=True, exist_ok=True)
        for entry in waiting(wd, day):
            if not entry.taken:
                _quarantine(wd, day, entry)
            elif entry.path.parent != partial:
                entry.path.replace(partial / entry.path.name)
        partial.replace(final)
    return sorted(p for p in final.iterdir() if input_kind(p) is not None)
