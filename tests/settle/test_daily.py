"""The daily workbook against the lake: every total recomputed by its own DuckDB query.

The world is two real nightly runs (``world.py``); the workbook of the second day is the one
the nightly's settle stage wrote. Amounts read back from cells are exact decimals (the cell XML
holds the decimal text); SDR conversions of non-SDR files are recomputed here in SQL.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from clearing.identity import STATUSES, Status
from clearing.settle import MissingInputError, daily_workbook, key_figures
from clearing.settle._book import render_book
from clearing.settle._daily import build_daily

from .helpers import dec, read_sheet, sql
from .world import DAY1, DAY2

if TYPE_CHECKING:
    from pathlib import Path

# a partner file's events in the lake take these (`held` is the rating's, not a file column)
FILE_STATUSES = tuple(s for s in STATUSES if s != Status.HELD)

D = DAY2.isoformat()


def _fx_sql(amount: str, scale: str, currency: str) -> str:
    """SQL: ``amount`` (at ``scale``) of ``currency`` in micro-SDR, rate valid on D, half up."""
    n = f"CAST({amount} AS HUGEINT) * 1000000 * CAST(power(10, r.rate_scale) AS HUGEINT)"
    d = f"CAST(r.rate AS HUGEINT) * CAST(power(10, {scale}) AS HUGEINT)"
    return (
        f"(SELECT ({n} * 2 + {d}) // (2 * {d}) FROM read_parquet('{{rates}}/fx/**/*.parquet') r "
        f"WHERE r.currency = {currency} AND r.valid_from <= DATE '{D}' "
        f"AND (r.valid_to IS NULL OR DATE '{D}' < r.valid_to))"
    )


def _per_file(world: Path) -> dict[str, dict[str, object]]:
    rows = sql(
        world,
        f"""
        WITH e AS (
            SELECT file, status, count(*) AS n, sum(coalesce(charge, 0)) AS v,
                   any_value(currency) AS currency, any_value(charge_scale) AS scale
            FROM read_parquet('{{lake}}/events_in/date={D}/*/*.parquet', union_by_name = true)
            GROUP BY ALL
        )
        SELECT f.file, f.format, f.events, f.charge, f.outcome,
               e.status, e.n, e.v, e.currency, e.scale
        FROM st.files f LEFT JOIN e ON e.file = f.file
        WHERE f.processing_date = DATE '{D}' AND f.format <> 'notification'
        """,
    )
    out: dict[str, dict[str, object]] = {}
    for r in rows:
        f = out.setdefault(
            str(r["file"]),
            {"events": r["events"], "charge": r["charge"], "outcome": r["outcome"]},
        )
        if r["status"] is not None:
            f[f"n_{r['status']}"] = r["n"]
            f[f"v_{r['status']}"] = r["v"]
            f["currency"], f["scale"] = r["currency"], r["scale"]
    return out


def test_record_reconciliation_matches_the_lake(world: Path, daily_path: Path) -> None:
    sheet = read_sheet(daily_path, "Reconciliation")
    expected = _per_file(world)
    assert sorted(r["File"] for r in sheet.rows) == sorted(expected)
    for row in sheet.rows:
        e = expected[row["File"]]
        assert row["In"] == e["events"], row["File"]
        for s in FILE_STATUSES:
            assert row[s.capitalize()] == e.get(f"n_{s}", 0), (row["File"], s)
        assert row["Difference"] == 0
        assert dec(row["Difference (SDR)"]) == 0
        if e.get("currency", "SDR") == "SDR":
            scale = int(e.get("scale") or 0)  # type: ignore[call-overload]
            charge = 0 if e["outcome"] == "copy" else int(e["charge"] or 0)  # type: ignore[call-overload]
            assert dec(row["In (SDR)"]) == Decimal(charge).scaleb(-scale)
            for s in FILE_STATUSES:
                v = int(e.get(f"v_{s}", 0) or 0)  # type: ignore[call-overload]
                assert dec(row[f"{s.capitalize()} (SDR)"]) == Decimal(v).scaleb(-scale)
        else:  # CIBER: converted here with the fx table; the parts add up exactly
            total = sum(int(e.get(f"v_{s}", 0) or 0) for s in FILE_STATUSES)  # type: ignore[call-overload]
            (conv,) = sql(
                world,
                f"SELECT {_fx_sql(str(total), str(e['scale']), repr(e['currency']))} AS x",
            )
            assert dec(row["In (SDR)"]) == Decimal(int(conv["x"])).scaleb(-6)
            parts = sum(dec(row[f"{s.capitalize()} (SDR)"]) for s in FILE_STATUSES)
            assert parts == dec(row["In (SDR)"])
    # totals: the whole day, counted once more straight from the lake
    (day,) = sql(
        world,
        f"""
        SELECT (SELECT sum(events) FROM st.files WHERE processing_date = DATE '{D}'
                    AND format <> 'notification') AS n_in,
               count(*) FILTER (status = 'accepted') AS accepted,
               count(*) FILTER (status = 'returned') AS returned,
               count(*) FILTER (status = 'duplicate') AS duplicate,
               count(*) FILTER (status = 'late') AS late
        FROM read_parquet('{{lake}}/events_in/date={D}/*/*.parquet', union_by_name = true)
        """,
    )
    t = sheet.totals
    assert (t["In"], t["Accepted"], t["Returned"], t["Duplicate"], t["Late"]) == (
        day["n_in"],
        day["accepted"],
        day["returned"],
        day["duplicate"],
        day["late"],
    )
    assert t["Difference"] == 0
    assert dec(t["Difference (SDR)"]) == 0
    # the planted faults really show: returns, a duplicate and a late record
    assert t["Returned"] > 0
    assert t["Duplicate"] == 1
    assert t["Late"] == 1
    by_partner = read_sheet(daily_path, "Reconciliation by partner")
    for h in ("In", *[s.capitalize() for s in FILE_STATUSES], "In (SDR)", "Accepted (SDR)"):
        assert dec(by_partner.totals[h]) == dec(t[h]), h


def test_outbound_and_cdr_reconciliation_match_the_lake(world: Path, daily_path: Path) -> None:
    out = read_sheet(daily_path, "Outbound reconciliation")
    rated = {
        r["partner"]: r
        for r in sql(
            world,
            f"""
            SELECT partner, count(*) AS n, sum(charge) AS charge, any_value(charge_scale) AS scale,
                   count(*) FILTER (standard = 'ciber' AND record_type NOT IN ('moc', 'mtc'))
                       AS unsent
            FROM read_parquet('{{lake}}/rated_visitors/date={D}/*/*.parquet') GROUP BY ALL
            """,
        )
    }
    files = {
        r["partner"]: r
        for r in sql(
            world,
            f"SELECT partner, sum(events) AS n, sum(total_charge) AS charge FROM "
            f"st.outbound_files WHERE processing_date = DATE '{D}' GROUP BY ALL",
        )
    }
    for row in out.rows:
        p = row["Partner"]
        assert row["Rated records"] == rated.get(p, {}).get("n", 0)
        assert row["Records in files"] == files[p]["n"]
        assert row["Records not carried (CIBER: SMS, data)"] == rated.get(p, {}).get("unsent", 0)
        assert row["Record difference"] == 0
        assert dec(row["Charge in files"]) * 10 ** int(rated.get(p, {}).get("scale") or 0) == int(
            files[p]["charge"]
        ) or not rated.get(p)
        assert dec(row["Difference (SDR)"]) == 0
    assert out.totals["Rated records"] == sum(r["n"] for r in rated.values())
    cdr = read_sheet(daily_path, "CDR reconciliation")
    counts = {
        r["file"]: r
        for r in sql(
            world,
            f"""
            SELECT file, sum(r) AS rated, sum(u) AS unrated, sum(q) AS quarantined FROM (
                SELECT file, 1 AS r, 0 AS u, 0 AS q
                FROM read_parquet('{{lake}}/rated_visitors/date={D}/*/*.parquet')
                UNION ALL SELECT file, 0, 1, 0
                FROM read_parquet('{{lake}}/unrated_visitors/date={D}/*.parquet')
                UNION ALL SELECT file, 0, 0, 1
                FROM read_parquet('{{lake}}/cdr_quarantine/date={D}/*.parquet')
            ) GROUP BY file
            """,
        )
    }
    assert {r["Mediation file"] for r in cdr.rows} == set(counts)
    for row in cdr.rows:
        name = row["Mediation file"]
        source = world / "inbox" / "cdr" / name
        reader = "read_parquet" if name.endswith(".parquet") else "read_csv"
        (n,) = sql(
            world,
            f"SELECT count(*) AS n FROM {reader}('{source}', all_varchar = true)"
            if reader == "read_csv"
            else f"SELECT count(*) AS n FROM {reader}('{source}')",
        )
        assert row["Records in file"] == n["n"]
        c = counts[name]
        assert (row["Rated"], row["Unrated"], row["Quarantined"]) == (
            c["rated"],
            c["unrated"],
            c["quarantined"],
        )
        assert row["Difference"] == 0
    assert cdr.totals["Quarantined"] > 0  # the generator's planted bad CDRs


def test_register_sequences_validation_rap_and_iot_match_the_state(
    world: Path, daily_path: Path
) -> None:
    reg = read_sheet(daily_path, "File register")
    (n,) = sql(
        world,
        f"SELECT (SELECT count(*) FROM st.files WHERE processing_date = DATE '{D}') + "
        f"(SELECT count(*) FROM st.raps_in WHERE processing_date = DATE '{D}') + "
        f"(SELECT count(*) FROM st.acks_in WHERE processing_date = DATE '{D}') AS n",
    )
    inbound = [r for r in reg.rows if r["Dir."] == "in"]
    assert len(inbound) == n["n"]
    # the audit totals differ exactly where validation found a bad total
    bad = {
        r["file"]
        for r in sql(
            world,
            f"SELECT DISTINCT file FROM st.findings WHERE processing_date = DATE '{D}' "
            "AND rule IN ('aci.total_charge', 'ciber.trailer.total')",
        )
    }
    differs = {r["File"] for r in inbound if r["Difference"] not in (None, 0)}
    assert differs == bad
    assert bad
    assert all(r["Received / sent (UTC)"] is not None for r in inbound)  # fetch ledger
    assert any(r["Events over limit"] for r in inbound)  # the planted late record, at least

    seq = read_sheet(daily_path, "Sequences")
    (f,) = sql(
        world,
        f"SELECT (SELECT count(*) FROM st.findings WHERE processing_date = DATE '{D}' AND "
        f"rule = 'fsn.gap') AS gaps, (SELECT count(*) FROM st.files WHERE processing_date = "
        f"DATE '{D}' AND outcome = 'copy') AS copies, (SELECT count(*) FROM st.findings WHERE "
        f"processing_date = DATE '{D}' AND rule = 'fsn.reused') AS reused, (SELECT count(*) "
        f"FROM st.findings WHERE processing_date = DATE '{D}') AS findings",
    )
    assert seq.totals["Gaps"] == f["gaps"] == 1
    assert seq.totals["Copies ignored"] == f["copies"]  # the fetch ledger drops a copy
    assert seq.totals["Reused FSN (fatal 201)"] == f["reused"] == 1
    val = read_sheet(daily_path, "Validation")
    assert val.totals["Findings"] == f["findings"]
    by_code = {
        (r["severity"], r["code"], r["rule"]): r["n"]
        for r in sql(
            world,
            f"SELECT severity, code, rule, count(*) AS n FROM st.findings "
            f"WHERE processing_date = DATE '{D}' GROUP BY ALL",
        )
    }
    shown: dict[tuple[str, int, str], int] = {}
    for r in val.rows:
        key = (r["Severity"], r["Error code"], r["Rule"])
        shown[key] = shown.get(key, 0) + r["Findings"]
    assert shown == by_code

    rap = read_sheet(daily_path, "RAP")
    today = [r for r in rap.rows if str(r["Sent on"])[:10] == D]
    raps = sql(
        world,
        f"SELECT r.file, r.severe_value, r.partner, (SELECT any_value(charge_scale) FROM "
        f"st.files f WHERE f.rap_file = r.file) AS scale FROM st.rap_out r "
        f"WHERE processing_date = DATE '{D}'",
    )
    assert {r["RAP file"] for r in today} == {r["file"] for r in raps}
    for r in raps:
        row = next(x for x in today if x["RAP file"] == r["file"])
        scale = int(r["scale"] if r["scale"] is not None else 6)
        assert dec(row["Severe return value (SDR)"]) == Decimal(int(r["severe_value"])).scaleb(
            -scale
        )
    acked = {r["RAP file"]: r["ACK outstanding"] for r in today}
    assert acked["RCHKGCLDEUD900001"] == 0  # DEUD9's ACK arrived
    assert rap.totals["ACK outstanding"] == len(today) - 1

    iot = read_sheet(daily_path, "IOT check")
    (i,) = sql(
        world,
        f"SELECT count(*) AS events, count(*) FILTER (breach) AS breaches FROM "
        f"read_parquet('{{lake}}/rated_partner/date={D}/*/*.parquet')",
    )
    (b,) = sql(
        world,
        f"SELECT count(*) AS n FROM read_parquet('{{lake}}/iot_findings/date={D}/*.parquet')",
    )
    assert iot.totals["Events"] == i["events"]
    assert iot.totals["Breaches"] == i["breaches"] == b["n"] > 0  # the halved FRAF9 SMS price
    assert read_sheet(daily_path, "IOT breaches").totals["Count"] == b["n"]
    sdr = sql(
        world,
        f"SELECT partner, service, sum(charged) AS charged, sum(expected) AS expected, "
        f"any_value(charge_scale) AS scale FROM "
        f"read_parquet('{{lake}}/rated_partner/date={D}/*/*.parquet') WHERE status = 'checked' "
        f"AND currency = 'SDR' GROUP BY ALL",
    )
    rows = {(r["Partner"], r["Service"]): r for r in iot.rows}
    for r in sdr:
        row = rows[(r["partner"], r["service"])]
        assert dec(row["Charged (SDR)"]) == Decimal(int(r["charged"])).scaleb(-int(r["scale"]))
        assert dec(row["Expected at IOT (SDR)"]) == Decimal(int(r["expected"])).scaleb(
            -int(r["scale"])
        )
    received = read_sheet(daily_path, "RAP received")
    assert received.totals["Severe returns"] == 2  # FRAF9's RAP about our TAP-out


def test_partner_sheet_agrees_with_the_reconciliations(world: Path, daily_path: Path) -> None:
    partners = read_sheet(daily_path, "Partners")
    rec = read_sheet(daily_path, "Reconciliation").totals
    out = read_sheet(daily_path, "Outbound reconciliation").totals
    iot = read_sheet(daily_path, "IOT check").totals
    assert partners.totals["Events in"] == rec["In"]
    assert partners.totals["Accepted"] == rec["Accepted"]
    assert dec(partners.totals["Accepted charge in (SDR)"]) == dec(rec["Accepted (SDR)"])
    assert partners.totals["Events out"] == out["Records in files"]
    assert dec(partners.totals["Charge out (SDR)"]) == dec(out["In files (SDR)"])
    assert partners.totals["IOT breaches"] == iot["Breaches"]
    (n,) = sql(
        world,
        f"SELECT count(*) AS files FROM st.files WHERE processing_date = DATE '{D}'",
    )
    assert partners.totals["Files in"] == n["files"]
    assert len(load_workbook(daily_path)["Partners"]._charts) == 2  # both charts


def test_returned_is_the_same_figure_on_every_sheet(daily_path: Path) -> None:
    """Partners, Reconciliation and Reconciliation by partner count the same returns.

    Returned = RAP severe returns, fatal returns (the whole file) and CIBER returns alike.
    """
    partners = read_sheet(daily_path, "Partners")
    recon = read_sheet(daily_path, "Reconciliation")
    by_partner = {r["Partner"]: r for r in read_sheet(daily_path, "Reconciliation by partner").rows}
    standard = {r["Partner"]: r["Standard"] for r in partners.rows}
    counted: dict[str, tuple[int, Decimal]] = {}
    for r in recon.rows:
        n, v = counted.get(r["Partner"], (0, Decimal(0)))
        counted[r["Partner"]] = (n + r["Returned"], v + dec(r["Returned (SDR)"]))
    for row in partners.rows:
        n, v = counted.get(row["Partner"], (0, Decimal(0)))
        assert row["Returned (RAP / CIBER returns)"] == n, row["Partner"]
        assert dec(row["Returned charge (SDR)"]) == v, row["Partner"]
        if row["Partner"] in by_partner:
            assert by_partner[row["Partner"]]["Returned"] == n
            assert dec(by_partner[row["Partner"]]["Returned (SDR)"]) == v
    # the cases the sheets used to disagree on are in the world: a CIBER partner's returns
    # and a TAP file returned whole (fatal)
    assert any(n and standard[p] == "CIBER" for p, (n, _) in counted.items())
    fatal = [r for r in recon.rows if r["Status"].startswith("fatal")]
    assert fatal
    assert all(r["Returned"] == r["In"] and r["Returned"] > 0 for r in fatal)
    assert partners.totals["Returned (RAP / CIBER returns)"] == recon.totals["Returned"]
    assert dec(partners.totals["Returned charge (SDR)"]) == dec(recon.totals["Returned (SDR)"])


def test_key_figures_are_the_totals_by_name(daily_path: Path) -> None:
    figures = key_figures(daily_path)
    assert figures["records_difference"] == 0
    assert figures["charge_difference_sdr"] == 0
    assert figures["records_in"] > 1000
    wb = load_workbook(daily_path, data_only=True)
    forms = load_workbook(daily_path)
    names = dict(wb.defined_names.items())
    for key in ("records_in", "records_difference", "charge_difference_sdr", "iot_breaches"):
        assert key in names
    overview = forms["Overview"]
    checked = 0
    for row in overview.iter_rows(min_row=1, max_col=2):
        label, cell = row[0].value, row[1]
        if isinstance(cell.value, str) and cell.value.startswith("="):
            name = cell.value[1:]
            ((sheet, ref),) = names[name].destinations
            target = wb[sheet][ref.replace("$", "")].value
            assert wb["Overview"][cell.coordinate].value == target, label
            checked += 1
    assert checked >= 12


def test_identities_are_zero_and_show_a_record_removed_behind_the_pipelines_back(
    world_copy: Path,
) -> None:
    # one accepted TAP-in record and one rated visitor record vanish from the lake
    ev_file = sorted((world_copy / "lake" / "events_in" / f"date={D}").glob("partner=FRAF9/*"))[0]
    table = pq.read_table(ev_file)
    idx = pc.index(table.column("status"), "accepted").as_py()
    lost_charge = table.column("charge")[idx].as_py()
    scale = table.column("charge_scale")[idx].as_py()
    keep = pa.array([i != idx for i in range(table.num_rows)])
    pq.write_table(table.filter(keep), ev_file)
    rv_file = (
        world_copy / "lake" / "rated_visitors" / f"date={D}" / "partner=DEUD9" / "part-0.parquet"
    )
    rv = pq.read_table(rv_file)
    pq.write_table(rv.slice(1), rv_file)

    path = daily_workbook(world_copy, DAY2, run_id="after-loss")
    rec = read_sheet(path, "Reconciliation")
    row = next(r for r in rec.rows if r["File"] == ev_file.name.removesuffix(".parquet"))
    assert row["Difference"] == 1
    assert dec(row["Difference (SDR)"]) == Decimal(lost_charge).scaleb(-scale)
    assert rec.totals["Difference"] == 1
    others = [r for r in rec.rows if r is not row]
    assert all(r["Difference"] == 0 for r in others)
    out = read_sheet(path, "Outbound reconciliation")
    deu = next(r for r in out.rows if r["Partner"] == "DEUD9")
    assert deu["Record difference"] == -1  # the TAP-out carries one record more than the lake
    assert dec(deu["Difference (SDR)"]) != 0
    cdr = read_sheet(path, "CDR reconciliation")
    assert cdr.totals["Difference"] == 1
    wb = load_workbook(path, data_only=True)
    figures = {r[0].value: r[1].value for r in wb["Overview"].iter_rows(max_col=2)}
    assert figures["Record identity difference (must be 0)"] == 1
    assert figures["Mediation CDR difference (must be 0)"] == 1


def test_same_inputs_same_bytes_and_a_rerun_leaves_the_file_alone(
    world: Path, world_copy: Path, daily_path: Path
) -> None:
    original = daily_path.read_bytes()
    header = {r[0].value: r[1].value for r in load_workbook(daily_path)["Overview"].iter_rows()}
    run_id = None if header["Run id"] == "(not given)" else header["Run id"]
    # rebuilt from the same inputs in another folder, with the same run id: the same bytes
    copy = world_copy / "out" / "settlement" / "daily" / daily_path.name
    copy.unlink()
    assert daily_workbook(world_copy, DAY2, run_id=run_id).read_bytes() == original
    # and the model renders to the same bytes every time
    book = build_daily(world_copy, DAY2, run_id=run_id)
    assert render_book(book) == render_book(build_daily(world_copy, DAY2, run_id=run_id))
    # a re-run with another run id finds the same content: the issued file stays as it is
    stamp = copy.stat().st_mtime_ns
    assert daily_workbook(world_copy, DAY2, run_id="rerun") == copy
    assert copy.read_bytes() == original
    assert copy.stat().st_mtime_ns == stamp
    del world


def test_missing_stages_give_a_clear_error(world_copy: Path) -> None:
    with pytest.raises(MissingInputError, match="clearing validate --workdir"):
        daily_workbook(world_copy, DAY1.replace(day=1))
    shutil.rmtree(world_copy / "lake" / "unrated_visitors" / f"date={D}")
    with pytest.raises(MissingInputError, match="clearing rate --workdir"):
        daily_workbook(world_copy, DAY2)
