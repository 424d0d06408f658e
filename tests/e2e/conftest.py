"""pytest fixtures for the end-to-end suites (see harness.py)."""

import pytest

from harness import Stack


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
