"""Moving files to and from partners: SFTP (paramiko) and a local folder, same interface.

- `Transport`: the protocol; `SftpTransport` and `LocalFolderTransport` implement it.
- `collect` with a `FetchLedger`: fetch each new inbound file once.
- `clearing.transport.outbox.Outbox`: what we send, its state, and resends of the same bytes.
- `clearing.transport.settings`: the ``[transport]`` section of ``clearing.toml``.
- The CLI verbs (`clearing send`, `resend`, `collect`, `transport status`) are in `clearing.cli`.

Errors are the package's `TransportError` family: `RetryableTransportError` after the last
retry of a transient failure, `PermanentTransportError` at once for the rest.
"""

from __future__ import annotations

from clearing.ingest.collect import FetchedFile, FetchLedger, collect
from clearing.transport._base import AfterFetch, RemoteFile, RetryPolicy, Transport
from clearing.transport._db import LedgerError
from clearing.transport._folder import LocalFolderTransport
from clearing.transport._sftp import Progress, SftpTransport

__all__ = [
    "AfterFetch",
    "FetchLedger",
    "FetchedFile",
    "LedgerError",
    "LocalFolderTransport",
    "Progress",
    "RemoteFile",
    "RetryPolicy",
    "SftpTransport",
    "Transport",
    "collect",
]
