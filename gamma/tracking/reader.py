"""Reading runs back from MLflow (compare.py, the paper report, sample efficiency): every job
run of an experiment or of one sweep in one query, a run's results.json artifact, and a sweep
folder's jobs from their files (no MLflow).

Metric names: runs logged before the job-run metrics were renamed carry ``total_latency_cycles``,
``total_energy_nJ``, ``ratio_to_compute_bound`` and ``best_cost/layer_XX`` (and
``latency_cycles/layer_XX``, ``energy_nJ/layer_XX``); :func:`current_metrics` gives every run
read here the current names (:data:`OLD_METRICS`, :data:`gamma.tracking.writer.LAYER_PREFIX`)."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from gamma.errors import GammaError
from gamma.results.layout import read_results
from gamma.tracking.store import failure_reason, flatten, open_client, tracking_uri
from gamma.tracking.writer import KIND_TAG, LAYER_PREFIX, PARENT_FILE

#: Totals logged under other names by older versions: old name -> current name.
OLD_METRICS = {"total_latency_cycles": "latency_cycles", "total_energy_nJ": "energy_nJ"}
#: Per-layer metrics of older versions: ``best_cost/layer_02`` -> ``<LAYER_PREFIX>/best_cost_02``.
OLD_LAYER_METRIC = re.compile(r"^(best_cost|latency_cycles|energy_nJ)/layer_(\d+)$")


def current_metrics(metrics: dict[str, float], objective: str | None = None) -> dict[str, float]:
    """``metrics`` of a run under the current names: old totals renamed, old per-layer metrics
    moved under :data:`LAYER_PREFIX`, ``ratio_to_compute_bound`` as ``x_bound`` for a latency
    job (``latency_x_bound`` for other objectives, as the writer logs them now) and
    ``feasible_layers`` from an old run's layer metrics and ``infeasible_layers``."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        m = OLD_LAYER_METRIC.match(k)
        if m:
            out.setdefault(f"{LAYER_PREFIX}/{m.group(1)}_{m.group(2)}", v)
        elif k == "ratio_to_compute_bound":
            out.setdefault("x_bound" if objective in (None, "latency") else "latency_x_bound", v)
        else:
            out.setdefault(OLD_METRICS.get(k, k), v)
    if "feasible_layers" not in out and "infeasible_layers" in out:
        layers = {k.rsplit("_", 1)[1] for k in out if k.startswith(f"{LAYER_PREFIX}/best_cost_")}
        if layers:
            out["feasible_layers"] = len(layers) - out["infeasible_layers"]
    return out


def _client(uri: str | None) -> Any:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return open_client(tracking_uri(uri))[0]


def _search(uri: str | None, experiment_ids: list[str], filter_string: str = "") -> Any:
    """``mlflow.search_runs`` as a pandas frame (every run that matches)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(uri))
    return mlflow.search_runs(experiment_ids, filter_string=filter_string, max_results=50_000,
                              output_format="pandas")


def _guarded(uri: str | None, action: Any) -> Any:
    """``action()``, an unreachable or failing server said in one :class:`GammaError` line."""
    try:
        return action()
    except GammaError:
        raise
    except Exception as e:  # noqa: BLE001 - an unreachable or failing server, said in one line
        raise GammaError(f"MLflow tracking at {tracking_uri(uri)}: {failure_reason(e)}") from None


def experiment_runs(experiment: str, uri: str | None = None) -> list[dict[str, Any]]:
    """Every job run of ``experiment``, from one ``mlflow.search_runs`` query: ``{"run_id",
    "status", "start_time" (ms since the epoch), "params", "metrics", "tags", "results",
    "error"}``; ``params``/``metrics``/``tags`` hold the run's non-empty values (metrics: the
    latest value, i.e. a step metric's last step, under the current names:
    :func:`current_metrics`). ``results`` is the run's results.json only for runs that did not
    finish (for their error; None if they never logged one) and None for finished runs:
    :func:`run_results` reads it where needed. Summary runs (tag ``gamma.summary``) and sweep
    parents (the ``mlflow.parentRunId`` of another run) are left out."""
    def query() -> Any:
        exp = _client(uri).get_experiment_by_name(experiment)
        if exp is None:
            raise GammaError(f"no MLflow experiment {experiment!r} at {tracking_uri(uri)}")
        return _search(uri, [exp.experiment_id])

    return job_rows(_guarded(uri, query).to_dict("records"), uri)


def sweep_runs(sweep: str, uri: str | None = None,
               experiment: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A sweep's parent run and its jobs (as :func:`experiment_runs`). ``sweep`` is a parent
    run's id or ``latest``: the sweep parent (tag ``gamma.kind=sweep``) started last, in
    ``experiment`` if given, else in any experiment of the store. The parent as ``{"run_id",
    "experiment", "name", "start_time", "tags"}``. A :class:`GammaError` where there is no such
    sweep."""
    def query() -> tuple[dict[str, Any], Any]:
        client = _client(uri)
        if experiment:
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                raise GammaError(f"no MLflow experiment {experiment!r} at {tracking_uri(uri)}")
            exps = [exp]
        else:
            exps = client.search_experiments()
        names = {e.experiment_id: e.name for e in exps}
        if sweep == "latest":
            found = client.search_runs(list(names), filter_string=f"tags.`{KIND_TAG}` = 'sweep'",
                                       order_by=["attributes.start_time DESC"], max_results=1)
            if not found:
                where = f"experiment {experiment!r}" if experiment else "any experiment"
                raise GammaError(f"no sweep (a run tagged {KIND_TAG}=sweep) in {where} at "
                                 f"{tracking_uri(uri)}; name one with --experiment")
            run = found[0]
        else:
            try:
                run = client.get_run(sweep)
            except Exception:  # noqa: BLE001 - no such run
                raise GammaError(f"no run {sweep!r} at {tracking_uri(uri)}") from None
            if run.data.tags.get(KIND_TAG) != "sweep":
                raise GammaError(f"run {sweep} is not a sweep's parent run (tag {KIND_TAG} = "
                                 f"{run.data.tags.get(KIND_TAG)!r}, not 'sweep')")
        exp_id = run.info.experiment_id
        parent = {"run_id": run.info.run_id, "name": run.info.run_name,
                  "experiment": names.get(exp_id) or client.get_experiment(exp_id).name,
                  "start_time": run.info.start_time, "tags": dict(run.data.tags)}
        return parent, _search(uri, [exp_id], f"tags.mlflow.parentRunId = '{parent['run_id']}'")

    parent, df = _guarded(uri, query)
    return parent, job_rows(df.to_dict("records"), uri)


def job_rows(rows: list[dict[str, Any]], uri: str | None) -> list[dict[str, Any]]:
    """The job runs among ``search_runs`` rows (see :func:`experiment_runs`)."""
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
        params = part(row, "params.")
        results = None if row["status"] == "FINISHED" else run_results(row["run_id"], uri)
        out.append({"run_id": row["run_id"], "status": row["status"],
                    "start_time": int(start.timestamp() * 1000) if start == start and start is not None
                    else None,  # NaT != NaT
                    "params": params,
                    "metrics": current_metrics(part(row, "metrics."),
                                               tags.get("objective") or params.get("objective.name")),
                    "tags": tags, "results": results, "error": (results or {}).get("error")})
    return out


def run_results(run_id: str, uri: str | None = None) -> dict[str, Any] | None:
    """The results.json artifact of run ``run_id`` (None if it never logged one)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = _client(uri).download_artifacts(run_id, "results.json", tmp)
        except Exception:  # noqa: BLE001 - a run that failed before logging artifacts
            return None
        try:
            return read_results(path, f"results.json of run {run_id}")
        except GammaError as e:  # written by something else: the run counts without it
            print(f"warning: {e}", file=sys.stderr)
            return None


def sweep_parent_file(folder: Path) -> dict[str, Any] | None:
    """A sweep folder's ``mlflow_parent_run.json`` (uri, experiment, run_id, sweep_dir), None
    where the folder has none (tracking was off) or it is unreadable."""
    try:
        data = json.loads((Path(folder) / PARENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("run_id") else None


def folder_runs(folder: Path) -> list[dict[str, Any]]:
    """The jobs of a sweep folder read from their files, without MLflow: every ``results.json``
    below ``folder`` with its ``config.yaml`` beside it, as :func:`experiment_runs` gives runs
    (``run_id`` = the job folder; params = the flattened config; no metrics; ``results`` always
    read). A :class:`GammaError` where the folder holds no job."""
    import yaml

    folder = Path(folder)
    if not folder.is_dir():
        raise GammaError(f"{folder}: no such sweep folder")
    out = []
    for path in sorted(folder.rglob("results.json")):
        try:
            results = read_results(path)
        except GammaError as e:
            print(f"warning: {e}; job left out", file=sys.stderr)
            continue
        try:
            cfg = yaml.safe_load((path.parent / "config.yaml").read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            cfg = {}
        cfg = cfg if isinstance(cfg, dict) else {}
        params = {k: v for k, v in flatten(cfg).items() if not k.startswith("model.layers")}
        status = {"finished": "FINISHED", "running": "RUNNING", "killed": "KILLED"}.get(
            str(results.get("status")), "FAILED")
        out.append({"run_id": str(path.parent.relative_to(folder)), "status": status,
                    "start_time": int(path.stat().st_mtime * 1000), "params": params,
                    "metrics": {}, "tags": {}, "results": results, "error": results.get("error")})
    if not out:
        raise GammaError(f"{folder}: no job folder (no results.json below it)")
    return out
