"""Synthetic retail reference data: our roaming subscribers, their sub-numbers and plans.

The cards are :func:`clearing.samples.tap.home_subscribers` (the IMSIs the TAP-in samples
carry). Every card has its primary number; about half also have one or two sub-numbers
("one card, several numbers"):

* a **local** number in a visited country (France, Germany, UK, Switzerland, USA, Japan);
* a **virtual** number chosen by a dialled prefix: a mainland China number used for calls
  dialled ``+86…``, or an Australian one for ``+61…`` (the TAP samples dial both);
* a **data**-only number with its own APN (``iot.hkgcl`` or ``corp.vpn``, APNs the TAP samples
  use).

Five HKD plans (scale 2, integer cents), each with a recurring fee per sub-number and cycle:
``BASIC`` (allowances, flat overage, per started minute; a second version from 2027-01-01
doubles the data), ``DATA_PLUS`` (per-second voice, tiered data: HK$0.80/MB for the first
100 MB beyond the allowance, HK$0.30/MB after), ``DAY_PASS`` (HK$98 per 24 h window covering
calls, SMS and data), ``NUMBER`` (for local and virtual numbers) and ``CORP_PASS`` (a card-wide
day pass: one HK$128 pass covers every number of the card on the plan), and ``PREPAID`` (pay as
you go from the card's balance: an opening credit on 2026-11-01 and, for half of the cards, a
HK$100 top-up on 2026-11-22 at noon, in ``topups``).

Plan assignment: about one card in five belongs to a corporate account (``group_id``). The
numbers of ``ACME`` cards have no plan of their own and take the group's default
(``CORP_PASS``); the primary numbers of ``GLOBEX`` cards take the global default (``BASIC``),
the group having none. Some local numbers start on 2026-11-12, inside a bill cycle: their fee
and allowances are prorated.

Deterministic: same code → same bytes; nothing reads the clock.
"""

from __future__ import annotations

import csv
import functools
import io
import random
from typing import TYPE_CHECKING

from clearing.rating.retail_tables import table_spec
from clearing.samples.tap import home_subscribers

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "PLANS",
    "PLANS_TIERS",
    "PLAN_DEFAULTS",
    "card_numbers",
    "subscriber_rows",
    "write_subscriber_sources",
]

Row = dict[str, str | int | None]

#: One row per plan version (columns of ``specs/rates/plans.csv``).
PLANS: tuple[Row, ...] = (
    {
        "plan_id": "BASIC",
        "name": "Roam Basic",
        "currency": "HKD",
        "scale": 2,
        "allowance_voice_mo_min": 30,
        "allowance_voice_mt_min": 30,
        "allowance_sms_mo": 30,
        "allowance_data_mb": 1024,
        "voice_increment_s": 60,
        "data_increment_kb": 1,
        "fee": 4800,
        "valid_from": "2024-01-01",
        "valid_to": "2027-01-01",
    },
    {
        "plan_id": "BASIC",
        "name": "Roam Basic",
        "currency": "HKD",
        "scale": 2,
        "allowance_voice_mo_min": 30,
        "allowance_voice_mt_min": 30,
        "allowance_sms_mo": 30,
        "allowance_data_mb": 2048,
        "voice_increment_s": 60,
        "data_increment_kb": 1,
        "fee": 4800,
        "valid_from": "2027-01-01",
    },
    {
        "plan_id": "DATA_PLUS",
        "name": "Roam Data Plus",
        "currency": "HKD",
        "scale": 2,
        "allowance_voice_mo_min": 60,
        "allowance_voice_mt_min": 60,
        "allowance_sms_mo": 50,
        "allowance_data_mb": 2048,
        "voice_increment_s": 1,
        "data_increment_kb": 1,
        "fee": 12800,
        "valid_from": "2024-01-01",
    },
    {
        "plan_id": "DAY_PASS",
        "name": "Roam Day Pass",
        "currency": "HKD",
        "scale": 2,
        "voice_increment_s": 60,
        "data_increment_kb": 1,
        "day_pass_price": 9800,
        "day_pass_services": "voice_mo voice_mt sms_mo data",
        "valid_from": "2024-01-01",
    },
    {
        "plan_id": "NUMBER",
        "name": "Extra Number",
        "currency": "HKD",
        "scale": 2,
        "allowance_voice_mo_min": 100,
        "allowance_voice_mt_min": 300,
        "allowance_sms_mo": 100,
        "voice_increment_s": 60,
        "data_increment_kb": 1,
        "fee": 1800,
        "valid_from": "2024-01-01",
    },
    {
        "plan_id": "PREPAID",
        "name": "Roam Prepaid",
        "kind": "prepaid",
        "currency": "HKD",
        "scale": 2,
        "voice_increment_s": 60,
        "data_increment_kb": 1,
        "valid_from": "2024-01-01",
    },
    {
        "plan_id": "CORP_PASS",
        "name": "Corporate Day Pass",
        "currency": "HKD",
        "scale": 2,
        "voice_increment_s": 60,
        "data_increment_kb": 1,
        "day_pass_price": 12800,
        "day_pass_scope": "card",
        "day_pass_services": "voice_mo voice_mt sms_mo data",
        "fee": 2000,
        "valid_from": "2024-01-01",
    },
)

#: Default plans: the ``ACME`` group's and the global one (``specs/rates/plan_defaults.csv``).
PLAN_DEFAULTS: tuple[Row, ...] = (
    {"plan_id": "BASIC", "valid_from": "2024-01-01", "note": "global default"},
    {"group_id": "ACME", "plan_id": "CORP_PASS", "valid_from": "2024-01-01"},
)

# (plan, service, from_units, price in HK cents per minute / message / MB)
_TIERS: tuple[tuple[str, str, int, int], ...] = (
    ("BASIC", "voice_mo", 0, 300),
    ("BASIC", "voice_mt", 0, 200),
    ("BASIC", "sms_mo", 0, 250),
    ("BASIC", "sms_mt", 0, 0),
    ("BASIC", "data", 0, 50),
    ("DATA_PLUS", "voice_mo", 0, 250),
    ("DATA_PLUS", "voice_mt", 0, 150),
    ("DATA_PLUS", "sms_mo", 0, 200),
    ("DATA_PLUS", "sms_mt", 0, 0),
    ("DATA_PLUS", "data", 0, 80),
    ("DATA_PLUS", "data", 100, 30),
    ("DAY_PASS", "sms_mt", 0, 0),
    ("CORP_PASS", "sms_mt", 0, 0),
    ("PREPAID", "voice_mo", 0, 300),
    ("PREPAID", "voice_mt", 0, 150),
    ("PREPAID", "sms_mo", 0, 200),
    ("PREPAID", "sms_mt", 0, 0),
    ("PREPAID", "data", 0, 20),
    ("NUMBER", "voice_mo", 0, 150),
    ("NUMBER", "voice_mt", 0, 100),
    ("NUMBER", "sms_mo", 0, 100),
    ("NUMBER", "sms_mt", 0, 0),
    ("NUMBER", "data", 0, 100),
)

#: One row per tier (columns of ``specs/rates/plans_tiers.csv``).
PLANS_TIERS: tuple[Row, ...] = tuple(
    {"plan_id": p, "service": s, "from_units": f, "price": c, "valid_from": "2024-01-01"}
    for p, s, f, c in _TIERS
)

# visited countries of local numbers: (label, E.164 prefix, digits of a full number)
_LOCAL = (
    ("France", "336", 11),
    ("Germany", "4917", 13),
    ("UK", "447", 12),
    ("Switzerland", "417", 11),
    ("USA", "1646", 11),
    ("Japan", "8190", 12),
)
#: The country of a local number, as the first three letters of its networks' TADIG codes.
_COUNTRY_CODE = {
    "France": "FRA",
    "Germany": "DEU",
    "UK": "GBR",
    "Switzerland": "CHE",
    "USA": "USA",
    "Japan": "JPN",
}
# virtual numbers: (label, E.164 prefix, digits, selection code = dialled prefix)
_VIRTUAL = (("China", "86139", 13, "+86"), ("Australia", "614", 11, "+61"))
_DATA_APNS = ("iot.hkgcl", "corp.vpn")


def _number(rng: random.Random, prefix: str, length: int) -> str:
    return prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix)))


def _credit(imsi: str, day: str, time: str, kind: str, amount: int) -> Row:
    return {
        "imsi": imsi,
        "day": day,
        "time": time,
        "kind": kind,
        "amount": amount,
        "currency": "HKD",
    }


def subscriber_rows() -> dict[str, list[Row]]:
    """The sample rows of the six retail tables, by table name (deterministic)."""
    rng = random.Random("hkgcl-sub-numbers")
    # a separate stream, so that the cards' numbers and plans stay those of the world before
    groups = random.Random("hkgcl-groups")
    used = {msisdn for _, msisdn in home_subscribers()}
    subscribers: list[Row] = []
    numbers: list[Row] = []
    topups: list[Row] = []

    def fresh(prefix: str, length: int) -> str:
        while True:
            n = _number(rng, prefix, length)
            if n not in used:
                used.add(n)
                return n

    for imsi, msisdn in home_subscribers():
        group = groups.choices((None, "ACME", "GLOBEX"), (80, 12, 8))[0]
        subscribers.append(
            {
                "imsi": imsi,
                "msisdn": msisdn,
                "group_id": group,
                "bill_cycle_day": rng.choice((1, 8, 15, 22)),
                "valid_from": "2024-01-01",
            }
        )
        plan = rng.choices(("BASIC", "DATA_PLUS", "DAY_PASS"), (45, 30, 25))[0]
        if group is None and groups.random() < 0.12:
            plan = "PREPAID"
            opening = groups.choice((5000, 10000, 20000))
            topups.append(_credit(imsi, "2026-11-01", "00:00", "opening", opening))
            if groups.random() < 0.5:
                topups.append(_credit(imsi, "2026-11-22", "12:00", "topup", 10000))
        numbers.append(
            {
                "msisdn": msisdn,
                "imsi": imsi,
                "role": "primary",
                "plan_id": None if group else plan,
                "label": "primary number",
                "valid_from": "2024-01-01",
            }
        )
        extra = rng.choices((0, 1, 2), (50, 35, 15))[0]
        for kind in sorted(rng.sample(("local", "virtual", "data"), extra)):
            row: Row = {"imsi": imsi, "role": kind}
            if kind == "local":
                country, prefix, length = rng.choice(_LOCAL)
                row |= {
                    "msisdn": fresh(prefix, length),
                    "plan_id": "NUMBER",
                    "label": f"{country} local number",
                    # one in four starts inside November's cycles: prorated fee and allowances
                    "valid_from": "2026-11-12" if groups.random() < 0.25 else "2026-01-01",
                }
            elif kind == "virtual":
                country, prefix, length, code = rng.choice(_VIRTUAL)
                row |= {
                    "msisdn": fresh(prefix, length),
                    "selection_code": code,
                    "plan_id": "NUMBER",
                    "label": f"{country} number for calls dialled {code}",
                    "valid_from": "2025-06-01",
                }
            else:
                apn = rng.choice(_DATA_APNS)
                row |= {
                    "msisdn": fresh("8524", 11),
                    "apn": apn,
                    "plan_id": None if group == "ACME" else "DATA_PLUS",
                    "label": f"data line on APN {apn}",
                    "valid_from": "2025-01-01",
                }
            numbers.append(row)
    numbers.sort(key=lambda r: (str(r["imsi"]), str(r["msisdn"])))
    return {
        "subscribers": subscribers,
        "sub_numbers": numbers,
        "plans": list(PLANS),
        "plans_tiers": list(PLANS_TIERS),
        "plan_defaults": list(PLAN_DEFAULTS),
        "topups": topups,
    }


@functools.cache
def card_numbers() -> dict[str, dict[str, str]]:
    """Per card (IMSI), what its sub-numbers let the TAP samples show.

    ``local:<country>`` (the country's TADIG prefix, e.g. ``local:FRA``): its local number
    there, put on calls made or received on it; ``selection_code``: its virtual number's
    dialled prefix (``+86``); ``apn``: its data number's APN.
    """
    out: dict[str, dict[str, str]] = {}
    for row in subscriber_rows()["sub_numbers"]:
        card = out.setdefault(str(row["imsi"]), {})
        if row["role"] == "local":
            country = _COUNTRY_CODE[str(row["label"]).removesuffix(" local number")]
            card[f"local:{country}"] = str(row["msisdn"])
        elif row["role"] == "virtual":
            card["selection_code"] = str(row["selection_code"])
        elif row["role"] == "data":
            card["apn"] = str(row["apn"])
    return out


def _csv(table: str, rows: list[Row]) -> str:
    columns = [c.name for c in table_spec(table)]
    buf = io.StringIO()
    buf.write(f"# {table}: sample data written by clearing.samples.subscribers\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return buf.getvalue()


def write_subscriber_sources(rates_dir: Path) -> list[Path]:
    """Write the retail reference sources into ``rates_dir/sources``; return their paths.

    Writes ``subscribers.csv``, ``sub_numbers.csv``, ``plans.csv``, ``plans_tiers.csv``,
    ``plan_defaults.csv`` and ``topups.csv`` (the columns of their ``specs/rates`` schemas).
    Same bytes on every call.
    """
    out = rates_dir / "sources"
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for table, rows in subscriber_rows().items():
        path = out / f"{table}.csv"
        path.write_text(_csv(table, rows), encoding="utf-8")
        written.append(path)
    return written
