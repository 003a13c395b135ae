"""Sweeps through Hydra's other launchers, as a user runs them (README "Sweeps at scale"):

- Ray: a Ray head started here on 127.0.0.1, an MLflow tracking server on 127.0.0.1 (SQLite
  store, artifacts uploaded through the server into a folder), a 2-job sweep with
  ``hydra/launcher=ray_cluster``; the 2 jobs are FINISHED children of one sweep parent run.
- Submitit's local launcher: a 2-job sweep, both FINISHED.

Every service listens on 127.0.0.1 only, on ports chosen at run time, and is stopped by its
process ids in the fixture's teardown (also when the test fails); the teardown checks that they
are gone. Nothing is mocked.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gamma.tracking import forked, writer as tracking
from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SMALL = ["optimizer=random", "optimizer.batch=100", "budget=200", "layers=[2]"]
START_TIMEOUT_S = 180.0  # Ray's head needs 15-40 s on a busy 2-core machine
STOP_TIMEOUT_S = 3.0  # then SIGKILL: `ray start --block` lingers ~50 s after SIGTERM


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 (held open together while chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def job_env(**extra: str) -> dict[str, str]:
    """The environment of the services and sweeps: this checkout first on the path, no parent
    run inherited from an outer sweep, Ray on the loopback address only, and no tracking server
    (tests/conftest.py): each job starts its own MLflow helper, as on a cluster."""
    env = {k: v for k, v in os.environ.items() if k not in (tracking.PARENT_ENV, "MLFLOW_TRACKING_URI",
                                                              "RAY_ADDRESS", forked.ENV)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    # Ray replaces 127.0.0.1 by the machine's network address unless it runs as a single-node
    # cluster; this keeps every Ray process on 127.0.0.1.
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return {**env, **extra}


def local_env() -> dict[str, str]:
    """:func:`job_env` for jobs on this machine (submitit's local launcher): they may fork their
    MLflow helpers from the test session's tracking server."""
    server = os.environ.get(forked.ENV)
    return job_env(**({forked.ENV: server} if server else {}))


def session_pids(sid: int) -> set[int]:
    """The processes of session ``sid`` (a service started with its own session and everything
    it started, unless they left the session)."""
    pids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
            if int(fields[3]) == sid and fields[0] != "Z":  # field 6: session id; not zombies
                pids.add(int(d.name))
    return pids


def stop_session(proc: subprocess.Popen) -> None:
    """SIGTERM to the service's process group, then SIGKILL to whatever of its session is left
    after ``STOP_TIMEOUT_S``; asserts that none of its processes remain (Ray's workers and
    daemons stay in the session of `ray start`)."""
    sid = proc.pid  # started with start_new_session: session id = its pid
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while (proc.poll() is None or session_pids(sid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in session_pids(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=STOP_TIMEOUT_S)
    deadline = time.monotonic() + 10
    while session_pids(sid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not session_pids(sid), f"processes left: {session_pids(sid)}"


def wait_for(ready, proc: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not ready after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture
def mlflow_server(tmp_path) -> Iterator[dict]:
    """``mlflow server`` on 127.0.0.1: SQLite store, artifacts served (uploaded through the
    server) into ``tmp_path/artifacts``."""
    (port,) = free_ports(1)
    log = tmp_path / "mlflow_server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri",
             f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination",
             str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env=job_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"))  # no job-runner processes
    uri = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, proc, "mlflow server", log)
        yield {"uri": uri, "artifacts": tmp_path / "artifacts", "pid": proc.pid}
    finally:
        stop_session(proc)


@pytest.fixture
def ray_head() -> Iterator[dict]:
    """A Ray head on 127.0.0.1 with 2 CPUs (``ray start --head --block``: the command stays in
    the foreground with the processes it starts in its session). Its temporary folder is its own,
    also for the sweep that connects to it (``$RAY_TMPDIR``): neither touches /tmp/ray, the
    machine-wide folder of other Ray sessions."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay short
    gcs, client, agent, agent_grpc, env_agent, metrics, node_mgr, obj_mgr, dash = free_ports(9)
    log = temp / "ray_start.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
             f"--port={gcs}", "--num-cpus=2", "--include-dashboard=false",
             "--disable-usage-stats", f"--temp-dir={temp}", f"--ray-client-server-port={client}",
             f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
             f"--runtime-env-agent-port={env_agent}", f"--metrics-export-port={metrics}",
             f"--node-manager-port={node_mgr}", f"--object-manager-port={obj_mgr}",
             f"--dashboard-port={dash}"],
            stdout=out, stderr=subprocess.STDOUT, env=job_env(RAY_TMPDIR=str(temp)),
            start_new_session=True)
    try:
        wait_for(lambda: "Ray runtime started" in log.read_text(), proc, "ray start", log)
        yield {"address": f"127.0.0.1:{gcs}", "pid": proc.pid, "log": log, "temp": temp}
    finally:
        try:
            stop_session(proc)
        finally:
            subprocess.run(["rm", "-rf", str(temp)], check=False)


def sweep(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), "-m", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def runs_of(uri: str, experiment: str) -> tuple[object, list, list]:
    """(client, the sweep parent runs, the job runs) of ``experiment``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    kind = lambda k: [r for r in runs if r.data.tags.get(tracking.KIND_TAG) == k]  # noqa: E731
    return client, kind("sweep"), kind("job")


def test_ray_sweep_logs_to_a_tracking_server(ray_head, mlflow_server, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = sweep(["seed=0,1", "system=s1", *SMALL, f"tracking.uri={mlflow_server['uri']}",
                  "tracking.experiment=on_ray", "hydra/launcher=ray_cluster",
                  f"hydra.launcher.ray.init.address={ray_head['address']}",
                  f"hydra.sweep.dir={sweep_dir}"], job_env(RAY_TMPDIR=str(ray_head["temp"])))
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "Connecting to existing Ray cluster at address: " + ray_head["address"] in proc.stderr
    client, (parent,), jobs = runs_of(mlflow_server["uri"], "on_ray")
    assert parent.info.status == "FINISHED" and parent.data.tags["gamma.sweep.jobs"] == "2 FINISHED"
    assert len(jobs) == 2
    assert all(r.info.status == "FINISHED" for r in jobs)
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in jobs)
    assert sorted((r.data.tags["system"], r.data.tags["seed"]) for r in jobs) == \
        [("s1", "0"), ("s1", "1")]
    # Each job ran in a Ray worker and wrote its folder; its artifacts went through the server
    # into the server's artifact folder (the client never sees that folder).
    exp = client.get_experiment(parent.info.experiment_id)
    assert exp.artifact_location.startswith("mlflow-artifacts:/")
    for run in jobs:
        out_dir = Path(run.data.tags["output_dir"])
        assert out_dir.parent == sweep_dir
        local = read_results(out_dir / "results.json")
        assert local["status"] == "finished" and local["mlflow"]["run_id"] == run.info.run_id
        assert {a.path for a in client.list_artifacts(run.info.run_id)} >= \
            {"results.json", "config.yaml", "convergence.png", "mappings"}
        stored = list(mlflow_server["artifacts"].glob(f"*/{run.info.run_id}/artifacts/results.json"))
        # the same but for the mark that the run was ended (written after the upload)
        assert local["mlflow"].pop("logged") is True
        assert len(stored) == 1 and read_results(stored[0]) == local
        assert run.data.metrics["latency_cycles"] == local["totals"]["latency_cycles"]


def test_submitit_local_sweep(tmp_path, new_store):
    uri = new_store(tmp_path / "mlflow.db")
    sweep_dir = tmp_path / "sweep"
    proc = sweep(["seed=0,1", *SMALL, f"tracking.uri={uri}", "tracking.experiment=on_submitit",
                  "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=20",
                  f"hydra.sweep.dir={sweep_dir}"], local_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    _, (parent,), jobs = runs_of(uri, "on_submitit")
    assert parent.info.status == "FINISHED" and len(jobs) == 2
    assert all(r.info.status == "FINISHED" for r in jobs)
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in jobs)
    assert sorted(r.data.tags["seed"] for r in jobs) == ["0", "1"]
    # submitit ran each job as its own process and kept its log beside the sweep
    assert len(list((sweep_dir / ".submitit").glob("*/*_log.out"))) == 2
