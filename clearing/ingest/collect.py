"""Collect: fetch every configured partner's new files into ``inbox/`` (SFTP or folder).

One function for the nightly's ``collect`` step and the ``clearing collect`` verb: each
partner is tried in turn; an unreachable partner is noted and the others are still fetched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clearing.errors import TransportError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from clearing.transport.settings import TransportSettings

__all__ = ["Collected", "collect_partners"]


@dataclass(frozen=True)
class Collected:
    """What :func:`collect_partners` did.

    Attributes:
        partners: the partners tried, in order.
        fetched: the files fetched into the inbox, in the order they came.
        unreachable: ``(partner, error)`` of each partner that could not be collected from.
    """

    partners: list[str]
    fetched: list[Path] = field(default_factory=list)
    unreachable: list[tuple[str, TransportError]] = field(default_factory=list)


def collect_partners(
    workdir: Path,
    *,
    partners: Sequence[str] | None = None,
    settings: TransportSettings | None = None,
) -> Collected:
    """Fetch the new files of ``partners`` (default: every configured one) into ``inbox/``.

    Args:
        workdir: the work folder (``clearing.toml``, ``inbox/``, the fetch ledger).
        partners: only these partner codes, in this order.
        settings: the ``[transport]`` settings (read from ``clearing.toml`` when not given).

    Raises:
        ConfigError: bad ``[transport]`` settings, an unknown partner.
        LedgerError: the inbox already holds a different file of a fetched name.
    """
    from clearing.transport import FetchLedger, collect
    from clearing.transport.settings import load_transport_settings

    settings = settings or load_transport_settings(workdir)
    names = list(partners) if partners else sorted(settings.partners)
    result = Collected(names)
    if not names:
        return result
    ledger = FetchLedger(workdir)
    for code in names:
        cfg = settings.partner(code)
        try:
            with settings.transport_for(code, workdir) as transport:
                result.fetched.extend(
                    collect(code, transport, cfg.pattern, workdir / "inbox", ledger)
                )
        except TransportError as exc:
            result.unreachable.append((code, exc))
    return result
