"""Changes the tests make to a generated sample world (``clearing samples generate``)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["unreachable"]


def unreachable(world: Path, partner: str) -> None:
    """Point ``partner``'s transport at an SFTP port nobody listens on (one attempt, 2 s)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = world / "clearing.toml"
    text = cfg.read_text(encoding="utf-8")
    folder = (
        f'[transport.partners.{partner}]\nkind = "folder"\nroot = "exchange/{partner}"\n'
        'remote_in = "to_hkgcl"\nremote_out = "from_hkgcl"\nafter_fetch = "keep"\n'
    )
    sftp = (
        f'[transport.partners.{partner}]\nkind = "sftp"\nhost = "127.0.0.1"\nport = {port}\n'
        'username = "hkgcl"\nkey_file = "keys/id"\nknown_hosts = "keys/known_hosts"\n'
        "timeout = 2\n"
    )
    assert folder in text, f"{partner} has no folder transport in {cfg}"
    cfg.write_text(text.replace(folder, sftp).replace("retry_attempts = 3", "retry_attempts = 1"))
