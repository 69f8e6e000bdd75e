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

Unknown keys are refused (``extra="forbid"``) so a typo never silently changes behaviour.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from clearing.errors import ConfigError

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

__all__ = [
    "CONFIG_NAME",
    "Home",
    "Partner",
    "Settings",
    "Validation",
    "WorkDir",
    "load",
]

CONFIG_NAME = "clearing.toml"

Severity = Literal["fatal", "severe", "warning"]
Override = Literal["fatal", "severe", "warning", "off"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
    """Defaults of the validation stage; a partner may override the per-partner ones."""

    duplicate_window_days: int = Field(default=80, ge=1)
    late_days: int = Field(default=30, ge=1)
    silent_days: int = Field(default=7, ge=1, description="no file for N days → StopReturn")
    soft_duplicate_seconds: int = Field(default=2, ge=0)
    tax_tolerance: Decimal = Field(
        default=Decimal("0.02"), description="TD.57 tax check tolerance, in TAP currency units"
    )
    expect_test_data: bool = False


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


class Settings(_Model):
    """The whole ``clearing.toml``."""

    home: Home
    partners: dict[str, Partner] = Field(default_factory=dict)
    validation: Validation = Validation()
    transport: dict[str, Any] = Field(default_factory=dict)

    @field_validator("partners")
    @classmethod
    def _codes(cls, v: dict[str, Partner]) -> dict[str, Partner]:
        for code, p in v.items():
            ok = len(code) == 5 and (code.isdigit() if p.standard == "ciber" else code.isalnum())
            if not ok:
                kind = "a 5-digit SID/BID" if p.standard == "ciber" else "a 5-character TADIG"
                msg = f"partner `{code}`: the key must be {kind} code"
                raise ValueError(msg)
        return v

    def partner(self, code: str | None) -> Partner:
        """The partner's settings; an unknown partner gets the defaults."""
        return self.partners.get(code or "", Partner())

    def late_days(self, code: str | None) -> int:
        return self.partner(code).late_days or self.validation.late_days

    def duplicate_window_days(self, code: str | None) -> int:
        return self.partner(code).duplicate_window_days or self.validation.duplicate_window_days

    def silent_days(self, code: str | None) -> int:
        return self.partner(code).silent_days or self.validation.silent_days

    def expect_test_data(self, code: str | None) -> bool:
        p = self.partner(code).expect_test_data
        return self.validation.expect_test_data if p is None else p

    def fingerprint(self) -> str:
        """A stable hash of the settings (for run manifests and audit sheets)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


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


@dataclass(frozen=True)
class WorkDir:
    """The folders of one deployment (DESIGN.md, Layout)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def done(self) -> Path:
        return self.root / "done"

    @property
    def failed(self) -> Path:
        return self.root / "failed"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    def work(self, day: date) -> Path:
        """The folder of processing date ``day``'s claimed inputs: ``work/<D>/``."""
        return self.root / "work" / day.isoformat()

    @property
    def db(self) -> Path:
        return self.root / "clearing.duckdb"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def rates(self) -> Path:
        """Reference data: human-editable sources and their partitioned Parquet."""
        return self.root / "rates"

    def settings(self) -> Settings:
        return load(self.root)
