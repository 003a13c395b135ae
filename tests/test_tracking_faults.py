"""Tracking faults a user meets: jobs creating one new store at once, an unreachable tracking
server, a SQLite store in a folder that does not exist, a job killed (SIGTERM) under its helper.

Real `python run.py` jobs with the real cost model and real MLflow stores (temporary SQLite);
nothing is mocked. Tiny budgets: each job searches one or two layers for a second.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gamma.tracking import forked, store, writer as tracking
from gamma.errors import GammaError
from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]
TINY = ["optimizer=random", "optimizer.batch=100", "budget=200", "layers=[2]"]
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (tracking.PARENT_ENV, "MLFLOW_TRACKING_URI")}
    return {**env, **extra}


def start_job(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def runs_of(uri: str, experiment: str = "gamma") -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def test_two_jobs_create_one_new_store_together(tmp_path):
    """Two plain jobs (no sweep, so no Hydra callback) start together on a brand-new SQLite
    store, three times: all six runs are recorded FINISHED."""
    finished = []
    for trial in range(3):
        uri = f"sqlite:///{tmp_path / f'store{trial}' / 'mlflow.db'}"
        (tmp_path / f"store{trial}").mkdir()
        jobs = [start_job([*TINY, f"seed={s}", f"hydra.run.dir={tmp_path / f'run{trial}_{s}'}"],
                          clean_env(MLFLOW_TRACKING_URI=uri)) for s in (0, 1)]
        for job in jobs:
            _, err = job.communicate(timeout=300)
            assert job.returncode == 0 and "warning" not in err, err
        runs = runs_of(uri)
        assert len(runs) == 2
        for s in (0, 1):
            res = read_results(tmp_path / f"run{trial}_{s}" / "results.json")
            assert res["mlflow"]["run_id"] in {r.info.run_id for r in runs}
            assert "error" not in res["mlflow"]
        finished += [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 6


def test_store_lock_is_a_file_beside_the_database(tmp_path):
    db = tmp_path / "m.db"
    with store.store_lock(f"sqlite:///{db}"):
        assert (tmp_path / "m.db.lock").is_file()
    with store.store_lock("http://127.0.0.1:5000"):  # no lock for a server
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.db.lock"]


@pytest.fixture(scope="module")
def unreachable(tmp_path_factory):
    """One job tracking to a server that cannot be reached."""
    tmp = tmp_path_factory.mktemp("unreachable")
    t0 = time.monotonic()
    job = start_job([*TINY, f"tracking.uri={UNREACHABLE}", f"hydra.run.dir={tmp / 'run'}"],
                    clean_env())
    out, err = job.communicate(timeout=300)
    return {"code": job.returncode, "out": out, "err": err, "seconds": time.monotonic() - t0,
            "dir": tmp / "run", "tmp": tmp}


def test_unreachable_server_is_a_warning(unreachable):
    """The job ends in well under a minute (not after MLflow's 120 s of retries) with exit 0,
    a warning naming the URI and the reason, and all its files."""
    assert unreachable["code"] == 0, unreachable["err"]
    assert unreachable["seconds"] < 60
    warnings = [line for line in unreachable["err"].splitlines() if line.startswith("warning:")]
    assert warnings and all(UNREACHABLE in w and "Connection refused" in w for w in warnings)
    assert "Traceback" not in unreachable["err"] and "error:" not in unreachable["err"]
    run = unreachable["dir"]
    res = read_results(run / "results.json")
    assert res["status"] == "finished" and [r["index"] for r in res["layers"]] == [2]
    assert res["mlflow"]["uri"] == UNREACHABLE and res["mlflow"]["run_id"] is None
    assert UNREACHABLE in res["mlflow"]["error"] and "Connection refused" in res["mlflow"]["error"]
    assert (run / "mappings" / "layer_02.m").is_file()
    assert (run / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_import_logs_the_run_folder_afterwards(unreachable, new_store):
    """scripts/mlflow_import.py logs the folder as the helper would have: status, params, tags,
    per-layer and total metrics, artifacts; results.json then names the run."""
    from mlflow.tracking import MlflowClient

    run_dir, tmp = unreachable["dir"], unreachable["tmp"]
    before = read_results(run_dir / "results.json")
    uri = new_store(tmp / "mlflow.db")
    cmd = [sys.executable, str(ROOT / "scripts" / "mlflow_import.py"), str(run_dir), "--uri", uri,
           "--experiment", "imported"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    (run,) = runs_of(uri, "imported")
    assert proc.stdout.strip() == f"MLflow run {run.info.run_id} at {uri}"
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"s2 {before['label']} | resnet18 edge seed 0"
    m = run.data.metrics
    assert m["latency_cycles"] == before["totals"]["latency_cycles"]
    assert m["energy_nJ"] == before["totals"]["energy_nJ"]
    assert m["layers/latency_cycles_02"] == before["layers"][0]["best"]["runtime_cycles"]
    assert run.data.params["budget"] == "200" and run.data.params["optimizer.name"] == "random"
    assert run.data.tags["optimizer"] == "random" and run.data.tags[tracking.KIND_TAG] == "job"
    assert run.data.tags["output_dir"] == str(run_dir.resolve())
    client = MlflowClient(uri)
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == \
        {"results.json", "config.yaml", "convergence.png", "mappings"}
    after = read_results(run_dir / "results.json")
    assert after["mlflow"] == {"uri": uri, "run_id": run.info.run_id, "imported": True}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=clean_env())
    assert again.returncode == 1 and again.stderr.startswith("error: ")
    assert "in MLflow already" in again.stderr and "Traceback" not in again.stderr


def test_import_refuses_a_folder_that_is_not_a_run(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "mlflow_import.py"),
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == f"error: {tmp_path}: no config.yaml (not a run folder)\n"


def test_sqlite_store_in_a_missing_folder_is_refused(tmp_path):
    """The job warns at once and at the end, keeps its results and creates nothing at /."""
    assert not Path("/nonexistent").exists()
    uri = "sqlite:////nonexistent/dir/m.db"
    job = start_job([*TINY, f"tracking.uri={uri}", f"hydra.run.dir={tmp_path / 'run'}"],
                    clean_env())
    _, err = job.communicate(timeout=300)
    assert job.returncode == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert all(f"tracking.uri {uri}: folder /nonexistent/dir does not exist" in w for w in warnings)
    assert not Path("/nonexistent").exists()
    res = read_results(tmp_path / "run" / "results.json")
    assert res["status"] == "finished" and "does not exist" in res["mlflow"]["error"]
    assert (tmp_path / "run" / "convergence.png").is_file()
    with pytest.raises(GammaError, match="folder /nonexistent/dir does not exist"):
        store.prepare_store({"tracking": {"uri": uri}})  # a sweep's store
    assert not Path("/nonexistent").exists()


def test_helper_whose_job_is_gone_ends_the_run_killed(tmp_path, new_store):
    """The job died before the helper replied: the reply pipe is closed and its input ends. The
    helper prints no traceback and ends the run KILLED."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("seed: 0\nbudget: 200\nmodel: {name: resnet18}\n")
    uri = new_store(tmp_path / "mlflow.db")
    helper = subprocess.Popen(
        [sys.executable, "-m", "gamma.tracking.writer"], cwd=ROOT, env=clean_env(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    spec = tracking.RunSpec(uri, "gone", "gone", str(run_dir))
    helper.stdin.write(f"run {json.dumps(spec.__dict__)}\n")
    helper.stdin.close()
    helper.stdout.close()  # the job's end of the reply pipe: gone
    err = helper.stderr.read()
    assert helper.wait(timeout=120) == 0
    assert "Traceback" not in err, err
    (run,) = runs_of(uri, "gone")
    assert run.info.status == "KILLED"


def test_sigterm_leaves_no_helper_traceback(tmp_path, new_store):
    """A job killed by SIGTERM (a scheduler) after its first layer: its helper logs what
    results.json holds, ends the run KILLED and prints no traceback. (What the job itself
    writes on SIGTERM is tested with the job's signal handling.)"""
    uri = new_store(tmp_path / "mlflow.db")
    run_dir = tmp_path / "run"
    job = start_job(["optimizer=random", "optimizer.batch=100", "budget=20000",
                     "layers=[1,2,6,7,8]", f"hydra.run.dir={run_dir}"],
                    clean_env(MLFLOW_TRACKING_URI=uri))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and job.poll() is None:
        try:
            if json.loads((run_dir / "results.json").read_text())["layers"]:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    assert job.poll() is None, "the job ended before its first layer was seen"
    job.send_signal(signal.SIGTERM)
    _, err = job.communicate(timeout=240)  # stderr ends when the helper (sharing it) ends
    assert job.returncode != 0
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    (run,) = runs_of(uri)
    assert run.info.status == "KILLED"
    assert "layers/latency_cycles_01" in run.data.metrics


def test_a_job_whose_tracking_server_is_gone_starts_its_own_helper(tmp_path, new_store):
    """``$GAMMA_TRACKING_SERVER`` names a socket nobody listens on: the job starts its own
    helper, without a warning, and its run is logged in full."""
    uri = new_store(tmp_path / "mlflow.db")
    job = start_job([*TINY, f"hydra.run.dir={tmp_path / 'run'}"],
                    clean_env(MLFLOW_TRACKING_URI=uri, GAMMA_TRACKING_SERVER=str(tmp_path / "gone")))
    _, err = job.communicate(timeout=300)
    assert job.returncode == 0 and "warning" not in err, err
    (run,) = runs_of(uri)
    res = read_results(tmp_path / "run" / "results.json")
    assert run.info.status == "FINISHED" and res["mlflow"]["run_id"] == run.info.run_id
    assert run.data.metrics["latency_cycles"] == res["totals"]["latency_cycles"]


def test_a_helper_forked_by_the_tracking_server_logs_as_a_started_one(tmp_path, new_store,
                                                                       tracking_server):
    """The same job logged through the test session's tracking server and through a helper it
    starts itself: the same params, tags, metrics and artifacts."""
    assert tracking_server is not None
    probe = forked.forked_helper(tracking_server)  # what a job gets: a child of the server
    assert probe is not None and probe.poll() is None
    ppid = int(Path(f"/proc/{probe.pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert b"gamma.tracking.server" in Path(f"/proc/{ppid}/cmdline").read_bytes()
    probe.stdin.close()  # end of input between runs: it exits
    assert probe.wait(timeout=30) == 0
    from mlflow.tracking import MlflowClient

    runs, new_store_uris = {}, {}
    for way, server in (("forked", tracking_server), ("started", None)):
        uri = new_store_uris[way] = new_store(tmp_path / f"{way}.db")
        env = clean_env(MLFLOW_TRACKING_URI=uri)
        env.pop("GAMMA_TRACKING_SERVER", None)
        if server:
            env["GAMMA_TRACKING_SERVER"] = server
        job = start_job([*TINY, f"hydra.run.dir={tmp_path / way}"], env)
        _, err = job.communicate(timeout=300)
        assert job.returncode == 0 and "warning" not in err, err
        (runs[way],) = runs_of(uri)
    a, b = runs["forked"], runs["started"]
    assert a.info.status == b.info.status == "FINISHED"
    assert a.data.params == b.data.params and len(a.data.params) >= 20
    assert {k: v for k, v in a.data.tags.items() if k != "output_dir"} == \
        {k: v for k, v in b.data.tags.items() if k != "output_dir"}
    same = {k for k in a.data.metrics if not k.endswith("_s")}  # not the timings (seconds)
    assert same == {k for k in b.data.metrics if not k.endswith("_s")} and len(same) >= 8
    assert all(a.data.metrics[k] == b.data.metrics[k] for k in same)
    artifacts = [sorted(f.path for f in MlflowClient(uri).list_artifacts(r.info.run_id))
                 for uri, r in ((new_store_uris["forked"], a), (new_store_uris["started"], b))]
    assert artifacts[0] == artifacts[1] and "results.json" in artifacts[0]

