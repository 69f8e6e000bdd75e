"""Planted faults: two processing dates validated by the validate stage find exactly them.

Day 1 is clean; day 2 has the clean files plus one faulty file per planted fault. The RAPs are
decoded with RAP-0105 + TAP-0312 compiled here with asn1tools, independently of clearing.codecs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asn1tools
import pytest

from clearing.codecs import asn1
from clearing.codecs.ber import element_at, iter_children, tag_key
from clearing.codecs.fast import decode_tap
from clearing.config import WorkDir
from clearing.errors import ConfigError
from clearing.returns import validate_and_return
from clearing.samples.faults import COPY, PlantedFault, TwoDays, plant_faults, write_two_days
from clearing.samples.tap import PARTNERS, file_sequence_number

if TYPE_CHECKING:
    from clearing.validate.stage import ValidateResult

ASN1 = Path(__file__).resolve().parents[2] / "specs" / "asn1"
SEED = 5
EVENTS = 300
DAY = date(2026, 11, 22)
PREV = DAY - timedelta(days=1)
WARNINGS = {"fsn.gap", "event.duplicate_suspect"}
FATAL = {"fsn.reused", "aci.total_charge", "fsn.filename"}
# (sender, rule) of every planted fault, in file-name order
EXPECTED = [
    ("CHEC9", "aci.total_charge"),
    ("DEUD9", "fsn.reused"),
    ("DEUD9", "event.duplicate"),
    ("FRAF9", COPY),
    ("FRAF9", "event.tax_value.mismatch"),  # in a call or GPRS event
    ("FRAF9", "event.tax_value.mismatch"),  # in a mobileSession
    ("GBRG9", "fsn.gap"),
    ("JPNJ9", "event.start.late"),
    ("JPNJ9", "event.duplicate_suspect"),
    ("JPNJ9", "event.scu_missing"),
    ("USAU9", "fsn.filename"),
]
T_RETURN_DETAILS = tag_key(1, 536)
T_SEVERE = tag_key(1, 540)


def _fsn(tadig: str, day: date, ahead: int = 0) -> str:
    p = next(p for p in PARTNERS if p.tadig == tadig)
    return f"{(file_sequence_number(p, day) - 1 + ahead) % 99_999 + 1:05d}"


def _toml() -> str:
    lines = ['[home]\ntadig = "HKGCL"\n']
    lines += [f'\n[partners.{p.tadig}]\nname = "{p.country}"\n' for p in PARTNERS]
    return "".join(lines)


@dataclass
class World:
    root: Path
    two: TwoDays
    prev: ValidateResult
    day: ValidateResult
    raps: dict[str, bytes]  # out/rap after the first run of DAY
    again: ValidateResult
    raps_again: dict[str, bytes]

    @property
    def faults(self) -> list[PlantedFault]:
        return self.two.faults[DAY]

    def result(self, file: str) -> Any:
        (r,) = [r for r in self.day.files if r.file == file]
        return r

    def data(self, file: str) -> bytes:
        return (self.root / "in" / DAY.isoformat() / file).read_bytes()


def _rap_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "out" / "rap").iterdir())}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("faults")
    (root / "clearing.toml").write_text(_toml(), encoding="utf-8")
    two = write_two_days(root / "in", seed=SEED, day=DAY, events=EVENTS)
    wd = WorkDir(root)
    prev = validate_and_return(wd, PREV, two.inputs[PREV])
    day = validate_and_return(wd, DAY, two.inputs[DAY])
    raps = _rap_bytes(root)
    again = validate_and_return(wd, DAY, two.inputs[DAY])
    return World(root, two, prev, day, raps, again, _rap_bytes(root))


@pytest.fixture(scope="module")
def rap_spec() -> Any:
    """RAP-0105 + TAP-0312 compiled here, independently of clearing.codecs.asn1."""
    return asn1tools.compile_files([str(ASN1 / "RAP-0105.asn"), str(ASN1 / "TAP-0312.asn")], "ber")


def _serious(result: ValidateResult) -> set[tuple[str, str, int | None]]:
    return {
        (r.file, f.rule, f.event_index)
        for r in result.files
        for f in r.findings
        if f.severity in ("fatal", "severe")
    }


def _all(result: ValidateResult) -> list[tuple[str, str, str, int | None]]:
    return sorted(
        (r.file, f.severity, f.rule, -1 if f.event_index is None else f.event_index)
        for r in result.files
        for f in r.findings
    )


# ---------------------------------------------------------------------------------------------
# the inputs


def test_the_two_input_sets(world: World) -> None:
    prev, day = world.two.inputs[PREV], world.two.inputs[DAY]
    assert [p.parent.name for p in prev] == [PREV.isoformat()] * len(PARTNERS)
    assert {p.parent.name for p in day} == {DAY.isoformat()}
    assert world.two.faults[PREV] == []
    assert len(day) == len(PARTNERS) + len(world.faults)
    assert sorted(p.name for p in day) == sorted(p.name for p in day[0].parent.iterdir())
    assert [(f.file[2:7], f.rule) for f in world.faults] == EXPECTED
    assert all(f.description for f in world.faults)


def test_copy_is_the_earlier_file_byte_for_byte(world: World) -> None:
    (copy,) = [f for f in world.faults if f.rule == COPY]
    earlier = world.root / "in" / PREV.isoformat() / copy.file
    assert world.data(copy.file) == earlier.read_bytes()


def test_sequence_numbers_of_the_faulty_files(world: World) -> None:
    names = {(f.file[2:7], f.rule): f.file[-5:] for f in world.faults}
    assert names["FRAF9", COPY] == _fsn("FRAF9", PREV)
    assert names["DEUD9", "fsn.reused"] == _fsn("DEUD9", PREV)
    assert names["GBRG9", "fsn.gap"] == _fsn("GBRG9", DAY, 2)
    assert names["CHEC9", "aci.total_charge"] == _fsn("CHEC9", DAY, 1)
    assert names["USAU9", "fsn.filename"] == _fsn("USAU9", DAY, 2)
    for f in world.faults:
        header = decode_tap(world.data(f.file)).groups["batchControlInfo"]
        want = _fsn("USAU9", DAY, 1) if f.rule == "fsn.filename" else f.file[-5:]
        assert header["fileSequenceNumber"].decode() == want, f


def _utc(stamp: dict[str, Any], offsets: dict[int, bytes]) -> datetime:
    offset = stamp.get("utcTimeOffset") or offsets[stamp["utcTimeOffsetCode"]]
    t = datetime.strptime(stamp["localTimeStamp"].decode(), "%Y%m%d%H%M%S")
    sign = -1 if offset.startswith(b"-") else 1
    return t - timedelta(minutes=sign * (int(offset[1:3]) * 60 + int(offset[3:5])))


def _start(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    if kind in ("mobileOriginatedCall", "mobileTerminatedCall"):
        return body["basicCallInformation"]["callEventStartTimeStamp"]  # type: ignore[no-any-return]
    if kind == "gprsCall":
        return body["gprsBasicCallInformation"]["callEventStartTimeStamp"]  # type: ignore[no-any-return]
    if kind == "supplServiceEvent":
        return body["supplServiceUsed"]["chargingTimeStamp"]  # type: ignore[no-any-return]
    return body["serviceStartTimestamp"]  # type: ignore[no-any-return]


def test_faulty_files_keep_their_audit_timestamps_and_count(world: World) -> None:
    """Earliest / latest call timestamps and the count follow the changed events."""
    for f in world.faults:
        kind, batch = asn1.decode(world.data(f.file)).value
        assert kind == "transferBatch"
        offsets = {
            u["utcTimeOffsetCode"]: u["utcTimeOffset"]
            for u in batch["networkInfo"]["utcTimeOffsetInfo"]
        }
        starts = [_utc(_start(k, b), offsets) for k, b in batch["callEventDetails"]]
        audit = batch["auditControlInfo"]
        assert _utc(audit["earliestCallTimeStamp"], offsets) == min(starts), f.file
        assert _utc(audit["latestCallTimeStamp"], offsets) == max(starts), f.file
        assert audit["callEventDetailsCount"] == len(starts)


def test_same_seed_same_bytes(world: World, tmp_path: Path) -> None:
    two = write_two_days(tmp_path, seed=SEED, day=DAY, events=EVENTS)
    assert two.faults == world.two.faults
    for d in (PREV, DAY):
        assert [p.name for p in two.inputs[d]] == [p.name for p in world.two.inputs[d]]
        for mine, theirs in zip(two.inputs[d], world.two.inputs[d], strict=True):
            assert mine.read_bytes() == theirs.read_bytes(), mine.name


def test_another_seed_other_faulty_files(world: World, tmp_path: Path) -> None:
    faults = plant_faults(tmp_path, seed=SEED + 1, day=DAY, events=EVENTS)
    assert [(f.file[2:7], f.rule) for f in faults] == EXPECTED
    event_faults = [f for f in faults if f.event_index is not None]
    assert event_faults
    assert all(
        (tmp_path / f.file).read_bytes() != world.data(f.file) for f in faults if f.rule != COPY
    )


def test_too_few_events_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="too small"):
        plant_faults(tmp_path, seed=1, day=DAY, events=5)


# ---------------------------------------------------------------------------------------------
# what validation finds


def test_day_before_is_clean(world: World) -> None:
    assert _serious(world.prev) == set()
    assert world.prev.raps == []
    assert all(r.outcome == "processed" for r in world.prev.files)


@pytest.mark.parametrize(
    "n", range(len(EXPECTED)), ids=[f"{s}-{r}-{i}" for i, (s, r) in enumerate(EXPECTED)]
)
def test_each_fault_is_found_with_its_rule(world: World, n: int) -> None:
    fault = world.faults[n]
    r = world.result(fault.file)
    if fault.rule == COPY:
        assert (r.outcome, r.copy_of, r.findings) == ("copy", fault.file, [])
        return
    found = {(f.rule, f.event_index) for f in r.every_finding()}
    assert found == {(fault.rule, fault.event_index)}, fault.description
    assert r.outcome == ("fatal" if fault.rule in FATAL else "processed")


def test_no_other_fatal_or_severe_finding(world: World) -> None:
    planted = {
        (f.file, f.rule, f.event_index)
        for f in world.faults
        if f.rule not in WARNINGS and f.rule != COPY
    }
    assert _serious(world.day) == planted


def test_record_identity(world: World) -> None:
    processed = [r for r in world.day.files if r.outcome != "copy"]
    for r in processed:
        assert r.counts()["difference"] == 0, r.file
    total = world.day.reconciliation()
    assert total["difference"] == 0
    for key in total:
        assert total[key] == sum(r.counts()[key] for r in processed), key
    statuses = ("accepted", "returned", "duplicate", "late", "quarantined")
    assert total["in"] == sum(total[s] for s in statuses)
    assert (total["duplicate"], total["late"], total["quarantined"]) == (1, 1, 0)
    fatal_events = sum(r.counts()["in"] for r in processed if r.outcome == "fatal")
    severe_events = {
        (r.file, f.event_index)
        for r in processed
        for f in r.findings
        if f.severity == "severe" and f.rule not in ("event.start.late", "event.duplicate")
    }
    assert total["returned"] == fatal_events + len(severe_events)
    (copy,) = [r for r in world.day.files if r.outcome == "copy"]
    assert copy.file not in {r.file for r in processed}


# ---------------------------------------------------------------------------------------------
# the RAPs


def _severe_events_in(rap: bytes) -> list[bytes]:
    top = element_at(rap, 0)
    (details,) = [c for c in iter_children(rap, top) if c.key == T_RETURN_DETAILS]
    out = []
    for ret in iter_children(rap, details):
        if ret.key == T_SEVERE:
            _fsn_node, event, *_rest = iter_children(rap, ret)
            out.append(rap[event.offset : event.end])
    return out


def _rap_of(world: World, tadig: str, rap_spec: Any) -> tuple[bytes, dict[str, Any]]:
    (name,) = [n for n in world.raps if n[7:12] == tadig]
    data = world.raps[name]
    value, length = rap_spec.decode_with_length("RapDataInterChange", data)
    assert length == len(data)
    kind, batch = value
    assert kind == "returnBatch"
    return data, batch


def test_raps_are_written(world: World) -> None:
    assert sorted(world.raps) == sorted(p.name for p in world.day.raps)
    # one RAP per partner with a return; SGPS9 (a clean Notification) gets none
    assert {n[7:12] for n in world.raps} == {s for s, r in EXPECTED if r != COPY}
    assert all(p.parent == world.root / "out" / "rap" for p in world.day.raps)


def test_missing_return_for_the_gap(world: World, rap_spec: Any) -> None:
    _data, batch = _rap_of(world, "GBRG9", rap_spec)
    missing = _fsn("GBRG9", DAY, 1).encode()
    assert batch["returnDetails"] == [
        ("missingReturn", {"startMissingSeqNumber": missing, "endMissingSeqNumber": missing})
    ]


@pytest.mark.parametrize(
    ("tadig", "rule", "member"),
    [
        ("DEUD9", "fsn.reused", "batchControlError"),
        ("CHEC9", "aci.total_charge", "auditControlInfoError"),
        ("USAU9", "fsn.filename", "batchControlError"),
    ],
)
def test_fatal_returns(world: World, rap_spec: Any, tadig: str, rule: str, member: str) -> None:
    (fault,) = [f for f in world.faults if f.rule == rule]
    header_fsn = decode_tap(world.data(fault.file)).groups["batchControlInfo"]["fileSequenceNumber"]
    _data, batch = _rap_of(world, tadig, rap_spec)
    fatal = [v for k, v in batch["returnDetails"] if k == "fatalReturn"]
    assert len(fatal) == 1
    assert fatal[0]["fileSequenceNumber"] == header_fsn
    assert set(fatal[0]) == {"fileSequenceNumber", member}


def test_severe_returns_echo_the_received_events(world: World, rap_spec: Any) -> None:
    severe = [f for f in world.faults if f.event_index is not None and f.rule not in WARNINGS]
    by_partner: dict[str, list[PlantedFault]] = {}
    for f in severe:
        by_partner.setdefault(f.file[2:7], []).append(f)
    for tadig, faults in sorted(by_partner.items()):
        data, batch = _rap_of(world, tadig, rap_spec)
        want_bytes, want_fsns = [], []
        for f in faults:
            tap = world.data(f.file)
            row = decode_tap(tap).events.slice(f.event_index, 1).to_pylist()[0]
            want_bytes.append(tap[row["byte_offset"] : row["byte_offset"] + row["byte_length"]])
            want_fsns.append(f.file[-5:].encode())
        assert _severe_events_in(data) == want_bytes, tadig
        returned = [v for k, v in batch["returnDetails"] if k == "severeReturn"]
        assert [v["fileSequenceNumber"] for v in returned] == want_fsns
        for v, raw in zip(returned, want_bytes, strict=True):
            assert v["callEventDetail"] == rap_spec.decode("CallEventDetail", raw)


def test_warnings_are_not_returned(world: World, rap_spec: Any) -> None:
    # the JPNJ9 RAP returns the late and the SCU-less events, not the suspected duplicate
    _data, batch = _rap_of(world, "JPNJ9", rap_spec)
    assert [k for k, _v in batch["returnDetails"]] == ["severeReturn", "severeReturn"]


# ---------------------------------------------------------------------------------------------
# re-runs


def test_rerun_gives_the_same_findings_and_raps(world: World) -> None:
    assert _all(world.again) == _all(world.day)
    assert [(r.file, r.outcome, r.counts()) for r in world.again.files] == [
        (r.file, r.outcome, r.counts()) for r in world.day.files
    ]
    assert world.raps_again == world.raps
