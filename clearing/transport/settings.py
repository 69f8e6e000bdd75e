"""The transports the ``[transport]`` section of ``clearing.toml`` describes.

One table per partner (TADIG code, or CIBER SID/BID), ``kind`` telling which transport::

    [transport]
    retry_attempts = 4         # tries in all, per operation
    retry_base_delay = 1.0     # seconds; doubles each retry (capped by retry_max_delay)
    recheck_days = 7           # kept remote files are re-hashed for this long after a fetch

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

The section is read and typed with the rest of the file by :func:`clearing.config.load`
(:class:`clearing.config.TransportSettings`); this module makes the connections from it. A
password, when a partner insists on one, is never written in the file: ``password_env`` names
the environment variable that holds it, read when the transport is made. A private key that
the group or others may read or write is refused (`ConfigError`, ``chmod 600``) when the
settings are loaded and again when the transport is made, before anything is touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from clearing import config
from clearing.config import FolderPartner
from clearing.errors import ConfigError
from clearing.transport._base import RetryPolicy
from clearing.transport._folder import LocalFolderTransport
from clearing.transport._sftp import SftpTransport, check_key_file

if TYPE_CHECKING:
    from clearing.config import SftpPartner, TransportSettings

__all__ = ["Transports", "load_transport_settings"]


@dataclass(frozen=True)
class Transports:
    """The transports to our partners, as the typed ``[transport]`` settings describe them."""

    settings: TransportSettings

    @property
    def partners(self) -> dict[str, SftpPartner | FolderPartner]:
        """Per partner (TADIG code, or CIBER SID/BID): how to reach it."""
        return self.settings.partners

    def partner(self, partner: str) -> SftpPartner | FolderPartner:
        """The settings of ``partner``; `ConfigError` naming the known ones if absent."""
        return self.settings.partner(partner)

    @property
    def recheck_days(self) -> int:
        """Days after a fetch during which a kept remote file is hashed again (0: never).

        See `clearing.ingest.collect.FetchLedger`.
        """
        return self.settings.recheck_days

    def check(self, base_dir: Path = Path()) -> None:
        """Check what can be checked before connecting: every SFTP key file is private.

        Raises:
            ConfigError: a key file the group or others may read or write (``chmod 600``).
        """
        for code, cfg in sorted(self.partners.items()):
            if not isinstance(cfg, FolderPartner):
                check_key_file(base_dir / cfg.key_file, f"partner `{code}` (sftp://{cfg.host})")

    def retry(self) -> RetryPolicy:
        """The retry policy these settings describe."""
        return RetryPolicy(
            attempts=self.settings.retry_attempts,
            base_delay=self.settings.retry_base_delay,
            max_delay=self.settings.retry_max_delay,
        )

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


def load_transport_settings(workdir: Path) -> Transports:
    """The transports of ``workdir/clearing.toml`` (read by :func:`clearing.config.load`).

    Raises:
        ConfigError: the file is missing, not TOML, or not valid settings, or a private key
            is readable by others.
    """
    transports = Transports(config.load(Path(workdir)).transport)
    transports.check(Path(workdir))
    return transports
