"""Everything a run is configured with, checked before the run touches anything.

``clearing.toml`` itself is typed and checked when it is read (:func:`clearing.config.load`);
what its types cannot say is checked here, once, before the work folder's lock is taken and
before collect or claim change any state: the partners' rule overrides name rules that exist,
the transport settings make a retry policy, and the imported reference data holds no absurd
exchange rate. A problem is a :class:`~clearing.errors.ConfigError` (exit code 2, nothing done)
saying what to correct.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearing.config import CONFIG_NAME
from clearing.errors import ConfigError
from clearing.rating import check_reference
from clearing.transport.settings import Transports
from clearing.validate.rules import load_rules

if TYPE_CHECKING:
    from clearing.config import Settings, WorkDir

__all__ = ["check_settings"]


def check_settings(wd: WorkDir, settings: Settings) -> None:
    """Refuse settings or reference data a run would fail on after it changed state.

    Raises:
        ConfigError: an unknown rule in a partner's ``rules``, bad transport settings, an
            absurd exchange rate in the imported ``fx`` table, an SFTP private key that
            others can read (which, and what to do).
    """
    td57 = {r.rule for r in load_rules("td57")}
    for code, partner in sorted(settings.partners.items()):
        unknown = sorted(set(partner.rules) - td57)
        if partner.standard == "tap" and unknown:  # the TD.57 rules of a TAP partner's files
            msg = (
                f"{CONFIG_NAME}: [partners.{code}.rules] names no rule of "
                f"specs/td57/rules.csv: {', '.join(unknown)}; correct it and run again "
                "(nothing was done)"
            )
            raise ConfigError(msg)
    transports = Transports(settings.transport)
    transports.retry()
    transports.check(wd.root)  # an SFTP private key others can read is refused
    check_reference(wd.rates)
