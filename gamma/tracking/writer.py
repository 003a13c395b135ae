"""MLflow tracking of a job; the only module that imports mlflow.

Importing mlflow and opening its store takes 3-4 s, so the MLflow work runs in a helper process
(``python -m gamma.tracking.writer``) started with the first job of a process: it sets up the run
while the job searches, logs each finished layer, and at the end the totals, the artifacts and the
run status. The next job of the same process (a sweep's jobs, one after another in the launching
process or in a joblib worker) reuses the idle helper: no second MLflow start-up. The job and the
helper share only the run folder: the helper reads ``config.yaml`` (params) and ``results.json``
(rewritten atomically by the job) there. Commands go over the helper's stdin, one per line:
``run JSON`` (start a run: :class:`RunSpec` as JSON), then ``layer`` (log the layers not yet
logged) and ``finish STATUS``; end of input within a run (the job died) ends that run as KILLED,
end of input between runs ends the helper. A resumed job (``resume=true``) gives
``resume_run_id``: the helper reopens that run where it still exists. The helper replies to
``run`` with the run id (or ``error: ...``, then it exits) and to ``finish`` with ``done``; it
ignores Ctrl-C (own process group). It never prints a traceback: a failure is a ``warning: ...``
on stderr at once (the job goes on) and an ``error:`` reply; a job that is gone (closed pipes)
just ends the run KILLED.

Tracking never stops a job: a tracking failure (unreachable server, a SQLite store in a folder
that does not exist) is a warning, the job's files are complete and results.json's ``mlflow``
records the error; :func:`import_run` (scripts/mlflow_import.py) logs the folder later with the
same :class:`RunLogger`. MLflow's HTTP retries and timeout are bounded (:data:`HTTP_ENV`), so an
unreachable server fails in about 10 s. Every process that may create a SQLite store or an
experiment does it under a file lock (:func:`open_client`, :func:`store_lock`).

Logged: the run starts at the job's start time; tags: the job's columns (``optimizer``,
``system``, ``platform``, ``model``, ``objective``, ``seed``, ``label``: the config's, else
as results.json names the job, :func:`gamma.search.labels.default_label`), ``arm`` (system and
label first, then the context: :func:`arm_name`), ``output_dir``,
``gamma.kind=job`` and MLflow's context tags (``mlflow.source.git.commit`` and ``.branch`` of
the project's git checkout, ``mlflow.source.name`` = run.py, ``mlflow.source.type`` = LOCAL,
``mlflow.user``); params = the flattened config without the model's layer list; the selected
layers as a dataset input named after the model (one row per layer: its shape and MACs); per
layer a step metric ``layers/best_cost_XX`` (best cost so far vs samples) plus
``layers/latency_cycles_XX`` and ``layers/energy_nJ_XX``, in ONE ``log_batch`` call per layer
(beyond :data:`LAYER_METRICS` layers: per unique shape, its first layer);
totals as top-level metrics (:func:`total_metrics`: ``latency_cycles``, ``energy_nJ``,
``x_bound``, ``x_optimum``, ``feasible_layers``, ...; cycles, nJ, seconds) and the end-to-end
best-so-far ``best_cost`` against samples per unique layer
(with ``objective=two_stage`` also the ``two_stage/...`` block of
results.json: bottleneck, each stage's totals, savings; with ``codesign=digamma`` the chosen
design as params ``hardware.*`` and ``codesign.area_budget_mm2`` and its area as metrics
``area_mm2``, ``area/pes_mm2``, ..., the check's gap ``check/ga_over_best`` and a front's
``front_designs`` and ``front/<metric>`` series over the area: :func:`codesign_params`,
:func:`codesign_metrics`, :func:`front_curves`);
artifacts results.json, mappings/layer_XX.m,
convergence.png (drawn by the job), config.yaml, and with ``objective=pareto`` the fronts
pareto.json and pareto.png (written by the job, :mod:`gamma.results.pareto`). Status FINISHED,
FAILED or KILLED.

Sweeps: a Hydra callback (gamma/tracking/callbacks.py) opens one parent run per sweep before the
jobs (:func:`start_sweep`, ``gamma.kind=sweep``, the sweep's overrides as tags) and ends it
after them (:func:`end_sweep`). A job becomes its child (``mlflow.parentRunId``) when it finds
the parent, for its own tracking URI and experiment, in ``<sweep dir>/mlflow_parent_run.json``
above its output folder or in ``$GAMMA_MLFLOW_PARENT`` (set in the launching process, inherited
by the launcher's workers). A job without a parent is a top-level run, never an error.
compare.py's summary run (:func:`log_summary`, ``gamma.kind=summary``) can be a child of the
sweep too. Runs that are not jobs carry the tag ``gamma.summary`` (``1`` on a summary run,
``sweep`` on a sweep's parent), so readers that skip it count only jobs; ``gamma.kind`` (job,
sweep, summary) names each kind.

Tracking URI: ``cfg.tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else
``sqlite:///<project>/outputs/mlflow.db``. Experiment: ``cfg.tracking.experiment``, else
``cfg.experiment``, else ``gamma``.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gamma.errors import GammaError
from gamma.results import sweep as S
from gamma.results.curves import end_to_end_best
from gamma.search.labels import default_label
from gamma.tracking import forked
from gamma.tracking.store import (DEFAULT_OUTPUTS, HTTP_ENV, PROJECT, check_uri, config_value,
                                   context_tags, experiment_name, failure_reason, flatten,
                                   open_client, tracking_uri)

STATUSES = {"finished": "FINISHED", "failed": "FAILED", "killed": "KILLED"}
#: Seconds to wait for the helper: run id (first store creation ~5 s), final upload.
CONNECT_TIMEOUT_S = 120.0
FINISH_TIMEOUT_S = 300.0
#: Where a sweep's jobs find its parent run: an environment variable of the launching process
#: (JSON: uri, experiment, run_id, sweep_dir) and a file in the sweep folder (the same JSON).
PARENT_ENV = "GAMMA_MLFLOW_PARENT"
PARENT_FILE = "mlflow_parent_run.json"
#: Tag that tells job runs from a sweep's parent run and compare.py's summary runs.
KIND_TAG = "gamma.kind"
#: MLflow's run description tag (mlflow.utils.mlflow_tags.MLFLOW_RUN_NOTE, without importing mlflow).
RUN_NOTE_TAG = "mlflow.note.content"
#: Config entries that become tags of a job run (tag name: config path).
JOB_TAGS = {"optimizer": "optimizer.name", "system": "system.name", "platform": "platform.name",
            "model": "model.name", "objective": "objective.name", "seed": "seed", "label": "label"}
#: Tag naming a job's arm in its context (system, label, platform, model, objective, budget): the
#: MLflow UI's "Group by" on it averages only the seeds of one arm, never across optimizers.
ARM_TAG = "arm"
#: The prefix of the per-layer metrics (``layers/best_cost_02``, ``layers/latency_cycles_02``,
#: ``layers/energy_nJ_02``): one chart section of the MLflow UI, which folds with one click.
#: MLflow 3.17 puts every prefix section above *Model metrics* (the unprefixed totals)
#: whatever its name, so no prefix can sort after them there (docs/tracking.md).
LAYER_PREFIX = "layers"
#: Config entries left out of the params (the layer table is the run's dataset input instead).
NOT_PARAMS = ("model.layers",)
#: Params a co-design run gets at its end that are results, not settings (the chosen design and
#: the budget in mm^2, :func:`codesign_params`): compare.py never tells jobs or arms apart by them.
RESULT_PARAMS = ("hardware", "codesign.area_budget_mm2")
#: Selected layers up to which every layer gets its metrics (beyond: the first layer of each
#: unique shape; a model of 100,000 layers would need as many log_batch calls).
LAYER_METRICS = 1000
#: MLflow's limit on a tag value is 8,000 characters; longer override lists are cut.
MAX_TAG_CHARS = 5000


# --- the job's side -----------------------------------------------------------------------------
class Tracker:
    """No tracking (``tracking.enabled=false``); the interface of :class:`MlflowTracker`.
    Tracking never stops a job: a failure is kept in ``error`` (the job warns and records it)."""

    uri: str | None = None
    run_id: str | None = None
    error: str | None = None

    def layer_done(self) -> None:
        """results.json has new layers."""

    def connect(self) -> str | None:
        """Wait for the run id (None without tracking); a :class:`GammaError` (also kept in
        ``error``) where tracking failed."""
        if self.error:
            raise GammaError(self.error)
        return None

    def finish(self, status: str) -> None:
        """results.json is final: log the rest and end the run with ``status``; a
        :class:`GammaError` (also kept in ``error``) where tracking failed."""
        if self.error:
            raise GammaError(self.error)

    def poll_run_id(self) -> str | None:
        """The run id if the run exists already (never waits; None without tracking)."""
        return self.run_id


class UnusableTracker(Tracker):
    """Tracking asked for but refused before it started (e.g. a SQLite store in a folder that
    does not exist): the job runs without it and reports ``error`` at its end."""

    def __init__(self, uri: str, error: str) -> None:
        self.uri, self.error = uri, error


@dataclass
class RunSpec:
    """What the helper needs to start (or reopen) one job's run: the ``run`` command's JSON."""

    uri: str
    experiment: str
    run_name: str
    out_dir: str
    start_ms: int | None = None  # the job's start, ms since the epoch
    parent_run_id: str | None = None  # the sweep's parent run
    resume_run_id: str | None = None  # reopen this run (a resumed job) if it still exists


#: Helpers of this process between two jobs, each waiting for its next ``run`` command.
IDLE_HELPERS: list[subprocess.Popen] = []


def idle_helper() -> subprocess.Popen | None:
    """An idle helper of this process that is still alive (taken from :data:`IDLE_HELPERS`)."""
    while IDLE_HELPERS:
        proc = IDLE_HELPERS.pop()
        if proc.poll() is None:
            return proc
        proc.wait()
    return None


def new_helper() -> subprocess.Popen:
    """A new helper process (own process group: a Ctrl-C at the terminal does not reach it):
    forked by the tracking server named in ``$GAMMA_TRACKING_SERVER`` where there is one
    (gamma/tracking/server.py: mlflow imported already), else started here."""
    if os.environ.get(forked.ENV):
        helper_proc = forked.forked_helper(os.environ[forked.ENV])
        if helper_proc is not None:
            return helper_proc  # type: ignore[return-value] - drives like a Popen
    return subprocess.Popen([sys.executable, "-m", "gamma.tracking.writer"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, process_group=0,
                            env={**HTTP_ENV, **os.environ})


@atexit.register
def close_idle_helpers() -> None:
    """End of input for the idle helpers: each exits (its runs are all ended)."""
    while IDLE_HELPERS:
        with contextlib.suppress(OSError):
            IDLE_HELPERS.pop().stdin.close()


def ask_helper(command: str, payload: dict[str, Any], timeout: float) -> str:
    """Send ``command JSON`` to this process's idle helper (a new one if there is none or it
    has just ended) and return its one-line reply, after which the helper is idle again. A
    :class:`GammaError` with the helper's reason where it fails (it then exits)."""
    line = f"{command} {json.dumps(payload)}\n"
    proc = idle_helper()
    for attempt in (proc, None):
        proc = attempt or new_helper()
        try:
            proc.stdin.write(line)
            proc.stdin.flush()
            break
        except OSError:  # an idle helper that has just ended
            proc.wait()
    reply = _readline(proc, timeout).strip()
    if not reply or reply.startswith("error:"):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        raise GammaError(reply[len("error:"):].strip() if reply else
                         f"MLflow tracking at {payload.get('uri')}: the helper gave no answer "
                         f"(code {proc.returncode})")
    IDLE_HELPERS.append(proc)
    return reply


class MlflowTracker(Tracker):
    """Drives a helper process (this process's idle one, else a new one) for one MLflow run."""

    def __init__(self, uri: str, experiment: str, run_name: str, out_dir: Path,
                 start_time: float | None = None, parent_run_id: str | None = None,
                 resume_run_id: str | None = None) -> None:
        self.uri = uri
        self.error = None  # the helper's failure, reported once
        start_ms = int((time.time() if start_time is None else start_time) * 1000)
        spec = RunSpec(uri, experiment, run_name, str(out_dir.resolve()), start_ms, parent_run_id,
                       resume_run_id)
        command = "run " + json.dumps(spec.__dict__)
        self.proc = idle_helper() or new_helper()
        if not self._write(command):  # an idle helper that has just ended: a new one
            self._stop()
            self.proc = new_helper()
            self._send(command)

    def _write(self, line: str) -> bool:
        """Send a line to the helper; False where it is gone."""
        if self.proc.poll() is not None:
            return False
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            return True
        except OSError:  # BrokenPipeError: it has just ended
            return False

    def _send(self, line: str) -> bool:
        """Send a command; False (``error`` set) where the helper is gone."""
        if self.error is None and self._write(line):
            return True
        if self.error is None:
            with contextlib.suppress(GammaError):
                self.connect()  # its error line, if it wrote one
            self.error = self.error or (f"MLflow tracking at {self.uri}: the helper ended early "
                                        f"(code {self.proc.wait()})")
        return False

    def layer_done(self) -> None:
        self._send("layer")

    def poll_run_id(self) -> str | None:
        """The run id once the helper has written it (never waits), else None."""
        if self.run_id is None and self.error is None and _readline_ready(self.proc):
            with contextlib.suppress(GammaError):  # kept in error
                self.connect()
        return self.run_id

    def connect(self) -> str | None:
        if self.run_id is None and self.error is None:
            line = _readline(self.proc, CONNECT_TIMEOUT_S).strip()
            if not line or line.startswith("error:"):
                self._stop()
                self.error = (line[len("error:"):].strip() if line else
                              f"MLflow tracking at {self.uri}: the helper gave no run id "
                              f"(code {self.proc.poll()})")
            else:
                self.run_id = line
        if self.error is not None:
            raise GammaError(self.error)
        return self.run_id

    def finish(self, status: str) -> None:
        if self.run_id is None or not self._send(f"finish {status}"):
            self._stop()
            if self.error:
                raise GammaError(self.error)
            return
        line = _readline(self.proc, FINISH_TIMEOUT_S).strip()
        if line != "done":
            self._stop()
            self.error = (line[len("error:"):].strip() if line.startswith("error:") else
                          f"MLflow tracking at {self.uri}: the helper failed to finish run "
                          f"{self.run_id} (code {self.proc.returncode}); see its messages above")
            raise GammaError(self.error)
        IDLE_HELPERS.append(self.proc)  # for this process's next job

    def _stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _readline_ready(proc: subprocess.Popen) -> bool:
    """Whether ``proc`` has written to its stdout (a line to read, or its end)."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        return bool(sel.select(0))


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """One stdout line of ``proc``, or "" after ``timeout`` seconds or at its end."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline()


def start(cfg: dict[str, Any], run_name: str, out_dir: Path,
          outputs: Path = DEFAULT_OUTPUTS, start_time: float | None = None,
          resume: dict[str, Any] | None = None) -> Tracker:
    """A tracker for the job with (plain, resolved) config ``cfg`` writing to ``out_dir``; its
    run starts at ``start_time`` (seconds since the epoch; default: now, the job's start) and is
    a child of the sweep's parent run where the job finds one (:func:`find_parent`). ``resume``:
    the ``mlflow`` entry (uri, run_id) of the results.json being resumed; its run is reopened
    if it has this job's URI and still exists, else a new run is started. A URI refused at once
    (:func:`check_uri`) gives a warning now and a tracker that only reports it: the job runs
    without tracking."""
    start_time = time.time() if start_time is None else start_time
    tr = cfg.get("tracking") or {}
    if not tr.get("enabled", True):
        return Tracker()
    uri, experiment = tracking_uri(tr.get("uri"), outputs), experiment_name(cfg)
    try:
        check_uri(uri)
    except GammaError as e:
        print(f"warning: {e}; the job goes on without tracking", file=sys.stderr, flush=True)
        return UnusableTracker(uri, str(e))
    reopen = (resume or {}).get("run_id") if (resume or {}).get("uri") == uri else None
    return MlflowTracker(uri, experiment, run_name, out_dir, start_time,
                         find_parent(out_dir, uri, experiment), reopen)


def find_parent(out_dir: Path, uri: str, experiment: str) -> str | None:
    """The run id of the sweep's parent run for a job writing to ``out_dir`` with tracking
    ``uri`` and ``experiment``: from the nearest ``mlflow_parent_run.json`` above ``out_dir``,
    else from ``$GAMMA_MLFLOW_PARENT`` if ``out_dir`` lies in that sweep's folder. Only a parent
    of the same URI and experiment counts; None where there is none (a single run) or anything
    is unreadable: a job never fails for want of a parent."""
    try:
        out = Path(out_dir).resolve()
        candidates = [json.loads((d / PARENT_FILE).read_text(encoding="utf-8"))
                      for d in (out, *out.parents) if (d / PARENT_FILE).is_file()][:1]
        if os.environ.get(PARENT_ENV):
            env = json.loads(os.environ[PARENT_ENV])
            if out.is_relative_to(Path(env.get("sweep_dir") or "/nowhere").resolve()):
                candidates.append(env)
        for c in candidates:
            if c.get("uri") == uri and c.get("experiment") == experiment and c.get("run_id"):
                return str(c["run_id"])
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    return None


def log_summary(experiment: str, files: list[Path], run_name: str, uri: str | None = None,
                parent_run_id: str | None = None) -> str:
    """A summary run in ``experiment`` holding ``files`` as artifacts; returns its id. With
    ``parent_run_id`` (a sweep's parent run in the same experiment) it is that run's child.
    Tagged ``gamma.summary`` so that readers do not count it among the jobs."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    client, exp_id = open_client(tracking_uri(uri), experiment)
    tags = {"gamma.summary": "1", KIND_TAG: "summary",
            **context_tags(Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else "compare")}
    if parent_run_id:
        try:
            parent = client.get_run(parent_run_id)
        except MlflowException:
            parent = None
        if parent is None or parent.info.experiment_id != exp_id:
            raise GammaError(f"parent run {parent_run_id} is not a run of experiment "
                             f"{experiment!r}")
        tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    run_id = client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
    for f in files:
        client.log_artifact(run_id, str(f))
    client.set_terminated(run_id, "FINISHED")
    return run_id


# --- a sweep's parent run (gamma/tracking/callbacks.py) --------------------------------------------
@dataclass
class SweepRun:
    """A sweep's parent run, open while its jobs run."""

    uri: str
    experiment: str
    run_id: str
    sweep_dir: Path

    def as_json(self) -> str:
        return json.dumps({"uri": self.uri, "experiment": self.experiment, "run_id": self.run_id,
                           "sweep_dir": str(self.sweep_dir)})


def sweep_run_name(overrides: list[str], max_chars: int = 120) -> str:
    """``sweep`` plus the overrides that choose what runs (not ``hydra...``), cut to
    ``max_chars``."""
    text = " ".join(["sweep", *(o for o in overrides if not o.lstrip("+~").startswith("hydra"))])
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def start_sweep(cfg: dict[str, Any], sweep_dir: Path, overrides: list[str],
                params: dict[str, Any] | None = None,
                outputs: Path = DEFAULT_OUTPUTS) -> SweepRun | None:
    """Before a sweep's jobs: create the store and experiment, then the sweep's parent run
    (``gamma.kind=sweep``; ``gamma.summary=sweep``: not a job), tagged with the command-line
    ``overrides`` (``gamma.sweep.overrides``), the sweeper's ``params`` (``gamma.sweep.params``)
    and ``sweep_dir``; publish it to the jobs (``<sweep_dir>/mlflow_parent_run.json`` and
    ``$GAMMA_MLFLOW_PARENT``). None without tracking. The MLflow work is done by this process's
    helper (:func:`ask_helper`), which the sweep's jobs then reuse where they run in this
    process: the launching process never imports mlflow."""
    tr = cfg.get("tracking") or {}
    if not tr.get("enabled", True):
        return None
    uri = check_uri(tracking_uri(tr.get("uri"), outputs))
    experiment = experiment_name(cfg)
    sweep_dir = Path(sweep_dir).resolve()
    grid = " ".join(f"{k}={v}" for k, v in (params or {}).items())
    tags = {KIND_TAG: "sweep", "gamma.summary": "sweep",
            "gamma.sweep.overrides": " ".join(overrides)[:MAX_TAG_CHARS],
            "gamma.sweep.dir": str(sweep_dir),
            RUN_NOTE_TAG: (f"Sweep `python run.py -m {' '.join(overrides)}`"
                           + (f" over `{grid}`" if grid else "")
                           + f" in `{sweep_dir}`; its jobs are the child runs.")[:MAX_TAG_CHARS]}
    if grid:
        tags["gamma.sweep.params"] = grid[:MAX_TAG_CHARS]
    run_id = ask_helper("sweep", {"uri": uri, "experiment": experiment,
                                  "run_name": sweep_run_name(overrides), "tags": tags},
                        CONNECT_TIMEOUT_S)
    sweep = SweepRun(uri, experiment, run_id, sweep_dir)
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        tmp = sweep_dir / (PARENT_FILE + ".tmp")
        tmp.write_text(sweep.as_json() + "\n", encoding="utf-8")
        os.replace(tmp, sweep_dir / PARENT_FILE)
    except OSError:
        end_sweep(sweep, "failed")  # no job could find it
        raise
    os.environ[PARENT_ENV] = sweep.as_json()
    return sweep


def end_sweep(sweep: SweepRun, status: str = "finished") -> None:
    """After the jobs: tag the parent with its children's statuses (``gamma.sweep.jobs``, e.g.
    ``4 FINISHED, 1 FAILED``) and end it with ``status`` (finished, failed, killed); done by
    this process's helper."""
    if os.environ.get(PARENT_ENV) == sweep.as_json():
        del os.environ[PARENT_ENV]
    ask_helper("sweep-end", {"uri": sweep.uri, "run_id": sweep.run_id, "status": status,
                             **sweep_summary(sweep.sweep_dir)}, FINISH_TIMEOUT_S)


def sweep_summary(sweep_dir: Path) -> dict[str, Any]:
    """The sweep's summary (gamma.search.sweep.SweepSummary wrote it to the sweep folder) as
    the ``sweep-end`` command's ``metrics`` and ``table``; nothing where there is none."""
    try:
        table = (sweep_dir / S.SUMMARY_TEXT).read_text(encoding="utf-8")
        rows = json.loads((sweep_dir / S.SUMMARY_JSON).read_text(encoding="utf-8"))["rows"]
        return {"metrics": S.summary_metrics(rows), "table": table}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def create_sweep_run(uri: str, experiment: str, run_name: str, tags: dict[str, str]) -> str:
    """In the helper: the store and experiment (created if new), then the sweep's parent run
    with ``tags`` and MLflow's context tags; its id."""
    client, exp_id = open_client(uri, experiment)
    return client.create_run(exp_id, run_name=run_name,
                             tags={**tags, **context_tags()}).info.run_id


def end_sweep_run(uri: str, run_id: str, status: str, metrics: dict[str, float] | None = None,
                  table: str | None = None) -> None:
    """In the helper: log the sweep's summary (``metrics``, and ``table`` as the artifact
    ``sweep_summary.txt`` and in the run's description), tag the parent run with its children's
    statuses, then end it."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    if metrics:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    if table:
        client.log_text(run_id, table, S.SUMMARY_TEXT)
        note = run.data.tags.get(RUN_NOTE_TAG, "")
        block = f"\n\n```\n{table.rstrip()}\n```"
        if len(note) + len(block) > MAX_TAG_CHARS:
            block = f"\n\nThe summary of its jobs: the artifact {S.SUMMARY_TEXT}."
        client.set_tag(run_id, RUN_NOTE_TAG, note + block)
    children = client.search_runs([run.info.experiment_id], max_results=50_000,
                                  filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    counts: dict[str, int] = {}
    for c in children:
        if c.data.tags.get(KIND_TAG) != "summary":
            counts[c.info.status] = counts.get(c.info.status, 0) + 1
    client.set_tag(run_id, "gamma.sweep.jobs",
                   ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none")
    client.set_terminated(run_id, STATUSES.get(status, "FAILED"))


# --- the helper process -------------------------------------------------------------------------
def retried(action: Callable[[], None], attempts: int) -> None:
    """Call ``action`` up to ``attempts`` times, pausing 0.5-1.5 s after a failure (a SQLite
    store locked by other writers); a :class:`GammaError` or the last failure is raised."""
    for attempt in range(1, attempts + 1):
        try:
            action()
            return
        except GammaError:
            raise
        except Exception:  # noqa: BLE001 - raised after the last attempt
            if attempt == attempts:
                raise
            time.sleep(0.5 + random.random())


class RunLogger:
    """Logs one run from the files of a run folder (in the helper process)."""

    def __init__(self, uri: str, experiment: str, run_name: str, out_dir: Path,
                 start_ms: int | None = None, parent_run_id: str | None = None,
                 resume_run_id: str | None = None) -> None:
        self.out_dir, self.logged = out_dir, set()
        self.cfg = self._config()
        self.model, self.model_error = self._model()
        # The store and experiment are created under a file lock (open_client); a locked
        # SQLite database (many writers) is retried.
        attempts = 3 if uri.startswith("sqlite:") else 1

        def open_run() -> None:
            self.client, exp_id = open_client(uri, experiment)
            self.run_id = self._reopen(resume_run_id, exp_id)
            if self.run_id is None:
                tags = self._tags(exp_id, parent_run_id)
                self.run_id = self.client.create_run(exp_id, start_time=start_ms, tags=tags,
                                                     run_name=run_name).info.run_id

        try:
            retried(open_run, attempts)
        except GammaError:
            raise
        except Exception as e:  # noqa: BLE001 - reported to the job
            raise GammaError(f"MLflow tracking at {uri}: {failure_reason(e)}") from None
        if resume_run_id and self.run_id == resume_run_id:
            return  # a reopened run has its params and layer table
        self._params()
        try:
            if self.model is None:
                raise GammaError(self.model_error)  # a bad model file: the job reports it
            retried(self._layer_table, attempts)
        except Exception as e:  # noqa: BLE001 - the run goes on without its layer table
            reason = e if isinstance(e, GammaError) else failure_reason(e)
            print(f"warning: MLflow: no layer table for this run: {reason}", file=sys.stderr,
                  flush=True)

    def _reopen(self, run_id: str | None, exp_id: str) -> str | None:
        """Run ``run_id`` set RUNNING again (a resumed job), its logged layers marked as such;
        None (a new run) where it is not a run of this experiment any more."""
        if not run_id:
            return None
        try:
            run = self.client.get_run(run_id)
        except Exception:  # noqa: BLE001 - deleted, or another store
            run = None
        if run is None or run.info.experiment_id != exp_id or run.info.lifecycle_stage != "active":
            print(f"warning: MLflow: run {run_id} of the resumed job not found; logging a new run",
                  file=sys.stderr, flush=True)
            return None
        self.client.update_run(run_id, status="RUNNING")
        self.logged = {int(k.rsplit("_", 1)[1]) for k in run.data.metrics
                       if k.startswith((f"{LAYER_PREFIX}/best_cost_", "best_cost/layer_"))}
        return run_id

    def _config(self) -> dict[str, Any]:
        import yaml

        path = self.out_dir / "config.yaml"
        return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}

    def _model(self) -> tuple[Any, str]:
        """The job's model (None and the reason where it does not load: the job says why)."""
        from gamma.workloads.files import model_from_config

        try:
            return model_from_config(self.cfg["model"]), ""
        except Exception as e:  # noqa: BLE001 - the job reports a bad model itself
            return None, f"{type(e).__name__}: {e}"

    def _tags(self, exp_id: str, parent_run_id: str | None) -> dict[str, str]:
        """The job's columns, output folder, kind and context; its parent if that is a run of
        the same experiment."""
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        tags = {"output_dir": str(self.out_dir), KIND_TAG: "job", **context_tags()}
        for tag, path in JOB_TAGS.items():
            value = config_value(self.cfg, path)
            if value is not None:
                tags[tag] = str(value)
        if self.model is not None:  # a model file's name rather than "file"
            tags["model"] = self.model.name
        if "label" not in tags and self.cfg.get("optimizer"):  # as results.json names the job
            tags["label"] = default_label(self.cfg)
        tags[ARM_TAG] = arm_name(tags, self.cfg)
        if parent_run_id:
            try:
                ok = self.client.get_run(parent_run_id).info.experiment_id == exp_id
            except Exception:  # noqa: BLE001 - no such run: the job is a top-level run
                ok = False
            if ok:
                tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
            else:
                print(f"warning: MLflow: parent run {parent_run_id} not found in this experiment; "
                      "logging a top-level run", file=sys.stderr, flush=True)
        return tags

    def _params(self) -> None:
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in flatten(self.cfg).items()
                  if not any(k == n or k.startswith(n + ".") for n in NOT_PARAMS)]
        self.client.log_batch(self.run_id, params=params)

    def _layer_table(self) -> None:
        """The selected layers (index, unique shape, type, dims, stride, MACs) as the run's
        dataset input, named after the model, source: its config or file."""
        import warnings

        import pandas as pd
        from mlflow.data import from_pandas
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        model = self.model
        _, which = model.unique_layers()
        rows = []
        for i in model.select(self.cfg.get("layers")):
            layer = model.layers[i - 1]
            rows.append({"layer": i, "unique": which[i - 1] + 1, "shape": layer.shape,
                         **{k: v for k, v in layer.to_dict().items() if k != "name"},
                         "macs": layer.macs})
        path = self.cfg["model"].get("path")
        name = self.cfg["model"].get("name")
        source = Path(path) if path else PROJECT / "conf" / "model" / f"{name}.yaml"
        if not source.is_file():
            source = self.out_dir / "config.yaml"
        with warnings.catch_warnings():  # "integer columns cannot hold missing values", "source
            warnings.simplefilter("ignore")  # can be interpreted in multiple ways" (both local)
            ds = from_pandas(pd.DataFrame(rows), name=model.name, source=str(source.resolve()))
            entity = ds._to_mlflow_entity()
        self.client.log_inputs(self.run_id, datasets=[
            DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, "layers")])])

    def _metrics(self, items: list[tuple[str, float, int]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step)
                                                    for k, v, step in items])

    def results(self) -> dict[str, Any] | None:
        """The run folder's results.json (in memory layout, checked), None before it exists."""
        from gamma.results.layout import read_results

        path = self.out_dir / "results.json"
        return read_results(path) if path.exists() else None

    def log_layers(self, results: dict[str, Any] | None) -> None:
        """One log_batch per layer not logged yet; beyond :data:`LAYER_METRICS` layers only the
        first layer of each unique shape (the totals cover every layer)."""
        records = (results or {}).get("layers", [])
        if len(records) > LAYER_METRICS:
            records = list({r["unique_index"]: r for r in reversed(records)}.values())
        for r in records:
            if r["index"] in self.logged:
                continue
            items = [(layer_metric("best_cost", r["index"]), c, s) for s, c in r["history"]
                     if c is not None]
            if r["best"] is not None:
                items += [(layer_metric("latency_cycles", r["index"]), r["best"]["runtime_cycles"], 0),
                          (layer_metric("energy_nJ", r["index"]), r["best"]["energy_nJ"], 0)]
            if items:
                self._metrics(items)
            self.logged.add(r["index"])

    def finish(self, status: str, end_ms: int | None = None) -> None:
        """Remaining layers, totals, artifacts; then the run status (ended at ``end_ms``, ms
        since the epoch; default now). The job draws convergence.png; a run folder without
        one (written by an older version) gets it drawn here."""
        try:
            results = self.results()
            self.log_layers(results)
            if results is not None:
                self._totals(results)
                if not (self.out_dir / "convergence.png").is_file():
                    from gamma.results.console import plot_convergence

                    plot_convergence(results, self.out_dir / "convergence.png")
            for name in ("results.json", "config.yaml", "convergence.png", "pareto.json", "pareto.png"):
                if (self.out_dir / name).is_file():
                    self.client.log_artifact(self.run_id, str(self.out_dir / name))
            if (self.out_dir / "mappings").is_dir():
                self.client.log_artifacts(self.run_id, str(self.out_dir / "mappings"), "mappings")
        finally:
            self.client.set_terminated(self.run_id, STATUSES.get(status, "FAILED"), end_ms)

    def _totals(self, results: dict[str, Any]) -> None:
        values = total_metrics(results)
        values.update(two_stage_metrics(results.get("two_stage")))
        values.update(codesign_metrics(results))
        items = [(k, v, 0) for k, v in values.items() if v is not None]
        items += [("best_cost", c, s) for s, c in end_to_end_curve(results["layers"])]
        items += front_curves(results)
        if items:
            self._metrics(items)
        params = codesign_params(results)
        if params:
            from mlflow.entities import Param

            self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in params.items()])


def arm_name(tags: dict[str, str], cfg: dict[str, Any]) -> str:
    """The ``arm`` tag: system and label first (what a sweep varies), then the rest of the
    context compare.py keeps arms apart by, e.g. ``s2 gamma | resnet18 edge latency 1000``
    (``layers [2, 6]`` added where the job selects layers)."""
    context = [tags.get(k, "?") for k in ("model", "platform", "objective")]
    context.append(str(config_value(cfg, "budget")))
    if config_value(cfg, "layers") is not None:
        context.append(f"layers {config_value(cfg, 'layers')}")
    head = f"{tags.get('system', '?')} {tags.get('label') or tags.get('optimizer', '?')}"
    return f"{head} | {' '.join(context)}"


def layer_metric(name: str, index: int) -> str:
    """The per-layer metric ``name`` (best_cost, latency_cycles, energy_nJ) of layer ``index``:
    ``layers/best_cost_02``."""
    return f"{LAYER_PREFIX}/{name}_{index:02d}"


def total_metrics(results: dict[str, Any]) -> dict[str, Any]:
    """A job's totals as top-level metrics (None: not logged): ``latency_cycles``, ``energy_nJ``
    (sums over every layer, only where every layer is feasible), ``x_bound`` (latency over the
    compute bound, for ``objective=latency``; ``latency_x_bound`` for other objectives: the
    bound is a latency bound, not one of energy, power, ...), ``x_optimum`` (latency over the
    summed proven optima, where results.json knows them), ``feasible_layers``,
    ``infeasible_layers``, ``compute_bound_cycles``, ``feasible_best_cost`` and
    ``feasible_latency_cycles`` (over the feasible layers), ``wall_s``, ``costmodel_s``,
    ``search_s``."""
    t = results["totals"]
    feasible = [r for r in results["layers"] if r["feasible"] and r["best"]]
    latency_objective = results.get("objective", "latency") == "latency"
    return {"latency_cycles": t["latency_cycles"], "energy_nJ": t["energy_nJ"],
            "x_bound" if latency_objective else "latency_x_bound": t["ratio_to_compute_bound"],
            "x_optimum": t.get("ratio_to_optimum"),
            "feasible_layers": len(feasible), "infeasible_layers": len(t["infeasible_layers"]),
            "compute_bound_cycles": t["compute_bound_cycles"],
            "feasible_best_cost": sum(r["best_cost"] for r in feasible),
            "feasible_latency_cycles": sum(r["best"]["runtime_cycles"] for r in feasible),
            "wall_s": results.get("wall_s"), "costmodel_s": results.get("costmodel_s"),
            "search_s": results.get("search_s")}


def end_to_end_curve(layers: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """The end-to-end best-so-far cost (the objective's unit, summed over every layer) against
    samples per unique layer, at the steps of the layers' histories from the first step where
    every layer has a feasible mapping; empty where some layer never has one. Steps
    (samples) and values (the objective's unit)."""
    if not layers or not all(r.get("history") for r in layers):
        return []
    steps = np.array(sorted({s for r in layers for s, _ in r["history"]}))
    total = end_to_end_best(layers, steps)
    return [(int(s), float(v)) for s, v in zip(steps, total) if math.isfinite(v)]


def two_stage_metrics(block: dict[str, Any] | None) -> dict[str, Any]:
    """objective=two_stage: results.json's ``two_stage`` block as metrics, e.g.
    ``two_stage/bottleneck_cycles``, ``two_stage/stage1/energy_nJ``,
    ``two_stage/savings_percent/power`` (none for other objectives)."""
    if not block:
        return {}
    out: dict[str, Any] = {"two_stage/bottleneck_cycles": block.get("bottleneck_cycles"),
                           "two_stage/bottleneck_layer": block.get("bottleneck_layer")}
    for part in ("stage1", "stage2", "savings_percent"):
        for k, v in (block.get(part) or {}).items():
            out[f"two_stage/{part}/{k}"] = v
    return out


def codesign_params(results: dict[str, Any]) -> dict[str, str]:
    """A co-design job's chosen hardware as params (results.json ``hardware`` without its area):
    ``hardware.num_pes``, ``hardware.array_rows`` and ``hardware.array_cols`` (S1/S3),
    ``hardware.l1_size`` (elements per PE), ``hardware.l2_size`` (elements), the bandwidths,
    hops and SIMD lanes; and ``codesign.area_budget_mm2``. None for other jobs; only the budget
    where no design was found."""
    block = results.get("codesign")
    if not block:
        return {}
    out = {f"hardware.{k}": v for k, v in (results.get("hardware") or {}).items()
           if not k.startswith("area") and not isinstance(v, (dict, list))}
    out["codesign.area_budget_mm2"] = block.get("area_budget_mm2")
    return {k: str(v) for k, v in out.items() if v is not None}


def codesign_metrics(results: dict[str, Any]) -> dict[str, float | None]:
    """A co-design job's area (mm^2): ``area_mm2`` (the chosen design under the co-design area
    model), its parts ``area/pes_mm2``, ``area/l1_mm2``, ``area/l2_mm2``, and
    ``platform_area_mm2`` (the platform under the same model, which compare.py shows for the
    fixed-platform arms). None for other jobs (and the design's where none was found)."""
    if not results.get("codesign"):
        return {}
    hw = results.get("hardware") or {}
    parts = hw.get("area_um2") or {}
    out: dict[str, float | None] = {"area_mm2": hw.get("area_mm2")}
    for part in ("pes", "l1", "l2"):
        um2 = parts.get(f"{part}_um2")
        out[f"area/{part}_mm2"] = None if um2 is None else float(um2) / 1e6
    out["platform_area_mm2"] = (results.get("platform_hardware") or {}).get("area_mm2")
    check = results["codesign"].get("check") or {}
    for key in ("ga_over_optimum", "ga_over_best"):
        if check.get(key) is not None:
            out[f"check/{key}"] = check[key]
    front = results["codesign"].get("front")
    if front is not None:
        out["front_designs"] = len(front["points"])
    return out


def front_curves(results: dict[str, Any]) -> list[tuple[str, float, int]]:
    """A co-design front (``codesign.front``) as MLflow metric series: per metric other than
    the design's area, ``front/<metric>`` at step = the design's area in um^2 (rounded), so the
    run's chart of it against the step is the front."""
    front = (results.get("codesign") or {}).get("front")
    if not front:
        return []
    at = front["metrics"].index("area")
    return [(f"front/{m}", float(p["values"][i]), int(round(p["values"][at])))
            for i, m in enumerate(front["metrics"]) if i != at for p in front["points"]]


def import_run(run_dir: Path, run_name: str, uri: str | None = None,
               experiment: str | None = None) -> tuple[str, str]:
    """Log a run folder written without tracking (or whose tracking failed) as the helper would
    have: same params, tags, layer dataset, metrics, artifacts, and the status of its
    results.json (``running``: the job died, KILLED); started at config.yaml's time, ended
    ``wall_s`` later. ``uri`` / ``experiment`` default to the folder's config (then as
    :func:`tracking_uri`). results.json's ``mlflow`` then names the new run. Returns (run id,
    URI)."""
    import yaml

    from gamma.results.layout import read_results, write_results

    run_dir = Path(run_dir).resolve()
    paths = {name: run_dir / name for name in ("config.yaml", "results.json")}
    for name, path in paths.items():
        if not path.is_file():
            raise GammaError(f"{run_dir}: no {name} (not a run folder)")
    try:
        cfg = yaml.safe_load(paths["config.yaml"].read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise GammaError(f"{run_dir}: unreadable run folder: {e}") from None
    if not isinstance(cfg, dict):
        raise GammaError(f"{paths['config.yaml']}: not a job's config (a mapping of settings)")
    results = read_results(paths["results.json"])  # checked before anything is created
    uri = check_uri(str(uri) if uri else tracking_uri(config_value(cfg, "tracking.uri")))
    experiment = experiment or experiment_name(cfg)
    old = results.get("mlflow") or {}
    if old.get("run_id") and not old.get("error") and old.get("uri") == uri:
        raise GammaError(f"{run_dir} is in MLflow already: run {old['run_id']} at {uri}")
    start_ms = int(paths["config.yaml"].stat().st_mtime * 1000)
    run = RunLogger(uri, experiment, run_name, run_dir, start_ms,
                    find_parent(run_dir, uri, experiment))
    status = results.get("status")
    end_ms = start_ms + int(1000 * float(results.get("wall_s") or 0))
    try:
        write_results(paths["results.json"], {**results, "mlflow": {"uri": uri, "run_id": run.run_id,
                                                                    "imported": True}})
        run.finish("killed" if status == "running" else str(status), end_ms)
    except Exception as e:  # noqa: BLE001 - no half-logged run is left to block a new import
        with contextlib.suppress(Exception):
            run.client.delete_run(run.run_id)
        with contextlib.suppress(OSError):
            write_results(paths["results.json"], results)
        reason = e if isinstance(e, (GammaError, OSError)) else failure_reason(e)
        raise GammaError(f"{run_dir}: import into {uri} failed, nothing kept: {reason}") from None
    return run.run_id, uri


def helper(argv: list[str] | None = None) -> int:
    """``python -m gamma.tracking.writer``: the helper process (see the module docstring). It serves
    the ``run`` commands of one job process, one run after the other, until its input ends. It
    never prints a traceback: a failure is one ``warning:`` line on stderr (at once, while the job
    goes on) and an ``error:`` reply, then it exits 1; a job that is gone (closed pipes) ends its
    run KILLED."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    argparse.ArgumentParser(prog="python -m gamma.tracking.writer",
                            description="MLflow helper of a job process: commands on stdin "
                                        "(see gamma/tracking/writer.py)").parse_args(argv)
    for key, value in HTTP_ENV.items():
        os.environ.setdefault(key, value)
    reply, sys.stdout = sys.stdout, sys.stderr  # only our replies go to the job's pipe
    try:
        for line in sys.stdin:
            command, _, payload = line.partition(" ")
            serve = {"run": serve_run, "sweep": serve_sweep, "sweep-end": serve_sweep_end}.get(command)
            if serve is not None and serve(payload, reply) != 0:
                os._exit(1)
    except (OSError, ValueError):  # the job's end of the pipe is gone
        pass
    os._exit(0)  # everything is committed; skip the ~1 s interpreter teardown of mlflow


def serve_run(spec_json: str, reply: Any) -> int:
    """One run of the helper: start it from ``spec_json`` (:class:`RunSpec`), reply its id, log
    layers on ``layer``, end it on ``finish STATUS`` (KILLED where the input ends first) and
    reply ``done``. 0, or 1 after an ``error:`` reply."""
    uri = "?"
    try:
        spec = RunSpec(**json.loads(spec_json))
        uri = spec.uri
        run = RunLogger(spec.uri, spec.experiment, spec.run_name, Path(spec.out_dir), spec.start_ms,
                        spec.parent_run_id, spec.resume_run_id)
    except Exception as e:  # noqa: BLE001 - any failure is reported to the job
        msg = str(e) if isinstance(e, GammaError) else f"MLflow tracking at {uri}: {failure_reason(e)}"
        _warn(f"{msg}; the job goes on without tracking")
        _reply(reply, f"error: {msg}")
        return 1
    _reply(reply, run.run_id)  # the job may be gone already: then its input ends at once
    status = "killed"  # unless told otherwise: input ended, the job is gone
    try:
        for line in sys.stdin:
            cmd = line.split()
            if cmd[:1] == ["layer"]:
                try:
                    run.log_layers(run.results())
                except Exception as e:  # noqa: BLE001 - e.g. a locked store; retried at the end
                    _warn(f"MLflow: could not log a layer yet: {failure_reason(e)}")
            elif cmd[:1] == ["finish"] and len(cmd) == 2:
                status = cmd[1]
                break
    except (OSError, ValueError):  # the job's end of the pipe is gone
        pass
    try:
        run.finish(status)
    except Exception as e:  # noqa: BLE001 - reported to the job (and here, if it is gone)
        msg = f"MLflow tracking at {spec.uri}: run {run.run_id} not finished: {failure_reason(e)}"
        _warn(msg)
        _reply(reply, f"error: {msg}")
        return 1
    _reply(reply, "done")
    return 0


def serve_sweep(payload: str, reply: Any) -> int:
    """``sweep JSON``: create a sweep's parent run (:func:`create_sweep_run`), reply its id."""
    return _answer(reply, lambda args: create_sweep_run(**args), payload)


def serve_sweep_end(payload: str, reply: Any) -> int:
    """``sweep-end JSON``: end a sweep's parent run (:func:`end_sweep_run`), reply ``done``."""
    return _answer(reply, lambda args: end_sweep_run(**args) or "done", payload)


def _answer(reply: Any, action: Callable[[dict[str, Any]], str], payload: str) -> int:
    """Reply what ``action`` returns for the JSON ``payload``: 0; or an ``error:`` reply: 1."""
    args: dict[str, Any] = {}
    try:
        args = json.loads(payload)
        _reply(reply, action(args))
        return 0
    except Exception as e:  # noqa: BLE001 - any failure is reported to the launching process
        msg = str(e) if isinstance(e, GammaError) else (f"MLflow tracking at {args.get('uri', '?')}: "
                                                        f"{failure_reason(e)}")
        _reply(reply, f"error: {msg}")
        return 1


def _reply(out: Any, line: str) -> None:
    """One line to the job; nothing if the job is gone (closed pipe)."""
    try:
        out.write(line + "\n")
        out.flush()
    except (OSError, ValueError):
        pass


def _warn(text: str) -> None:
    """``warning: text`` on stderr (shared with the job), ignoring a closed stderr."""
    try:
        print(f"warning: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(helper())
