"""MLflow tracking of sweeps: one parent run per sweep, its jobs as children with their tags,
MLflow's context tags, the job's start time and the layer table as a dataset input.

Real runs (`python run.py -m ...` as a user types it, joblib launcher) into a temporary SQLite
store; nothing is mocked.
"""

from __future__ import annotations

import getpass
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gamma.tracking import reader, store as tracking_store, writer as tracking
from gamma.errors import GammaError
from gamma.results.layout import read_results
from jobs import run_inprocess

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["optimizer=random", "optimizer.batch=100", "budget=200", "layers=[2,3]"]
SWEEP = ["seed=0,1", *SMALL, "tracking.experiment=swept"]


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def git_head() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def children_of(pid: int) -> dict[int, bytes]:
    """The processes whose parent is ``pid`` (any of its threads), with their command lines."""
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            try:
                out[int(kid)] = Path(f"/proc/{kid}/cmdline").read_bytes()
            except OSError:
                continue
    return out


def watched_sweep(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, dict]:
    """``run.py ARGS`` and, seen while it ran, its tracking servers (pid, socket), the helpers
    they forked and the helpers the sweep or its worker processes started themselves."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict = {"servers": set(), "forked": set(), "started": set()}
    while proc.poll() is None:
        mine = children_of(proc.pid)
        for pid, cmd in mine.items():
            if b"gamma.tracking.server" in cmd:
                seen["servers"].add((pid, cmd.split(b"\0")[-2].decode()))
                seen["forked"] |= set(children_of(pid))
        for pid in [proc.pid, *mine]:
            seen["started"] |= {p for p, c in children_of(pid).items() if b"gamma.tracking.writer" in c}
        time.sleep(0.05)
    out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), seen


@pytest.fixture(scope="module")
def store(tmp_path_factory, new_store):
    """A 2-job sweep as a user types it (the default launcher, no tracking server of the
    user's), then a single run (in this process) with a stale $GAMMA_MLFLOW_PARENT, in one
    store."""
    from gamma.tracking.forked import ENV
    from mlflow.tracking import MlflowClient

    tmp = tmp_path_factory.mktemp("track")
    uri = new_store(tmp / "mlflow.db")
    env = {k: v for k, v in os.environ.items() if k not in (tracking.PARENT_ENV, ENV)}
    env["MLFLOW_TRACKING_URI"] = uri
    t0 = time.time() * 1000
    proc, seen = watched_sweep(["-m", *SWEEP, f"hydra.sweep.dir={tmp / 'sweep'}"], env)
    t1 = time.time() * 1000
    assert proc.returncode == 0, proc.stderr
    stale = json.dumps({"uri": uri, "experiment": "swept", "run_id": "0" * 32,
                        "sweep_dir": str(tmp / "sweep")})
    table = tmp / "tiny.csv"  # a model file: 3 layers, the 1st and 3rd the same shape
    table.write_text("K,C,Y,X,R,S,T\n16,8,14,14,3,3,1\n32,16,7,7,1,1,1\n16,8,14,14,3,3,1\n")
    os.environ[tracking.PARENT_ENV] = stale  # the single run in this process sees it
    try:
        code, _ = run_inprocess(["optimizer=random", "optimizer.batch=100", "budget=200",
                                 "layers=[1,3]", "model=file", f"model.path={table}",
                                 "tracking.experiment=swept", f"tracking.uri={uri}"], tmp / "single")
    finally:
        del os.environ[tracking.PARENT_ENV]
    assert code == 0
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("swept")
    runs = client.search_runs([exp.experiment_id])
    return {"client": client, "uri": uri, "tmp": tmp, "t0": t0, "t1": t1, "runs": runs, "proc": proc,
            "seen": seen,
            "results": [read_results(d / "results.json")
                        for d in sorted((tmp / "sweep").iterdir()) if (d / "results.json").is_file()],
            "single": read_results(tmp / "single" / "results.json")}


def by_kind(runs, kind: str) -> list:
    return [r for r in runs if r.data.tags.get(tracking.KIND_TAG) == kind]


def test_sweep_is_one_parent_with_two_children(store):
    sweep_dir = store["tmp"] / "sweep"
    (parent,) = by_kind(store["runs"], "sweep")
    children = [r for r in store["runs"] if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2 and len(store["results"]) == 2
    assert {r.info.run_id for r in children} == {res["mlflow"]["run_id"] for res in store["results"]}
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["gamma.sweep.overrides"] == " ".join(SWEEP)
    assert tags["gamma.sweep.dir"] == str(sweep_dir.resolve())
    assert tags["gamma.sweep.jobs"] == "2 FINISHED"
    assert tags["gamma.summary"] == "sweep"  # readers of the experiment skip it: not a job
    assert {r["run_id"] for r in reader.experiment_runs("swept", store["uri"])} == \
        {r.info.run_id for r in by_kind(store["runs"], "job")}
    assert parent.info.run_name == "sweep " + " ".join(SWEEP)
    assert tags["mlflow.source.git.commit"] == git_head()
    published = json.loads((sweep_dir / tracking.PARENT_FILE).read_text())
    assert published == {"uri": store["uri"], "experiment": "swept",
                         "run_id": parent.info.run_id, "sweep_dir": str(sweep_dir.resolve())}


def test_a_local_sweep_forks_its_helpers_from_its_own_tracking_server(store):
    """Without ``$GAMMA_TRACKING_SERVER``, a sweep on the default (joblib) launcher starts a
    tracking server for its worker processes: no helper is started by the sweep or its workers,
    every helper is a child of that server, and the server and its folder are gone at the end."""
    seen = store["seen"]
    assert len(seen["servers"]) == 1 and not seen["started"]
    assert len(seen["forked"]) >= 2  # the sweep's own (the parent run) and a worker's at least
    (server_pid, socket_path), = seen["servers"]
    assert not Path(socket_path).parent.exists()
    stat = Path(f"/proc/{server_pid}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_sweeps_console_is_one_line_per_job_and_its_summary(store):
    """Each job's one line, prefixed with what the sweep varies (the seed), "job k of 2"; no
    per-layer lines or tables on the console (they are in each job's run.log); the summary."""
    lines = store["proc"].stdout.splitlines()
    job_lines = [line for line in lines if line.startswith("[") and "; job " in line]
    assert sorted(line.split("]")[0] for line in job_lines) == ["[0", "[1"]
    assert sorted(line.split("; job ")[1].split(",")[0] for line in job_lines) == ["1 of 2", "2 of 2"]
    for line in job_lines:
        seed = int(line[1])
        (res,) = [r for r in store["results"] if r["seed"] == seed]
        assert line.startswith(f"[{seed}] {res['totals']['latency_cycles']:,.0f} cycles, ")
    assert not [line for line in lines if "layer " in line or "total over" in line]
    for d in (store["tmp"] / "sweep").iterdir():
        if (d / "results.json").is_file():
            assert "total over 2 layers" in (d / "run.log").read_text()  # the table: in its log


def test_the_sweeps_parent_run_carries_its_summary(store):
    """The summary the sweep printed (the jobs' results over their seeds) as the parent run's
    metrics, its artifact sweep_summary.txt and its description."""
    from gamma.results import sweep as S

    (parent,) = by_kind(store["runs"], "sweep")
    latencies = [r["totals"]["latency_cycles"] for r in store["results"]]
    bounds = [r["totals"]["ratio_to_compute_bound"] for r in store["results"]]
    assert len(latencies) == 2 and None not in latencies
    m = parent.data.metrics
    arm = "random batch_100.s2"  # the label "random batch=100" and the system
    assert {r["label"] for r in store["results"]} == {"random batch=100"}
    assert m[f"latency_cycles/{arm}"] == statistics.median(latencies)
    assert m[f"x_bound/{arm}"] == pytest.approx(statistics.median(bounds))
    assert m[f"feasible_layers/{arm}"] == 2
    table = (store["tmp"] / "sweep" / S.SUMMARY_TEXT).read_text()
    path = store["client"].download_artifacts(parent.info.run_id, S.SUMMARY_TEXT, str(store["tmp"]))
    assert Path(path).read_text() == table
    assert table.rstrip() in parent.data.tags["mlflow.note.content"]
    assert table.rstrip() in store["proc"].stdout
    assert f"{statistics.median(latencies):,.0f}" in table.splitlines()[1]


def test_job_runs_carry_their_columns_and_context(store):
    children = [r for r in by_kind(store["runs"], "job") if "mlflow.parentRunId" in r.data.tags]
    results = {res["mlflow"]["run_id"]: res for res in store["results"]}
    assert sorted(r.data.tags["seed"] for r in children) == ["0", "1"]
    for run in children:
        tags, res = run.data.tags, results[run.info.run_id]
        assert {k: tags[k] for k in ("optimizer", "system", "platform", "model", "objective")} == \
            {"optimizer": "random", "system": "s2", "platform": "edge", "model": "resnet18",
             "objective": "latency"}
        assert tags["label"] == res["label"]
        # what a sweep varies first (MLflow's runs table cuts long names), then the rest
        assert run.info.run_name == f"s2 {res['label']} | resnet18 edge seed {tags['seed']}"
        # one tag per arm and context: grouping by it never averages across optimizers
        assert tags["arm"] == f"s2 {res['label']} | resnet18 edge latency 200 layers [2, 3]"
        assert tags["mlflow.source.git.commit"] == git_head()
        assert tags["mlflow.source.name"] == str(ROOT / "run.py")
        assert tags["mlflow.source.type"] == "LOCAL"
        assert tags["mlflow.user"] == getpass.getuser()
        assert Path(tags["output_dir"]).parent == (store["tmp"] / "sweep").resolve()


def test_job_runs_start_when_the_job_starts(store):
    (parent,) = by_kind(store["runs"], "sweep")
    for run in by_kind(store["runs"], "job"):
        if "mlflow.parentRunId" not in run.data.tags:
            continue
        info = run.info
        assert store["t0"] <= parent.info.start_time <= info.start_time < info.end_time <= store["t1"]
        # the job wrote config.yaml just before it started the tracker; the helper process
        # that creates the run needs seconds to import mlflow
        written = (Path(run.data.tags["output_dir"]) / "config.yaml").stat().st_mtime * 1000
        assert -1 < info.start_time - written < 1000  # ms, truncated


def test_layer_table_is_a_dataset_input(store):
    for run in by_kind(store["runs"], "job"):
        if "mlflow.parentRunId" not in run.data.tags:
            continue
        (inp,) = run.inputs.dataset_inputs
        ds = inp.dataset
        assert ds.name == "resnet18" and json.loads(ds.profile)["num_rows"] == 2
        assert json.loads(ds.source)["uri"] == str(ROOT / "conf" / "model" / "resnet18.yaml")
        cols = [c["name"] for c in json.loads(ds.schema)["mlflow_colspec"]]
        assert cols[:3] == ["layer", "unique", "shape"] and {"K", "C", "Y", "X", "R", "S", "macs"} <= set(cols)
        assert {(t.key, t.value) for t in inp.tags} == {("mlflow.data.context", "layers")}
        params = run.data.params
        assert params["model.name"] == "resnet18" and params["layers"] == "[2, 3]"
        assert not any(k.startswith("model.layers") for k in params)


def test_single_run_has_no_parent(store):
    """Outside the sweep folder a job ignores $GAMMA_MLFLOW_PARENT (here a stale one)."""
    run = store["client"].get_run(store["single"]["mlflow"]["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags[tracking.KIND_TAG] == "job"
    assert "mlflow.parentRunId" not in run.data.tags
    assert run.data.tags["mlflow.source.git.commit"] == git_head()


def test_model_file_names_the_model_and_its_dataset(store):
    """model=file: the model's tag and dataset take the file's name; its rows are the selected
    layers."""
    run = store["client"].get_run(store["single"]["mlflow"]["run_id"])
    assert run.data.tags["model"] == store["single"]["model"] == "tiny"
    (inp,) = run.inputs.dataset_inputs
    assert inp.dataset.name == "tiny" and json.loads(inp.dataset.profile)["num_rows"] == 2
    assert json.loads(inp.dataset.source)["uri"] == str(store["tmp"] / "tiny.csv")


def test_summary_run_is_a_child_of_the_sweep(store, tmp_path):
    (parent,) = by_kind(store["runs"], "sweep")
    (tmp_path / "table.md").write_text("| a |\n")
    run_id = tracking.log_summary("swept", [tmp_path / "table.md"], "compare swept", store["uri"],
                                  parent_run_id=parent.info.run_id)
    run = store["client"].get_run(run_id)
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert run.data.tags["gamma.summary"] == "1" and run.data.tags[tracking.KIND_TAG] == "summary"
    assert [a.path for a in store["client"].list_artifacts(run_id)] == ["table.md"]
    with pytest.raises(GammaError, match="not a run of experiment 'gamma'"):
        tracking.log_summary("gamma", [], "compare gamma", store["uri"],
                             parent_run_id=parent.info.run_id)


def test_failed_sweep_fails_its_parent(tmp_path, new_store):
    """A sweep that stops with an error (the second job's optimizer does not exist) ends its
    parent run FAILED."""
    from mlflow.tracking import MlflowClient

    uri = new_store(tmp_path / "mlflow.db")
    env = {k: v for k, v in os.environ.items() if k != tracking.PARENT_ENV}
    proc = run_cli(["-m", "optimizer=random,nonexistent", "budget=200", "layers=[2]",
                    "hydra/launcher=joblib", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                   {**env, "MLFLOW_TRACKING_URI": uri})
    assert proc.returncode == 1 and "nonexistent" in proc.stderr
    client = MlflowClient(uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("gamma").experiment_id])
    assert parent.data.tags[tracking.KIND_TAG] == "sweep" and parent.info.status == "FAILED"


# --- finding the parent (no MLflow) --------------------------------------------------------------
def publish(sweep_dir: Path, **fields: str) -> None:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / tracking.PARENT_FILE).write_text(json.dumps(fields))


def test_job_finds_the_parent_above_its_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(tracking.PARENT_ENV, raising=False)
    sweep = tmp_path / "sweep"
    publish(sweep, uri="sqlite:///a.db", experiment="e", run_id="p1")
    job = sweep / "optimizer=gamma,seed=0"  # a folder named by overrides, not a number
    assert tracking.find_parent(job, "sqlite:///a.db", "e") == "p1"
    assert tracking.find_parent(job, "sqlite:///b.db", "e") is None
    assert tracking.find_parent(job, "sqlite:///a.db", "other") is None
    assert tracking.find_parent(tmp_path / "elsewhere", "sqlite:///a.db", "e") is None
    (sweep / tracking.PARENT_FILE).write_text("{not json")
    assert tracking.find_parent(job, "sqlite:///a.db", "e") is None


def test_job_finds_the_parent_in_the_environment(tmp_path, monkeypatch):
    sweep = tmp_path / "sweep"
    monkeypatch.setenv(tracking.PARENT_ENV, json.dumps(
        {"uri": "u", "experiment": "e", "run_id": "p2", "sweep_dir": str(sweep)}))
    assert tracking.find_parent(sweep / "3", "u", "e") == "p2"
    assert tracking.find_parent(tmp_path / "other" / "0", "u", "e") is None
    assert tracking.find_parent(sweep / "3", "u", "f") is None
    monkeypatch.setenv(tracking.PARENT_ENV, "garbage")
    assert tracking.find_parent(sweep / "3", "u", "e") is None


def test_experiment_name_is_tracking_experiment():
    assert tracking_store.experiment_name({"tracking": {"experiment": "a"}}) == "a"
    assert tracking_store.experiment_name({"tracking": {}}) == "gamma"


def test_no_parent_without_tracking(tmp_path, monkeypatch):
    monkeypatch.delenv(tracking.PARENT_ENV, raising=False)
    cfg = {"tracking": {"enabled": False}}
    assert tracking.start_sweep(cfg, tmp_path / "sweep", ["seed=0,1"]) is None
    assert not (tmp_path / "sweep").exists() and tracking.PARENT_ENV not in os.environ


def test_job_runs_log_totals_at_the_top_and_layers_under_a_prefix(store):
    """Totals as top-level metrics (latency_cycles, x_bound, energy_nJ, feasible_layers), the
    end-to-end best-so-far curve best_cost, and per-layer metrics under layers/."""
    client = store["client"]
    for res in store["results"]:
        run = client.get_run(res["mlflow"]["run_id"])
        m, t = run.data.metrics, res["totals"]
        assert m["latency_cycles"] == t["latency_cycles"] and m["energy_nJ"] == t["energy_nJ"]
        assert m["x_bound"] == pytest.approx(t["latency_cycles"] / t["compute_bound_cycles"])
        assert m["feasible_layers"] == len(res["layers"]) == 2 and m["infeasible_layers"] == 0
        assert "x_optimum" not in m  # no optimum known for these layers
        assert not [k for k in m if "/" in k and not k.startswith(tracking.LAYER_PREFIX + "/")]
        assert {k for k in m if k.startswith("layers/")} == {
            f"layers/{n}_{r['index']:02d}" for r in res["layers"]
            for n in ("best_cost", "latency_cycles", "energy_nJ")}
        curve = client.get_metric_history(run.info.run_id, "best_cost")
        steps = [x.step for x in sorted(curve, key=lambda x: x.step)]
        values = [x.value for x in sorted(curve, key=lambda x: x.step)]
        assert values == sorted(values, reverse=True) and steps[-1] == 200
        assert values[-1] == sum(r["best_cost"] for r in res["layers"]) == m["best_cost"]
