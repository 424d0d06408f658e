"""pytest fixtures for the browser suite: the e2e harness (tests/e2e/harness.py)
and its per-test stack, as the e2e suite's conftest provides them."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))

from harness import Stack  # noqa: E402


@pytest.fixture
def stack(request, tmp_path):
    """stack() -> a Stack named after the test; services it started are stopped (and must exit 0)."""
    made = []

    def make(suffix=""):
        s = Stack(request.node.name + suffix, str(tmp_path))
        made.append(s)
        return s

    yield make
    errors = []
    for s in made:
        errors += s.close()
    if errors:
        pytest.fail("\n".join(errors))
