"""Test-wide setup: the hypothesis profiles, and the cache folder.

Property tests take their number of examples from a profile, chosen by the environment
variable ``HYPOTHESIS_PROFILE``:

- ``ci`` (the default, so ``make test`` and CI run it): 60 examples per property, derandomized
  (the same examples on every run and machine: a CI failure reproduces locally with
  ``HYPOTHESIS_PROFILE=ci``);
- ``fast``: 10 examples, for a quick local loop (``HYPOTHESIS_PROFILE=fast pytest tests/...``);
- ``dev``: 200 random examples, new ones each run, failures replayed first from
  ``.hypothesis/``: to hunt for counterexamples before pushing.

No profile has a deadline: the properties build, decode and rate whole files, so a per-example
time limit would measure the machine's load, not the code. A property whose examples are much
cheaper or dearer than most scales the profile's size instead of fixing a number, e.g.
``@settings(parent=settings.default, max_examples=settings.default.max_examples * 2)``.

The compiled ASN.1 specifications are cached (:mod:`clearing.codecs.asn1`) in a folder of this
session (``CLEARING_CACHE_DIR``, unless already set), not in the user's cache folder; every
process the tests start shares it.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("fast", max_examples=10, deadline=None)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "ci")

_CACHE = None
if not os.environ.get("CLEARING_CACHE_DIR"):
    _CACHE = tempfile.mkdtemp(prefix="clearing-test-cache-")
    os.environ["CLEARING_CACHE_DIR"] = _CACHE


def pytest_unconfigure() -> None:
    """Remove the session's cache folder (when this session made it)."""
    if _CACHE is not None:
        shutil.rmtree(_CACHE, ignore_errors=True)
