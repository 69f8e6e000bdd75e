"""The package's ``CLEARING_*`` environment variables: read here, and only here.

:func:`environment` (the spec and report folders, validate's worker processes) and
:func:`cache_dir` (the compiled ASN.1 cache). A plain module, no pydantic: the decoders ask it
on every run, and ``clearing inspect`` should not pay for the configuration models.
:mod:`clearing.config` re-exports all of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from clearing._paths import reports_root, specs_root
from clearing.errors import ConfigError

__all__ = [
    "PARALLEL_MIN_MB",
    "Environment",
    "cache_dir",
    "environment",
    "key_hash_bits",
    "rate_chunk_rows",
    "validate_piece_events",
]

PARALLEL_MIN_MB = 256
"""Default of ``CLEARING_PARALLEL_MIN_MB``: below this many MB of TAP input in a day, validate
checks the files in its own process.

Measured at 1M records (123 MB of TAP in 7 files) on 2 cores: the vectorised decoder makes
the file checks a third of the stage, so two workers gave the same wall time (27.1 s against
26.8 s for the whole night) for 0.5 GB more memory. Larger days, with more files, gain."""


@dataclass(frozen=True)
class Environment:
    """The package's ``CLEARING_*`` environment variables, read by :func:`environment` only.

    An unset or empty variable takes the default. The spec and report folders default to the
    ones shipped inside the package (:mod:`clearing._paths`); ``CLEARING_SPECS_DIR`` replaces
    the whole ``specs/`` tree at once (a folder with the same sub-folders: ``asn1/``,
    ``ciber/``, ``rates/``, ``mediation/``, ``td57/``).
    """

    specs_root: Path
    """``CLEARING_SPECS_DIR``: the specification tree (default: the ``specs/`` shipped in the
    package)."""
    reports_dir: Path
    """``CLEARING_REPORTS_DIR``: the run summary templates (default: the package's
    ``reports/templates``)."""
    workers: int
    """``CLEARING_WORKERS``: processes for validate's file checks (default: the CPUs this
    process may run on; below 1 counts as 1; not a number: `ConfigError`)."""
    parallel_min_bytes: int
    """``CLEARING_PARALLEL_MIN_MB``: the day's TAP size from which those processes are used,
    in MB (default :data:`PARALLEL_MIN_MB`; 0: always; not digits: the default)."""

    @property
    def specs_dir(self) -> Path:
        """The ASN.1 modules: ``asn1/`` of the specification tree."""
        return self.specs_root / "asn1"

    @property
    def ciber_specs_dir(self) -> Path:
        """The CIBER layout tables and rules: ``ciber/`` of the specification tree."""
        return self.specs_root / "ciber"

    @property
    def rates_specs_dir(self) -> Path:
        """The reference-data table schemas: ``rates/`` of the specification tree."""
        return self.specs_root / "rates"

    @property
    def mediation_spec(self) -> Path:
        """Our mediation CDR format: ``mediation/cdr.csv`` of the specification tree."""
        return self.specs_root / "mediation" / "cdr.csv"


def environment() -> Environment:
    """The ``CLEARING_*`` environment variables as they are now (see :class:`Environment`).

    Raises:
        ConfigError: ``CLEARING_WORKERS`` is not a number.
    """
    env = os.environ

    def folder(name: str, default: Path) -> Path:
        value = env.get(name)
        return Path(value) if value else default

    raw_workers = env.get("CLEARING_WORKERS", "")
    if raw_workers.strip():
        try:
            workers = max(1, int(raw_workers))
        except ValueError:
            msg = f"CLEARING_WORKERS={raw_workers!r} is not a number of processes"
            raise ConfigError(msg) from None
    else:
        workers = max(1, len(os.sched_getaffinity(0)))
    min_mb = env.get("CLEARING_PARALLEL_MIN_MB", "").strip()
    return Environment(
        specs_root=folder("CLEARING_SPECS_DIR", specs_root()),
        reports_dir=folder("CLEARING_REPORTS_DIR", reports_root() / "templates"),
        workers=workers,
        parallel_min_bytes=(int(min_mb) if min_mb.isdigit() else PARALLEL_MIN_MB) << 20,
    )


def cache_dir() -> Path | None:
    """The folder of the package's caches (e.g. the compiled ASN.1 specifications).

    ``CLEARING_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/clearing`` (an absolute
    ``XDG_CACHE_HOME`` only, as the XDG spec says), else ``~/.cache/clearing``; None when there
    is no home folder to put it in. Everything in it is safe to delete: a missing or unreadable
    cache only means the work is done again.
    """
    env = os.environ
    override = env.get("CLEARING_CACHE_DIR")
    if override:
        return Path(override)
    xdg = env.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "clearing"
    try:
        return Path.home() / ".cache" / "clearing"
    except RuntimeError:  # no HOME and no password entry
        return None


def key_hash_bits() -> int:
    """``CLEARING_KEY_HASH_BITS``: the bits of the duplicate indexes' key hash (default 128).

    For tests only: a value from 1 to 63 keeps that many bits, so that different keys collide
    on purpose (a collision must never make a false duplicate: every match is confirmed on the
    full key). Anything else (unset, not a number, 64 or more) is the full 128 bits.
    """
    raw = os.environ.get("CLEARING_KEY_HASH_BITS", "").strip()
    bits = int(raw) if raw.isdigit() else 128
    return bits if 1 <= bits < 64 else 128


def rate_chunk_rows() -> int | None:
    """``CLEARING_RATE_CHUNK_ROWS``: the rate stage's chunk size in records (None: unset).

    For tests only: a positive number rates every day bigger than that many records (or
    partner events) in chunks of that size, whatever the ``[performance] memory_mb`` budget
    (the outputs must be the same bytes as a day rated at once). Anything else: the budget's.
    """
    raw = os.environ.get("CLEARING_RATE_CHUNK_ROWS", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def validate_piece_events() -> int | None:
    """``CLEARING_VALIDATE_PIECE_EVENTS``: pieces of a streamed TAP file (None: unset).

    For tests only: a positive number streams every TAP file through validate (decode, checks,
    lake) in pieces of that many events, whatever its size and the ``[performance]
    memory_mb`` budget (the lake's rows, the findings and the returns must be those of the
    file read whole). Anything else: files too big to hold whole within the budget are
    streamed, in pieces of :data:`clearing.validate.tap.PIECE_EVENTS`.
    """
    raw = os.environ.get("CLEARING_VALIDATE_PIECE_EVENTS", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None
