"""The record identity: every record that comes in leaves with exactly one status.

``in = accepted + returned + duplicate + late + quarantined + held``, and ``difference`` is what
is left over (must be 0). :class:`Status` names the six statuses (the values stored in the lake's
``status`` column and the workbook's columns), :class:`Identity` holds the counts of one file,
partner or run and gives the manifest's ``reconciliation`` object (:meth:`Identity.as_dict`).

``held``: a record that cannot be priced or converted because reference data is missing (an IOT
row, an FX rate, a currency): neither billed nor zero, kept in the store and recycled (rated and
sent) on a later night once the reference data is fixed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["STATUSES", "Identity", "Status"]


class Status(StrEnum):
    """Where a record went (one of six), in the identity's order."""

    ACCEPTED = "accepted"
    RETURNED = "returned"
    DUPLICATE = "duplicate"
    LATE = "late"
    QUARANTINED = "quarantined"
    HELD = "held"


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
"""The status values as plain strings, in the identity's order."""


@dataclass(frozen=True)
class Identity:
    """Counts of one record identity (``in_`` is the ``in`` of the manifest).

    Args:
        in_: records that came in.
        accepted: records accepted.
        returned: records returned to the sender (RAP / CIBER return).
        duplicate: records already received before.
        late: records too old to be charged.
        quarantined: records set aside (unreadable, no partner, not rateable).
        held: records waiting for reference data (an IOT row, an FX rate): recycled later.
    """

    in_: int = 0
    accepted: int = 0
    returned: int = 0
    duplicate: int = 0
    late: int = 0
    quarantined: int = 0
    held: int = 0

    @classmethod
    def of(cls, n: int, statuses: Iterable[str]) -> Identity:
        """The identity of ``n`` records in and one status per record that went out.

        Args:
            n: records in.
            statuses: a status value (see :class:`Status`) per record.

        Returns:
            The counts.
        """
        counts = dict.fromkeys(STATUSES, 0)
        # counted first, then each distinct value checked: a file of a million records
        # has six values, not a million to look up (an unknown one raises ValueError)
        for s, k in Counter(statuses).items():
            counts[Status(s).value] += k
        return cls(n, **counts)

    @classmethod
    def from_dict(cls, d: Mapping[str, int]) -> Identity:
        """The identity of a ``reconciliation`` object (``difference`` is recomputed, not read).

        Args:
            d: ``in`` and the six status counts (missing keys count 0).

        Returns:
            The counts.
        """
        return cls(d.get("in", 0), **{s: d.get(s, 0) for s in STATUSES})

    def count(self, status: str) -> int:
        """The number of records of ``status``."""
        return int(getattr(self, Status(status).value))

    @property
    def out(self) -> int:
        """Accepted + returned + duplicate + late + quarantined + held."""
        return sum(self.count(s) for s in STATUSES)

    @property
    def difference(self) -> int:
        """``in`` minus the records that went out (0 when every record is accounted for)."""
        return self.in_ - self.out

    def add(self, other: Identity) -> Identity:
        """The sum of two identities, count by count."""
        return Identity(
            self.in_ + other.in_, **{s: self.count(s) + other.count(s) for s in STATUSES}
        )

    def __add__(self, other: Identity) -> Identity:
        return self.add(other)

    def as_dict(self) -> dict[str, int]:
        """The manifest's ``reconciliation`` object.

        Returns:
            ``in``, ``accepted``, ``returned``, ``duplicate``, ``late``, ``quarantined``,
            ``held``, ``difference``, in that order.
        """
        return {
            "in": self.in_,
            **{s: self.count(s) for s in STATUSES},
            "difference": self.difference,
        }
