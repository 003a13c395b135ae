"""A sweep (``run.py -m``) as one result: its jobs' console lines and its summary.

:class:`SweepSummary` (a Hydra callback, registered in conf/config.yaml) writes the sweep's
progress file before its jobs start and, after them, prints the summary table of its jobs (arm x
system: latency, x bound, x optimum, feasible layers, wall time) and writes it to the sweep
folder, where the tracking callback (gamma.tracking.callbacks, which ends after this one) logs it
to the sweep's parent run. :func:`job_started` and :func:`job_ended` are a sweep job's console:
its lines go to its ``run.log``; the console gets its errors and one line when it ends ("job k of
N", how long the sweep still needs), each prefixed with what sets the job apart.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gamma.errors import GammaError
from gamma.results import sweep as S
from gamma.results.console import say, sweep_console
from gamma.search.strict_numbers import check_hydra_job


def jobs_at_once(workers: int | str | None) -> int:
    """Jobs a local sweep runs at once: the cores this process may use over each job's
    ``parallel.workers``, at least 1 (the ``gamma_sweep_jobs`` resolver of
    conf/hydra/launcher/local.yaml)."""
    try:
        per_job = max(1, int(workers or 1))
    except (TypeError, ValueError):
        per_job = 1  # the job reports the bad setting itself
    return max(1, len(os.sched_getaffinity(0)) // per_job)


def register_resolvers() -> None:
    """The config's own resolvers (before Hydra composes a config)."""
    if not OmegaConf.has_resolver("gamma_sweep_jobs"):
        OmegaConf.register_new_resolver("gamma_sweep_jobs", jobs_at_once)


def grid_overrides(config: DictConfig) -> dict[str, Override] | None:
    """The sweep's overrides by key: its sweeper's ``params`` (the grid) and the command line's,
    a command-line value replacing the grid's; None where Hydra cannot parse them (it reports
    that itself)."""
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
    grid = [f"{k}={v}" for k, v in (OmegaConf.to_container(params) if params else {}).items()]
    given = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
    try:
        parsed = OverridesParser.create().parse_overrides(grid + given)
    except Exception:  # noqa: BLE001 - Hydra reports a bad override itself
        return None
    return {o.get_key_element(): o for o in parsed}


def sweep_grid(config: DictConfig) -> tuple[int | None, list[str] | None]:
    """How many jobs Hydra's basic sweeper launches for ``config`` (its grid and the
    command-line overrides, a command-line value replacing the grid's) and the settings that
    take several values; the Optuna sweeper's trials; (None, None) for another sweeper."""
    sweeper = str(OmegaConf.select(config, "hydra.sweeper._target_", default="") or "")
    if "optuna" in sweeper.lower():
        trials = OmegaConf.select(config, "hydra.sweeper.n_trials", default=None)
        return (int(trials) if trials else None), None
    if not sweeper.endswith("BasicSweeper"):
        return None, None
    last = grid_overrides(config)
    if last is None:
        return None, None
    n, swept = 1, []
    for key, o in last.items():
        if o.is_sweep_override():
            n *= len(list(o.sweep_string_iterator()))
            swept.append(key)
    return n, swept


def swept_options(config: DictConfig) -> dict[str, list[str]]:
    """The config groups a sweep's jobs choose among and the options they choose (``model=a,b``
    on the command line or in the grid: ``{"model": ["a", "b"]}``)."""
    groups = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
    options: dict[str, list[str]] = {}
    for key, o in (grid_overrides(config) or {}).items():
        if key not in groups or not o.is_sweep_override():
            continue
        try:
            options[key] = [str(v) for v in o.sweep_string_iterator()]
        except Exception:  # noqa: BLE001 - an interval or a glob: no list of options
            continue
    return options


def project_root(config: DictConfig) -> Path | None:
    """The folder holding the primary config's folder (``conf/``): files are named relative to it."""
    for source in OmegaConf.select(config, "hydra.runtime.config_sources", default=None) or []:
        if source.get("provider") == "main" and source.get("schema") == "file" and source.get("path"):
            return Path(str(source["path"])).parent
    return None


class CheckSweep(Callback):
    """Before a sweep launches its jobs (the first callback of conf/config.yaml, so before any
    tracking server or parent run exists): the numbers written in the config files its jobs
    are composed from, the options its grid chooses and the grid itself
    (gamma.search.strict_numbers). A problem ends the sweep with ``error: ...`` naming the
    file, line and field, exit 1, no job run. What only a job can find (a setting out of
    range) fails that job; the sweep then exits 1 after the others (:class:`SweepSummary`)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_hydra_job(config.hydra, project_root(config), also=swept_options(config))
        except GammaError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None  # Hydra's callbacks pass on SystemExit only


#: The failed jobs of the sweep this process launched (:meth:`SweepSummary.on_multirun_end`):
#: run.py exits 1 after the sweep when there is one.
FAILED_JOBS: list[dict[str, Any]] = []


def failed_jobs_note(failed: list[dict[str, Any]], jobs: int | None, sweep_dir: Path) -> str:
    """The sweep's error: how many of its jobs failed, each by number, what sets it apart and
    its error; the other jobs' results are kept."""
    of = f" of {jobs}" if jobs else ""
    lines = [f"error: {len(failed)}{of} jobs of the sweep failed (the others' results are kept "
             f"in {sweep_dir}):"]
    for f in failed:
        folder = Path(str(f.get("run_dir") or "")).name
        lines.append(f"  job {f.get('job')} [{f.get('prefix') or 'job'}]"
                     + (f" ({folder})" if folder else "") + f": {f.get('error')}")
    return "\n".join(lines)


def job_failed(overrides: list[str], sweep_dir: Path, out_dir: Path, k: int, error: str) -> None:
    """Note that job ``k`` of the sweep (run folder ``out_dir``) failed with ``error`` (read by
    :class:`SweepSummary` when the sweep ends; run.py then exits 1)."""
    info = S.SweepInfo.read(sweep_dir)
    if info is not None:
        S.note_failed(sweep_dir, info, k, {"job": k, "prefix": job_prefix(overrides, info.swept),
                                          "overrides": overrides, "run_dir": str(out_dir),
                                          "error": error})


class SweepSummary(Callback):
    """Before a sweep's jobs: its progress file (how many jobs, when it started). After them:
    the summary table of its jobs on the console and in ``sweep_summary.txt`` / ``.json``."""

    def __init__(self) -> None:
        self.start = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.start = time.time()
        jobs, swept = sweep_grid(config)
        S.SweepInfo(jobs, self.start, swept).write(sweep_dir_of(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = sweep_dir_of(config)
        rows = S.summarize(S.sweep_jobs(sweep_dir, self.start))
        if rows:
            text = S.summary_table(rows)
            S.write_summary(sweep_dir, rows, text)
            print(f"\nsweep summary ({sum(r['seeds'] for r in rows)} jobs, "
                  f"{S.duration(time.time() - self.start)}; {sweep_dir / S.SUMMARY_TEXT}):\n{text}")
        info = S.SweepInfo.read(sweep_dir)
        FAILED_JOBS[:] = S.failed_jobs(sweep_dir, info) if info else []
        if FAILED_JOBS:
            print(failed_jobs_note(FAILED_JOBS, info.jobs if info else None, sweep_dir),
                  file=sys.stderr, flush=True)


def sweep_dir_of(config: DictConfig) -> Path:
    return Path(str(OmegaConf.select(config, "hydra.sweep.dir")))


def job_prefix(overrides: list[str], swept: list[str] | None) -> str:
    """What sets a sweep's job apart: the values of its ``swept`` settings (all its overrides'
    but Hydra's own where the sweep does not say), e.g. ``gamma s1``; ``job`` where none."""
    values = []
    for o in overrides:
        key, eq, value = o.lstrip("+~").partition("=")
        if eq and not key.startswith("hydra") and (swept is None or key in swept):
            values.append(value)
    return " ".join(values) or "job"


def job_started(overrides: list[str], sweep_dir: Path) -> None:
    """A sweep's job from here on: its lines to its run.log, only its errors and its last
    line to the console, each prefixed with :func:`job_prefix`."""
    info = S.SweepInfo.read(sweep_dir)
    sweep_console(job_prefix(overrides, info.swept if info else None))


def job_ended(out_dir: Path, sweep_dir: Path, k: int) -> None:
    """A sweep job's one console line: its outcome (its results.json), ``job k of N``, how many
    jobs have ended and how long the sweep still needs."""
    info = S.SweepInfo.read(sweep_dir)
    done = S.job_done(sweep_dir, info, k) if info else 0
    try:
        outcome = S.job_line(S.job_results(out_dir / "results.json", info.start if info else 0.0))
    except (OSError, GammaError):
        outcome = "no results.json"
    say(f"{outcome}; {S.progress_note(k, info, done)}", headline=True)


register_resolvers()  # wherever a config is composed after importing this module
