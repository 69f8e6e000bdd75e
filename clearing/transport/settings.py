"""Transport settings: the ``[transport]`` section of ``clearing.toml``.

One table per partner (TADIG code, or CIBER SID/BID), ``kind`` telling which transport::

    [transport]
    retry_attempts = 4         # tries in all, per operation
    retry_base_delay = 1.0     # seconds; doubles each retry (capped by retry_max_delay)

    [transport.partners.FRAF9]
    kind = "sftp"
    host = "sftp.fraf9.example"
    port = 22
    username = "hkgcl"
    key_file = "keys/id_ed25519"         # relative paths: relative to the work folder
    known_hosts = "keys/known_hosts"
    remote_in = "to_hkgcl"               # the partner's files for us
    remote_out = "from_hkgcl"            # our files for the partner
    pattern = "CD*HKGCL*"                # glob, or "re:<regex>"
    sidecar = true                       # also upload NAME.sha256
    after_fetch = "archive"              # keep | archive | delete
    remote_archive = "to_hkgcl/done"

    [transport.partners.DEUD9]
    kind = "folder"
    root = "/mnt/exchange/deud9"
    remote_in = "in"
    remote_out = "out"

A password, when a partner insists on one, is never written in the file: ``password_env``
names the environment variable that holds it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from clearing.errors import ConfigError
from clearing.transport._base import RetryPolicy
from clearing.transport._folder import LocalFolderTransport
from clearing.transport._sftp import SftpTransport

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CONFIG_FILE",
    "FolderPartner",
    "PartnerTransport",
    "SftpPartner",
    "TransportSettings",
    "load_transport_settings",
    "parse_transport_settings",
]

CONFIG_FILE = "clearing.toml"
"""The configuration file in a work folder."""

_PARTNER_KEY = r"^[A-Za-z0-9]{3,16}$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class _Partner(_Model):
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


class SftpPartner(_Partner):
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


class FolderPartner(_Partner):
    """A partner reached through a (local or mounted) folder."""

    kind: Literal["folder"]
    root: Path
    """The exchange folder; ``remote_in`` / ``remote_out`` are relative to it."""


PartnerTransport = Annotated[SftpPartner | FolderPartner, Field(discriminator="kind")]
"""One partner's transport settings (``kind`` = ``"sftp"`` or ``"folder"``)."""


class TransportSettings(_Model):
    """The ``[transport]`` section."""

    retry_attempts: int = Field(default=4, ge=1, le=20)
    """Tries in all for one operation (1 = no retry)."""
    retry_base_delay: float = Field(default=1.0, ge=0)
    """Seconds before the first retry; doubled for each further one."""
    retry_max_delay: float = Field(default=30.0, ge=0)
    """Upper bound of one delay, in seconds."""
    partners: dict[Annotated[str, Field(pattern=_PARTNER_KEY)], PartnerTransport] = Field(
        default_factory=dict
    )
    """Per partner (TADIG code, or CIBER SID/BID): how to reach it."""

    def retry(self) -> RetryPolicy:
        """The retry policy these settings describe."""
        return RetryPolicy(
            attempts=self.retry_attempts,
            base_delay=self.retry_base_delay,
            max_delay=self.retry_max_delay,
        )

    def partner(self, partner: str) -> SftpPartner | FolderPartner:
        """The settings of ``partner``; `ConfigError` naming the known ones if absent."""
        try:
            return self.partners[partner]
        except KeyError:
            known = ", ".join(sorted(self.partners)) or "none"
            msg = (
                f"no transport for partner `{partner}` (configured: {known}): add a "
                f"`[transport.partners.{partner}]` table to {CONFIG_FILE}"
            )
            raise ConfigError(msg) from None

    def transport_for(
        self, partner: str, base_dir: Path = Path()
    ) -> SftpTransport | LocalFolderTransport:
        """A new transport to ``partner``; relative paths are resolved against ``base_dir``."""
        cfg = self.partner(partner)
        if isinstance(cfg, FolderPartner):
            return LocalFolderTransport(
                base_dir / cfg.root,
                remote_in=cfg.remote_in,
                remote_out=cfg.remote_out,
                remote_archive=cfg.remote_archive,
                after_fetch=cfg.after_fetch,
                sidecar=cfg.sidecar,
                retry=self.retry(),
            )
        password: SecretStr | None = None
        if cfg.password_env is not None:
            value = os.environ.get(cfg.password_env)
            if value is None:
                msg = (
                    f"partner `{partner}` needs a password from the environment variable "
                    f"`{cfg.password_env}`, which is not set"
                )
                raise ConfigError(msg)
            password = SecretStr(value)
        return SftpTransport(
            cfg.host,
            cfg.port,
            cfg.username,
            key_file=base_dir / cfg.key_file,
            known_hosts=base_dir / cfg.known_hosts,
            password=password,
            remote_in=cfg.remote_in,
            remote_out=cfg.remote_out,
            remote_archive=cfg.remote_archive,
            after_fetch=cfg.after_fetch,
            sidecar=cfg.sidecar,
            timeout=cfg.timeout,
            retry=self.retry(),
        )


def load_transport_settings(workdir: Path) -> TransportSettings:
    """Read the ``[transport]`` section of ``workdir/clearing.toml`` (other sections ignored).

    Raises:
        ConfigError: the file is missing, not TOML, or the section is invalid.
    """
    path = Path(workdir) / CONFIG_FILE
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        msg = f"no `{CONFIG_FILE}` in `{workdir}`: create it, with a [transport] section"
        raise ConfigError(msg) from None
    except OSError as exc:
        msg = f"cannot read `{path}`: {exc.strerror}"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"`{path}` is not valid TOML: {exc}"
        raise ConfigError(msg) from None
    return parse_transport_settings(data.get("transport", {}), source=path)


def parse_transport_settings(section: Mapping[str, Any], *, source: Path) -> TransportSettings:
    """The ``[transport]`` section of an already loaded ``clearing.toml`` (at ``source``).

    Raises:
        ConfigError: the section is invalid.
    """
    path = source
    try:
        return TransportSettings.model_validate(section)
    except ValidationError as exc:
        problems = "; ".join(
            f"transport.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        msg = f"bad [transport] settings in `{path}`: {problems}"
        raise ConfigError(msg) from None
