"""The entry point end to end with the real cost model: results.json, MLflow, seeds, errors, Ctrl-C.

MLflow goes to a temporary SQLite store (MLFLOW_TRACKING_URI); nothing is mocked.
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir

from gamma.results import console as report
from gamma.tracking import reader, writer as tracking
from gamma.costmodel import evaluate
from gamma.hardware import Hardware
from gamma.workloads.maestro_io import parse_maestro_file
from gamma.objectives.scalar import Objective
from gamma.optimizers import Optimizer, register
from jobs import run_inprocess, without_timings
from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["budget=400", "optimizer=random", "optimizer.batch=100", "layers=[2,3]"]


def run_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def without_run_fields(results: dict) -> dict:
    """results.json minus run-specific fields (timings, MLflow ids, and the label, which run.py
    derives from the command line)."""
    return without_timings(results, also=frozenset({"label"}))


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, new_store):
    """One real `python run.py` job with MLflow tracking into a temporary store."""
    tmp = tmp_path_factory.mktemp("cli")
    uri = new_store(tmp / "mlflow.db")
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    proc = run_cli([*SMALL, f"hydra.run.dir={tmp / 'run'}"], env)
    assert proc.returncode == 0, proc.stderr
    results = read_results(tmp / "run" / "results.json")
    return proc, results, uri, tmp / "run"


def test_results_json(cli_run):
    proc, res, _, run_dir = cli_run
    for key in ("model", "system", "platform", "optimizer", "objective", "seed", "budget",
                "wall_s", "status", "layers", "totals"):
        assert key in res
    assert (res["model"], res["system"], res["platform"], res["optimizer"], res["objective"]) == \
        ("resnet18", "s2", "edge", "random", "latency")
    assert res["status"] == "finished" and res["seed"] == 0 and res["budget"] == 400
    assert [r["index"] for r in res["layers"]] == [2, 3]
    hw = Hardware.from_dict(res["hardware"])
    for r in res["layers"]:
        assert r["unique_index"] == 1 and r["shape"] == "CONV K64 C64 Y56 X56 R3 S3"
        assert r["samples_used"] == 400 and r["feasible"]
        assert sum(r["rejections"].values()) + r["feasible_samples"] == 400
        assert r["history"][-1] == [400, r["best"]["runtime_cycles"]]
        assert len(r["history"]) <= 200 and r["costmodel_s"] > 0 and r["search_s"] >= r["costmodel_s"]
        assert r["best"]["runtime_cycles"] >= r["compute_bound_cycles"] == math.ceil(107495424 / 168)
        assert r["best"]["l1_size_req"] <= hw.l1_size and r["best"]["l2_size_req"] <= hw.l2_size
        # the MAESTRO text is the mapping: parsed and re-evaluated, it gives the same outputs
        ((layer, mapping),) = parse_maestro_file(r["mapping_text"])
        assert mapping.to_dict() == r["mapping"]
        assert evaluate(layer, hw, [mapping]).outputs(0)["runtime_cycles"] == r["best"]["runtime_cycles"]
        # results.json holds the unique shape's text once (its first layer's); each layer's
        # file names the layer itself
        own = r["mapping_text"].replace("Layer L02 {", f"Layer L{r['index']:02d} {{")
        assert (run_dir / "mappings" / f"layer_{r['index']:02d}.m").read_text() == own
    t = res["totals"]
    assert t["feasible"] and t["layers"] == 2
    assert t["latency_cycles"] == sum(r["best"]["runtime_cycles"] for r in res["layers"])
    assert t["energy_nJ"] == pytest.approx(sum(r["best"]["energy_nJ"] for r in res["layers"]))
    assert t["compute_bound_cycles"] == 2 * math.ceil(107495424 / 168)
    assert t["ratio_to_compute_bound"] == pytest.approx(t["latency_cycles"] / t["compute_bound_cycles"])
    assert t["ratio_to_compute_bound"] >= 1
    assert "total over 2 layers" in proc.stdout and "L1: " in proc.stdout
    # what the job prints also reaches Hydra's job log
    log = (run_dir / "run.log").read_text()
    assert "total over 2 layers" in log and "L1: " in log and "#  shape" in log
    assert f"[gamma.job][INFO] - layer   2 {res['layers'][0]['shape']}: " in log


def test_table_fits_120_columns_and_wraps_between_tokens(cli_run):
    """The mapping column wraps onto indented lines, never inside a token such as S(K,4)."""
    _, res, _, _ = cli_run
    out = io.StringIO()
    report.print_table(res, out, width=120)
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 120 for line in lines), [len(line) for line in lines]
    start = lines[0].index("mapping")
    rows: list[list[str]] = []
    for line in lines[1:]:
        if line.startswith("total over"):
            break
        if not line[:start].strip():  # a continuation line of the mapping
            rows[-1].append(line[start:])
        else:
            rows.append([line[start:]])
    assert len(rows) == 2 and all(len(parts) >= 2 for parts in rows)  # ~90 characters each: wrapped
    for parts, r in zip(rows, res["layers"]):
        assert " ".join(parts).split() == report.compact_mapping(r["mapping"]).split()
        assert all(p == p.strip() and p for p in parts)
    narrow = io.StringIO()
    report.print_table(res, narrow, width=10_000)
    assert len(narrow.getvalue().splitlines()) == len(res["layers"]) + 2  # no wrapping needed


def test_help_names_the_groups_and_main_keys():
    proc = run_cli(["--help"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) < 45  # not the composed config (231 lines, mostly ResNet-18's layers)
    text = proc.stdout
    assert text.startswith("gamma: search how to map every layer of a DNN")
    for group in ("model", "system", "platform", "optimizer", "objective", "experiment",
                  "hparams_search", "ablation"):
        assert any(line.startswith(f"{group}: ") for line in lines), group
    assert ("experiment: ablation_operators, ablation_popgen, ablation_rates, codesign, codesign_front, "
            "fig6, fig8, fig9, table5, table6") in lines
    assert "seed            same seed => same mappings [0]" in lines
    assert "budget          cost-model evaluations per unique layer [10000]" in lines
    assert "K: 64" not in text  # no layer table


def test_mlflow_run(cli_run):
    from mlflow.tracking import MlflowClient

    _, res, uri, _ = cli_run
    client = MlflowClient(uri)
    run = client.get_run(res["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "gamma"
    p = run.data.params
    assert p["budget"] == "400" and p["optimizer.name"] == "random" and p["optimizer.batch"] == "100"
    assert p["system.max_levels"] == "2" and p["mapspace.parallel_dims"] == '["K", "C", "Y", "X"]'
    m = run.data.metrics
    assert m["latency_cycles"] == res["totals"]["latency_cycles"]
    assert m["x_bound"] == pytest.approx(res["totals"]["ratio_to_compute_bound"])
    for i in (2, 3):
        hist = client.get_metric_history(run.info.run_id, f"layers/best_cost_{i:02d}")
        layer = res["layers"][i - 2]
        assert [[h.step, h.value] for h in sorted(hist, key=lambda h: h.step)] == \
            [pt for pt in layer["history"] if pt[1] is not None]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"results.json", "config.yaml", "convergence.png", "mappings"} <= names
    assert {a.path for a in client.list_artifacts(run.info.run_id, "mappings")} == \
        {"mappings/layer_02.m", "mappings/layer_03.m"}


def test_same_seed_same_results(cli_run, tmp_path):
    _, cli_res, _, _ = cli_run
    overrides = [*SMALL, "tracking.enabled=false"]
    code1, a = run_inprocess(overrides, tmp_path / "a")
    code2, b = run_inprocess(overrides, tmp_path / "b")
    assert code1 == code2 == 0 and a["mlflow"] is None
    assert without_run_fields(a) == without_run_fields(b) == without_run_fields(cli_res)
    assert cli_res["label"] == "random batch=100" and a["label"] == "random"
    _, c = run_inprocess([*overrides, "seed=1"], tmp_path / "c")
    assert c["layers"][0]["mapping"] != a["layers"][0]["mapping"]


def test_unknown_optimizer(tmp_path, capsys):
    code, res = run_inprocess([*SMALL, "optimizer.name=nope", "tracking.enabled=false"], tmp_path)
    err = capsys.readouterr().err
    assert code == 1 and res["status"] == "failed"
    assert "error: unknown optimizer 'nope'; available: " in err and "random" in err
    proc = run_cli(["optimizer=nope", f"hydra.run.dir={tmp_path / 'cli'}"])
    assert proc.returncode != 0
    assert "Available options in 'optimizer'" in proc.stderr and "random" in proc.stderr


def test_bad_model_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("K,C,Y,X,R,S,T\n64,3,224,224,7,7,1\n64,x,56,56,3,3,1\n")
    proc = run_cli(["model=file", f"model.path={bad}", "optimizer=random", "tracking.enabled=false",
                    f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 1
    assert f"error: {bad}: row 2 (line 3): column C: 'x' is not an integer" in proc.stderr
    assert "Traceback" not in proc.stderr


class InterruptOnSecondLayer(Optimizer):
    """Random search on the first layer it is given, Ctrl-C in the middle of the second."""

    calls = 0

    def __init__(self, batch: int = 100) -> None:
        self.batch = batch

    def optimize(self, objective: Objective, rng: np.random.Generator, on_progress=None) -> None:
        InterruptOnSecondLayer.calls += 1
        while objective.remaining > 0:
            objective.evaluate(objective.space.random(min(self.batch, objective.remaining), rng))
            if InterruptOnSecondLayer.calls == 2:
                raise KeyboardInterrupt


def test_keyboard_interrupt(tmp_path, monkeypatch, new_store):
    from mlflow.tracking import MlflowClient

    register("interrupt_test")(InterruptOnSecondLayer)
    uri = new_store(tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    code, res = run_inprocess(["budget=300", "optimizer=random", "optimizer.name=interrupt_test",
                               "layers=[1,2]", "tracking.experiment=interrupted"], tmp_path / "run")
    assert code == 130 and res["status"] == "killed"
    assert [r["index"] for r in res["layers"]] == [1]
    assert res["layers"][0]["samples_used"] == 300 and res["totals"]["layers"] == 1
    client = MlflowClient(uri)
    run = client.get_run(res["mlflow"]["run_id"])
    assert run.info.status == "KILLED"
    assert client.get_experiment(run.info.experiment_id).name == "interrupted"
    assert client.get_metric_history(run.info.run_id, "layers/best_cost_01")
    assert not client.get_metric_history(run.info.run_id, "layers/best_cost_02")
    assert "results.json" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_a_sweep_creates_the_store_and_experiment_before_its_jobs(tmp_path, monkeypatch):
    """Parallel jobs creating a brand-new SQLite store collide and can leave it half-migrated;
    the sweep's callback creates it first, in the launching process."""
    from mlflow.tracking import MlflowClient

    from gamma.tracking.callbacks import PrepareTracking

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=["tracking.experiment=prepared"], return_hydra_config=True)
    targets = [c["_target_"] for c in cfg.hydra.callbacks.values()]
    # Hydra ends callbacks in reverse order: the summary is written before the parent run ends;
    # the sweep's config files and grid are checked before the tracking is prepared
    assert targets == ["gamma.search.sweep.CheckSweep", "gamma.tracking.callbacks.PrepareTracking",
                       "gamma.search.sweep.SweepSummary"]
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    PrepareTracking().on_multirun_start(cfg)
    exp = MlflowClient(tracking_uri=uri).get_experiment_by_name("prepared")
    assert exp is not None and exp.artifact_location == (tmp_path / "mlartifacts" / "prepared").as_uri()
    PrepareTracking().on_multirun_start(cfg)  # an existing store and experiment are kept
    assert MlflowClient(tracking_uri=uri).get_experiment_by_name("prepared").experiment_id == exp.experiment_id


def test_joblib_sweep_runs_baselines_and_survives_failed_jobs(tmp_path, new_store):
    """A sweep in a joblib (loky) worker (one: each would import nevergrad, 3 s): the worker
    registers the baselines; a job with bad settings
    and a job where nevergrad itself raises (DE with a negative population: "Both asked and told
    queues are empty") are recorded as failed, with their errors, in results.json and MLflow, and
    the other jobs still run; the sweep then names the failed jobs and exits 1."""
    uri = new_store(tmp_path / "mlflow.db")
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    proc = run_cli(["-m", "optimizer=de", "optimizer.name=nosuch,de",
                    "optimizer.optimizer=DifferentialEvolution",
                    "optimizer.options={popsize:-3},{popsize:30}", "budget=200", "layers=[2]",
                    "tracking.experiment=failures", "hydra/launcher=joblib", "hydra.launcher.n_jobs=1",
                    f"hydra.sweep.dir={tmp_path / 'sweep'}"], env)
    assert proc.returncode == 1, proc.stderr
    assert f"error: 3 of 4 jobs of the sweep failed (the others' results are kept in {tmp_path / 'sweep'}):" \
        in proc.stderr
    assert "Traceback" not in proc.stderr
    jobs = {}
    for f in (tmp_path / "sweep").glob("*/results.json"):
        r = read_results(f)
        cfg = yaml.safe_load((f.parent / "config.yaml").read_text())
        jobs[r["optimizer"], cfg["optimizer"]["options"]["popsize"]] = r
    assert len(jobs) == 4
    # job folders are named by the job's overrides (Hydra's override_dirname), not 0..3
    folders = {f.parent.name for f in (tmp_path / "sweep").glob("*/results.json")}
    assert {d for d in folders if "optimizer.name=nosuch" in d and "optimizer.options={popsize:-3}" in d} \
        == {"budget=200,layers=[2],optimizer.name=nosuch,optimizer.optimizer=DifferentialEvolution,"
            "optimizer.options={popsize:-3},optimizer=de"}
    assert len(folders) == 4 and all("layers=[2]" in d for d in folders)
    for popsize in (-3, 30):
        bad = jobs["nosuch", popsize]
        assert bad["status"] == "failed" and "unknown optimizer 'nosuch'; available:" in bad["error"]
        assert "de" in bad["error"] and "bo" in bad["error"]
    lib = jobs["de", -3]
    assert lib["status"] == "failed"
    # nevergrad takes the option, then fails at its first generation: caught before the search
    assert lib["error"] == ("optimizer.options = {'popsize': -3}: nevergrad's DifferentialEvolution "
                            "cannot run with them (RuntimeError: Both asked and told queues are empty.)")
    ok = jobs["de", 30]
    assert ok["status"] == "finished" and ok["layers"][0]["samples_used"] == 200
    assert f"error: {lib['error']}" in proc.stderr
    runs = {r["run_id"]: r for r in reader.experiment_runs("failures", uri)}
    assert len(runs) == 4
    by_status = sorted((r["status"], r["error"] or "") for r in runs.values())
    assert [s for s, _ in by_status] == ["FAILED", "FAILED", "FAILED", "FINISHED"]
    assert lib["error"] in [e for _, e in by_status]
