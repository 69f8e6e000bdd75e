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
