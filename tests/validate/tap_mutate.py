"""Build broken TAP files from the clean samples, for the TD.57 rule tests.

Two ways to break a file:

* on the value: decode a sample with asn1tools (:func:`sample_value`, a fresh deep copy each
  time), change it, and encode it again (:func:`encode`);
* on the bytes, for what the encoder cannot express (broken BER, unknown tags): replace a byte
  range with :func:`splice`, which re-encodes the lengths of every enclosing element (the
  samples used for this have definite lengths only).

Settings are written as ``clearing.toml`` text and read with :func:`clearing.config.parse`,
so the tests go through the same path as a deployment.
"""

from __future__ import annotations

import copy
import csv
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from clearing.codecs import asn1, fast
from clearing.codecs.ber import element_at, encode_header, iter_children
from clearing.config import Settings, parse
from clearing.validate.tap import TapChecked, check_tap

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data_samples" / "tap"
RULES_CSV = ROOT / "specs" / "td57" / "rules.csv"
HOME = "HKGCL"
PARTNERS = ("FRAF9", "DEUD9", "GBRG9", "CHEC9", "USAU9", "JPNJ9", "SGPS9")
TAP_SAMPLES = (
    "CDFRAF9HKGCL01506",
    "CDDEUD9HKGCL00738",
    "CDGBRG9HKGCL00353",
    "CDCHEC9HKGCL03631",
    "CDUSAU9HKGCL00412",  # indefinite lengths
    "CDJPNJ9HKGCL10266",  # indefinite lengths
)
NOTIFICATION = "CDSGPS9HKGCL00966"
DEFINITE = "CDFRAF9HKGCL01506"  # 3.12, definite lengths, 5 decimals, one tax (20 %), 360 events
CHEC9 = "CDCHEC9HKGCL03631"  # 150 events; Discounting: code 1, a discount rate (8 %)
CHEC9_DISCOUNTS = 48099  # its TotalDiscountValue: the sum of its events' Discount values
FIXED = 700  # the fixed discount of :func:`fixed_discount_file`, applied by two events


@functools.cache
def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@functools.cache
def _sample_value(name: str) -> Any:
    return asn1.decode(sample_bytes(name)).value


def sample_value(name: str = DEFINITE) -> Any:
    """The sample as an asn1tools value: a fresh copy, free to mutate."""
    return copy.deepcopy(_sample_value(name))


def encode(value: Any, *, release: int = 12) -> bytes:
    """A TransferBatch (or Notification) value as a definite-length file of ``release``."""
    kind: Literal["tap", "notification"] = "notification" if value[0] == "notification" else "tap"
    return asn1.encode(kind, value, tap_release=release)


def mutate(change: Callable[[dict[str, Any]], object], name: str = DEFINITE) -> bytes:
    """The sample with ``change`` applied to its TransferBatch (or Notification) body."""
    value = sample_value(name)
    change(value[1])
    return encode(value)


def event(body: dict[str, Any], index: int) -> dict[str, Any]:
    """The value of one event of a TransferBatch body."""
    value: dict[str, Any] = body["callEventDetails"][index][1]
    return value


def charge_info(body: dict[str, Any], index: int) -> dict[str, Any]:
    """The (first) ChargeInformation of an MOC/MTC event."""
    info: dict[str, Any] = event(body, index)["basicServiceUsedList"][0]["chargeInformationList"][0]
    return info


def stamp(local: str, code: int = 1) -> dict[str, Any]:
    """A DateTime of an event (local time + UtcTimeOffsetCode)."""
    return {"localTimeStamp": local.encode(), "utcTimeOffsetCode": code}


def stamp_long(local: str, offset: str = "+0100") -> dict[str, Any]:
    """A DateTimeLong of a header (local time + UtcTimeOffset)."""
    return {"localTimeStamp": local.encode(), "utcTimeOffset": offset.encode()}


def content_transaction(charge: int = 0, tax: int = 0, *, refund: bool = False) -> Any:
    """A TAP 3.12 contentTransaction event (a game bought on 2026-11-21), for FRAF9 (tax code 1,
    20 %; exchange rate code 1; UTC offset code 1)."""
    info: dict[str, Any] = {
        "chargedItem": b"F",
        "exchangeRateCode": 1,
        "chargeDetailList": [{"chargeType": b"00", "charge": charge}],
    }
    if tax:
        info["taxInformation"] = [{"taxCode": 1, "taxValue": tax, "taxableAmount": charge}]
    used: dict[str, Any] = {
        "contentTransactionCode": 1,
        "contentTransactionType": 1,
        "transactionShortDescription": b"game",
        "transactionIdentifier": b"GAME-0001",
        "chargeInformationList": [info],
    }
    if refund:
        used["chargeRefundIndicator"] = 1
    return (
        "contentTransaction",
        {
            "contentTransactionBasicInfo": {
                "orderPlacedTimeStamp": stamp("20261121100000"),
                "transactionStatus": 0,
            },
            "chargedPartyInformation": {
                "chargedPartyIdList": [
                    {"chargedPartyIdType": 1, "chargedPartyIdentifier": b"454990001593925"}
                ]
            },
            "servingPartiesInformation": {"contentProviderName": b"ACME Games"},
            "contentServiceUsed": [used],
        },
    )


def service_centre_usage() -> Any:
    """A TAP 3.12 serviceCentreUsage event (an SMS deposited at FRAF9's SMSC), without charge."""
    return (
        "serviceCentreUsage",
        {
            "basicInformation": {
                "chargeableSubscriber": (
                    "gsmChargeableSubscriber",
                    {"imsi": bytes.fromhex("454990001593925f")},
                ),
                "chargedPartyStatus": 0,
                "nonChargedNumber": b"85255553416",
            },
            "recEntityCode": 1,
            "chargeInformation": {
                "chargedItem": b"E",
                "exchangeRateCode": 1,
                "chargeDetailList": [{"chargeType": b"00", "charge": 0}],
            },
            "scuChargeType": {
                "messageStatus": 1,
                "priorityCode": 0,
                "messageType": 1,
                "messageDescriptionCode": 1,
            },
            "scuTimeStamps": {
                "depositTimeStamp": stamp("20261121100000"),
                "completionTimeStamp": stamp("20261121100001"),
                "chargingPoint": b"D",
            },
        },
    )


def insert_event(body: dict[str, Any], index: int, value: Any) -> None:
    """Insert an event and count it in the AuditControlInfo (its charges are the caller's)."""
    body["callEventDetails"].insert(index, value)
    body["auditControlInfo"]["callEventDetailsCount"] += 1


VAS_CHARGE = 500


def tap310(vas_events: int = 2) -> Any:
    """A small clean TAP 3.10 TransferBatch from CHEC9 (a release the samples do not cover):
    ``vas_events`` valueAddedService events of 5.00000 SDR each, with their VasInfo table."""

    def vas(n: int) -> Any:
        return (
            "valueAddedService",
            {
                "chargeableSubscriber": (
                    "gsmChargeableSubscriber",
                    {"imsi": bytes.fromhex(f"45499000159392{n}f")},
                ),
                "valueAddedServiceUsed": {
                    "vasCode": 1,
                    "chargingTimeStamp": stamp(f"202611211{n}0000"),
                    "chargeInformation": {
                        "chargedItem": b"F",
                        "exchangeRateCode": 1,
                        "chargeDetailList": [{"chargeType": b"00", "charge": VAS_CHARGE}],
                    },
                },
            },
        )

    total = VAS_CHARGE * vas_events
    return (
        "transferBatch",
        {
            "batchControlInfo": {
                "sender": b"CHEC9",
                "recipient": HOME.encode(),
                "fileSequenceNumber": b"03631",
                "fileCreationTimeStamp": stamp_long("20261122014700"),
                "transferCutOffTimeStamp": stamp_long("20261122000000"),
                "fileAvailableTimeStamp": stamp_long("20261122014900"),
                "specificationVersionNumber": 3,
                "releaseVersionNumber": 10,
            },
            "accountingInfo": {
                "localCurrency": b"CHF",
                "currencyConversionInfo": [
                    {"exchangeRateCode": 1, "numberOfDecimalPlaces": 5, "exchangeRate": 109874}
                ],
                "tapDecimalPlaces": 5,
            },
            "networkInfo": {
                "utcTimeOffsetInfo": [{"utcTimeOffsetCode": 1, "utcTimeOffset": b"+0100"}],
                "recEntityInfo": [
                    {
                        "recEntityCode": 1,
                        "recEntityType": 1,
                        "recEntityId": ("mscId", b"4179499001"),
                    }
                ],
            },
            "vasInfo": [{"vasCode": 1, "vasShortDesc": b"ringtone"}],
            "callEventDetails": [vas(n) for n in range(vas_events)],
            "auditControlInfo": {
                "totalChargeValueList": [{"chargeType": b"00", "totalCharge": total}],
                "totalTaxValue": 0,
                "totalDiscountValue": 0,
                "callEventDetailsCount": vas_events,
            },
        },
    )


@functools.cache
def _events(data: bytes) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = fast.decode_tap(data).events.to_pylist()
    return rows


def events(data: bytes) -> list[dict[str, Any]]:
    """The fast decoder's event rows of a file (cached; do not mutate)."""
    return _events(data)


def event_span(data: bytes, index: int) -> tuple[int, int]:
    """(offset, end) of one event's bytes."""
    row = events(data)[index]
    return row["byte_offset"], row["byte_offset"] + row["byte_length"]


def tlv(key: int, content: bytes, *, constructed: bool = False) -> bytes:
    """One definite-length BER element."""
    return encode_header(key, constructed, len(content)) + content


def splice(data: bytes, start: int, end: int, new: bytes) -> bytes:
    """Replace ``data[start:end]`` and re-encode the length of every enclosing element.

    ``start``/``end`` must be the bounds of whole elements (or of content inside the innermost
    element containing them); every enclosing element must have a definite length.
    """

    def rebuild(pos: int, limit: int) -> bytes:
        node = element_at(data, pos, limit)
        assert node.length is not None, "splice needs definite lengths"
        if not node.constructed or not (node.content_start <= start and end <= node.end):
            raise AssertionError("the range is not inside a constructed element")
        kids = iter_children(data, node)
        inner = next(
            (k for k in kids if k.offset <= start and end <= k.end and k.constructed), None
        )
        if inner is not None and not (inner.offset == start and inner.end == end):
            body = (
                data[node.content_start : inner.offset]
                + rebuild(inner.offset, node.end)
                + data[inner.end : node.content_end]
            )
        else:
            body = data[node.content_start : start] + new + data[end : node.content_end]
        return encode_header(node.key, node.constructed, len(body)) + body

    return rebuild(0, len(data))


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)


def settings(
    partners: tuple[str, ...] = PARTNERS,
    validation: dict[str, Any] | None = None,
    **per_partner: dict[str, Any],
) -> Settings:
    """``clearing.toml`` of us (HKGCL) and the sample partners, parsed as a deployment would.

    ``per_partner`` adds keys to a partner's table, e.g. ``FRAF9={"late_days": 5,
    "rules": {"fsn.filename": "off"}}`` (``rules`` becomes ``[partners.FRAF9.rules]``).
    """
    lines = ["[home]", f'tadig = "{HOME}"', ""]
    if validation:
        lines.append("[validation]")
        lines += [f"{k} = {_toml(v)}" for k, v in validation.items()]
        lines.append("")
    for code in dict.fromkeys((*partners, *per_partner)):
        extra = dict(per_partner.get(code, {}))
        rules = extra.pop("rules", None)
        lines.append(f"[partners.{code}]")
        lines += [f"{k} = {_toml(v)}" for k, v in extra.items()]
        if rules is not None:
            lines.append(f"[partners.{code}.rules]")
            lines += [f"{_toml(k)} = {_toml(v)}" for k, v in rules.items()]
        lines.append("")
    return parse("\n".join(lines))


def check(data: bytes, *, file: str = DEFINITE, cfg: Settings | None = None) -> TapChecked:
    return check_tap(data, file=file, settings=cfg if cfg is not None else settings())


@dataclass(frozen=True)
class CsvRule:
    """One row of ``specs/td57/rules.csv``, read here with :mod:`csv` (not with the code under
    test)."""

    rule: str
    context: str
    code: int
    severity: str
    releases: frozenset[int]
    group: str | None


@functools.cache
def csv_rules() -> tuple[CsvRule, ...]:
    out = []
    with RULES_CSV.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            lo, _, hi = row["releases"].partition("-")
            out.append(
                CsvRule(
                    rule=row["rule"],
                    context=row["context"],
                    code=int(row["code"]),
                    severity=row["severity"],
                    releases=frozenset(range(int(lo), int(hi or lo) + 1)),
                    group=row["group"] or None,
                )
            )
    return tuple(out)


def csv_rule(rule: str, release: int) -> CsvRule:
    """The row of a rule for a TAP release."""
    (row,) = [r for r in csv_rules() if r.rule == rule and release in r.releases]
    return row


def fixed_discount_file(total: int) -> bytes:
    """CHEC9 with a second Discounting entry (code 2, fixedDiscountValue :data:`FIXED`) that its
    first two undiscounted MOCs apply (DiscountCode 2, no Discount value of their own), and
    TotalDiscountValue ``total`` (TD.57: ``CHEC9_DISCOUNTS + 2 * FIXED`` reconciles).
    """
    value = sample_value(CHEC9)
    body: dict[str, Any] = value[1]
    body["accountingInfo"]["discounting"].append(
        {"discountCode": 2, "discountApplied": ("fixedDiscountValue", FIXED)}
    )
    applied = 0
    for kind, ev in body["callEventDetails"]:
        if kind != "mobileOriginatedCall":
            continue
        info = ev["basicServiceUsedList"][0]["chargeInformationList"][0]
        if "discountInformation" in info:
            continue
        info["discountInformation"] = {"discountCode": 2}
        applied += 1
        if applied == 2:
            break
    assert applied == 2
    body["auditControlInfo"]["totalDiscountValue"] = total
    return encode(value)
