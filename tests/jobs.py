"""Running a job from the tests: in this process through Hydra's compose API, and comparing
results.json files apart from what differs between runs of the same job."""

from __future__ import annotations

import io
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from hydra import compose, initialize_config_dir

from gamma.search.job import execute
from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]
#: results.json fields that differ between two runs of the same job (seconds).
TIMINGS = {"wall_s", "costmodel_s", "search_s"}


def run_inprocess(overrides: list[str], out_dir: Path) -> tuple[int, dict | None]:
    """(exit code, results.json) of the job of ``overrides`` run in this process; None for a
    job refused before it started (a bad setting found before any search: no results.json)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=overrides)
    code = execute(cfg, out_dir)
    path = out_dir / "results.json"
    return code, read_results(path) if path.is_file() else None


def run_captured(args: list[str]) -> subprocess.CompletedProcess:
    """``python run.py ARGS`` (one job; ``hydra.run.dir=`` names its folder) run in this process:
    the job's exit code, stdout and stderr, as ``subprocess.run(..., capture_output=True,
    text=True)`` gives them. For tests of what a job says and writes; the command line around it
    (Hydra's start, exit codes of signals) is tested through run.py itself."""
    (folder,) = [a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")]
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code, _ = run_inprocess([a for a in args if not a.startswith("hydra.run.dir=")], Path(folder))
    return subprocess.CompletedProcess(["run.py", *args], code, out.getvalue(), err.getvalue())


def without_timings(results: dict, also: frozenset[str] = frozenset()) -> dict:
    """results.json without the timings, the MLflow ids and the top-level fields ``also``."""
    out = {k: v for k, v in results.items() if k not in TIMINGS | {"mlflow"} | also}
    out["layers"] = [{k: v for k, v in r.items() if k not in TIMINGS} for r in results["layers"]]
    return out
