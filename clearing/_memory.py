"""Giving freed memory back to the system between the big steps of a night.

Arrow's pool and glibc's heap keep freed blocks for reuse; when the next step allocates
differently (other sizes, another library), those blocks only add to the process's resident
size, and the night's peak is the sum of two steps instead of the larger one.
"""

from __future__ import annotations

import contextlib

__all__ = ["release_memory"]


def release_memory() -> None:
    """Collect garbage, release Arrow's unused pool memory and trim glibc's heap."""
    import ctypes
    import ctypes.util
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
            ctypes.CDLL(name).malloc_trim(0)
