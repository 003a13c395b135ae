"""objective=two_stage: stage 1 (latency), the pipeline's bottleneck, stage 2 (energy or power)
under latency <= bottleneck, seeded with the stage-1 best. Real cost model, small budgets."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gamma.results import console as report
from gamma.search.api import search_model
from gamma.objectives.scalar import R_LATENCY
from gamma.search.job import execute
from jobs import run_inprocess

ROOT = Path(__file__).resolve().parents[1]
#: ResNet-18 layers of four unique shapes (layer 5 repeats layer 2's shape).
LAYERS = "layers=[2,5,6,8,12]"
BASE = ["model=resnet18", "system=s3", "platform=edge", "budget=1000", "seed=3", LAYERS,
        "tracking.enabled=false"]


@pytest.fixture(scope="module")
def energy_job(tmp_path_factory):
    """A GAMMA two-stage job minimizing energy in stage 2, and a plain latency job alike."""
    tmp = tmp_path_factory.mktemp("two_stage")
    code, res = run_inprocess([*BASE, "objective=two_stage"], tmp / "two_stage")
    assert code == 0
    code, lat = run_inprocess([*BASE, "objective=latency"], tmp / "latency")
    assert code == 0
    return res, lat


def test_stage_1_equals_a_latency_job_with_the_same_seed(energy_job):
    res, lat = energy_job
    assert [r["index"] for r in res["layers"]] == [2, 5, 6, 8, 12]
    for r, plain in zip(res["layers"], lat["layers"]):
        assert r["stage1_search"]["best_cost"] == plain["best_cost"]
        assert r["stage1"]["runtime_cycles"] == plain["best_cost"]
        assert r["stage1_search"]["mapping"] == plain["mapping"]
        assert r["stage1_search"]["history"] == plain["history"]


def test_bottleneck_is_the_slowest_stage_1_layer(energy_job):
    res, _ = energy_job
    ts = res["two_stage"]
    slowest = max(res["layers"], key=lambda r: r["stage1"]["runtime_cycles"])
    assert ts["bottleneck_cycles"] == slowest["stage1"]["runtime_cycles"]
    assert ts["bottleneck_layer"] == slowest["index"]
    assert ts["stage1"]["max_layer_latency_cycles"] == ts["bottleneck_cycles"]


def test_stage_2_keeps_every_layer_within_the_bottleneck_and_never_worse(energy_job):
    res, _ = energy_job
    ts = res["two_stage"]
    for r in res["layers"]:
        assert r["stage2"]["runtime_cycles"] <= ts["bottleneck_cycles"]
        assert r["stage2"]["energy_nJ"] <= r["stage1"]["energy_nJ"]
    assert ts["stage2"]["energy_nJ"] < ts["stage1"]["energy_nJ"]  # the whole point
    # The bottleneck layer's mutants that are slower than the bottleneck are rejected.
    bottleneck = next(r for r in res["layers"] if r["index"] == ts["bottleneck_layer"])
    assert bottleneck["rejections"].get(R_LATENCY, 0) > 0
    assert all(R_LATENCY not in r["stage1_search"]["rejections"] for r in res["layers"])


def test_stage_2_starts_from_the_stage_1_best_and_has_the_full_budget(energy_job):
    res, _ = energy_job
    for r in res["layers"]:
        assert r["history"][0] == [1, r["stage1"]["energy_nJ"]]  # the seed is evaluated first
        assert r["samples_used"] == 1000 and r["stage1_search"]["samples_used"] == 1000


def test_results_json_fields_are_consistent(energy_job):
    res, _ = energy_job
    ts, layers = res["two_stage"], res["layers"]
    assert res["objective"] == "two_stage" and res["objective_unit"] == "nJ"
    assert ts["stage2_metric"] == "energy" and ts["running_stage"] is None
    for r in layers:
        assert r["best"] == r["stage2"] and r["best_cost"] == r["stage2"]["energy_nJ"]
    for stage in ("stage1", "stage2"):
        for key, src in (("latency_cycles", "runtime_cycles"), ("energy_nJ", "energy_nJ"),
                         ("power", "power")):
            assert ts[stage][key] == pytest.approx(sum(r[stage][src] for r in layers))
    assert res["totals"]["energy_nJ"] == pytest.approx(ts["stage2"]["energy_nJ"])
    assert res["totals"]["latency_cycles"] == pytest.approx(ts["stage2"]["latency_cycles"])
    saving = 100 * (1 - ts["stage2"]["energy_nJ"] / ts["stage1"]["energy_nJ"])
    assert ts["savings_percent"]["energy_nJ"] == pytest.approx(saving, abs=1e-3)
    # Both stages' seconds count in the job's timings.
    stage1_s = sum(r["stage1_search"]["costmodel_s"] for r in layers if r["index"] != 5)
    assert res["costmodel_s"] >= stage1_s > 0


def test_console_report_marks_the_bottleneck_and_gives_the_savings(energy_job):
    res, _ = energy_job
    out = io.StringIO()
    report.print_table(res, out)
    text = out.getvalue()
    line = next(l for l in text.splitlines() if l.endswith("<- bottleneck"))
    assert line.split()[0] == str(res["two_stage"]["bottleneck_layer"])
    assert f"energy {res['two_stage']['savings_percent']['energy_nJ']:,.1f} %" in text


def test_stage2_power_with_random_search_and_the_library_api():
    res = search_model("resnet18", "edge", system="s3", layers=[6, 12], budget=300, seed=1,
                       optimizer={"name": "random", "batch": 100},
                       objective={"name": "two_stage", "stage2": "power"},
                       overrides=["tracking.enabled=false"])
    ts = res.two_stage
    assert ts.metric == "power"
    cycles, layer = ts.bottleneck
    assert cycles == max(ts.stage1[u].result.cost for u in ts.stage1) and layer in (6, 12)
    for i, r in res.layers.items():
        s1 = ts.stage1[res.model.unique_layers()[1][i - 1]].result
        assert r.outputs["runtime_cycles"] <= cycles
        assert r.cost == r.outputs["power"] <= s1.outputs["power"]
        assert r.summary["samples_used"] == 300
    assert math.isfinite(res.total_cost)


def test_a_layer_without_a_feasible_stage_1_mapping_leaves_no_bottleneck(tmp_path):
    # One random sample per layer: layer 1 (R7) has none feasible with seed 0 on S3.
    code, res = run_inprocess(["model=resnet18", "system=s3", "budget=1", "seed=0",
                               "layers=[1,2]", "optimizer=random", "objective=two_stage",
                               "tracking.enabled=false"], tmp_path)
    assert code == 0
    ts = res["two_stage"]
    assert ts["bottleneck_cycles"] is None and ts["stage2"] is None
    assert all(r["stage2"] is None and r["samples_used"] == 0 for r in res["layers"])
    assert [r["stage1_search"]["samples_used"] for r in res["layers"]] == [1, 1]
    assert not res["totals"]["feasible"]


def test_bad_stage2_is_an_error_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "objective=two_stage",
                           "objective.stage2=latency", "budget=10", "layers=[2]",
                           "tracking.enabled=false", f"hydra.run.dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert ("error: objective.stage2 = 'latency': stage 2 minimizes one of energy, power"
            in proc.stderr)
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("setting, message", [
    ("resume=true", "error: resume: objective=two_stage cannot be resumed"),
    ("parallel.workers=2", "error: parallel.workers = 2: objective=two_stage searches one unique"),
])
def test_resume_and_workers_are_refused(tmp_path, capsys, setting, message):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=["objective=two_stage", "budget=10", "layers=[2]",
                                           "tracking.enabled=false", setting])
    assert execute(cfg, tmp_path) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_gamma_breeds_its_first_generation_from_the_seed():
    """A seeded objective: GAMMA evaluates no random population; its first children are bred
    from P copies of the seed, so they resemble it far more than random genomes do."""
    from gamma.search.api import settings
    from gamma.search.setup import make_objective
    from gamma.hardware import Hardware
    from gamma.optimizers import make_optimizer
    from gamma.workloads.files import model_from_config

    cfg = settings(system="s3", budget=1 + 50)
    layer = model_from_config(cfg["model"]).layers[1]
    hw = Hardware.from_dict(cfg["platform"])
    rng = np.random.default_rng(0)
    first = make_objective({**cfg, "budget": 500}, layer, hw)
    make_optimizer("random", batch=500).optimize(first, rng)
    seed = first.best.genome  # a feasible mapping (an infeasible seed leaves nothing to breed)
    obj = make_objective(cfg, layer, hw)
    assert obj.evaluate_start(seed).cost == first.best.cost
    batches = []
    evaluate = obj.evaluate_with_tie_break
    obj.evaluate_with_tie_break = lambda g: (batches.append(g), evaluate(g))[1]
    make_optimizer("gamma", population=50).optimize(obj, np.random.default_rng(1))
    assert obj.used == 51 and [len(b) for b in batches] == [50]

    def likeness(pop) -> float:
        """Mean share of the seed's level-1..n loop-order and tile genes that ``pop`` keeps."""
        n = int(seed.nlev[0])
        same = [(pop.order[:, :n] == seed.order[0, :n]).mean(axis=(1, 2)),
                (pop.tile[:, :n] == seed.tile[0, :n]).mean(axis=(1, 2))]
        return float(np.mean(same))

    random = obj.space.random(50, rng, levels=obj.space.min_levels)
    assert likeness(batches[0]) > likeness(random) + 0.3


def test_mlflow_run_gets_the_layers_and_the_two_stage_metrics(tmp_path, new_store):
    from mlflow.tracking import MlflowClient

    uri = new_store(tmp_path / "mlflow.db")
    code, res = run_inprocess(["model=resnet18", "system=s3", "budget=200", "layers=[2,6]",
                               "objective=two_stage", "objective.stage2=power",
                               "tracking.enabled=true", f"tracking.uri={uri}"], tmp_path / "run")
    assert code == 0 and res["mlflow"]["run_id"] and "error" not in res["mlflow"]
    metrics = MlflowClient(uri).get_run(res["mlflow"]["run_id"]).data.metrics
    ts = res["two_stage"]
    assert metrics["two_stage/bottleneck_cycles"] == ts["bottleneck_cycles"]
    assert metrics["two_stage/stage2/power"] == pytest.approx(ts["stage2"]["power"])
    assert metrics["layers/latency_cycles_06"] == res["layers"][1]["stage2"]["runtime_cycles"]
    assert metrics["layers/best_cost_02"] == res["layers"][0]["stage2"]["power"]
