"""MLflow tracking of a job; the only module that imports mlflow.

Importing mlflow and opening its store takes 3-4 s, so the MLflow work runs in a helper process
(``python -m gamma.tracking``) started with the job: it sets up the run while the job searches,
logs each finished layer, and at the end the totals, the artifacts and the run status. The job
and the helper share only the run folder: the helper reads ``config.yaml`` (params) and
``results.json`` (rewritten atomically by the job) there. Commands go over the helper's stdin,
one per line: ``layer`` (log the layers not yet logged) and ``finish STATUS``; end of input
without ``finish`` (the job died) ends the run as KILLED. The helper prints the run id (or
``error: ...``) as its only stdout line, and ignores Ctrl-C (own process group).

Logged: params = the flattened config; per layer a step metric ``best_cost/layer_XX`` (best
cost so far vs samples) plus ``latency_cycles/layer_XX`` and ``energy_nJ/layer_XX``, in ONE
``log_batch`` call per layer; totals (cycles, nJ, seconds); artifacts results.json,
mappings/layer_XX.m, convergence.png, config.yaml. Status FINISHED, FAILED or KILLED.

Tracking URI: ``cfg.tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else
``sqlite:///<project>/outputs/mlflow.db``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gamma.errors import GammaError

#: The project's outputs folder (next to run.py); home of the default store.
DEFAULT_OUTPUTS = Path(__file__).resolve().parents[1] / "outputs"
#: Param values are truncated to this many characters (MLflow's limit is 6000).
MAX_PARAM_CHARS = 500
STATUSES = {"finished": "FINISHED", "failed": "FAILED", "killed": "KILLED"}
#: Seconds to wait for the helper: run id (first store creation ~5 s), final upload.
CONNECT_TIMEOUT_S = 120.0
FINISH_TIMEOUT_S = 300.0


def tracking_uri(cfg_uri: str | None, outputs: Path = DEFAULT_OUTPUTS) -> str:
    """The tracking URI to use; creates ``outputs`` for the default SQLite store."""
    if cfg_uri:
        return str(cfg_uri)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    outputs.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{outputs.resolve()}/mlflow.db"


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


def artifact_location(uri: str, experiment: str) -> str | None:
    """For a local SQLite store, artifacts live beside the database (not in ./mlruns)."""
    if not uri.startswith("sqlite:///") or ":memory:" in uri:
        return None
    db = Path(uri[len("sqlite:///"):])
    return (db.parent / "mlartifacts" / experiment).resolve().as_uri()


# --- the job's side -----------------------------------------------------------------------------
class Tracker:
    """No tracking (``tracking.enabled=false``); the interface of :class:`MlflowTracker`."""

    uri: str | None = None
    run_id: str | None = None

    def layer_done(self) -> None:
        """results.json has new layers."""

    def connect(self) -> str | None:
        """Wait for the run id (None without tracking)."""
        return None

    def finish(self, status: str) -> None:
        """results.json is final: log the rest and end the run with ``status``."""


class MlflowTracker(Tracker):
    """Drives the helper process for one MLflow run."""

    def __init__(self, uri: str, experiment: str, run_name: str, out_dir: Path) -> None:
        self.uri = uri
        self.error: str | None = None  # the helper's failure, reported once
        cmd = [sys.executable, "-m", "gamma.tracking", "--uri", uri, "--experiment", experiment,
               "--run-name", run_name, "--out-dir", str(out_dir.resolve())]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     process_group=0)

    def _send(self, line: str) -> None:
        if self.proc.poll() is not None:
            self.connect()  # raises the helper's error
            raise GammaError(f"MLflow helper exited early (code {self.proc.returncode})")
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise GammaError("MLflow helper exited early") from None

    def layer_done(self) -> None:
        self._send("layer")

    def connect(self) -> str | None:
        if self.run_id is None and self.error is None:
            line = _readline(self.proc, CONNECT_TIMEOUT_S).strip()
            if not line or line.startswith("error:"):
                self._stop()
                self.error = (line[len("error:"):].strip() if line else
                              f"MLflow helper gave no run id (code {self.proc.poll()})")
                raise GammaError(self.error)
            self.run_id = line
        return self.run_id

    def finish(self, status: str) -> None:
        if self.run_id is None:
            self._stop()
            return
        self._send(f"finish {status}")
        self.proc.stdin.close()
        line = _readline(self.proc, FINISH_TIMEOUT_S).strip()
        if line != "done":
            self._stop()
            raise GammaError(f"MLflow helper failed to finish the run (code {self.proc.returncode}); "
                             "see its messages above")
        self.proc.wait()

    def _stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """One stdout line of ``proc``, or "" after ``timeout`` seconds or at its end."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline()


def start(cfg: dict[str, Any], run_name: str, out_dir: Path,
          outputs: Path = DEFAULT_OUTPUTS) -> Tracker:
    """A tracker for the job with (plain, resolved) config ``cfg`` writing to ``out_dir``."""
    tr = cfg.get("tracking") or {}
    if not tr.get("enabled", True):
        return Tracker()
    uri = tracking_uri(tr.get("uri"), outputs)
    return MlflowTracker(uri, str(cfg.get("experiment", "gamma")), run_name, out_dir)


# --- reading an experiment back (scripts/compare.py) --------------------------------------------
def _client(uri: str | None) -> Any:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=tracking_uri(uri))


def experiment_runs(experiment: str, uri: str | None = None) -> list[dict[str, Any]]:
    """Every job run of ``experiment``, from one ``mlflow.search_runs`` query: ``{"run_id",
    "status", "start_time" (ms since the epoch), "params", "metrics", "tags", "results",
    "error"}``; ``params``/``metrics``/``tags`` hold the run's non-empty values (metrics: the
    latest value, i.e. a step metric's last step). ``results`` is the run's results.json only
    for runs that did not finish (for their error; None if they never logged one) and None for
    finished runs: :func:`run_results` reads it where needed. Summary runs (tag
    ``gamma.summary``) and sweep parents (the ``mlflow.parentRunId`` of another run) are left
    out."""
    import math

    import mlflow

    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise GammaError(f"no MLflow experiment {experiment!r} at {tracking_uri(uri)}")
    mlflow.set_tracking_uri(tracking_uri(uri))
    df = mlflow.search_runs([exp.experiment_id], max_results=50_000, output_format="pandas")
    rows = df.to_dict("records")

    def part(row: dict[str, Any], prefix: str) -> dict[str, Any]:
        return {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix)
                and v is not None and not (isinstance(v, float) and math.isnan(v))}

    parents = {row.get("tags.mlflow.parentRunId") for row in rows}
    out = []
    for row in rows:
        tags = part(row, "tags.")
        if tags.get("gamma.summary") or row["run_id"] in parents:
            continue
        start = row.get("start_time")
        results = None if row["status"] == "FINISHED" else run_results(row["run_id"], uri)
        out.append({"run_id": row["run_id"], "status": row["status"],
                    "start_time": int(start.timestamp() * 1000) if start == start and start is not None
                    else None,  # NaT != NaT
                    "params": part(row, "params."), "metrics": part(row, "metrics."), "tags": tags,
                    "results": results, "error": (results or {}).get("error")})
    return out


def run_results(run_id: str, uri: str | None = None) -> dict[str, Any] | None:
    """The results.json artifact of run ``run_id`` (None if it never logged one)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = _client(uri).download_artifacts(run_id, "results.json", tmp)
        except Exception:  # noqa: BLE001 - a run that failed before logging artifacts
            return None
        return json.loads(Path(path).read_text(encoding="utf-8"))


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
    """Create the store's tables and the experiment of ``cfg`` (``tracking``, ``experiment``)
    before parallel jobs start: jobs that create a brand-new SQLite store at the same time
    collide ("table already exists") and can leave it half-migrated. Returns the URI (None
    without tracking)."""
    tr = cfg.get("tracking") or {}
    if not tr.get("enabled", True):
        return None
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = tracking_uri(tr.get("uri"), outputs)
    experiment_id(MlflowClient(tracking_uri=uri), str(cfg.get("experiment", "gamma")), uri)
    return uri


def log_summary(experiment: str, files: list[Path], run_name: str, uri: str | None = None) -> str:
    """A summary run in ``experiment`` holding ``files`` as artifacts; returns its id."""
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    u = tracking_uri(uri)
    client = MlflowClient(tracking_uri=u)
    exp_id = experiment_id(client, experiment, u)
    run_id = client.create_run(exp_id, run_name=run_name, tags={"gamma.summary": "1"}).info.run_id
    for f in files:
        client.log_artifact(run_id, str(f))
    client.set_terminated(run_id, "FINISHED")
    return run_id


# --- the helper process -------------------------------------------------------------------------
class RunLogger:
    """Logs one run from the files of a run folder (in the helper process)."""

    def __init__(self, uri: str, experiment: str, run_name: str, out_dir: Path) -> None:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        for name in ("mlflow", "alembic"):  # after the import: mlflow sets its level on import
            logging.getLogger(name).setLevel(logging.WARNING)
        self.out_dir, self.logged = out_dir, set()
        # Parallel jobs creating a brand-new SQLite store can collide ("table already exists");
        # a sweep creates it first (prepare_store, from gamma/hydra_callbacks.py).
        attempts = 3 if uri.startswith("sqlite:") else 1
        for attempt in range(1, attempts + 1):
            try:
                self.client = MlflowClient(tracking_uri=uri)
                exp_id = experiment_id(self.client, experiment, uri)
                tags = {"output_dir": str(out_dir)}
                self.run_id = self.client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
                break
            except Exception as e:  # noqa: BLE001 - reported to the job after the last attempt
                if attempt == attempts:
                    reason = e.message if isinstance(e, MlflowException) else f"{type(e).__name__}: {e}"
                    raise GammaError(f"MLflow tracking at {uri}: {str(reason).strip()}") from None
                time.sleep(0.5 + random.random())
        self._params()

    def _params(self) -> None:
        import yaml
        from mlflow.entities import Param

        cfg = yaml.safe_load((self.out_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in flatten(cfg).items()])

    def _metrics(self, items: list[tuple[str, float, int]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step)
                                                    for k, v, step in items])

    def results(self) -> dict[str, Any] | None:
        path = self.out_dir / "results.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def log_layers(self, results: dict[str, Any] | None) -> None:
        """One log_batch per layer not logged yet."""
        for r in (results or {}).get("layers", []):
            if r["index"] in self.logged:
                continue
            tag = f"layer_{r['index']:02d}"
            items = [(f"best_cost/{tag}", c, s) for s, c in r["history"] if c is not None]
            if r["best"] is not None:
                items += [(f"latency_cycles/{tag}", r["best"]["runtime_cycles"], 0),
                          (f"energy_nJ/{tag}", r["best"]["energy_nJ"], 0)]
            if items:
                self._metrics(items)
            self.logged.add(r["index"])

    def finish(self, status: str) -> None:
        """Remaining layers, totals, plot, artifacts; then the run status."""
        try:
            results = self.results()
            self.log_layers(results)
            if results is not None:
                self._totals(results)
                from gamma.report import plot_convergence

                plot_convergence(results, self.out_dir / "convergence.png")
            for name in ("results.json", "config.yaml", "convergence.png"):
                if (self.out_dir / name).is_file():
                    self.client.log_artifact(self.run_id, str(self.out_dir / name))
            if (self.out_dir / "mappings").is_dir():
                self.client.log_artifacts(self.run_id, str(self.out_dir / "mappings"), "mappings")
        finally:
            self.client.set_terminated(self.run_id, STATUSES.get(status, "FAILED"))

    def _totals(self, results: dict[str, Any]) -> None:
        t = results["totals"]
        values = {"total_latency_cycles": t["latency_cycles"], "total_energy_nJ": t["energy_nJ"],
                  "compute_bound_cycles": t["compute_bound_cycles"],
                  "ratio_to_compute_bound": t["ratio_to_compute_bound"],
                  "infeasible_layers": len(t["infeasible_layers"]), "wall_s": results.get("wall_s"),
                  "costmodel_s": results.get("costmodel_s"), "search_s": results.get("search_s")}
        items = [(k, v, 0) for k, v in values.items() if v is not None]
        if items:
            self._metrics(items)


def helper(argv: list[str] | None = None) -> int:
    """``python -m gamma.tracking``: the helper process (see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ap = argparse.ArgumentParser(prog="python -m gamma.tracking")
    for name in ("--uri", "--experiment", "--run-name", "--out-dir"):
        ap.add_argument(name, required=True)
    a = ap.parse_args(argv)
    try:
        run = RunLogger(a.uri, a.experiment, a.run_name, Path(a.out_dir))
    except Exception as e:  # noqa: BLE001 - any failure is reported to the job
        print(f"error: {e}" if isinstance(e, GammaError) else
              f"error: MLflow tracking at {a.uri}: {type(e).__name__}: {e}", flush=True)
        return 1
    reply, sys.stdout = sys.stdout, sys.stderr  # only our replies go to the job's pipe
    print(run.run_id, file=reply, flush=True)
    _warm_up_plotting()
    status = "killed"  # unless told otherwise: input ended, the job is gone
    for line in sys.stdin:
        cmd = line.split()
        if cmd[:1] == ["layer"]:
            try:
                run.log_layers(run.results())
            except Exception as e:  # noqa: BLE001 - e.g. a locked store; retried at the end
                print(f"warning: MLflow: could not log a layer yet: {e}", file=sys.stderr, flush=True)
        elif cmd[:1] == ["finish"] and len(cmd) == 2:
            status = cmd[1]
            break
    run.finish(status)
    print("done", file=reply, flush=True)
    sys.stderr.flush()
    os._exit(0)  # everything is committed; skip the ~1 s interpreter teardown of mlflow


def _warm_up_plotting() -> None:
    """Import matplotlib and draw once (fonts, renderer) while the job is still searching."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.step([1, 2], [1, 10], label="warm-up")
    ax.set_yscale("log")
    ax.legend()
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(helper())
