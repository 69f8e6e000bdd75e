"""A tiny, hand-checkable world for the rating tests: two GSM partners and one CDMA partner.

Money in the comments of the tests is worked out by hand from these rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

from clearing.rating._book import Rates
from clearing.rating._refdata import import_rates
from clearing.rating.cdr import empty_records

if TYPE_CHECKING:
    from pathlib import Path

AGREEMENTS = """\
partner,name,standard,tap_currency,tap_decimal_places,local_currency,iot_tolerance,iot_tolerance_scale,settlement_currency,file_type,valid_from
TSTA1,Test A,tap,SDR,5,HKD,1000,6,EUR,live,2026-01-01
TSTB2,Test B,tap,SDR,3,HKD,0,6,USD,live,2026-01-01
TSTC3,Test C (no traffic),tap,SDR,5,HKD,0,6,EUR,live,2026-01-01
01234,Test CDMA,ciber,USD,2,USD,10000,6,USD,live,2026-01-01
"""

IMSI_RANGES = """\
imsi_prefix,partner,valid_from,note
20801,TSTA1,2026-01-01,
2080199,TSTB2,2026-01-01,a longer prefix: an MVNO on TSTA1's range billed by TSTB2
31100,01234,2026-01-01,
"""

FX = """\
currency,valid_from,rate,rate_scale,source
EUR,2026-01-01,117234,5,test
USD,2026-01-01,136412,5,test
HKD,2026-01-01,1062340,5,test
"""

# inbound (what we charge visitors), prices in micro-SDR
IOT = """\
partner,direction,service,destination_prefix,time_band,weekdays,band_start,band_end,unit,price,price_scale,currency,minimum_units,initial_increment,subsequent_increment,tax_rate,rounding,valid_from
TSTA1,inbound,moc_local,852,peak,12345,08:00,20:00,60,120000,6,SDR,30,30,1,0,half_up,2026-01-01
TSTA1,inbound,moc_local,852,offpeak,12345,20:00,08:00,60,60000,6,SDR,30,30,1,0,half_up,2026-01-01
TSTA1,inbound,moc_local,852,weekend,67,00:00,24:00,60,30000,6,SDR,30,30,1,0,half_up,2026-01-01
TSTA1,inbound,moc_home,33,all,1234567,00:00,24:00,60,200000,6,SDR,60,60,60,0,half_up,2026-01-01
TSTA1,inbound,moc_international,,all,1234567,00:00,24:00,60,500000,6,SDR,60,60,60,0,half_up,2026-01-01
TSTA1,inbound,moc_destination,86,all,1234567,00:00,24:00,60,400000,6,SDR,60,60,60,0,half_up,2026-01-01
TSTA1,inbound,moc_destination,8613,all,1234567,00:00,24:00,60,300000,6,SDR,60,60,60,0,half_up,2026-01-01
TSTA1,inbound,mtc,,all,1234567,00:00,24:00,60,50000,6,SDR,0,1,1,0,half_up,2026-01-01
TSTA1,inbound,sms_mo,,all,1234567,00:00,24:00,1,13730,6,SDR,0,1,1,2000000,half_up,2026-01-01
TSTA1,inbound,sms_mt,,all,1234567,00:00,24:00,1,0,6,SDR,0,1,1,0,half_up,2026-01-01
TSTA1,inbound,gprs,,all,1234567,00:00,24:00,1048576,2500000,6,SDR,0,1024,1024,0,half_up,2026-01-01
TSTB2,inbound,moc_local,852,all,1234567,00:00,24:00,60,100000,6,SDR,60,60,60,0,half_even,2026-01-01
TSTB2,inbound,mtc,,all,1234567,00:00,24:00,60,45000,6,SDR,1,1,1,0,half_even,2026-01-01
01234,inbound,moc_local,852,all,1234567,00:00,24:00,60,45,2,USD,60,60,60,0,half_up,2026-01-01
01234,inbound,mtc,,all,1234567,00:00,24:00,60,45,2,USD,60,60,60,0,half_up,2026-01-01
TSTA1,outbound,moc_local,33,all,1234567,00:00,24:00,60,38000,6,SDR,30,30,1,2000000,half_up,2026-01-01
TSTA1,outbound,moc_home,852,all,1234567,00:00,24:00,60,38000,6,SDR,30,30,1,2000000,half_up,2026-01-01
TSTA1,outbound,moc_international,,all,1234567,00:00,24:00,60,420000,6,SDR,30,30,1,2000000,half_up,2026-01-01
TSTA1,outbound,mtc,,all,1234567,00:00,24:00,60,8200,6,SDR,30,30,1,2000000,half_up,2026-01-01
TSTA1,outbound,sms_mo,,all,1234567,00:00,24:00,1,9500,6,SDR,0,1,1,2000000,half_up,2026-01-01
TSTA1,outbound,gprs,,all,1234567,00:00,24:00,1048576,1500,6,SDR,0,1024,1024,2000000,half_up,2026-01-01
TSTA1,outbound,camel,,all,1234567,00:00,24:00,1,12000,6,SDR,0,1,1,2000000,half_up,2026-01-01
"""


def write_sources(rates: Path, **tables: str) -> Path:
    """Write ``rates/sources/<table>.csv`` for each keyword; return ``rates``."""
    src = rates / "sources"
    src.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (src / f"{name}.csv").write_text(text, encoding="utf-8")
    return rates


@pytest.fixture
def tiny_rates_dir(tmp_path: Path) -> Path:
    """The tiny world's rates folder, imported."""
    rates = write_sources(
        tmp_path / "rates", agreements=AGREEMENTS, imsi_ranges=IMSI_RANGES, fx=FX, iot=IOT
    )
    import_rates(rates)
    return rates


@pytest.fixture
def tiny_rates(tiny_rates_dir: Path) -> Rates:
    """The tiny world's tables."""
    return Rates.load(tiny_rates_dir)


def records(*rows: dict[str, Any]) -> pl.DataFrame:
    """Mediation records from partial rows (missing columns are null; ``start`` is ISO text)."""
    schema = empty_records().schema
    full = []
    for i, r in enumerate(rows):
        row: dict[str, Any] = dict.fromkeys(schema.names())
        row.update(
            record_id=f"R{i:04d}",
            imsi="208010000000001",
            utc_offset="+0800",
            rec_entity_type="msc",
            rec_entity_id="85290100001",
            file="test.csv",
            line=i + 2,
        )
        start = r.get("start", "2026-11-23T10:00:00")  # a Monday
        row.update({k: v for k, v in r.items() if k != "start"})
        row["start_time"] = datetime.fromisoformat(start)
        full.append(row)
    return pl.DataFrame(full, schema=schema, orient="row")


CONFIG = '[home]\ntadig = "HKGCL"\nsid_bid = "60099"\ntimezone_offset = "+0800"\n'

# Monday 2026-11-23 traffic, processing date 2026-11-24. Charges worked by hand:
# TSTA1: R1 95 s peak 0.12/min 30/1 → 0.19000; R2 SMS 0.01373 + tax 0.00275;
#        R3 1 500 000 B → 1 500 160 B × 2.5 SDR/MiB → 3.57666; R4 MTC 60 s × 0.05/min → 0.05000
#        total 0.19 + 0.01373 + 3.57666 + 0.05 = 3.83039 SDR (383039), tax 275
# TSTB2: R5 61 s at 60/60 → 120 s × 0.10/min → 0.200 SDR (3 dp: 200)
# 01234: R6 61 s → 120 s × 45 c/min = 0.90 USD; R7 MTC 30 s → 60 s → 0.45 USD; total 1.35 USD
# R8: an IMSI of no partner → unrated
CDRS = """\
record_id,record_type,imsi,msisdn,imei,called_number,calling_number,start_time,utc_offset,duration,volume_up,volume_down,apn,rec_entity_type,rec_entity_id,location_area,cell_id,charging_id,cause_for_term
R1,moc,208010000000001,33612345678,353911100000010,85291234567,,2026-11-23T10:00:00,+0800,95,,,,msc,85290100001,1001,11,,
R2,sms_mo,208010000000001,33612345678,,85291234567,,2026-11-23T10:05:00,+0800,,,,,msc,85290100001,1001,11,,
R3,gprs,208010000000002,33612345679,,,,2026-11-23T11:00:00,+0800,600,500000,1000000,internet,sgsn,203.0.113.11,1002,12,4711,
R4,mtc,208010000000002,33612345679,,,85221234567,2026-11-23T12:00:00,+0800,60,,,,msc,85290100002,1001,13,,
R5,moc,208019900000001,33698765432,,85291234567,,2026-11-23T13:00:00,+0800,61,,,,msc,85290100001,1001,11,,
R6,moc,311000000000001,14155550100,,85291234567,,2026-11-23T14:00:00,+0800,61,,,,msc,85290100002,1003,14,,
R7,mtc,311000000000001,14155550100,,,85221230000,2026-11-23T15:00:00,+0800,30,,,,msc,85290100002,1003,14,,
R8,moc,999990000000001,,,85291234567,,2026-11-23T16:00:00,+0800,30,,,,msc,85290100001,1001,11,,
"""
PROCESSING_DAY = "2026-11-24"


@pytest.fixture
def tiny_workdir(tmp_path: Path) -> Path:
    """A work folder: config, the tiny world's rates, the day's CDR export in the inbox."""
    root = tmp_path / "work"
    root.mkdir()
    (root / "clearing.toml").write_text(CONFIG, encoding="utf-8")
    rates = write_sources(
        root / "rates", agreements=AGREEMENTS, imsi_ranges=IMSI_RANGES, fx=FX, iot=IOT
    )
    import_rates(rates)
    inbox = root / "inbox" / "cdr"
    inbox.mkdir(parents=True)
    (inbox / "CDR_HKGCL_20261124_001.csv").write_text(CDRS, encoding="utf-8")
    return root
