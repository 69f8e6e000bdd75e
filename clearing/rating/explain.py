"""Explaining a rated row: which tariff rows, of which reference-data version, priced it.

``clearing rate explain`` answers from the versions kept by :mod:`clearing.rating.versions`:

* ``--iot-version vN`` (an import version): the version (import time, hashes, sources) and its
  IOT rows, optionally of one partner and service;
* ``--iot-version <16 hex>`` (what a rated row records in ``iot_version``: the content hash of
  one tariff row): that row and every version that holds it;
* ``--date D --record ID``: the rated visitor row(s) of ``lake/rated_visitors`` of D with that
  record id, each with its ``iot_version`` explained.

Every answer is JSON-ready data (dates as ISO text, money as integers with their scale).
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any

import polars as pl

from clearing import lake
from clearing.errors import ConfigError
from clearing.rating.versions import (
    VERSIONS,
    Version,
    find_rows,
    get_version,
    list_versions,
    version_table,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["explain_iot_version", "explain_record", "tariff_rows"]

_ROW_VERSION = re.compile(r"[0-9a-f]{16}")
_VERSION_ID = re.compile(r"v[1-9][0-9]*")
_RECORD_COLUMNS = (
    "record_id",
    "record_type",
    "partner",
    "imsi",
    "start_time",
    "service",
    "destination_prefix",
    "time_band",
    "iot_key",
    "iot_version",
    "charged_units",
    "price",
    "price_scale",
    "unit",
    "charge",
    "charge_scale",
    "currency",
    "tax",
    "status",
)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def tariff_rows(iot: pl.DataFrame) -> list[dict[str, Any]]:
    """IOT rows as JSON-ready dicts, each with its ``iot_key`` (as rated rows record it)."""
    out: list[dict[str, Any]] = []
    for r in iot.iter_rows(named=True):
        prefix = r["destination_prefix"] or "-"
        key = (
            f"{r['partner']}/{r['direction']}/{r['service']}/{prefix}/{r['time_band']}"
            f"@{r['valid_from'].isoformat()}"
        )
        out.append({"iot_key": key, **{k: _plain(v) for k, v in r.items()}})
    return out


def _version_info(rates_dir: Path, v: Version) -> dict[str, Any]:
    info = v.as_dict()
    info["folder"] = str(rates_dir / VERSIONS / v.id)
    return info


def _filter(iot: pl.DataFrame, partner: str | None, service: str | None) -> pl.DataFrame:
    if partner is not None:
        iot = iot.filter(pl.col("partner") == partner)
    if service is not None:
        iot = iot.filter(pl.col("service") == service)
    return iot


def explain_iot_version(
    rates_dir: Path,
    iot_version: str,
    *,
    partner: str | None = None,
    service: str | None = None,
) -> dict[str, Any]:
    """The tariff rows behind ``iot_version``: an import version (``v3``) or a row's version.

    Returns:
        ``{"iot_version", "kind": "import_version" | "tariff_row", "versions": [...],
        "rows": [...]}``: the versions (import time, content hash, sources and their SHA-256)
        and the IOT rows (of ``partner`` / ``service`` when given).

    Raises:
        ConfigError: no versions are recorded, or none is or holds ``iot_version``.
    """
    found = list_versions(rates_dir)
    if not found:
        msg = (
            f"no reference-data versions recorded in `{rates_dir / VERSIONS}`: run "
            "`clearing rates import` (it records the tables in place as the first version)"
        )
        raise ConfigError(msg)
    text = iot_version.strip()
    if _VERSION_ID.fullmatch(text):
        v = get_version(rates_dir, text)
        iot = _filter(version_table(rates_dir, v, "iot"), partner, service)
        return {
            "iot_version": text,
            "kind": "import_version",
            "versions": [_version_info(rates_dir, v)],
            "rows": tariff_rows(iot),
        }
    if not _ROW_VERSION.fullmatch(text):
        msg = (
            f"`{iot_version}` is not a reference-data version: give an import version "
            "(v1, v2… see `clearing rates versions`) or the iot_version of a rated row "
            "(16 hex digits)"
        )
        raise ConfigError(msg)
    rows, holding = find_rows(rates_dir, text, "iot")
    if not holding:
        msg = (
            f"no tariff row with iot_version {text} in any of the {len(found)} reference-data "
            f"version(s) of `{rates_dir / VERSIONS}` (it was imported before versions were "
            "kept, or in another rates folder: see `clearing rates versions`)"
        )
        raise ConfigError(msg)
    return {
        "iot_version": text,
        "kind": "tariff_row",
        "versions": [_version_info(rates_dir, v) for v in holding],
        "rows": tariff_rows(rows),
    }


def explain_record(lake_root: Path, rates_dir: Path, day: date, record_id: str) -> dict[str, Any]:
    """The rated visitor row(s) of ``day`` with ``record_id``, each with its tariff row.

    Returns:
        ``{"date", "record_id", "records": [{...row..., "explained": {...}}]}`` where
        ``explained`` is :func:`explain_iot_version` of the row's ``iot_version``.

    Raises:
        ConfigError: no rated row of ``day`` has the id (the message says when the record is
            among the day's unrated rows, and why).
    """
    rated = pl.DataFrame(lake.read(lake_root, lake.RATED_VISITORS, [day]))
    hits = rated.filter(pl.col("record_id") == record_id)
    if hits.height == 0:
        unrated = pl.DataFrame(lake.read(lake_root, lake.UNRATED_VISITORS, [day]))
        miss = unrated.filter(pl.col("record_id") == record_id)
        where = f"`{lake.partition(lake_root, lake.RATED_VISITORS, day)}`"
        if miss.height:
            reason = miss["reason"][0]
            msg = f"record {record_id} of {day} was not rated ({reason}): no tariff row priced it"
        else:
            msg = (
                f"no record {record_id} among the rated visitor rows of {day} ({where}): "
                "check the record id and the processing date"
            )
        raise ConfigError(msg)
    records: list[dict[str, Any]] = []
    for r in hits.select(_RECORD_COLUMNS).iter_rows(named=True):
        rec = {k: _plain(v) for k, v in r.items()}
        rec["explained"] = explain_iot_version(rates_dir, str(r["iot_version"]))
        records.append(rec)
    return {"date": day.isoformat(), "record_id": record_id, "records": records}
