"""The public names of `clearing.transport`, exactly."""

from __future__ import annotations

import clearing.transport
from clearing.transport import outbox, settings


def test_exported_members() -> None:
    assert clearing.transport.__all__ == [
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
    for module in (clearing.transport, outbox, settings):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
