"""Settings of one deployment, read from ``<workdir>/clearing.toml`` (pydantic, frozen).

A work folder holds everything of one deployment: the config file, the inbox, the Parquet lake,
the DuckDB state file and the outputs (see :class:`WorkDir`). A minimal ``clearing.toml``::

    [home]
    tadig = "HKGCL"
    sid_bid = "60099"

    [partners.FRAF9]
    name = "France F9"
    standard = "tap"

    [partners.FRAF9.rules]          # per-partner TD.57 overrides: a severity, or "off"
    "event.tax.value" = "warning"

    [transport.partners.FRAF9]      # how to reach a partner (see :class:`TransportSettings`)
    kind = "folder"
    root = "exchange/FRAF9"

Unknown keys are refused (``extra="forbid"``) so a typo never silently changes behaviour.
:func:`load` is the only reader of the file (the transport stage takes ``Settings.transport``).

The ``CLEARING_*`` environment variables of the package are read in :mod:`clearing.environment`
(no pydantic, for a fast start) and re-exported here: :func:`environment` (see
:class:`Environment`, which documents each one) and :func:`cache_dir`.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path  # noqa: TC003 - pydantic reads the models' annotations at run time
from typing import TYPE_CHECKING, Annotated, Any, Literal, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import to_json

from clearing.environment import PARALLEL_MIN_MB, Environment, cache_dir, environment
from clearing.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import ModelWrapValidatorHandler

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_RATE_KEYS",
    "PARALLEL_MIN_MB",
    "BreachThreshold",
    "DefaultRate",
    "Environment",
    "FolderPartner",
    "Home",
    "Output",
    "Partner",
    "PartnerTransport",
    "PerPartnerInt",
    "Performance",
    "Retail",
    "Retention",
    "Settings",
    "SftpPartner",
    "TransportSettings",
    "Validation",
    "WorkDir",
    "cache_dir",
    "config_sha256",
    "environment",
    "load",
    "offset_seconds",
    "parse",
    "parse_date",
    "parse_period",
]

CONFIG_NAME = "clearing.toml"
"""The configuration file in a work folder."""
_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")

Severity = Literal["fatal", "severe", "warning"]
Override = Literal["fatal", "severe", "warning", "off"]

BreachThreshold = Annotated[Decimal, Field(ge=0)] | Literal["off"]
"""An IOT breach threshold: a non-negative decimal (write it as a string for an exact value,
e.g. ``"100.00"``), or ``"off"``."""

#: Defaults of the IOT breach thresholds (see :class:`Validation`).
IOT_BREACH_ABSOLUTE_DEFAULT = Decimal(100)
IOT_BREACH_PERCENT_DEFAULT = Decimal(1000)


_OFFSET = r"^[+-](0[0-9]|1[0-4]):?[0-5][0-9]$"


def offset_seconds(text: str) -> int:
    """Seconds east of UTC of an offset ``±hh:mm`` or ``±hhmm`` (e.g. ``-05:00`` → -18000).

    Raises:
        ConfigError: ``text`` is not such an offset.
    """
    if not re.fullmatch(_OFFSET, text):
        msg = f"`{text}` is not a UTC offset such as `-05:00` or `+0800`"
        raise ConfigError(msg)
    digits = text[1:].replace(":", "")
    seconds = int(digits[:2]) * 3600 + int(digits[2:]) * 60
    return -seconds if text[0] == "-" else seconds


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, defer_build=True
    )


class Home(_Model):
    """Us: the operator running the pipeline."""

    tadig: str = Field(pattern=r"^[A-Z0-9]{5}$", description="our TADIG code (TAP)")
    sid_bid: str | None = Field(
        default=None, pattern=r"^[0-9]{5}$", description="our SID/BID (CIBER)"
    )
    name: str = ""
    timezone_offset: str = Field(
        default="+0000",
        pattern=r"^[+-][01][0-9][0-5][0-9]$",
        description="UTC offset of our timestamps in files we write (e.g. RAP, ACK)",
    )


class Validation(_Model):
    """Defaults of the validation stage and of the IOT check of partners' charges.

    A partner may override the per-partner ones.
    """

    duplicate_window_days: int = Field(default=80, ge=1)
    late_days: int = Field(default=30, ge=1)
    silent_days: int = Field(default=7, ge=1, description="no file for N days → StopReturn")
    soft_duplicate_seconds: int = Field(default=2, ge=0)
    tax_tolerance: Decimal = Field(
        default=Decimal("0.02"), description="TD.57 tax check tolerance, in TAP currency units"
    )
    expect_test_data: bool = False
    iot_breach_absolute: BreachThreshold = IOT_BREACH_ABSOLUTE_DEFAULT
    """An IOT breach (a partner charging more than its IOT) whose overcharge, converted to
    the partner's settlement currency, is above this many units of that currency is an
    anomaly: its event is held from the payable until ``clearing iot accept`` or
    ``clearing iot dispute``. ``"off"``: no absolute threshold."""
    iot_breach_percent: BreachThreshold = IOT_BREACH_PERCENT_DEFAULT
    """The same for an overcharge above this percent of the expected (IOT) charge (1000: the
    partner charged more than 11 times the IOT). Either threshold exceeded holds the event."""


#: The keys of ``[partners.X.default_rate]``: a service of the IOT, or a usage kind (any service
#: of that kind, e.g. ``moc`` for a call whose destination no IOT prefix matches).
DEFAULT_RATE_KEYS = (
    "moc",
    "moc_local",
    "moc_home",
    "moc_international",
    "moc_destination",
    "mtc",
    "sms_mo",
    "sms_mt",
    "gprs",
    "volte",
)


class DefaultRate(_Model):
    """The default price of one service of a partner (``[partners.X.default_rate.<service>]``).

    A visitor's record that the partner's IOT cannot price is billed at this price, with a
    warning, instead of being held: ``charge = price × usage / unit`` in the agreement's TAP
    currency, rounded once (half up) to its decimal places; no tax.
    """

    price: Decimal = Field(ge=0, description="price per `unit` of usage, in the TAP currency")
    unit: int = Field(
        default=1, ge=1, description="usage the price is for: seconds, events or bytes"
    )


class Partner(_Model):
    """A roaming partner (a VPMN sending us TAP/CIBER, and receiving ours)."""

    name: str = ""
    standard: Literal["tap", "ciber"] = "tap"
    late_days: int | None = Field(default=None, ge=1)
    duplicate_window_days: int | None = Field(default=None, ge=1)
    silent_days: int | None = Field(default=None, ge=1)
    expect_test_data: bool | None = None
    rules: dict[str, Override] = Field(default_factory=dict)
    tax_rates: list[str] | None = Field(
        default=None, description="TaxRate values (7 digits) agreed; others → TaxValue 200"
    )
    refused_event_kinds: list[str] = Field(
        default_factory=list,
        description="event kinds not agreed bilaterally, e.g. contentTransaction (→ severe)",
    )
    default_rate: dict[str, DefaultRate] = Field(
        default_factory=dict,
        description="per service: bill records the IOT cannot price at this price (off: held)",
    )

    @model_serializer(mode="wrap")
    def _without_unset_policies(self, handler: SerializerFunctionWrapHandler) -> Any:
        # a policy added after release is left out at its default (off), so the config hash
        # (:meth:`Settings.fingerprint`) of an unchanged clearing.toml stays what it was
        out = handler(self)
        if isinstance(out, dict) and not self.default_rate:
            out.pop("default_rate", None)
        return out

    @field_validator("default_rate")
    @classmethod
    def _default_rate_keys(cls, v: dict[str, DefaultRate]) -> dict[str, DefaultRate]:
        unknown = sorted(set(v) - set(DEFAULT_RATE_KEYS))
        if unknown:
            msg = (
                f"default_rate: unknown service(s) {', '.join(unknown)}; use one of "
                f"{', '.join(DEFAULT_RATE_KEYS)}"
            )
            raise ValueError(msg)
        return v

    iot_breach_absolute: BreachThreshold | None = None
    """This partner's IOT breach threshold in its settlement currency (None: ``[validation]``'s)."""
    iot_breach_percent: BreachThreshold | None = None
    """This partner's relative IOT breach threshold in percent (None: ``[validation]``'s)."""

    # CIBER events carry a local time and a time zone *code* only: these give them a UTC start
    # (left out of the fingerprint while unset, so existing configs keep their hash)
    utc_offset: str | None = Field(
        default=None,
        pattern=_OFFSET,
        exclude_if=lambda v: v is None,
        description="UTC offset of the partner's CIBER local times, e.g. `-05:00`",
    )
    time_zones: dict[Annotated[str, Field(pattern=r"^[0-9]{2}(/[0-9])?$")], str] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        description=(
            "CIBER Time Zone Indicator code (`08`, or `08/1` with the Daylight Savings "
            'Indicator) → UTC offset, e.g. {"08" = "-08:00"}; before `utc_offset`'
        ),
    )

    @field_validator("time_zones")
    @classmethod
    def _zone_offsets(cls, v: dict[str, str]) -> dict[str, str]:
        for code, offset in v.items():
            if not re.fullmatch(_OFFSET, offset):
                msg = f"time zone `{code}`: `{offset}` is not a UTC offset such as `-05:00`"
                raise ValueError(msg)
        return v

    def offset_seconds(self, code: int | None = None, dst: int | None = None) -> int | None:
        """Seconds east of UTC of a CIBER event's local time, or None when unknown.

        The event's time zone code (with its daylight savings indicator, then alone) when
        mapped in ``time_zones``, else ``utc_offset``.
        """
        keys = [] if code is None else [f"{code:02d}/{dst}", f"{code:02d}"]
        if dst is None:
            keys = keys[1:]
        for key in keys:
            if key in self.time_zones:
                return offset_seconds(self.time_zones[key])
        return None if self.utc_offset is None else offset_seconds(self.utc_offset)


# ---------------------------------------------------------------------------------------------
# [transport]: how each partner is reached (the transport stage builds the connections)

_PARTNER_KEY = r"^[A-Za-z0-9]{3,16}$"


class _PartnerTransport(_Model):
    remote_in: str = "."
    """The partner's folder we fetch from."""
    remote_out: str = "."
    """The folder we upload our files to."""
    remote_archive: str | None = None
    """Where fetched files are moved when ``after_fetch = "archive"``."""
    after_fetch: Literal["keep", "archive", "delete"] = "keep"
    """What happens to a remote file once fetched."""
    pattern: str = "*"
    """Which inbound names to fetch: a glob, or ``re:`` and a regular expression."""
    sidecar: bool = False
    """Upload ``NAME.sha256`` beside every file we send."""


class SftpPartner(_PartnerTransport):
    """A partner reached over SFTP."""

    kind: Literal["sftp"]
    host: str = Field(min_length=1)
    """Server name or address."""
    port: int = Field(default=22, ge=1, le=65535)
    """Server port."""
    username: str = Field(min_length=1)
    """The login the partner gave us."""
    key_file: Path
    """Our private key (relative paths are relative to the work folder)."""
    known_hosts: Path
    """known_hosts file listing the server's verified host key."""
    password_env: str | None = None
    """Environment variable holding a password, only if the partner requires one."""
    timeout: float = Field(default=30.0, gt=0)
    """Seconds for connecting and for each network read or write."""


class FolderPartner(_PartnerTransport):
    """A partner reached through a (local or mounted) folder."""

    kind: Literal["folder"]
    root: Path
    """The exchange folder; ``remote_in`` / ``remote_out`` are relative to it."""


PartnerTransport = Annotated[SftpPartner | FolderPartner, Field(discriminator="kind")]
"""One partner's transport settings (``kind`` = ``"sftp"`` or ``"folder"``)."""


_MODE = r"^0?[0-7]{3}$"


class Output(_Model):
    """``[output]``: the modes of the files and folders a run creates (octal strings).

    Private by default: outputs, lake, state and manifests ``0640``, folders ``0750`` (the
    group may read, the world may not).
    """

    file_mode: str = Field(default="0640", pattern=_MODE, description="mode of files written")
    dir_mode: str = Field(default="0750", pattern=_MODE, description="mode of folders created")

    @field_validator("file_mode", "dir_mode")
    @classmethod
    def _owner_can_use(cls, v: str, info: ValidationInfo) -> str:
        need = 0o600 if info.field_name == "file_mode" else 0o700
        if int(v, 8) & need != need:
            msg = f"`{v}` would lock the pipeline out of its own files (it needs {need:o})"
            raise ValueError(msg)
        return v

    @property
    def modes(self) -> tuple[int, int]:
        """(file mode, folder mode) as numbers."""
        return int(self.file_mode, 8), int(self.dir_mode, 8)


class Retention(_Model):
    """``[retention]``: how long the lake keeps what ``clearing archive`` may move away.

    ``clearing archive --before D`` refuses a ``D`` later than the last processing date minus
    the largest duplicate window (``duplicate_window_days``, ``[validation]``'s or a
    partner's) minus ``dispute_days`` (``--force`` lifts the dispute period, never the window).
    """

    dispute_days: int = Field(default=90, ge=0)
    """Days after the duplicate window during which a period may still be disputed, replayed
    or re-rated: its lake partitions and inputs stay in the work folder."""


class Performance(_Model):
    """``[performance]``: the memory a night may use.

    ``memory_mb`` is the budget the stages that hold many rows at once size their work by: the
    retail rating of the cycle-to-date usage (which grows through a bill cycle) is done in
    slices of cards, as many as the budget needs; the rate stage rates a day bigger than the
    budget in chunks of records and partner events (the same outputs), and settlement's
    DuckDB works within it. A budget is not a hard limit on the process
    (Python, Arrow and DuckDB allocate on their own), it is what the slices are sized for.
    """

    memory_mb: int = Field(default=2048, ge=256)
    """Megabytes the stages size their work for (default 2048)."""


class Retail(_Model):
    """``[retail]``: retail rating's settings.

    ``low_balance``: the warning levels of prepaid balances, in units of the plan's currency
    (e.g. ``["50", "10", "0"]`` = HK$50, HK$10, zero). A line that takes a card's balance from
    above a level to the level or below is an anomaly of the run (exit 1), once per crossing:
    a top-up that lifts the balance above the level arms it again. ``[]``: no warnings.
    """

    low_balance: list[Decimal] = Field(
        default_factory=lambda: [Decimal(50), Decimal(10), Decimal(0)], max_length=10
    )
    """Warning levels of prepaid balances (currency units, highest first; default 50, 10, 0)."""

    @field_validator("low_balance")
    @classmethod
    def _levels(cls, v: list[Decimal]) -> list[Decimal]:
        if any(not x.is_finite() for x in v):
            msg = 'a low-balance level must be a number of currency units, e.g. "10"'
            raise ValueError(msg)
        return sorted(v, reverse=True)


class TransportSettings(_Model):
    """The ``[transport]`` section: retries, and per partner how to reach it.

    A password, when a partner insists on one, is never written in the file: ``password_env``
    names the environment variable that holds it.
    """

    retry_attempts: int = Field(default=4, ge=1, le=20)
    """Tries in all for one operation (1 = no retry)."""
    retry_base_delay: float = Field(default=1.0, ge=0)
    """Seconds before the first retry; doubled for each further one."""
    retry_max_delay: float = Field(default=30.0, ge=0)
    """Upper bound of one delay, in seconds."""
    recheck_days: int = Field(default=7, ge=0, le=366)
    """Days after its fetch during which a remote file still on the server (kept) is
    downloaded and hashed again although its name, size and mtime are unchanged, so that
    other bytes under the same name, size and time are seen (0: never)."""
    partners: dict[Annotated[str, Field(pattern=_PARTNER_KEY)], PartnerTransport] = Field(
        default_factory=dict
    )
    """Per partner (TADIG code, or CIBER SID/BID): how to reach it."""

    def partner(self, partner: str) -> SftpPartner | FolderPartner:
        """The settings of ``partner``; `ConfigError` naming the known ones if absent."""
        try:
            return self.partners[partner]
        except KeyError:
            known = ", ".join(sorted(self.partners)) or "none"
            msg = (
                f"no transport for partner `{partner}` (configured: {known}): add a "
                f"`[transport.partners.{partner}]` table to {CONFIG_NAME}"
            )
            raise ConfigError(msg) from None


# ---------------------------------------------------------------------------------------------
# the whole file

PerPartnerInt = Literal["late_days", "duplicate_window_days", "silent_days"]
"""The per-partner integer settings (a partner's value, else ``[validation]``'s)."""

PerPartnerThreshold = Literal["iot_breach_absolute", "iot_breach_percent"]
"""The per-partner IOT breach thresholds (a partner's value, else ``[validation]``'s)."""

# settings added after the fingerprint was first recorded: hashed only when they differ from
# their default, so the fingerprint of a file that does not use them stays what it was
_OPTIONAL_VALIDATION = ("iot_breach_absolute", "iot_breach_percent")
_OPTIONAL_PARTNER = ("iot_breach_absolute", "iot_breach_percent")


class Settings(_Model):
    """The whole ``clearing.toml``."""

    home: Home
    partners: dict[str, Partner] = Field(default_factory=dict)
    validation: Validation = Validation()
    transport: TransportSettings = TransportSettings()
    output: Output = Output()
    retention: Retention = Retention()
    performance: Performance = Performance()
    retail: Retail = Retail()
    # the [transport] section as written: what :meth:`fingerprint` hashes (see there)
    _transport_as_written: Any = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_transport_as_written(
        cls, data: Any, handler: ModelWrapValidatorHandler[Settings]
    ) -> Settings:
        settings = handler(data)
        if isinstance(data, dict):
            settings._transport_as_written = data.get("transport", {})
        return settings

    @field_validator("partners")
    @classmethod
    def _codes(cls, v: dict[str, Partner]) -> dict[str, Partner]:
        for code, p in v.items():
            ok = (
                len(code) == 5
                and code.isascii()
                and (code.isdigit() if p.standard == "ciber" else code.isalnum())
            )
            if not ok:
                kind = "a 5-digit SID/BID" if p.standard == "ciber" else "a 5-character TADIG"
                msg = f"partner `{code}`: the key must be {kind} code"
                raise ValueError(msg)
        return v

    def partner(self, code: str | None) -> Partner:
        """The partner's settings; an unknown partner gets the defaults."""
        return self.partners.get(code or "", Partner())

    @overload
    def resolved(self, field: PerPartnerInt, code: str | None) -> int: ...
    @overload
    def resolved(self, field: Literal["expect_test_data"], code: str | None) -> bool: ...
    @overload
    def resolved(
        self, field: PerPartnerThreshold, code: str | None
    ) -> Decimal | Literal["off"]: ...
    def resolved(self, field: str, code: str | None) -> Any:
        """A per-partner setting: the partner's own value if set, else ``[validation]``'s."""
        own = getattr(self.partner(code), field)
        return getattr(self.validation, field) if own is None else own

    def late_days(self, code: str | None) -> int:
        """Days after which a partner's event is late (TD.57)."""
        return self.resolved("late_days", code)

    def duplicate_window_days(self, code: str | None) -> int:
        """Days back the duplicate check looks for a partner."""
        return self.resolved("duplicate_window_days", code)

    def largest_duplicate_window_days(self) -> int:
        """The longest duplicate window of any partner (``[validation]``'s or a partner's)."""
        own = (p.duplicate_window_days for p in self.partners.values())
        return max([self.validation.duplicate_window_days, *(d for d in own if d is not None)])

    def silent_days(self, code: str | None) -> int:
        """Days without a file from a partner before a StopReturn is due."""
        return self.resolved("silent_days", code)

    def expect_test_data(self, code: str | None) -> bool:
        """Whether a partner's test files are expected (not refused)."""
        return self.resolved("expect_test_data", code)

    def iot_breach_thresholds(self, code: str | None) -> tuple[Decimal | None, Decimal | None]:
        """A partner's IOT breach thresholds: (absolute, percent); None where ``"off"``."""
        out: list[Decimal | None] = []
        for name in ("iot_breach_absolute", "iot_breach_percent"):
            value = self.resolved(name, code)
            out.append(None if value == "off" else Decimal(value))
        return out[0], out[1]

    def fingerprint(self) -> str:
        """A stable hash of the settings (for run manifests and audit sheets).

        The ``[transport]`` section is hashed as written in the file (before it was typed),
        so the hashes recorded in earlier manifests and workbooks still name the same settings.
        Settings added later (the IOT breach thresholds) are hashed only when they differ from
        their defaults, for the same reason.
        """
        exclude: dict[str, Any] = {
            "transport": True,
            "validation": {
                f
                for f in _OPTIONAL_VALIDATION
                if getattr(self.validation, f) == Validation.model_fields[f].default
            },
            "partners": {
                code: {f for f in _OPTIONAL_PARTNER if getattr(p, f) is None}
                for code, p in self.partners.items()
            },
        }
        if self.output == Output():  # added later: hashed only when not the default
            exclude["output"] = True
        if self.retention == Retention():  # the same
            exclude["retention"] = True
        if self.performance == Performance():  # the same
            exclude["performance"] = True
        if self.retail == Retail():  # the same
            exclude["retail"] = True
        head = self.model_dump_json(exclude=exclude)
        text = f'{head[:-1]},"transport":{to_json(self._transport_as_written).decode()}}}'
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse(text: str, *, source: str = CONFIG_NAME) -> Settings:
    """Parse the TOML text of a config file."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{source}: not valid TOML: {exc}"
        raise ConfigError(msg) from None
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        msg = f"{source}: {problems}"
        raise ConfigError(msg) from None


def load(workdir: Path) -> Settings:
    """Read ``<workdir>/clearing.toml``; a clear :class:`ConfigError` when missing or wrong."""
    path = workdir / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = (
            f"no {CONFIG_NAME} in `{workdir}`: create one (see README, Config) or make a world "
            f"with `clearing samples generate --out {workdir}`"
        )
        raise ConfigError(msg) from None
    except OSError as exc:
        msg = f"cannot read `{path}`: {exc.strerror}"
        raise ConfigError(msg) from None
    return parse(text, source=str(path))


def config_sha256(workdir: Path) -> str | None:
    """The config fingerprint: hex SHA-256 of ``<workdir>/clearing.toml`` as its bytes are.

    The one fingerprint of a deployment's configuration: the run manifest records it as
    ``config_sha256`` and the workbooks show it (Overview, Audit), so a workbook can be matched
    with the run that wrote it. None when the work folder has no (readable) config file.

    Args:
        workdir: the work folder.
    """
    path = workdir / CONFIG_NAME
    h = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


@dataclass(frozen=True)
class WorkDir:
    """The folders of one deployment (DESIGN.md, Layout)."""

    root: Path

    @property
    def config(self) -> Path:
        """The deployment's ``clearing.toml``."""
        return self.root / CONFIG_NAME

    @property
    def inbox(self) -> Path:
        """``inbox/``: partners' files as collected, and mediation CDRs."""
        return self.root / "inbox"

    @property
    def done(self) -> Path:
        """``done/`` (in the layout; no stage writes there today)."""
        return self.root / "done"

    @property
    def failed(self) -> Path:
        """``failed/``: quarantined inputs, each with a reason file beside it."""
        return self.root / "failed"

    @property
    def lake(self) -> Path:
        """``lake/``: the Parquet lake (see :mod:`clearing.lake`)."""
        return self.root / "lake"

    def work(self, day: date) -> Path:
        """The folder of processing date ``day``'s claimed inputs: ``work/<D>/``."""
        return self.root / "work" / day.isoformat()

    @property
    def db(self) -> Path:
        """``clearing.duckdb``: register, sequences, findings, returns, outbox."""
        return self.root / "clearing.duckdb"

    @property
    def out(self) -> Path:
        """``out/``: the files we write (RAP, TAP-out, CIBER, workbooks)."""
        return self.root / "out"

    @property
    def runs(self) -> Path:
        """``runs/``: one folder per run, with its ``manifest.json``."""
        return self.root / "runs"

    @property
    def rates(self) -> Path:
        """Reference data: human-editable sources and their partitioned Parquet."""
        return self.root / "rates"

    def settings(self) -> Settings:
        """The deployment's settings, loaded from its ``clearing.toml``."""
        return load(self.root)


def parse_date(text: str, option: str = "--date") -> date:
    """``YYYY-MM-DD`` → a date; :class:`ConfigError` (exit 2) naming ``option`` otherwise.

    Text of the right shape that names no day (``2026-11-31``, ``2026-13-01``) is told apart
    from text of the wrong shape: the message says which it is.
    """
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    shape = _DAY.fullmatch(text)
    if shape is None:
        msg = f"{option} `{text}` is not YYYY-MM-DD (a date such as 2026-11-22)"
        raise ConfigError(msg)
    year, month, _day = (int(part) for part in shape.groups())
    if year < 1:
        why = "there is no year 0000"
    elif not 1 <= month <= 12:
        why = f"there is no month {month:02d}"
    else:
        why = f"{year:04d}-{month:02d} has {calendar.monthrange(year, month)[1]} days"
    msg = f"{option} `{text}` is not a day of the calendar: {why}"
    raise ConfigError(msg)


def parse_period(text: str) -> str:
    """A settlement month ``YYYY-MM``; :class:`ConfigError` (exit 2) otherwise."""
    if not _PERIOD.fullmatch(text):
        msg = f"--period `{text}` must be a month YYYY-MM"
        raise ConfigError(msg)
    return text
