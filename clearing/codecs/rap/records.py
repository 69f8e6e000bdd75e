"""RAP 1.5 (GSMA TD.32) records: what a ReturnBatch holds, as dataclasses.

The records :func:`clearing.codecs.rap.write_rap` writes and :func:`clearing.codecs.rap.read_rap`
reads, the fatal-return groups of RAP-0105, the ErrorContext path (:class:`PathItem`), the
compiled RAP module of a TAP release, and the field formats (TADIG code, time stamp, UTC offset,
currency) that the RAP and ACK codecs check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import asn1tools

from clearing.codecs import asn1
from clearing.codecs.ber import APPLICATION, tag_key
from clearing.errors import DecodeError, EncodeError

if TYPE_CHECKING:
    from clearing.codecs.grammar import Grammar

__all__ = [
    "CURRENCY",
    "FATAL_GROUPS",
    "OFFSET",
    "RAP_RELEASE_VERSION",
    "RAP_SPECIFICATION_VERSION",
    "STAMP",
    "TADIG",
    "AuditMismatch",
    "ErrorDetail",
    "FatalGroup",
    "FatalItem",
    "MissingItem",
    "PathItem",
    "RapFile",
    "RapHeader",
    "RapItem",
    "ReturnedEvent",
    "SevereItem",
    "StopItem",
    "check_party",
    "check_stamp",
    "rap_schema",
]

RAP_SPECIFICATION_VERSION = 1
RAP_RELEASE_VERSION = 5

FatalGroup = Literal[
    "transferBatch",
    "notification",
    "batchControlInfo",
    "accountingInfo",
    "networkInfo",
    "messageDescriptionInfo",
    "auditControlInfo",
]


@dataclass(frozen=True, slots=True)
class _GroupSpec:
    tap_tag: int | None  # APPLICATION tag of the TAP group copied into the error (None: no copy)
    error_tag: int  # APPLICATION tag of the RAP xxxError element
    error_member: str  # member name inside FatalReturn
    error_type: str  # RAP type name of the xxxError element


# in the member order of FatalReturn (RAP-0105)
FATAL_GROUPS: dict[FatalGroup, _GroupSpec] = {
    "transferBatch": _GroupSpec(None, 542, "transferBatchError", "TransferBatchError"),
    "notification": _GroupSpec(2, 552, "notificationError", "NotificationError"),
    "batchControlInfo": _GroupSpec(4, 517, "batchControlError", "BatchControlError"),
    "accountingInfo": _GroupSpec(5, 512, "accountingInfoError", "AccountingInfoError"),
    "networkInfo": _GroupSpec(6, 523, "networkInfoError", "NetworkInfoError"),
    "messageDescriptionInfo": _GroupSpec(
        8, 522, "messageDescriptionError", "MessageDescriptionError"
    ),
    "auditControlInfo": _GroupSpec(15, 513, "auditControlInfoError", "AuditControlInfoError"),
}
GROUP_BY_MEMBER: dict[str, FatalGroup] = {g.error_member: n for n, g in FATAL_GROUPS.items()}

T_RETURN_BATCH = tag_key(APPLICATION, 534)
T_RETURN_DETAILS = tag_key(APPLICATION, 536)
T_FATAL = tag_key(APPLICATION, 539)
T_SEVERE = tag_key(APPLICATION, 540)
NOT_EVENTS = {"fileSequenceNumber", "errorDetail", "operatorSpecList"}

# field formats, shared by the RAP and ACK codecs
TADIG = re.compile(r"[A-Z0-9]{5}")
"""A TADIG code: 5 characters A-Z, 0-9."""
STAMP = re.compile(r"[0-9]{14}")
"""A local time stamp ``CCYYMMDDhhmmss``."""
OFFSET = re.compile(r"[+-][0-9]{4}")
"""A UTC offset ``+hhmm`` / ``-hhmm``."""
CURRENCY = re.compile(r"[A-Z]{3}")
"""An ISO 4217 currency code."""


@dataclass(frozen=True, slots=True)
class PathItem:
    """One step of a RAP ErrorContext: APPLICATION tag number, occurrence (1-based), level."""

    item_id: int
    occurrence: int
    level: int


# ---------------------------------------------------------------------------------------------
# the records


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One RAP ErrorDetail: the TD.57 error code, its ErrorContext path and item offset.

    Attributes:
        code: the error code, relative to the context (the last step of ``path``).
        path: the ErrorContext, outermost first (pathItemId = APPLICATION tag number,
            itemOccurrence 1-based, itemLevel 1 = TransferBatch).
        item_offset: the ItemOffset (position of the erroneous character), when known.
    """

    code: int
    path: tuple[PathItem, ...]
    item_offset: int | None = None


@dataclass(frozen=True, slots=True)
class FatalItem:
    """A fatal error in one TAP group: the whole file is returned (FatalReturn).

    Attributes:
        fsn: the FileSequenceNumber of the returned TAP file, as it was in the file.
        group: the group in error; RAP 1.5 has one xxxError element per group.
        group_bytes: the raw TLV of that group exactly as it was in the TAP file (for
            ``notification`` the whole Notification). ``transferBatch`` errors carry no copy
            of any group in RAP 1.5 (``TransferBatchError`` is only an ErrorDetailList): their
            ``group_bytes`` must be empty.
        errors: the error details (at least one).
    """

    fsn: str
    group: FatalGroup
    group_bytes: bytes
    errors: list[ErrorDetail]


@dataclass(frozen=True, slots=True)
class SevereItem:
    """A severe error in one call event: that event is returned (SevereReturn).

    Attributes:
        fsn: the FileSequenceNumber of the TAP file the event came from.
        event_bytes: the raw CallEventDetail TLV exactly as received.
        errors: the error details (at least one).
        charge: the event's chargeType 00 charges plus CAMEL invocation fee (TAP units,
            scaled by tapDecimalPlaces), for totalSevereReturnValue.
        tax: the event's tax values, for totalSevereReturnTax.
    """

    fsn: str
    event_bytes: bytes
    errors: list[ErrorDetail]
    charge: int
    tax: int


@dataclass(frozen=True, slots=True)
class MissingItem:
    """Files not received (MissingReturn): FSNs ``start``..``end`` (``end`` None: one file)."""

    start: int
    end: int | None = None


@dataclass(frozen=True, slots=True)
class StopItem:
    """The partner's data stream has stopped after FSN ``last_seq`` (StopReturn)."""

    last_seq: int


RapItem = FatalItem | SevereItem | MissingItem | StopItem


@dataclass(frozen=True, slots=True)
class RapHeader:
    """The rapBatchControlInfoRap of a RAP file.

    Attributes:
        sender: the RAP sender's TADIG code: the HPMN, i.e. the *recipient* of the TAP file.
        recipient: the VPMN whose TAP file is returned (the TAP file's sender).
        rap_fsn: RapFileSequenceNumber, 1..99999 (own sequence per partner, test/live apart).
        test: test data (fileTypeIndicator ``T``).
        created_local: creation time, local, ``CCYYMMDDhhmmss`` (also used as available time).
        utc_offset: ``+hhmm`` / ``-hhmm`` of ``created_local``.
        tap_spec: specificationVersionNumber of the returned TAP files (3).
        tap_release: releaseVersionNumber of the returned TAP files (9..12).
        tap_decimal_places: tapDecimalPlaces of the returned TAP files (scale of the totals).
        tap_currency: tapCurrency of the returned TAP files, when not SDR.
        roaming_partner: RoamingPartner (when the RAP is sent by a clearing house).
    """

    sender: str
    recipient: str
    rap_fsn: int
    test: bool
    created_local: str
    utc_offset: str
    tap_spec: int = 3
    tap_release: int = 12
    tap_decimal_places: int | None = None
    tap_currency: str | None = None
    roaming_partner: str | None = None


@dataclass(frozen=True, slots=True)
class ReturnedEvent:
    """A SevereReturn read from a partner's RAP.

    Attributes:
        fsn: FileSequenceNumber of our TAP file the event was in.
        event_bytes: the returned CallEventDetail TLV, byte for byte as in the RAP.
        errors: the error details.
        kind: the event kind (``mobileOriginatedCall``, ``gprsCall``, …).
        value: the asn1tools value of the event (a ``(kind, {...})`` tuple), None when it does
            not decode with the TAP module of the RAP's TAP release.
        charge: chargeType 00 charges plus CAMEL invocation fees; None when not decodable.
        tax: sum of the tax values; None when not decodable.
        problem: why ``value`` is None.
        offset: byte offset of the SevereReturn in the RAP file.
    """

    fsn: str
    event_bytes: bytes
    errors: list[ErrorDetail]
    kind: str
    value: Any | None
    charge: int | None
    tax: int | None
    problem: str | None = None
    offset: int = 0


@dataclass(frozen=True, slots=True)
class AuditMismatch:
    """A rapAuditControlInfo figure that does not agree with the return details."""

    item: str  # totalSevereReturnValue | totalSevereReturnTax | returnDetailsCount
    declared: int | None
    computed: int | None
    message: str


@dataclass(frozen=True, slots=True)
class RapFile:
    """A RAP ReturnBatch as read by :func:`read_rap`.

    Attributes:
        header: the batch control info (``created_local``/``utc_offset`` = creation stamp).
        available_local: rapFileAvailableTimeStamp, local ``CCYYMMDDhhmmss``.
        available_utc_offset: its UTC offset.
        items: the returns in file order; a FatalReturn naming several groups gives one
            :class:`FatalItem` per group (in the RAP-0105 member order).
        total_severe_return_value: as declared in rapAuditControlInfo.
        total_severe_return_tax: as declared (None when absent).
        return_details_count: as declared.
        mismatches: what does not reconcile (empty when the audit agrees).
    """

    header: RapHeader
    available_local: str
    available_utc_offset: str
    items: list[FatalItem | ReturnedEvent | MissingItem | StopItem]
    total_severe_return_value: int
    total_severe_return_tax: int | None
    return_details_count: int
    mismatches: list[AuditMismatch] = field(default_factory=list)

    @property
    def fatal(self) -> list[FatalItem]:
        """The fatal returns (one per group in error)."""
        return [i for i in self.items if isinstance(i, FatalItem)]

    @property
    def severe(self) -> list[ReturnedEvent]:
        """The returned events."""
        return [i for i in self.items if isinstance(i, ReturnedEvent)]

    @property
    def missing(self) -> list[MissingItem]:
        """The missing FSN ranges."""
        return [i for i in self.items if isinstance(i, MissingItem)]

    @property
    def stop(self) -> list[StopItem]:
        """The stop returns."""
        return [i for i in self.items if isinstance(i, StopItem)]


# ---------------------------------------------------------------------------------------------
# shared by the writer and the reader


def check_party(what: str, code: object) -> None:
    """Refuse a TADIG code that is not 5 characters A-Z, 0-9.

    Raises:
        EncodeError: naming ``what``.
    """
    if not isinstance(code, str) or not TADIG.fullmatch(code):
        msg = f"{what} {code!r} is not a TADIG code (5 characters A-Z, 0-9)"
        raise EncodeError(msg)


def check_stamp(local: object, offset: object) -> None:
    """Refuse a creation stamp that is not ``CCYYMMDDhhmmss`` with a ``±hhmm`` offset.

    Raises:
        EncodeError: the stamp or the offset out of its format.
    """
    if not isinstance(local, str) or not STAMP.fullmatch(local):
        msg = f"created_local {local!r} is not CCYYMMDDhhmmss"
        raise EncodeError(msg)
    if not isinstance(offset, str) or not OFFSET.fullmatch(offset):
        msg = f"utc_offset {offset!r} is not +hhmm / -hhmm"
        raise EncodeError(msg)


def rap_schema(tap_release: int) -> tuple[Any, Grammar]:
    """The compiled RAP module and its tag grammar for a TAP release.

    Raises:
        DecodeError: no usable RAP 1.5 module for that release.
    """
    try:
        return asn1.spec("rap", tap_release), asn1.grammar("rap", tap_release)
    except asn1tools.Error as exc:
        # e.g. the RAP-0105 variant for TAP < 3.11 that clearing.codecs.asn1 derives
        msg = f"no usable RAP 1.5 module for TAP 3.{tap_release}: {str(exc)[:120]}"
        raise DecodeError(msg, hint="a schema problem, not a data problem") from None
