"""A whole sample world as a ready work folder: what ``clearing samples generate --out W`` makes.

``W`` after :func:`generate_world` holds everything a nightly run needs, nothing else to set up::

    W/clearing.toml                    home HKGCL (SID/BID 60099, UTC+08:00), every partner,
                                       a folder transport per partner
    W/rates/sources/*.csv              IOTs, agreements, IMSI ranges, FX, subscribers, plans
    W/rates/<table>/…/*.parquet        the same, imported (hive partitions)
    W/exchange/<P>/to_hkgcl/           the partner's files for us (TAP-in, Notification, CIBER-in)
    W/exchange/<P>/from_hkgcl/         where our files for the partner land (empty)
    W/inbox/cdr/CDR_HKGCL_<D>_00n.*    our network's mediation export of visitors' usage
    W/samples/<D>/exchange/<P>/to_hkgcl/  with ``days`` > 1 only: day D's partner files, kept
    W/samples/<D>/inbox/cdr/           … and day D's mediation export, kept

**Several days.** ``generate_world(…, days=K)`` makes the processing days D … D+K−1 (``events``
usage records each). Every day's partner files and CDRs are kept under ``W/samples/<D>/`` at the
paths they take in ``W`` once delivered; the first day's are also delivered at once, exactly as
a one-day world (so ``days=1`` writes no ``samples/`` folder and is byte for byte today's world).
:func:`deliver_day` (``clearing samples deliver --workdir W --date D``) copies day D's files to
their places: the partners' into ``exchange/<P>/to_hkgcl/``, the CDRs into ``inbox/cdr/``;
delivering a day twice writes the same bytes again (nothing else). Across days the FSN of each
TAP partner and the CIBER batch sequence of each SID/BID pair continue from the day before
(:func:`clearing.samples.tap.file_sequence_number`, one file a day), and our roaming
subscribers and the partners' visitors are the same pools every day, with different events.

Planted across days (for the checks of issue 13), in a world of three days or more only
(:data:`PLANTED_FROM_DAYS`; worlds of one and two days are byte for byte as before). Days
counted from 1; D is ``day``:

=========================  ===================================================================
day                        what happens
=========================  ===================================================================
1 (D)                      the one-day world, delivered at once; nothing late
2 and later                ~4 % (:data:`LATE_SHARE`) of every TAP-in file's call events start
                           31 to 40 days before the traffic day: older than the partners' late
                           limit (``late_days``, 30), validated ``late`` (TD.57 severe 200)
2                          :data:`GAP_PARTNER` (DEUD9)'s file is lost on the way (never
                           delivered): its day-3 file comes with an FSN gap of one (warning
                           200 and a MissingReturn)
2                          :data:`FATAL_PARTNER` (CHEC9)'s file says a totalCharge
                           :data:`FATAL_ERROR` (100) units more than its events: fatal (TD.57
                           100), returned whole in our fatal RAP
3                          CHEC9 resends that file corrected (the same events, the same name and
                           FSN) next to its day-3 file; ``samples deliver`` stamps it with the
                           RapFileSequenceNumber of our fatal RAP, read where CHEC9 received
                           it (``exchange/CHEC9/from_hkgcl``)
3                          the mediation re-delivers day 2's calls-and-SMS export, the same
                           bytes under the next CDR file name (``CDR_HKGCL_<D+2>_003.csv``): a
                           nightly must not bill those records twice
3                          ``samples deliver`` writes :data:`RAP_PARTNER` (FRAF9)'s RAP
                           ``RCFRAF9HKGCL00001``: the first, middle and last call events of
                           the first TAP-out we sent FRAF9 (our outbox), returned as severe
                           (Charge, error 20)
ceil(K/2) + 1              ``samples deliver`` adds a new version of one IOT price to
                           ``rates/sources/iot.csv`` (GBRG9 inbound ``sms_mo``: 0.014 → 0.016
                           SDR, valid from that day) and imports the rates (as ``clearing rates
                           import``); visitors' SMS from that day on are rated at the new price
=========================  ===================================================================

What ``samples deliver`` does in reply to the nights before (:mod:`clearing.samples.replies`)
needs those nights run first; otherwise it is skipped with a note (and the corrected file goes
without its RapFileSequenceNumber).

``events`` counts every usage record of the day: half arrive as TAP-in from the six GSM
partners (our subscribers abroad), the other half as visitor CDRs from our own network (their
subscribers here); the CIBER-in batches of the two CDMA partners are small and fixed. The
partners' files sit in the folder-transport "remote" so that the nightly's ``collect`` stage
fetches them like it would over SFTP.

Deterministic: same ``(day, events, seed)`` → same bytes; nothing reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from clearing.config import CONFIG_NAME
from clearing.errors import ConfigError
from clearing.names import CdrName, TapName
from clearing.samples.ciber import CIBER_PARTNERS, HOME_SID_BID, generate_ciber
from clearing.samples.replies import change_tariff, partner_rap, stamp_rap_fsn
from clearing.samples.subscribers import write_subscriber_sources
from clearing.samples.tap import (
    HOME_TADIG,
    PARTNERS,
    build_file,
    file_sequence_number,
    generate_tap,
    split_events,
)
from clearing.samples.world import (
    UTC_OFFSET,
    cdr_file_names,
    write_reference_data,
    write_visitor_cdrs,
)

if TYPE_CHECKING:
    from pathlib import Path

    from clearing.samples.tap import Partner

__all__ = [
    "FATAL_DAY",
    "FATAL_ERROR",
    "FATAL_PARTNER",
    "GAP_DAY",
    "GAP_PARTNER",
    "LATE_SHARE",
    "PLANTED_FROM_DAYS",
    "RAP_DAY",
    "RAP_PARTNER",
    "REDELIVERY_DAY",
    "SAMPLES",
    "World",
    "config_text",
    "deliver_day",
    "generate_world",
    "make_exchange",
    "split_world",
    "stored_days",
    "tariff_day",
]

PLANTED_FROM_DAYS = 3
"""The smallest world (in days) with the planted happenings below (smaller ones have none)."""
REDELIVERY_DAY = 2
"""The day (0 = the first) whose mediation export re-delivers the day before's calls file."""
GAP_PARTNER = "DEUD9"
"""The partner whose file of :data:`GAP_DAY` is lost on the way."""
GAP_DAY = 1
"""The day (0 = the first) whose :data:`GAP_PARTNER` file is lost."""
LATE_SHARE = 0.04
"""The share of the TAP-in call events of every day after the first that come late."""
FATAL_PARTNER = "CHEC9"
"""The partner whose file of :data:`FATAL_DAY` has a wrong audit total (fatal)."""
FATAL_DAY = 1
"""The day (0 = the first) of the fatal file; the corrected file comes the day after."""
FATAL_ERROR = 100
"""What the fatal file's totalCharge says more than its events (TAP units)."""
RAP_PARTNER = "FRAF9"
"""The partner whose RAP about our first TAP-out to it comes on :data:`RAP_DAY`."""
RAP_DAY = 2
"""The day (0 = the first) whose delivery brings :data:`RAP_PARTNER`'s RAP."""
SAMPLES = "samples"
"""The folder of ``W`` where the days of a multi-day world are kept until delivered."""

REMOTE_IN = f"to_{HOME_TADIG.lower()}"
REMOTE_OUT = f"from_{HOME_TADIG.lower()}"


@dataclass(frozen=True)
class World:
    """What :func:`generate_world` wrote.

    Attributes:
        root: the work folder.
        day: the processing date the world is made for.
        tap_events: call events in the TAP-in files.
        visitor_cdrs: rows of the mediation export.
        partner_files: the partners' files, in their exchange folders.
        cdr_files: the mediation export.
        other: config and reference data.
        stored: with ``days`` > 1, every day's files kept under ``W/samples/<D>/``.
    """

    root: Path
    day: date
    tap_events: int
    visitor_cdrs: int
    partner_files: list[Path] = field(default_factory=list)
    cdr_files: list[Path] = field(default_factory=list)
    other: list[Path] = field(default_factory=list)
    stored: list[Path] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        """Every file written."""
        return [*self.other, *self.partner_files, *self.cdr_files, *self.stored]


def split_world(events: int) -> tuple[int, int]:
    """``events`` → (TAP-in events, visitor CDRs): half each, the odd one to TAP-in."""
    if events < 0:
        msg = f"--events must be 0 or more, not {events}"
        raise ConfigError(msg)
    tap = (events + 1) // 2
    return tap, events - tap


#: The CIBER partners' UTC offsets (standard time of Alabama and British Columbia).
CIBER_UTC_OFFSETS = {"04172": "-06:00", "16425": "-08:00"}


def config_text() -> str:
    """The sample world's ``clearing.toml``: us, the partners, a folder transport each."""
    lines = [
        "# The sample world's configuration (written by `clearing samples generate`).",
        "# Partners' files arrive in exchange/<partner>/" + REMOTE_IN + "; ours are put in",
        "# exchange/<partner>/" + REMOTE_OUT + ". Replace a [transport.partners.X] table by",
        '# kind = "sftp" (host, username, key_file, known_hosts) for a real partner.',
        "",
        "[home]",
        f'tadig = "{HOME_TADIG}"',
        f'sid_bid = "{HOME_SID_BID}"',
        f'timezone_offset = "{UTC_OFFSET}"',
        'name = "Harbour Cellular (sample world)"',
        "",
    ]
    codes: list[str] = []
    for p in PARTNERS:
        lines += [
            f"[partners.{p.tadig}]",
            f'name = "{p.tadig} ({p.country})"',
            'standard = "tap"',
            "",
        ]
        codes.append(p.tadig)
    for c in CIBER_PARTNERS:
        lines += [
            f"[partners.{c.sid_bid}]",
            f'name = "{c.name}"',
            'standard = "ciber"',
            "# CIBER times are local, with a time zone code the world leaves unmapped (99):",
            "# the partner's UTC offset gives them a UTC start (retail billing per sub-number)",
            f'utc_offset = "{CIBER_UTC_OFFSETS[c.sid_bid]}"',
            "",
        ]
        codes.append(c.sid_bid)
    lines += ["[transport]", "retry_attempts = 3", "retry_base_delay = 0.5", ""]
    for code in codes:
        lines += [
            f"[transport.partners.{code}]",
            'kind = "folder"',
            f'root = "exchange/{code}"',
            f'remote_in = "{REMOTE_IN}"',
            f'remote_out = "{REMOTE_OUT}"',
            'after_fetch = "keep"',
            "",
        ]
    return "\n".join(lines)


def generate_world(
    out: Path, *, day: date, events: int = 2000, seed: int = 1, days: int = 1
) -> World:
    """Write a complete work folder for processing date ``day`` (and the ``days`` − 1 after it).

    ``events`` usage records per day. Day ``day`` is delivered; with ``days`` > 1 every day is
    also kept under ``out/samples/<D>/`` for :func:`deliver_day` (module docstring).

    Raises:
        ConfigError: ``events`` is negative, ``days`` is below 1, or ``out`` already holds a
            ``clearing.toml`` (a world is never written over a work folder in use).
    """
    tap_events, cdrs = split_world(events)
    if days < 1:
        msg = f"--days must be 1 or more, not {days}"
        raise ConfigError(msg)
    config = out / CONFIG_NAME
    if config.exists():
        msg = (
            f"`{out}` already holds a clearing.toml: generate the world into a new folder "
            "(a sample world is never written over a work folder in use)"
        )
        raise ConfigError(msg)
    out.mkdir(parents=True, exist_ok=True)
    other = [out / "rates" / "sources" / p.name for p in write_subscriber_sources(out / "rates")]
    other += write_reference_data(out / "rates", day)
    partner_files = _partner_files(out, tap_events=tap_events, seed=seed, day=day)
    make_exchange(out)
    cdr_files = write_visitor_cdrs(out / "inbox" / "cdr", events=cdrs, seed=seed, day=day)
    stored: list[Path] = []
    if days > 1:
        for path in [*partner_files, *cdr_files]:  # the first day, as delivered
            kept = _day_folder(out, day) / path.relative_to(out)
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_bytes(path.read_bytes())
            stored.append(kept)
        planted = days >= PLANTED_FROM_DAYS
        late = LATE_SHARE if planted else 0.0
        for k in range(1, days):
            later = day + timedelta(days=k)
            root = _day_folder(out, later)
            stored += _partner_files(
                root, tap_events=tap_events, seed=seed, day=later, late_share=late
            )
            stored += write_visitor_cdrs(root / "inbox" / "cdr", events=cdrs, seed=seed, day=later)
            if k == REDELIVERY_DAY:
                stored.append(_redeliver_cdrs(out, later))
            if k == GAP_DAY and planted:
                stored = _lose_file(root, GAP_PARTNER, stored)
            if k == FATAL_DAY and planted:
                _fatal_file(root, tap_events=tap_events, seed=seed, day=later, late_share=late)
            if k == FATAL_DAY + 1 and planted:
                stored.append(
                    _resend(root, tap_events=tap_events, seed=seed, day=later, late_share=late)
                )
    tmp = config.with_name(config.name + ".tmp")
    tmp.write_text(config_text(), encoding="utf-8")
    tmp.replace(config)  # last: a folder with a config is a finished world
    other.insert(0, config)
    return World(out, day, tap_events, cdrs, partner_files, cdr_files, other, stored)


def tariff_day(days: int) -> int | None:
    """The day (0 = the first) of the tariff change of a ``days``-day world (None: none).

    Day ceil(K/2) + 1 counted from 1, i.e. ceil(K/2) from 0: the middle of the world.
    """
    return (days + 1) // 2 if days >= PLANTED_FROM_DAYS else None


def _tap_file(
    root: Path, partner: str, *, tap_events: int, seed: int, day: date, **kw: Any
) -> Path:
    """``partner``'s TAP-in file of ``day`` (with ``kw`` for :func:`build_file`), in ``root``."""
    p = next(x for x in PARTNERS if x.tadig == partner)
    events = split_events(tap_events).get(partner, 0)
    name, data = build_file(p, events=events, seed=seed, day=day, **kw)
    path = root / "exchange" / partner / REMOTE_IN / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _fatal_file(root: Path, *, tap_events: int, seed: int, day: date, late_share: float) -> Path:
    """:data:`FATAL_PARTNER`'s file of ``day`` again, its totalCharge :data:`FATAL_ERROR` off."""
    return _tap_file(
        root,
        FATAL_PARTNER,
        tap_events=tap_events,
        seed=seed,
        day=day,
        late_share=late_share,
        audit_error=FATAL_ERROR,
    )


def _resend(root: Path, *, tap_events: int, seed: int, day: date, late_share: float) -> Path:
    """:data:`FATAL_PARTNER`'s file of the day before ``day``, corrected: same FSN, same events."""
    before = day - timedelta(days=1)
    return _tap_file(
        root, FATAL_PARTNER, tap_events=tap_events, seed=seed, day=before, late_share=late_share
    )


def _lose_file(root: Path, partner: str, stored: list[Path]) -> list[Path]:
    """``partner``'s TAP file of the day kept under ``root``, removed: lost on the way."""
    lost = [p for p in stored if p.is_relative_to(root) and _tap_sender(p.name) == partner]
    for p in lost:
        p.unlink()
    return [p for p in stored if p not in lost]


def _redeliver_cdrs(out: Path, day: date) -> Path:
    """The day before's calls-and-SMS export again, under day ``day``'s next CDR file name."""
    before = day - timedelta(days=1)
    csv_name, _ = cdr_file_names(before)
    again = _day_folder(out, day) / "inbox" / "cdr" / str(CdrName(HOME_TADIG, day, 3, "csv"))
    again.write_bytes((_day_folder(out, before) / "inbox" / "cdr" / csv_name).read_bytes())
    return again


def _day_folder(out: Path, day: date) -> Path:
    return out / SAMPLES / day.isoformat()


def _partner_files(
    root: Path, *, tap_events: int, seed: int, day: date, late_share: float = 0.0
) -> list[Path]:
    """Day ``day``'s TAP-in and CIBER-in files in ``root/exchange/<P>/to_hkgcl/``."""
    written: list[Path] = []
    generated = generate_tap(
        root / ".generate", events=tap_events, seed=seed, day=day, late_share=late_share
    )
    for path in generated:
        written.append(_deliver(path, _tap_sender(path.name), root))
    for path in generate_ciber(root / ".generate", seed=seed, day=day):
        written.append(_deliver(path, _ciber_sender(path.name), root))
    (root / ".generate").rmdir()
    return written


def stored_days(out: Path) -> list[date]:
    """The processing days kept under ``out/samples/`` (empty for a one-day world)."""
    found: list[date] = []
    folder = out / SAMPLES
    if folder.is_dir():
        for sub in sorted(folder.iterdir()):
            try:
                found.append(date.fromisoformat(sub.name))
            except ValueError:
                continue
    return found


def deliver_day(out: Path, day: date, notes: list[str] | None = None) -> list[Path]:
    """Put day ``day``'s partner files and CDRs of a multi-day world in their places.

    Copies every file under ``out/samples/<day>/`` to the same path under ``out`` (partners'
    files into ``exchange/<P>/to_hkgcl/``, CDRs into ``inbox/cdr/``), each through a temporary
    file; a file already there with the same bytes is left as it is. Then what answers the
    nights before (:mod:`clearing.samples.replies`, module docstring): the corrected file's
    RAP FSN, a partner's RAP about our TAP-out, the tariff change. Returns the delivered paths
    (and the rates source, on the day of the tariff change); what could not be done is added
    to ``notes``.

    Raises:
        ConfigError: ``day`` is not one of the world's stored days (the message lists them).
    """
    available = stored_days(out)
    if day not in available:
        if available:
            listed = ", ".join(d.isoformat() for d in available)
            msg = f"`{out}` holds no sample day {day.isoformat()}: the days available are {listed}"
        else:
            msg = (
                f"`{out}` holds no stored sample days (a world generated with --days 1 has its "
                "only day delivered already; generate with --days K for more)"
            )
        raise ConfigError(msg)
    src = _day_folder(out, day)
    delivered: list[Path] = []
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        target = out / path.relative_to(src)
        data = path.read_bytes()
        if not (target.is_file() and target.read_bytes() == data):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
        delivered.append(target)
    delivered += _replies(out, day, available, notes if notes is not None else [])
    return delivered


def _replies(out: Path, day: date, available: list[date], notes: list[str]) -> list[Path]:
    """The day's deliveries that depend on the nights before (:mod:`clearing.samples.replies`)."""
    k = (day - available[0]).days
    if len(available) < PLANTED_FROM_DAYS:
        return []
    done: list[Path] = []
    if k == FATAL_DAY + 1:
        fsn = file_sequence_number(_tap_partner(FATAL_PARTNER), day - timedelta(days=1))
        name = str(TapName(False, FATAL_PARTNER, HOME_TADIG, fsn))
        resent = out / "exchange" / FATAL_PARTNER / REMOTE_IN / name
        stamp_rap_fsn(out, resent, FATAL_PARTNER, notes)
    if k == RAP_DAY:
        rap = partner_rap(out, RAP_PARTNER, day, notes)
        if rap is not None:
            done.append(rap)
    if k == tariff_day(len(available)):
        done.append(change_tariff(out / "rates", day))
    return done


def _tap_partner(code: str) -> Partner:
    return next(p for p in PARTNERS if p.tadig == code)


def make_exchange(out: Path) -> None:
    """The folder-transport exchange folders of every partner of the sample world."""
    for code in [p.tadig for p in PARTNERS] + [c.sid_bid for c in CIBER_PARTNERS]:
        (out / "exchange" / code / REMOTE_IN).mkdir(parents=True, exist_ok=True)
        (out / "exchange" / code / REMOTE_OUT).mkdir(parents=True, exist_ok=True)


def _tap_sender(name: str) -> str:
    parsed = TapName.parse(name)
    return parsed.sender if parsed else name[2:7]


def _ciber_sender(name: str) -> str:
    for c in CIBER_PARTNERS:
        if c.sid_bid in name:
            return c.sid_bid
    msg = f"cannot tell the CIBER partner of `{name}`"
    raise ConfigError(msg)


def _deliver(path: Path, partner: str, out: Path) -> Path:
    target = out / "exchange" / partner / REMOTE_IN / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    path.replace(target)
    return target
