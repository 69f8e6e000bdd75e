"""RAP Acknowledgements (TD.32 ``Acknowledgement [APPLICATION 535]``): write, read, name.

Whoever receives a RAP file sends back an Acknowledgement naming its RapFileSequenceNumber:
the ACK's sender is the RAP's recipient (:func:`ack_for` swaps the parties of a RAP read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clearing.codecs import asn1
from clearing.codecs.rap.records import check_party, check_stamp
from clearing.codecs.tap3.values import date_time_long, latin1
from clearing.errors import DecodeError, EncodeError
from clearing.names import AckName

if TYPE_CHECKING:
    from clearing.codecs.rap.records import RapFile

__all__ = ["Ack", "ack_file_name", "ack_for", "read_ack", "write_ack"]


@dataclass(frozen=True, slots=True)
class Ack:
    """An Acknowledgement as read by :func:`read_ack`.

    Attributes:
        sender: who acknowledges (the RAP's recipient).
        recipient: who sent the RAP.
        rap_fsn: the acknowledged RapFileSequenceNumber.
        test: fileTypeIndicator ``T``.
        created_local: ackFileCreationTimeStamp, local ``CCYYMMDDhhmmss``.
        utc_offset: its UTC offset (``+hhmm``).
    """

    sender: str
    recipient: str
    rap_fsn: int
    test: bool
    created_local: str
    utc_offset: str


def _check(
    sender: object, recipient: object, rap_fsn: object, created_local: object, utc_offset: object
) -> None:
    check_party("sender", sender)
    check_party("recipient", recipient)
    if isinstance(rap_fsn, bool) or not isinstance(rap_fsn, int) or not 1 <= rap_fsn <= 99999:
        msg = f"rap_fsn {rap_fsn!r} is not a sequence number (1..99999)"
        raise EncodeError(msg)
    check_stamp(created_local, utc_offset)


def write_ack(
    sender: str, recipient: str, rap_fsn: int, test: bool, created_local: str, utc_offset: str
) -> bytes:
    """Encode an Acknowledgement of RAP file ``rap_fsn``.

    Args:
        sender: who acknowledges, i.e. the recipient of the RAP file.
        recipient: the sender of the RAP file.
        rap_fsn: the RAP file's RapFileSequenceNumber (written on 5 digits).
        test: the RAP file was test data (fileTypeIndicator ``T``).
        created_local: creation (and available) time, local ``CCYYMMDDhhmmss``.
        utc_offset: ``+hhmm`` / ``-hhmm``.

    Raises:
        EncodeError: a field out of its format.
    """
    _check(sender, recipient, rap_fsn, created_local, utc_offset)
    stamp = date_time_long(created_local, utc_offset)
    value: dict[str, Any] = {
        "sender": sender.encode(),
        "recipient": recipient.encode(),
        "rapFileSequenceNumber": f"{rap_fsn:05d}".encode(),
        "ackFileCreationTimeStamp": stamp,
        "ackFileAvailableTimeStamp": stamp,
    }
    if test:
        value["fileTypeIndicator"] = b"T"
    return asn1.encode("ack", ("acknowledgement", value))


def ack_for(rap: RapFile, *, created_local: str, utc_offset: str) -> bytes:
    """The Acknowledgement of a RAP file we received: parties swapped, same RAP FSN, test flag."""
    h = rap.header
    return write_ack(h.recipient, h.sender, h.rap_fsn, h.test, created_local, utc_offset)


def ack_file_name(sender: str, recipient: str, rap_fsn: int, test: bool) -> str:
    """File name of an Acknowledgement.

    ACK file naming is not standardised in TD.32 (no public source names one); this uses
    ``AC`` (live) / ``AT`` (test) + ACK sender + ACK recipient + RAP FSN on 5 digits, by
    analogy with ``RC``/``RT`` for RAP files. Kept as one function so that it can be made
    configurable per partner.
    """
    _check(sender, recipient, rap_fsn, "00000000000000", "+0000")
    return str(AckName(test, sender, recipient, rap_fsn))


def read_ack(data: bytes, *, file: str | None = None) -> Ack:
    """Decode an Acknowledgement.

    Raises:
        DecodeError: with file, offset and path, for anything that is not a readable ACK.
    """
    try:
        decoded = asn1.decode(bytes(data), file=file)
        if decoded.info.kind != "ack":
            msg = f"not an Acknowledgement but a {decoded.info.kind.upper()} file"
            raise DecodeError(msg, offset=0)
        _name, v = decoded.value
        fsn_text = latin1(v["rapFileSequenceNumber"])
        if not fsn_text.isascii() or not fsn_text.isdigit():
            msg = f"rapFileSequenceNumber {fsn_text!r} is not digits"
            raise DecodeError(
                msg,
                offset=0,
                path="acknowledgement.rapFileSequenceNumber",
            )
        created = v["ackFileCreationTimeStamp"]
        fti = v.get("fileTypeIndicator")
        return Ack(
            sender=latin1(v["sender"]),
            recipient=latin1(v["recipient"]),
            rap_fsn=int(fsn_text),
            test=fti is not None and bytes(fti) == b"T",
            created_local=latin1(created.get("localTimeStamp", b"")),
            utc_offset=latin1(created.get("utcTimeOffset", b"")),
        )
    except DecodeError as exc:
        raise exc.with_file(file) if file and exc.file is None else exc from None
