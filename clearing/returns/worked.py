"""Partners' returns about our TAP-out, worked: listed, resubmitted or written off.

A partner's RAP (received by :mod:`clearing.returns.incoming`) leaves one item per returned
event (severe) or file (fatal, missing, stop) in the store, ``to_correct``. This module is what
an analyst decides for them (the ``clearing returns`` verbs):

* :func:`resubmit` records a request: the rating stage of the next night (or of the date
  given) re-rates the returned events with the current reference data and adds them to that
  day's TAP-out with ``rapFileSequenceNumber`` (TD.57); a fatally returned file is sent again
  under its own FSN with ``rapFileSequenceNumber`` in its BatchControlInfo. The item becomes
  ``resubmitted`` when that TAP-out is written. ``returns`` sits below rating: it only records.
* :func:`write_off` records a loss: the item is ``written_off`` with its amount and reason
  (the monthly workbook lists the write-offs).
* An incoming MissingReturn is answered by the ``send`` stage (the file is sent again, same
  bytes); a StopReturn is an anomaly of the ``receive`` stage.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from clearing.errors import ConfigError

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence

    from clearing.store import Store
    from clearing.store.returns_in import ReturnItem

__all__ = ["RESUBMITTABLE", "as_row", "items", "resubmit", "write_off"]

#: The kinds of return that are corrected and resubmitted (the others are answered otherwise).
RESUBMITTABLE = ("severe", "fatal")


def as_row(item: ReturnItem, today: dt.date) -> dict[str, Any]:
    """One item as ``clearing returns list`` shows it (JSON-ready)."""
    scale = item.charge_scale
    amount = None
    if item.kind in RESUBMITTABLE and scale is not None:
        amount = str(Decimal(item.money).scaleb(-scale))
    return {
        "rap_file": item.rap_file,
        "item": item.item,
        "kind": item.kind,
        "partner": item.partner,
        "file_sequence_number": item.fsn,
        "file_sequence_number_end": item.fsn_end,
        "tap_file": item.tap_file,
        "event_index": item.event_index,
        "imsi": item.imsi,
        "start": None if item.start_time is None else item.start_time.isoformat(),
        "error_codes": item.error_codes,
        "amount": amount,
        "currency": item.currency if amount is not None else None,
        "status": item.status,
        "age_days": (today - item.received).days,
        "out_file": item.out_file,
        "reason": item.reason,
    }


def items(
    state: Store, *, status: str | None = None, partner: str | None = None
) -> list[ReturnItem]:
    """The returned items, by RAP file then item (see :meth:`ReturnsIn.items`)."""
    return state.returns_in.items(status=status, partner=partner)


def _chosen(
    state: Store, rap: str | None, events: Sequence[int], *, every: bool
) -> list[ReturnItem]:
    if every == (rap is not None):
        msg = "give either --all or --rap NAME"
        raise ConfigError(msg)
    found = state.returns_in.items(rap_file=rap)
    if rap is not None and not found:
        msg = f"no returns of a RAP `{rap}`: see `clearing returns list`"
        raise ConfigError(msg)
    if events:
        if rap is None:
            msg = "--event needs --rap NAME"
            raise ConfigError(msg)
        wanted = set(events)
        found = [i for i in found if i.event_index in wanted]
        missing = wanted - {i.event_index for i in found}
        if missing:
            msg = (
                f"RAP `{rap}` returns no event {', '.join(map(str, sorted(missing)))}: "
                "see the event_index column of `clearing returns list`"
            )
            raise ConfigError(msg)
    return found


def resubmit(
    state: Store,
    *,
    rap: str | None = None,
    events: Sequence[int] = (),
    every: bool = False,
    for_date: dt.date | None = None,
) -> list[ReturnItem]:
    """Record the resubmission of the chosen items that are ``to_correct``; return them.

    Raises:
        ConfigError: neither or both of ``every`` / ``rap``; an unknown RAP or event.
    """
    chosen = [
        i
        for i in _chosen(state, rap, events, every=every)
        if i.status == "to_correct" and i.kind in RESUBMITTABLE and i.action is None
    ]
    with state.transaction():
        for i in chosen:
            state.returns_in.request_resubmit(i.rap_file, [i.item], for_date=for_date)
    return chosen


def write_off(
    state: Store,
    *,
    reason: str,
    today: dt.date,
    rap: str | None = None,
    events: Sequence[int] = (),
    older_than: int | None = None,
) -> list[ReturnItem]:
    """Write off the chosen items still ``to_correct``; return them.

    Args:
        state: the store.
        reason: why (kept with the loss).
        today: the date the ages are counted to, and the date of the write-off.
        rap: one RAP's items (all, or those of ``events``).
        events: event indexes of ``rap``.
        older_than: every item received more than this many days before ``today``.

    Raises:
        ConfigError: no reason; neither or both of ``rap`` / ``older_than``.
    """
    if not reason.strip():
        msg = "--reason must say why the returns are written off"
        raise ConfigError(msg)
    chosen = _chosen(state, rap, events, every=older_than is not None)
    if older_than is not None:
        chosen = [i for i in chosen if (today - i.received).days > older_than]
    chosen = [
        i
        for i in chosen
        if i.status == "to_correct" and i.kind in RESUBMITTABLE and i.out_date is None
    ]
    with state.transaction():
        for i in chosen:
            state.returns_in.write_off(
                i.rap_file,
                i.item,
                reason=reason,
                amount=i.money,
                charge_scale=i.charge_scale,
                currency=i.currency,
                on=today,
            )
    return chosen
