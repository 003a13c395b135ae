"""Parallel layers inside one job (``parallel.workers``) and resuming a job (``resume=true``),
with the real cost model and optimizers; MLflow into temporary SQLite stores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gamma.search.api import search_model
from gamma.errors import GammaError
from jobs import run_inprocess, without_timings
from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]
#: ResNet-18 layers of four different shapes (unique indices 0, 1, 3, 4).
FOUR = ["layers=[1,2,7,8]", "budget=300", "optimizer.population=50", "seed=3",
        "tracking.enabled=false"]


def start_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """run.py in its own session (process group), as a terminal or a scheduler would run it."""
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def living(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (dead, not yet reaped)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def wait_for_layers(proc: subprocess.Popen, path: Path, n: int, timeout: float = 240) -> int:
    """Poll results.json until it holds ``n`` layers (or the job ended); its layer count."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            layers = len(json.loads(path.read_text())["layers"])
        except (OSError, ValueError, KeyError):
            layers = 0
        if layers >= n:
            return layers
        time.sleep(0.02)
    return -1


def test_two_workers_equal_one(tmp_path, capsys):
    code1, serial = run_inprocess([*FOUR, "parallel.workers=1"], tmp_path / "serial")
    code2, parallel = run_inprocess([*FOUR, "parallel.workers=2"], tmp_path / "parallel")
    out = capsys.readouterr().out
    assert code1 == code2 == 0 and serial["status"] == parallel["status"] == "finished"
    assert len({r["unique_index"] for r in serial["layers"]}) == 4
    assert [r["index"] for r in parallel["layers"]] == [1, 2, 7, 8]
    assert without_timings(parallel) == without_timings(serial)
    assert "4 unique shapes" in out and "; 2 workers" in out
    for i in (1, 2, 7, 8):  # every layer's line once per run
        assert sum(line.startswith(f"layer {i:>3} ") for line in out.splitlines()) == 2
    files = {d: {f.name: f.read_text() for f in (tmp_path / d / "mappings").glob("*.m")}
             for d in ("serial", "parallel")}
    assert files["parallel"] == files["serial"] and len(files["serial"]) >= 3


def test_the_api_with_workers_equals_serial():
    kw = dict(layers=[1, 2, 7, 8, 3], budget=300, seed=5, optimizer="random")
    serial = search_model("resnet18", **kw)
    parallel = search_model("resnet18", workers=2, **kw)
    assert parallel.layers[2] is parallel.layers[3]  # one shape, one search
    assert sorted(parallel.layers) == [1, 2, 3, 7, 8]
    for i, r in serial.layers.items():
        p = parallel.layers[i]
        assert (p.cost, p.mapping, p.outputs, p.history) == (r.cost, r.mapping, r.outputs, r.history)
    assert parallel.total_cost == serial.total_cost
    assert parallel.config["parallel"]["workers"] == 2


def test_bad_workers_are_errors():
    with pytest.raises(GammaError, match="parallel.workers must be a positive integer, got 0"):
        search_model("resnet18", layers=[2], budget=10, workers=0)
    with pytest.raises(GammaError, match="parallel.start_method: unknown start method 'nope'"):
        search_model("resnet18", layers=[1, 2], budget=10, workers=2,
                     overrides=["parallel.start_method=nope"])


def test_ctrl_c_stops_the_workers_and_keeps_the_finished_layers(tmp_path):
    run_dir = tmp_path / "run"
    proc = start_cli(["budget=200000", "optimizer=random", "layers=[2,1,7]", "parallel.workers=2",
                      "tracking.enabled=false", f"hydra.run.dir={run_dir}"])
    try:
        # layer 2 (3x3, 64 channels) finishes long before the 7x7 layer 1 and layer 7
        first = wait_for_layers(proc, run_dir / "results.json", 1)
        assert first >= 1, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted: results.json keeps the finished layers" in err
    res = read_results(run_dir / "results.json")
    assert res["status"] == "killed" and 1 <= len(res["layers"]) < 3
    assert all(r["samples_used"] == 200000 for r in res["layers"])
    end = time.monotonic() + 10  # the fork server ends when it sees the job's end
    while living(proc.pid) and time.monotonic() < end:
        time.sleep(0.1)
    assert living(proc.pid) == []  # no worker (nor the fork server) is left running


def test_a_job_killed_outright_leaves_no_worker_behind(tmp_path):
    """SIGKILL (a node's out-of-memory killer, ``kill -9``) gives the job no chance to stop its
    pool: the workers notice that their parent is gone and end themselves."""
    run_dir = tmp_path / "run"
    proc = start_cli(["budget=200000", "optimizer=random", "layers=[2,1,7]", "parallel.workers=2",
                      "tracking.enabled=false", f"hydra.run.dir={run_dir}"])
    try:
        assert wait_for_layers(proc, run_dir / "results.json", 0) == 0
        end = time.monotonic() + 60  # until the workers are up
        while len(living(proc.pid)) < 4 and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.05)
        assert len(living(proc.pid)) >= 4  # the job, the fork server, two workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    end = time.monotonic() + 10
    while living(proc.pid) and time.monotonic() < end:
        time.sleep(0.1)
    assert living(proc.pid) == []


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("whole")
    code, res = run_inprocess(RESUME, out)
    assert code == 0
    return res


#: A 20-layer job (ResNet-18, 11 unique shapes) slow enough to interrupt after a few layers.
RESUME = ["optimizer=random", "budget=2000", "seed=4", "tracking.enabled=false"]


def test_an_interrupted_job_resumes_to_the_uninterrupted_results(uninterrupted, tmp_path, new_store):
    from mlflow.tracking import MlflowClient

    uri = new_store(tmp_path / "mlflow.db")
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    run_dir = tmp_path / "run"
    args = [*RESUME, "tracking.enabled=true", "tracking.experiment=resumed",
            f"hydra.run.dir={run_dir}"]
    proc = start_cli(args, env)
    try:
        assert wait_for_layers(proc, run_dir / "results.json", 3) >= 3, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    killed = read_results(run_dir / "results.json")
    assert killed["status"] == "killed" and 3 <= len(killed["layers"]) < 20
    run_id = killed["mlflow"]["run_id"]
    client = MlflowClient(uri)
    assert client.get_run(run_id).info.status == "KILLED"

    again = subprocess.run([sys.executable, str(ROOT / "run.py"), *args, "resume=true",
                            "parallel.workers=2"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    done = {r["unique_index"] for r in killed["layers"]}
    assert f"resume: {len(done)} unique shapes already searched, {11 - len(done)} to go" in again.stdout
    res = read_results(run_dir / "results.json")
    assert res["status"] == "finished" and len(res["layers"]) == 20
    assert without_timings(res) == without_timings(uninterrupted)
    kept = {r["index"]: r for r in killed["layers"]}
    assert all(r == kept[r["index"]] for r in res["layers"] if r["index"] in kept)
    assert res["wall_s"] >= killed["wall_s"]
    # the same MLflow run, finished, each layer's curve logged once
    assert res["mlflow"]["run_id"] == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert len(client.search_runs([run.info.experiment_id])) == 1
    assert run.data.metrics["latency_cycles"] == uninterrupted["totals"]["latency_cycles"]
    for r in res["layers"]:
        hist = client.get_metric_history(run_id, f"layers/best_cost_{r['index']:02d}")
        assert sorted([h.step, h.value] for h in hist) == [p for p in r["history"] if p[1] is not None]

    # a finished job is not run again: it reports its recorded cost
    third = subprocess.run([sys.executable, str(ROOT / "run.py"), *args, "resume=true"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    cost = uninterrupted["totals"]["latency_cycles"]
    assert f"resume: {run_dir} holds a finished job (total {cost:,.0f} cycles); not run again" \
        in third.stdout
    assert read_results(run_dir / "results.json") == res
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_resume_with_other_settings_is_an_error(tmp_path):
    code, _ = run_inprocess(["optimizer=random", "budget=50", "layers=[2]",
                             "tracking.enabled=false"], tmp_path)
    assert code == 0
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "optimizer=random", "budget=60",
                           "layers=[2]", "tracking.enabled=false", "resume=true",
                           f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"error: resume: {tmp_path} holds a job with other settings (budget differ)" in proc.stderr


def test_a_rerun_sweep_with_resume_skips_its_finished_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "optimizer=random", "budget=50", "layers=[2]", "seed=0,1",
            "tracking.enabled=false", "hydra/launcher=basic", f"hydra.sweep.dir={sweep}"]
    first = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    before = {f.parent.name: f.read_text() for f in sweep.glob("*/results.json")}
    assert len(before) == 2
    second = subprocess.run([sys.executable, str(ROOT / "run.py"), *args, "resume=true"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("finished before this sweep (resume): not run again") == 2
    assert "job 2 of 2, 2 done" in second.stdout and "sweep summary (2 jobs" in second.stdout
    after = {f.parent.name: f.read_text() for f in sweep.glob("*/results.json")}
    assert after == before  # the same folders (resume is not in their names), untouched


def test_workers_inside_a_joblib_sweep(tmp_path):
    """A sweep's job runs in a joblib (loky) worker of the default launcher, whose start method
    the layer workers must know; with 2 workers per job the launcher runs cores // 2 jobs at
    once; the results equal a serial job's."""
    sweep = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "-m", "optimizer=random",
                           "budget=200", "layers=[1,2,7]", "seed=0,1", "parallel.workers=2",
                           "tracking.enabled=false", f"hydra.sweep.dir={sweep}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    at_once = max(1, len(os.sched_getaffinity(0)) // 2)
    assert f"Joblib.Parallel(n_jobs={at_once}," in proc.stdout
    jobs = {read_results(f)["seed"]: read_results(f)
            for f in sweep.glob("*/results.json")}
    assert sorted(jobs) == [0, 1] and all(j["status"] == "finished" for j in jobs.values())
    _, serial = run_inprocess(["optimizer=random", "budget=200", "layers=[1,2,7]", "seed=1",
                               "tracking.enabled=false"], tmp_path / "serial")
    assert without_timings({**jobs[1], "label": None}) == without_timings({**serial, "label": None})
