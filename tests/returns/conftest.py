"""Shared helpers of the returns tests: real TAP samples and an independently compiled RAP-0105."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asn1tools
import pytest

from clearing.codecs.ber import element_at, iter_children, tag_key
from clearing.codecs.fast import decode_tap
from clearing.codecs.rap import (
    ErrorDetail,
    FatalItem,
    MissingItem,
    PathItem,
    RapHeader,
    SevereItem,
    StopItem,
)

ROOT = Path(__file__).resolve().parents[2]
TAP_SAMPLES = ROOT / "data_samples" / "tap"
CASES = ROOT / "tests" / "codecs" / "cases"
ASN1 = ROOT / "specs" / "asn1"

INDEFINITE_TAP = "CDUSAU9HKGCL00412"  # partner encoder with indefinite lengths
DEFINITE_TAP = "CDFRAF9HKGCL01506"


@pytest.fixture(scope="session")
def rap_spec() -> Any:
    """RAP-0105 + TAP-0312 compiled here, independently of clearing.codecs.asn1."""
    return asn1tools.compile_files([str(ASN1 / "RAP-0105.asn"), str(ASN1 / "TAP-0312.asn")], "ber")


@dataclass
class TapCase:
    """A real TAP file and what the returns tests take from it."""

    name: str
    data: bytes
    sender: str
    recipient: str
    fsn: str
    scale: int
    rows: list[dict[str, Any]]

    def event_bytes(self, i: int) -> bytes:
        row = self.rows[i]
        return self.data[row["byte_offset"] : row["byte_offset"] + row["byte_length"]]

    def charge(self, i: int) -> int:
        row = self.rows[i]
        return int(row["charge"] or 0) + int(row["camel_fee"] or 0)

    def tax(self, i: int) -> int:
        return int(self.rows[i]["tax"] or 0)

    def group_bytes(self, tag: int) -> bytes:
        top = element_at(self.data, 0)
        (node,) = [c for c in iter_children(self.data, top) if c.key == tag_key(1, tag)]
        return self.data[node.offset : node.end]


def load_tap(name: str) -> TapCase:
    data = (TAP_SAMPLES / name).read_bytes()
    batch = decode_tap(data)
    rows = batch.events.to_pylist()
    bci = batch.groups["batchControlInfo"]
    return TapCase(
        name=name,
        data=data,
        sender=bci["sender"].decode(),
        recipient=bci["recipient"].decode(),
        fsn=bci["fileSequenceNumber"].decode(),
        scale=int(batch.groups["accountingInfo"]["tapDecimalPlaces"]),
        rows=rows,
    )


SEVERE_EVENTS = (1, 5)  # in the indefinite sample both are encoded with indefinite lengths
EVENT_ERROR = 20  # e.g. callEventStartTimeStamp out of range
ACI_PATH = (PathItem(1, 1, 1), PathItem(15, 1, 2))


def event_path(i: int, kind_tag: int) -> tuple[PathItem, ...]:
    """TransferBatch / CallEventDetailList / the event (occurrence i+1)."""
    return (PathItem(1, 1, 1), PathItem(3, 1, 2), PathItem(kind_tag, i + 1, 3))


def rap_items(tap: TapCase) -> list[SevereItem | FatalItem | MissingItem | StopItem]:
    """Severe returns of events 1 and 5, a fatal ACI return, missing 3..5 and a stop."""
    items: list[SevereItem | FatalItem | MissingItem | StopItem] = []
    for i in SEVERE_EVENTS:
        raw = tap.event_bytes(i)
        kind_tag = element_at(raw, 0).key & 0xFFFFFF
        items.append(
            SevereItem(
                fsn=tap.fsn,
                event_bytes=raw,
                errors=[ErrorDetail(EVENT_ERROR, event_path(i, kind_tag), item_offset=3)],
                charge=tap.charge(i),
                tax=tap.tax(i),
            )
        )
    items.append(
        FatalItem(
            fsn=tap.fsn,
            group="auditControlInfo",
            group_bytes=tap.group_bytes(15),
            errors=[ErrorDetail(100, ACI_PATH)],
        )
    )
    items.append(MissingItem(3, 5))
    items.append(StopItem(int(tap.fsn)))
    return items


def rap_header(tap: TapCase, *, test: bool = False, rap_fsn: int = 7) -> RapHeader:
    """We (the TAP recipient, HPMN) return the partner's file: parties swapped."""
    return RapHeader(
        sender=tap.recipient,
        recipient=tap.sender,
        rap_fsn=rap_fsn,
        test=test,
        created_local="20261123020000",
        utc_offset="+0800",
        tap_decimal_places=tap.scale,
    )


def file_says(path: Path) -> str:
    """What file(1) says about a file; fails (never skips) when file(1) is missing."""
    exe = shutil.which("file")
    if exe is None:
        pytest.fail("file(1) is not installed (.ci/run installs it)")
    done = subprocess.run([exe, "-b", str(path)], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="session")
def h() -> SimpleNamespace:
    """The helpers and constants above, for the tests (a conftest is not importable)."""
    return SimpleNamespace(
        load_tap=load_tap,
        rap_items=rap_items,
        rap_header=rap_header,
        file_says=file_says,
        event_path=event_path,
        CASES=CASES,
        SEVERE_EVENTS=SEVERE_EVENTS,
        EVENT_ERROR=EVENT_ERROR,
        ACI_PATH=ACI_PATH,
        INDEFINITE_TAP=INDEFINITE_TAP,
        DEFINITE_TAP=DEFINITE_TAP,
    )


@pytest.fixture(scope="session", params=[INDEFINITE_TAP, DEFINITE_TAP])
def tap(request: pytest.FixtureRequest) -> TapCase:
    """Each real TAP sample used to build RAPs (indefinite and definite lengths)."""
    return load_tap(request.param)
