"""The MLflow store: which URI a job uses, creating the store and its experiments safely from
many processes at once (a file lock), and the run context tags. Shared by the writing side
(:mod:`gamma.tracking.writer`) and the reading side (:mod:`gamma.tracking.reader`).

Tracking URI: ``cfg.tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else
``sqlite:///<project>/outputs/mlflow.db``. Experiment: ``cfg.tracking.experiment``, else
``gamma``.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import logging
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Iterator

from gamma.errors import GammaError

PROJECT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUTS = PROJECT / "outputs"
#: Param values are truncated to this many characters (MLflow's limit is 6000).
MAX_PARAM_CHARS = 500
#: MLflow's HTTP client settings for the helper (a user's own environment values win): an
#: unreachable server fails about 5 s after mlflow is imported (refused: 3 attempts, 1 + 2 s
#: backoff plus jitter) and at most ~20 s (no answer: 3 attempts of 5 s), not after minutes of
#: MLflow's default 7 retries and 120 s timeout.
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


def tracking_uri(cfg_uri: str | None, outputs: Path = DEFAULT_OUTPUTS) -> str:
    """The tracking URI to use; creates ``outputs`` for the default SQLite store."""
    if cfg_uri:
        return str(cfg_uri)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    outputs.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{outputs.resolve()}/mlflow.db"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a SQLite tracking URI (None for other stores and ``:memory:``)."""
    if not uri.startswith("sqlite:///") or ":memory:" in uri:
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def check_uri(uri: str) -> str:
    """``uri`` unchanged; a :class:`GammaError` naming it when it is a SQLite store in a folder
    that does not exist (MLflow would create the folders, e.g. at the filesystem root)."""
    db = sqlite_path(uri)
    if db is not None and not db.parent.is_dir():
        raise GammaError(f"tracking.uri {uri}: folder {db.parent} does not exist "
                         "(create it, or name another store)")
    return uri


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Held while a process creates or migrates a SQLite store and its experiments: an
    exclusive ``fcntl.flock`` on ``<database>.lock`` (other stores: no lock). Jobs that create a
    brand-new store at the same time otherwise collide ("table _alembic_tmp_... already
    exists") and can leave it broken for good."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    with open(f"{db}.lock", "a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def open_client(uri: str, experiment: str | None = None) -> tuple[Any, str | None]:
    """An ``MlflowClient`` for ``uri`` with its store created (tables migrated) and, if
    ``experiment`` is given, that experiment created: (client, experiment id or None). Under
    :func:`store_lock`, so any number of processes may do this at once."""
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):  # after the import: mlflow sets its level on import
        logging.getLogger(name).setLevel(logging.WARNING)
    for key, value in HTTP_ENV.items():  # a server that does not answer: an error in seconds
        os.environ.setdefault(key, value)
    check_uri(uri)
    with store_lock(uri):
        client = MlflowClient(tracking_uri=uri)
        if experiment is not None:
            return client, experiment_id(client, experiment, uri)
        client._tracking_client.store  # noqa: B018 - creates (migrates) a SQLite store now
        return client, None


def failure_reason(e: BaseException) -> str:
    """A short reason for an MLflow failure: the OS error (``[Errno 111] Connection refused``)
    or timeout inside MLflow's long request message where there is one."""
    from mlflow.exceptions import MlflowException

    text = str(e.message if isinstance(e, MlflowException) else f"{type(e).__name__}: {e}").strip()
    found = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    if found:
        return found.group(0).strip()
    if "timed out" in text.lower():
        return f"no answer (timed out after {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '?')} s)"
    return text if len(text) <= 500 else text[:497] + "..."


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts as ``{"a.b": "value"}``; lists and scalars as text, truncated."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    else:
        text = json.dumps(data) if isinstance(data, (list, tuple)) else str(data)
        out[prefix] = text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 3] + "..."
    return out


def experiment_name(cfg: dict[str, Any]) -> str:
    """The MLflow experiment of a job config: ``tracking.experiment`` (``gamma`` if unset)."""
    return str((cfg.get("tracking") or {}).get("experiment") or "gamma")


def config_value(cfg: dict[str, Any], path: str) -> Any:
    """``cfg["a"]["b"]`` for ``path`` "a.b"; None where a level is missing."""
    value: Any = cfg
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def git_revision(root: Path = PROJECT) -> tuple[str | None, str | None]:
    """(commit, branch) of the git checkout at ``root``; None where it is not one (or git is
    missing), branch None for a detached HEAD. One ``git`` call, about 10 ms."""
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD", "--abbrev-ref", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None, None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2:
        return None, None
    return lines[0], (None if lines[1] == "HEAD" else lines[1])


def context_tags(source: str | Path = PROJECT / "run.py") -> dict[str, str]:
    """MLflow's standard context tags for a run started by ``source`` in this project: user,
    source name and type (LOCAL), git commit and branch. Set by hand rather than with mlflow's
    context registry, which reads ``sys.argv`` (the helper's, not run.py) and costs 0.16 s."""
    from mlflow.utils import mlflow_tags as T

    try:
        user = getpass.getuser()
    except (ImportError, KeyError, OSError):
        user = "unknown"
    tags = {T.MLFLOW_USER: user, T.MLFLOW_SOURCE_NAME: str(source), T.MLFLOW_SOURCE_TYPE: "LOCAL"}
    commit, branch = git_revision()
    if commit:
        tags[T.MLFLOW_GIT_COMMIT] = commit
    if branch:
        tags[T.MLFLOW_GIT_BRANCH] = branch
    return tags


def artifact_location(uri: str, experiment: str) -> str | None:
    """For a local SQLite store, artifacts live beside the database (not in ./mlruns)."""
    db = sqlite_path(uri)
    if db is None:
        return None
    return (db.parent / "mlartifacts" / experiment).resolve().as_uri()


def experiment_id(client: Any, name: str, uri: str) -> str:
    """The id of experiment ``name``; created (artifacts beside a SQLite store) if missing."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(uri, name))
    except MlflowException:  # created meanwhile by a parallel job
        return client.get_experiment_by_name(name).experiment_id


def prepare_store(cfg: dict[str, Any], outputs: Path = DEFAULT_OUTPUTS) -> str | None:
    """Create the store's tables and the experiment of ``cfg`` (``tracking``, its experiment)
    before parallel jobs start: jobs that create a brand-new SQLite store at the same time
    collide ("table already exists") and can leave it half-migrated. Returns the URI (None
    without tracking)."""
    tr = cfg.get("tracking") or {}
    if not tr.get("enabled", True):
        return None
    for key, value in HTTP_ENV.items():  # an unreachable server: a warning in seconds
        os.environ.setdefault(key, value)
    uri = tracking_uri(tr.get("uri"), outputs)
    open_client(uri, experiment_name(cfg))
    return uri
