"""Partner file names: parse(build(x)) == x, full-match refusals, the real sample names."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearing.names import (
    AckName,
    CdrName,
    CiberName,
    CiberReturnName,
    RapName,
    TapName,
    next_ciber_sequence,
    next_fsn,
)

SAMPLES = Path(__file__).parents[1] / "data_samples"
tadig = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=5, max_size=5)
sid = st.text("0123456789", min_size=5, max_size=5)
days = st.dates(date(1000, 1, 1), date(9999, 12, 31))
names = st.one_of(
    st.builds(TapName, st.booleans(), tadig, tadig, st.integers(0, 99_999)),
    st.builds(RapName, st.booleans(), tadig, tadig, st.integers(0, 99_999)),
    st.builds(AckName, st.booleans(), tadig, tadig, st.integers(0, 99_999)),
    st.builds(CiberName, sid, sid, days, st.integers(0, 999)),
    st.builds(CiberReturnName, sid, sid, days, st.integers(0, 999)),
    st.builds(CdrName, tadig, days, st.integers(0, 999), st.sampled_from(["csv", "parquet"])),
)
KINDS = (TapName, RapName, AckName, CiberName, CiberReturnName, CdrName)


@given(names)
def test_a_built_name_parses_back_as_itself_and_as_no_other_kind(x: object) -> None:
    text = str(x)
    assert type(x).parse(text) == x  # type: ignore[attr-defined]
    assert [k for k in KINDS if k.parse(text) is not None] == [type(x)]


@pytest.mark.parametrize(
    "name",
    [
        "CDFRAF9HKGCL01506\n",  # trailing junk
        "CDFRAF9HKGCL01506x",
        "CDFRAF9HKGCL0150١",  # a non-ASCII digit
        "cdFRAF9HKGCL01506",  # lowercase
        "CDfraf9HKGCL01506",
        "XCDFRAF9HKGCL01506",
        "RCHKGCLFRAF90001",  # FSN of 4 digits
        "CIBER_04172_60099_20261122_951.dat.part",
        "CIBER_04172_60099_20261122_951.DAT",
        "CIBER_04172_60099_20261332_951.dat",  # no such date
        "CIBER_0417２_60099_20261122_951.dat",
        "CDR_HKGCL_20261122_001.xlsx",
        "CDR_hkgcl_20261122_001.csv",
    ],
)
def test_names_are_matched_in_full_ascii_only(name: str) -> None:
    assert all(k.parse(name) is None for k in KINDS)


def test_the_sample_files_names() -> None:
    tap = [TapName.parse(p.name) for p in sorted((SAMPLES / "tap").iterdir())]
    assert TapName(False, "FRAF9", "HKGCL", 1506) in tap
    assert all(t is not None and t.recipient == "HKGCL" for t in tap)
    ciber = CiberName.parse("CIBER_04172_60099_20261122_951.dat")
    assert ciber == CiberName("04172", "60099", date(2026, 11, 22), 951)
    assert (SAMPLES / "ciber" / str(ciber)).is_file()
    cdr = CdrName.parse("CDR_HKGCL_20261122_002.parquet")
    assert cdr == CdrName("HKGCL", date(2026, 11, 22), 2, "parquet")
    assert (SAMPLES / "cdr" / str(cdr)).is_file()
    assert str(RapName(True, "HKGCL", "FRAF9", 7)) == "RTHKGCLFRAF900007"
    assert str(AckName(False, "FRAF9", "HKGCL", 7)) == "ACFRAF9HKGCL00007"
    ret = CiberReturnName("60099", "04172", date(2026, 11, 22), 3)
    assert str(ret) == "CIBER_60099_04172_20261122_003_RET.dat"
    assert CiberName.parse(str(ret)) is None


def test_sequence_successors_wrap() -> None:
    assert [next_fsn(x) for x in (None, 0, 1, 99_998, 99_999)] == [1, 1, 2, 99_999, 1]
    assert [next_ciber_sequence(x) for x in (None, 0, 1, 998, 999)] == [1, 1, 2, 999, 1]
