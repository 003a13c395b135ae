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
from gamma.results.layout import read_results
from jobs import run_captured

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
    return code, read_results(run_dir / "results.json"), stderr_of(run_dir), done


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


def test_sigterm_ends_the_mlflow_run_as_killed(tmp_path, new_store):
    from mlflow.tracking import MlflowClient

    uri = new_store(tmp_path / "mlflow.db")
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    code, res, err, done = interrupt(tmp_path, [signal.SIGTERM], env, extra=())
    assert code == 143, err
    assert res["status"] == "killed" and "Traceback" not in err
    client = MlflowClient(uri)
    run = client.get_run(res["mlflow"]["run_id"])
    assert run.info.status == "KILLED"
    for r in res["layers"]:
        assert client.get_metric_history(run.info.run_id, f"layers/best_cost_{r['index']:02d}")
    assert "results.json" in {a.path for a in client.list_artifacts(run.info.run_id)}


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
def test_a_second_interrupt_during_shutdown_loses_nothing(tmp_path, new_store, second):
    """Ctrl-C, then Ctrl-C (or SIGTERM) again 0.3 s later while the job writes its results and
    waits for the MLflow helper: results.json still ends ``killed``, the MLflow run KILLED, no
    KeyboardInterrupt traceback."""
    from mlflow.tracking import MlflowClient

    uri = new_store(tmp_path / "mlflow.db")
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    code, res, err, done = interrupt(tmp_path, [signal.SIGINT, second], env, extra=())
    assert code == 130, err
    assert res["status"] == "killed"
    assert [r["index"] for r in res["layers"]][: len(done)] == done
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "interrupted: results.json keeps the finished layers" in err
    assert MlflowClient(uri).get_run(res["mlflow"]["run_id"]).info.status == "KILLED"


# --- huge dimensions ----------------------------------------------------------------------------
def run_cli(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), "tracking.enabled=false", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def run_job(args: list[str]) -> subprocess.CompletedProcess:
    """The job of ``args`` in this process (tests/jobs.py), its output captured."""
    return run_captured(["tracking.enabled=false", *args])


def one_layer_model(tmp_path: Path, K: int) -> Path:
    path = tmp_path / f"k{K}.yaml"
    path.write_text(f"name: k{K}\nlayers:\n  - {{type: CONV, K: {K}, C: 3, Y: 8, X: 8, R: 3, S: 3}}\n")
    return path


def test_divisor_table_and_lazy_divisors_agree_with_the_definition():
    import numpy as np

    from gamma.mapspace.divisors import DenseDivisors, LazyDivisors, divisor_table, divisors_of

    divs, ndiv = divisor_table(360)
    for v in (1, 2, 12, 97, 360):
        assert list(divs[v, :ndiv[v]]) == [d for d in range(1, v + 1) if v % d == 0]
    assert list(divs[0, :ndiv[0]]) == [1] and divs.shape == (361, 24)  # 360 has 24 divisors
    assert list(divisors_of(10**9)) == [d for d in range(1, 10**5) if 10**9 % d == 0] + \
        sorted(10**9 // d for d in range(1, 10**5) if 10**9 % d == 0 and 10**9 // d >= 10**5)
    dense, lazy = DenseDivisors(2000), LazyDivisors()
    rng = np.random.default_rng(1)
    v = rng.integers(1, 2001, (300, 6))
    k = (rng.random(v.shape) * dense.count(v)).astype(np.int64)
    t = np.minimum(rng.integers(1, 2001, v.shape), v)
    assert (lazy.count(v) == dense.count(v)).all()
    assert (lazy.kth(v, k) == dense.kth(v, k)).all()
    assert (lazy.largest_at_most(v, t) == dense.largest_at_most(v, t)).all()
    assert dense.largest_at_most(np.array([360]), np.array([100]))[0] == 90


def test_a_layer_with_k_30000_builds_its_map_space():
    """The divisor table was quadratic (17.5 s at K = 30,000); prints the time it takes now."""
    code = ("import time; from gamma.mapspace.space import MapSpace; from gamma.workloads.layer import Layer; "
            "t = time.perf_counter(); MapSpace(Layer('CONV', K=30000, C=3, Y=8, X=8, R=3, S=3), 168); "
            "print(f'{time.perf_counter() - t:.3f}')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    print(f"map space of a K = 30,000 layer: {proc.stdout.strip()} s")


def test_a_layer_with_k_1e9_is_searched(tmp_path):
    """K = 10^9 used to hang before the first sample; now it is searched (lazy divisors)."""
    run_dir = tmp_path / "run"
    proc = run_cli(["model=file", f"model.path={one_layer_model(tmp_path, 10**9)}", "budget=200",
                    f"hydra.run.dir={run_dir}"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    res = read_results(run_dir / "results.json")
    assert res["status"] == "finished" and res["layers"][0]["shape"] == "CONV K1000000000 C3 Y8 X8 R3 S3"
    assert res["layers"][0]["samples_used"] == 200


def test_a_dimension_beyond_int32_is_a_clear_error(tmp_path):
    path = one_layer_model(tmp_path, 10**10)
    proc = run_job(["model=file", f"model.path={path}", "budget=200", f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 1
    assert (f"error: {path}: layer 1 field 'K': dimension K = 10,000,000,000 is too large for the "
            "cost model (at most 2,147,483,647)") in proc.stderr
    assert "Traceback" not in proc.stderr


# --- files that are not text --------------------------------------------------------------------
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"


@pytest.mark.parametrize("name, content, reason", [
    ("model.csv", BINARY, "not a text file: byte 0x89 at offset 0 is not UTF-8"),
    ("model.yaml", BINARY, "not a text file: byte 0x89 at offset 0 is not UTF-8"),
    ("model.csv", b"K,C,Y,X,R,S,T\n\x00\x00\x00\n", "not a text file: NUL byte at offset 14"),
    ("latin1.csv", "K,C,Y,X,R,S,T # größe\n".encode("latin-1"), "not a text file: byte 0xf6 at offset 18"),
])
def test_a_model_file_that_is_not_text_is_a_clear_error(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    proc = run_job(["model=file", f"model.path={path}", f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 1
    assert f"error: {path}: {reason}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_directory_as_model_path_is_a_clear_error(tmp_path):
    proc = run_cli(["model=file", f"model.path={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 1
    assert f"error: {tmp_path}: file: is not a file (a directory)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_mapping_file_that_is_not_text_is_a_clear_error(tmp_path):
    from gamma.errors import MappingFileError
    from gamma.workloads.maestro_io import read_mapping_file

    path = tmp_path / "layer.m"
    path.write_bytes(BINARY)
    with pytest.raises(MappingFileError, match=rf"^{path}: not a text file: byte 0x89 at offset 0"):
        read_mapping_file(path)
    path.write_bytes(b"Network N0 {\x00}")
    with pytest.raises(MappingFileError, match=rf"^{path}: not a text file: NUL byte at offset 12"):
        read_mapping_file(path)
    with pytest.raises(MappingFileError, match=rf"^{tmp_path}: cannot read the mapping file: Is a directory"):
        read_mapping_file(tmp_path)


def test_sigterm_to_a_joblib_sweep_leaves_no_job_running(tmp_path):
    """SIGTERM to a sweep's launching process: it passes the signal to its joblib workers, whose
    running jobs end as killed with their finished layers; the job not started yet is skipped;
    exit code 143, no traceback."""
    sweep = tmp_path / "sweep"
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "-m", "hydra/launcher=joblib",
                                 "hydra.launcher.n_jobs=2", "seed=0,1,2", *LONG,
                                 "tracking.enabled=false", f"hydra.sweep.dir={sweep}"],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 240:
        assert proc.poll() is None, err_path.read_text()
        done = [read_results(f) for f in sweep.glob("*/results.json")]
        if len(done) == 2 and all(r["layers"] for r in done):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    err = err_path.read_text()
    assert code == 143, err
    assert "Traceback" not in err
    results = [read_results(f) for f in sweep.glob("*/results.json")]
    assert len(results) == 2, err  # the third job never started
    for r in results:
        assert r["status"] == "killed" and 1 <= len(r["layers"]) < 7
    assert "skipped: the sweep was terminated (SIGTERM)" in err
