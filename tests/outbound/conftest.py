"""The outbound tests use the rating tests' tiny world (a work folder with rates and CDRs)."""

from __future__ import annotations

from tests.rating.conftest import tiny_workdir

__all__ = ["tiny_workdir"]
