"""Shared test set-up. The README's test command runs the tests in parallel (pytest-xdist, see
``[tool.pytest.ini_options]`` in pyproject.toml); a test that uses a module-scoped fixture (a
sweep or a job several tests read) runs on the same worker as the other tests of its module that
use one, so the fixture is built once.

Temporary folders (``tmp_path``: run folders, SQLite stores) are in memory (/dev/shm) where the
machine has it: SQLite syncs every MLflow write to disk, which on a busy disk costs seconds per
new store. ``new_store`` gives a test an empty MLflow store without migrating one: a copy of a
store created once per worker."""

from __future__ import annotations

import os

#: One BLAS thread per process: the test workers (one per core) and the jobs they start would
#: otherwise each start OpenBLAS's thread pool on the same two cores (7 % more CPU time measured on
#: the optimizer tests). Set before numpy is imported; the jobs started by the tests inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sqlite3  # noqa: E402
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

#: Where tmp_path lives unless the user chose (``--basetemp``, ``$PYTEST_DEBUG_TEMPROOT``).
MEMORY_TMP = Path("/dev/shm")
#: Session fixtures built once per worker and cheap: they group no tests on one worker.
PER_WORKER = {"mlflow_template", "new_store", "tracking_server"}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """tmp_path under /dev/shm (pytest's own numbered folders there, the last 3 runs kept)."""
    if (config.option.basetemp is None and "PYTEST_DEBUG_TEMPROOT" not in os.environ
            and MEMORY_TMP.is_dir() and os.access(MEMORY_TMP, os.W_OK)):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(MEMORY_TMP)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Group the tests sharing a module- or session-scoped fixture of the tests (``xdist_group``,
    read by ``--dist loadgroup`` when the items are sorted; ignored without xdist)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return
    shared = [name for name in item.fixturenames
              if (defs := info.name2fixturedefs.get(name)) and name not in PER_WORKER
              and defs[-1].scope in ("module", "session") and defs[-1].baseid.startswith("tests")]
    if shared:
        item.add_marker(pytest.mark.xdist_group(item.module.__name__))


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with its tables created, as a job creates a new store."""
    from gamma.tracking.store import open_client

    path = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    open_client(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def new_store(mlflow_template: Path) -> Callable[[Path], str]:
    """``new_store(path)``: an empty MLflow store at ``path`` (a copy of the template, for tests
    that are not about creating a store); its tracking URI."""
    def make(path: Path) -> str:
        with closing(sqlite3.connect(mlflow_template)) as src, closing(sqlite3.connect(path)) as dst:
            src.backup(dst)
        return f"sqlite:///{path}"

    return make


@pytest.fixture(scope="session", autouse=True)
def tracking_server() -> Iterator[str | None]:
    """A tracking server per test process (gamma/tracking/server.py): the jobs the tests run, here
    and in the processes they start, fork their MLflow helpers from it rather than each importing
    mlflow (about 2 s of CPU a job). Tests of helpers started the plain way remove
    ``$GAMMA_TRACKING_SERVER`` from their jobs' environment."""
    from gamma.tracking.forked import ENV, start_server

    server = start_server()
    if server is not None:
        os.environ[ENV] = server.path
    try:
        yield os.environ.get(ENV) if server is not None else None
    finally:
        os.environ.pop(ENV, None)
        if server is not None:
            server.stop()
