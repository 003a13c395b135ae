"""Shared test set-up. The README's test command runs the tests in parallel (pytest-xdist, see
``[tool.pytest.ini_options]`` in pyproject.toml); a test that uses a module-scoped fixture (a
sweep or a job several tests read) runs on the same worker as the other tests of its module that
use one, so the fixture is built once."""

from __future__ import annotations

import pytest


def pytest_itemcollected(item: pytest.Item) -> None:
    """Group the tests sharing a module- or session-scoped fixture of the tests (``xdist_group``,
    read by ``--dist loadgroup`` when the items are sorted; ignored without xdist)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return
    shared = [name for name in item.fixturenames
              if (defs := info.name2fixturedefs.get(name))
              and defs[-1].scope in ("module", "session") and defs[-1].baseid.startswith("tests")]
    if shared:
        item.add_marker(pytest.mark.xdist_group(item.module.__name__))
