"""Reading runs back from MLflow (compare.py, the paper report, sample efficiency): every job
run of an experiment in one query, and a run's results.json artifact."""

from __future__ import annotations

import math
import os
import sys
from typing import Any

from gamma.errors import GammaError
from gamma.results.layout import read_results
from gamma.tracking.store import failure_reason, open_client, tracking_uri


def _client(uri: str | None) -> Any:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return open_client(tracking_uri(uri))[0]


def experiment_runs(experiment: str, uri: str | None = None) -> list[dict[str, Any]]:
    """Every job run of ``experiment``, from one ``mlflow.search_runs`` query: ``{"run_id",
    "status", "start_time" (ms since the epoch), "params", "metrics", "tags", "results",
    "error"}``; ``params``/``metrics``/``tags`` hold the run's non-empty values (metrics: the
    latest value, i.e. a step metric's last step). ``results`` is the run's results.json only
    for runs that did not finish (for their error; None if they never logged one) and None for
    finished runs: :func:`run_results` reads it where needed. Summary runs (tag
    ``gamma.summary``) and sweep parents (the ``mlflow.parentRunId`` of another run) are left
    out."""
    import mlflow

    try:
        client = _client(uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise GammaError(f"no MLflow experiment {experiment!r} at {tracking_uri(uri)}")
        mlflow.set_tracking_uri(tracking_uri(uri))
        df = mlflow.search_runs([exp.experiment_id], max_results=50_000, output_format="pandas")
    except GammaError:
        raise
    except Exception as e:  # noqa: BLE001 - an unreachable or failing server, said in one line
        raise GammaError(f"MLflow tracking at {tracking_uri(uri)}: {failure_reason(e)}") from None
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
        try:
            return read_results(path, f"results.json of run {run_id}")
        except GammaError as e:  # written by something else: the run counts without it
            print(f"warning: {e}", file=sys.stderr)
            return None
