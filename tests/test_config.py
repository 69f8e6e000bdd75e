"""The settings of a deployment (``clearing.toml``) and the ``CLEARING_*`` environment variables.

Messages are asserted whole: they are what an operator reads, and name the key and the value.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from clearing import config
from clearing.codecs import asn1, ciber
from clearing.config import FolderPartner, SftpPartner
from clearing.errors import ConfigError
from clearing.rating import retail_tables
from clearing.validate import stage

ROOT = Path(__file__).resolve().parents[1]

# README.md, "Configuration": the example, then its transport example, as printed there
README_TOML = """\
[home]
tadig = "HKGCL"          # us
sid_bid = "60099"        # us in CIBER
timezone_offset = "+0800"

[validation]             # defaults; partners may override the per-partner ones
duplicate_window_days = 80
late_days = 30
silent_days = 7
soft_duplicate_seconds = 2
tax_tolerance = "0.02"

[partners.FRAF9]
late_days = 45
tax_rates = ["2000000"]                    # agreed TaxRate values (else TaxValue 200)
refused_event_kinds = ["contentTransaction"]
[partners.FRAF9.rules]
"event.duplicate_suspect" = "off"
"rec.duplicate" = "warning"

[partners.04172]
standard = "ciber"

[transport]
retry_attempts = 4               # tries per operation; transient errors only, with backoff
[transport.partners.FRAF9]
kind = "sftp"
host = "sftp.fraf9.example"
username = "hkgcl"
key_file = "keys/id_ed25519"     # relative to the work folder
known_hosts = "keys/known_hosts" # an unknown host key is refused
remote_in = "to_hkgcl"
remote_out = "from_hkgcl"
pattern = "CD*HKGCL*"
sidecar = true                   # also upload NAME.sha256
"""

HOME = '[home]\ntadig = "HKGCL"\n'
SOURCE = "W/clearing.toml"


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        config.parse(text, source=SOURCE)
    return str(err.value)


def test_the_readme_example_is_the_settings_it_says() -> None:
    s = config.parse(README_TOML)
    assert (s.home.tadig, s.home.sid_bid, s.home.timezone_offset) == ("HKGCL", "60099", "+0800")
    v = s.validation
    assert (v.duplicate_window_days, v.late_days, v.silent_days) == (80, 30, 7)
    assert (v.soft_duplicate_seconds, v.tax_tolerance) == (2, Decimal("0.02"))
    fraf9 = s.partners["FRAF9"]
    assert (fraf9.standard, fraf9.late_days, fraf9.tax_rates) == ("tap", 45, ["2000000"])
    assert fraf9.refused_event_kinds == ["contentTransaction"]
    assert fraf9.rules == {"event.duplicate_suspect": "off", "rec.duplicate": "warning"}
    assert s.partners["04172"].standard == "ciber"
    t = s.transport
    assert (t.retry_attempts, t.retry_base_delay, t.retry_max_delay) == (4, 1.0, 30.0)
    assert t.partner("FRAF9") == SftpPartner(
        kind="sftp",
        host="sftp.fraf9.example",
        username="hkgcl",
        key_file=Path("keys/id_ed25519"),
        known_hosts=Path("keys/known_hosts"),
        remote_in="to_hkgcl",
        remote_out="from_hkgcl",
        pattern="CD*HKGCL*",
        sidecar=True,
    )
    fraf9_transport = t.partners["FRAF9"]
    assert isinstance(fraf9_transport, SftpPartner)
    assert (fraf9_transport.port, fraf9_transport.after_fetch) == (22, "keep")


def test_load_reads_the_work_folders_file(tmp_path: Path) -> None:
    (tmp_path / "clearing.toml").write_text(README_TOML, encoding="utf-8")
    assert config.load(tmp_path) == config.parse(README_TOML)
    assert config.WorkDir(tmp_path).settings() == config.parse(README_TOML)
    assert config.WorkDir(tmp_path).config == tmp_path / config.CONFIG_NAME


def test_a_missing_file_suggests_generating_a_world(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path)
    assert str(err.value) == (
        f"no clearing.toml in `{tmp_path}`: create one (see README, Config) or make a world "
        f"with `clearing samples generate --out {tmp_path}`"
    )
    assert err.value.exit_code == 2


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "clearing.toml").mkdir()
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path)
    assert str(err.value) == f"cannot read `{tmp_path / 'clearing.toml'}`: Is a directory"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HOME + 'colour = "red"\n', "home.colour: Extra inputs are not permitted"),
        (HOME + "[run]\nat = 2\n", "run: Extra inputs are not permitted"),
        (
            HOME + "[partners.FRAF9]\nlate_dayz = 3\n",
            "partners.FRAF9.late_dayz: Extra inputs are not permitted",
        ),
        (HOME + "[transport]\nretries = 3\n", "transport.retries: Extra inputs are not permitted"),
        (
            HOME + '[transport.partners.DEUD9]\nkind = "folder"\nroot = "x"\nhost = "h"\n',
            "transport.partners.DEUD9.folder.host: Extra inputs are not permitted",
        ),
    ],
)
def test_unknown_keys_are_refused_by_name(text: str, message: str) -> None:
    assert _error(text) == f"{SOURCE}: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "home: Field required"),
        ('[home]\ntadig = "hk"\n', "home.tadig: String should match pattern '^[A-Z0-9]{5}$'"),
        (
            HOME + 'timezone_offset = "+2500"\n',
            "home.timezone_offset: String should match pattern '^[+-][01][0-9][0-5][0-9]$'",
        ),
        (
            HOME + "[validation]\nlate_days = 0\n",
            "validation.late_days: Input should be greater than or equal to 1",
        ),
        (
            HOME + '[partners.FRAF9]\nstandard = "ciber"\n',
            "partners: Value error, partner `FRAF9`: the key must be a 5-digit SID/BID code",
        ),
        (
            HOME + '[partners.FRAF9.rules]\n"event.tax.value" = "loud"\n',
            "partners.FRAF9.rules.event.tax.value: "
            "Input should be 'fatal', 'severe', 'warning' or 'off'",
        ),
        (
            HOME + '[transport.partners.FRAF9]\nkind = "ftp"\n',
            "transport.partners.FRAF9: Input tag 'ftp' found using 'kind' does not match any of "
            "the expected tags: 'sftp', 'folder'",
        ),
        (
            HOME + '[transport.partners."FR AF9"]\nkind = "folder"\nroot = "x"\n',
            "transport.partners.FR AF9.[key]: String should match pattern '^[A-Za-z0-9]{3,16}$'",
        ),
        (
            HOME + '[transport.partners.FRAF9]\nkind = "sftp"\nhost = "h"\nport = 0\n',
            "transport.partners.FRAF9.sftp.port: Input should be greater than or equal to 1; "
            "transport.partners.FRAF9.sftp.username: Field required; "
            "transport.partners.FRAF9.sftp.key_file: Field required; "
            "transport.partners.FRAF9.sftp.known_hosts: Field required",
        ),
        (
            '[home]\ntadig = "hk"\n[validation]\nlate_days = 0\n',
            "home.tadig: String should match pattern '^[A-Z0-9]{5}$'; "
            "validation.late_days: Input should be greater than or equal to 1",
        ),
        (
            "[home\n",
            "not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 6)",
        ),
    ],
)
def test_bad_values_are_config_errors_naming_key_and_rule(text: str, message: str) -> None:
    assert _error(text) == f"{SOURCE}: {message}"


def test_settings_are_frozen() -> None:
    s = config.parse(README_TOML)
    for model, name in (
        (s.home, "tadig"),
        (s.validation, "late_days"),
        (s.partners["FRAF9"], "late_days"),
        (s.transport, "retry_attempts"),
        (s.transport.partners["FRAF9"], "host"),
    ):
        with pytest.raises(ValidationError, match="Instance is frozen"):
            setattr(model, name, getattr(model, name))


def test_partner_overrides_are_resolved_over_the_validation_defaults() -> None:
    s = config.parse(
        HOME + "[validation]\nlate_days = 30\nsilent_days = 7\nexpect_test_data = true\n"
        "[partners.FRAF9]\nlate_days = 45\nduplicate_window_days = 10\n"
        "expect_test_data = false\n"
        "[partners.DEUD9]\nsilent_days = 2\n"
    )
    # FRAF9 overrides three, DEUD9 one; an unknown partner and no partner get the defaults
    assert s.resolved("late_days", "FRAF9") == s.late_days("FRAF9") == 45
    assert s.resolved("late_days", "DEUD9") == s.late_days("DEUD9") == 30
    assert s.duplicate_window_days("FRAF9") == 10
    assert s.duplicate_window_days("DEUD9") == s.duplicate_window_days(None) == 80
    assert s.silent_days("DEUD9") == 2
    assert s.silent_days("FRAF9") == s.silent_days("GBRG9") == 7
    # a partner's `false` overrides the default `true`: not "unset"
    assert s.expect_test_data("FRAF9") is False
    assert s.expect_test_data("DEUD9") is s.expect_test_data(None) is True
    assert s.partner("GBRG9") == config.Partner()


def test_a_missing_transport_partner_names_the_configured_ones() -> None:
    t = config.parse(README_TOML).transport
    with pytest.raises(ConfigError) as err:
        t.partner("GBRG9")
    assert str(err.value) == (
        "no transport for partner `GBRG9` (configured: FRAF9): add a "
        "`[transport.partners.GBRG9]` table to clearing.toml"
    )
    assert isinstance(
        config.parse(
            HOME + '[transport.partners.04172]\nkind = "folder"\nroot = "x"\n'
        ).transport.partners["04172"],
        FolderPartner,
    )


def test_the_fingerprint_hashes_the_transport_section_as_written() -> None:
    # the values recorded in manifests and workbooks before [transport] was typed
    assert config.parse(README_TOML).fingerprint() == "41c6adc15e9c3174"
    assert config.parse(HOME).fingerprint() == config.parse(HOME).fingerprint()
    retries = config.parse(HOME + "[transport]\nretry_attempts = 2\n")
    assert retries.fingerprint() != config.parse(HOME).fingerprint()


# ---------------------------------------------------------------------------------------------
# the environment

_VARIABLES = (
    "CLEARING_SPECS_DIR",
    "CLEARING_REPORTS_DIR",
    "CLEARING_WORKERS",
    "CLEARING_PARALLEL_MIN_MB",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_environment_defaults(clean_env: pytest.MonkeyPatch) -> None:
    env = config.environment()
    assert env == config.Environment(
        specs_root=ROOT / "specs",
        reports_dir=ROOT / "reports" / "templates",
        workers=len(os.sched_getaffinity(0)),
        parallel_min_bytes=256 << 20,
    )
    assert env.specs_dir.is_dir()
    assert env.mediation_spec.is_file()
    assert env.reports_dir.is_dir()
    # the modules that use them ask the environment
    assert asn1.specs_dir() == env.specs_dir
    assert stage.workers() == env.workers
    clean_env.setenv("CLEARING_SPECS_DIR", "")  # empty: the default
    assert config.environment() == env


def test_environment_overrides(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("CLEARING_SPECS_DIR", str(tmp_path / "specs"))
    clean_env.setenv("CLEARING_REPORTS_DIR", str(tmp_path / "templates"))
    clean_env.setenv("CLEARING_WORKERS", "3")
    clean_env.setenv("CLEARING_PARALLEL_MIN_MB", "0")
    env = config.environment()
    # one variable moves the whole specification tree
    assert [
        env.specs_dir,
        env.ciber_specs_dir,
        env.rates_specs_dir,
        env.mediation_spec,
        env.reports_dir,
    ] == [
        tmp_path / "specs" / "asn1",
        tmp_path / "specs" / "ciber",
        tmp_path / "specs" / "rates",
        tmp_path / "specs" / "mediation" / "cdr.csv",
        tmp_path / "templates",
    ]
    assert (env.workers, env.parallel_min_bytes) == (3, 0)
    assert asn1.specs_dir() == tmp_path / "specs" / "asn1"
    assert ciber.specs_dir() == tmp_path / "specs" / "ciber"
    assert retail_tables._specs_dir() == tmp_path / "specs" / "rates"
    assert stage.workers() == 3
    clean_env.setenv("CLEARING_PARALLEL_MIN_MB", " 64 ")
    assert config.environment().parallel_min_bytes == 64 << 20


@pytest.mark.parametrize(("value", "workers"), [("0", 1), ("-4", 1), (" 2 ", 2), ("  ", None)])
def test_workers_below_one_count_as_one_and_blank_is_the_default(
    clean_env: pytest.MonkeyPatch, value: str, workers: int | None
) -> None:
    clean_env.setenv("CLEARING_WORKERS", value)
    assert config.environment().workers == (workers or len(os.sched_getaffinity(0)))


def test_bad_environment_values(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CLEARING_WORKERS", "two")
    with pytest.raises(ConfigError) as err:
        config.environment()
    assert str(err.value) == "CLEARING_WORKERS='two' is not a number of processes"
    with pytest.raises(ConfigError) as err:
        stage.workers()
    assert str(err.value) == "CLEARING_WORKERS='two' is not a number of processes"
    clean_env.delenv("CLEARING_WORKERS")
    # not digits: the default, as before the variable was read in one place
    for value in ("lots", "-1", "1.5"):
        clean_env.setenv("CLEARING_PARALLEL_MIN_MB", value)
        assert config.environment().parallel_min_bytes == config.PARALLEL_MIN_MB << 20


def test_the_environment_is_frozen_and_refuses_unknown_fields(
    clean_env: pytest.MonkeyPatch,
) -> None:
    env = config.environment()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(env, "workers", 9)  # noqa: B010  # frozen: refused, whatever mypy knows
    with pytest.raises(TypeError, match="colour"):
        config.Environment(**{**dataclasses.asdict(env), "colour": "red"})


def test_reading_the_environment_loads_no_configuration_models() -> None:
    """The decoders ask the environment on every run: it must not cost pydantic's models."""
    code = (
        "import sys; from clearing.environment import environment, cache_dir; "
        "environment(); cache_dir(); "
        "print(sorted(m for m in ('pydantic', 'clearing.config') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"


def test_iot_breach_thresholds_global_and_per_partner() -> None:
    plain = config.parse(HOME)
    assert plain.iot_breach_thresholds("FRAF9") == (Decimal(100), Decimal(1000))
    s = config.parse(
        HOME
        + '[validation]\niot_breach_absolute = "50.25"\n'
        + '[partners.FRAF9]\niot_breach_percent = "off"\niot_breach_absolute = 7\n'
    )
    assert s.iot_breach_thresholds("FRAF9") == (Decimal(7), None)
    assert s.iot_breach_thresholds("DEUD9") == (Decimal("50.25"), Decimal(1000))
    # unset, the thresholds leave the fingerprint as it was; set, they change it
    assert s.fingerprint() != plain.fingerprint()
    with pytest.raises(ConfigError, match="iot_breach_absolute"):
        config.parse(HOME + "[validation]\niot_breach_absolute = -1\n")


# -- issue 14: refused before anything is touched -------------------------------------------


@pytest.mark.parametrize("tadig", ["HKGCL\n", "HKGC", "HKGCL1", "ＨKGCL"])
def test_a_tadig_with_a_trailing_newline_or_not_ascii_is_refused(tadig: str) -> None:
    from clearing.config import parse

    text = f"[home]\ntadig = {json.dumps(tadig)}\n"
    with pytest.raises(ConfigError, match=r"home\.tadig"):
        parse(text)


@pytest.mark.parametrize("key", ["١٢٣٤٥", "ＦRAF9"])
def test_a_partner_key_must_be_ascii(key: str) -> None:
    from clearing.config import parse

    standard = "ciber" if key[0].isdigit() else "tap"
    text = f'[home]\ntadig = "HKGCL"\n[partners."{key}"]\nstandard = "{standard}"\n'
    with pytest.raises(ConfigError, match="the key must be"):
        parse(text)


def test_output_modes_default_private_and_checked() -> None:
    from clearing.config import parse

    base = '[home]\ntadig = "HKGCL"\n'
    assert parse(base).output.modes == (0o640, 0o750)
    own = parse(base + '[output]\nfile_mode = "0600"\ndir_mode = "0700"\n')
    assert own.output.modes == (0o600, 0o700)
    assert own.fingerprint() != parse(base).fingerprint()
    for bad in (
        'file_mode = "0440"',
        'dir_mode = "0640"',
        'file_mode = "0649"',
        'file_mode = "rw"',
    ):
        with pytest.raises(ConfigError, match=r"output\."):
            parse(base + f"[output]\n{bad}\n")


def test_an_unknown_rule_override_is_refused_before_the_night(tmp_path: Path) -> None:
    from clearing.config import WorkDir, parse
    from clearing.pipeline.checks import check_settings

    settings = parse(
        '[home]\ntadig = "HKGCL"\n[partners.FRAF9]\nrules = { "NO_SUCH_RULE" = "off" }\n'
    )
    with pytest.raises(ConfigError, match=r"\[partners\.FRAF9\.rules\] names no rule"):
        check_settings(WorkDir(tmp_path), settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-31", "--date `2026-11-31` is not a day of the calendar: 2026-11 has 30 days"),
        ("2026-02-29", "--date `2026-02-29` is not a day of the calendar: 2026-02 has 28 days"),
        ("2026-13-01", "--date `2026-13-01` is not a day of the calendar: there is no month 13"),
        ("2026-00-10", "--date `2026-00-10` is not a day of the calendar: there is no month 00"),
        ("0000-01-01", "--date `0000-01-01` is not a day of the calendar: there is no year 0000"),
        ("22.11.2026", "--date `22.11.2026` is not YYYY-MM-DD (a date such as 2026-11-22)"),
        ("2026-11-2", "--date `2026-11-2` is not YYYY-MM-DD (a date such as 2026-11-22)"),
        ("", "--date `` is not YYYY-MM-DD (a date such as 2026-11-22)"),
    ],
)
def test_a_date_that_is_no_day_is_not_called_a_format_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse_date(text)
    assert str(caught.value) == message


def test_a_leap_day_and_the_last_day_of_a_month_are_days() -> None:
    assert config.parse_date("2028-02-29").isoformat() == "2028-02-29"
    assert config.parse_date("2026-11-30", "--to").isoformat() == "2026-11-30"
    with pytest.raises(ConfigError, match=r"^--to `2026-04-31` is not a day of the calendar"):
        config.parse_date("2026-04-31", "--to")
