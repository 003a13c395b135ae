"""Faults a user meets on the way to a cluster, each tried as the user would: run.py in a
subprocess with the real cost model and small budgets. SIGTERM and a second Ctrl-C during the
shutdown, a huge layer dimension, and files that are not text."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Long enough to be mid-search when the signal comes (GAMMA, 10,000 samples per layer).
LONG = ["layers=[1,2,3,4,5,6,7]"]


def start_job(args: list[str], run_dir: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """run.py in the background; stdout/stderr go to files in ``run_dir``'s parent."""
    out = open(run_dir.parent / "stdout.txt", "w")
    err = open(run_dir.parent / "stderr.txt", "w")
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args, f"hydra.run.dir={run_dir}"],
                            cwd=ROOT, env=env, stdout=out, stderr=err, text=True)


def wait_for_layers(proc: subprocess.Popen, run_dir: Path, n: int = 1, timeout: float = 240) -> list[int]:
    """Wait until results.json holds at least ``n`` layers; their indices."""
    path = run_dir / "results.json"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, (run_dir.parent / "stderr.txt").read_text()
        if path.exists():
            layers = [r["index"] for r in json.loads(path.read_text())["layers"]]
            if len(layers) >= n:
                return layers
        time.sleep(0.05)
    raise AssertionError("no layer finished in time")


def stderr_of(run_dir: Path) -> str:
    return (run_dir.parent / "stderr.txt").read_text()


def interrupt(tmp_path: Path, signals: list[signal.Signals], env: dict[str, str] | None = None,
              extra: tuple[str, ...] = ("tracking.enabled=false",)) -> tuple[int, dict, str, list[int]]:
    """Start a job, send ``signals`` (0.3 s apart) once a layer is done; (exit code,
    results.json, stderr, the layers done before the first signal)."""
    run_dir = tmp_path / "run"
    proc = start_job([*LONG, *extra], run_dir, env)
    done = wait_for_layers(proc, run_dir)
    for k, sig in enumerate(signals):
        if k:
            time.sleep(0.3)
        proc.send_signal(sig)
    code = proc.wait(timeout=120)
    return code, json.loads((run_dir / "results.json").read_text()), stderr_of(run_dir), done


def test_sigterm_ends_the_job_as_killed(tmp_path):
    """SIGTERM (a scheduler's cancel) ends the job like Ctrl-C: exit code 143 (128 + 15),
    results.json ``killed`` with the finished layers, no traceback."""
    code, res, err, done = interrupt(tmp_path, [signal.SIGTERM])
    assert code == 143, err
    assert res["status"] == "killed"
    got = [r["index"] for r in res["layers"]]
    assert got[: len(done)] == done and len(got) < 7
    assert res["totals"]["layers"] == len(got)
    assert "terminated (SIGTERM): results.json keeps the finished layers" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "run" / "mappings").iterdir()) == \
        [f"layer_{i:02d}.m" for i in got]


def test_sigterm_ends_the_mlflow_run_as_killed(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    code, res, err, done = interrupt(tmp_path, [signal.SIGTERM], env, extra=())
    assert code == 143, err
    assert res["status"] == "killed" and "Traceback" not in err
    client = MlflowClient(uri)
    run = client.get_run(res["mlflow"]["run_id"])
    assert run.info.status == "KILLED"
    for r in res["layers"]:
        assert client.get_metric_history(run.info.run_id, f"best_cost/layer_{r['index']:02d}")
    assert "results.json" in {a.path for a in client.list_artifacts(run.info.run_id)}


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
def test_a_second_interrupt_during_shutdown_loses_nothing(tmp_path, second):
    """Ctrl-C, then Ctrl-C (or SIGTERM) again 0.3 s later while the job writes its results and
    waits for the MLflow helper: results.json still ends ``killed``, the MLflow run KILLED, no
    KeyboardInterrupt traceback."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    code, res, err, done = interrupt(tmp_path, [signal.SIGINT, second], env, extra=())
    assert code == 130, err
    assert res["status"] == "killed"
    assert [r["index"] for r in res["layers"]][: len(done)] == done
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "interrupted: results.json keeps the finished layers" in err
    assert MlflowClient(uri).get_run(res["mlflow"]["run_id"]).info.status == "KILLED"
