"""Experiment configs (conf/experiment/), their arms (conf/ablation/), the Optuna search
(conf/hparams_search/) and what main returns, composed and run as a user does (real cost model).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gamma.search.labels import job_label
from gamma.search.job import run_job
from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
OPERATORS = ("crossover", "mutation", "reorder", "growth", "aging")  # the reference code's
#: Operators the operator ablation switches off: the reference code's five and our structure mutation.
ABLATED = (*OPERATORS, "structure")
GAMMA_DEFAULTS = yaml.safe_load((ROOT / "conf" / "optimizer" / "gamma.yaml").read_text())


def composed(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        return compose("config", overrides=overrides, return_hydra_config=True)


def label_of(cfg) -> str:
    return job_label(OmegaConf.to_container(cfg.optimizer, resolve=True), GAMMA_DEFAULTS, [])


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def sweep_jobs(sweep_dir: Path) -> dict[str, dict]:
    """results.json of every job of a sweep, by job folder name."""
    return {f.parent.name: read_results(f) for f in sweep_dir.glob("*/results.json")}


def test_the_experiments():
    assert EXPERIMENTS == ["ablation_operators", "ablation_popgen", "ablation_rates", "codesign",
                           "codesign_front", "fig6", "fig8", "fig9", "table5", "table6"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes(name):
    cfg = composed([f"experiment={name}"])
    assert cfg.tracking.experiment == name  # the MLflow experiment is the experiment's name
    assert cfg.budget == 10_000 and cfg.label is None
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    params = cfg.hydra.sweeper.params
    assert params.seed == "0,1,2"
    if name in PAPER:
        return  # test_the_paper_experiments
    assert cfg.model.name == "resnet18"
    # fig6 sweeps the systems; an ablation runs on S2 unless system=s1,s2,s3 is given
    assert params.get("system") == ("s1,s2,s3" if name == "fig6" else None)
    if name == "fig6":
        assert params.optimizer == "gamma,stdga,pso,cma,de,tbpsa,bo,random"
        assert params.platform == "edge,cloud"
    elif name == "codesign":
        assert cfg.codesign.name == "digamma" and params.optimizer == "gamma,random,pso"
        assert params.model == "resnet18,mobilenet_v2,vgg16" and params.platform == "edge,cloud"
    elif name == "codesign_front":
        assert cfg.codesign.name == "digamma" and params.optimizer == "gamma,random"
        assert cfg.objective.name == "pareto" and list(cfg.objective.metrics) == ["latency", "area"]
        assert cfg.platform.name == "edge"
    else:
        assert cfg.optimizer.name == "gamma" and cfg.platform.name == "edge"
    # --cfg job, as a user checks it
    proc = run_cli([f"experiment={name}", "--cfg", "job", "-p", "tracking"])
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["experiment"] == name


#: The paper's other experiments: (settings, sweep grid) of each.
PAPER = {
    "fig8": ({"model": "resnet18", "system": "s2", "objective": "energy", "optimizer": "gamma"},
             {"optimizer": "gamma,stdga,pso,cma,de,tbpsa,bo,random", "platform": "edge,cloud"}),
    "fig9": ({"system": "s3", "platform": "edge", "optimizer": "gamma", "objective": "latency"},
             {"model": "mobilenet_v2,mnasnet,resnet18"}),
    "table5": ({"system": "s3", "optimizer": "gamma", "objective": "latency"},
               {"arm": "gamma,gamma_energy,nvdla,eyeriss,shidiannao",
                "model": "mobilenet_v2,mnasnet,shufflenet_v2,resnet50,resnet18,vgg16",
                "platform": "edge,cloud"}),
    "table6": ({"system": "s3", "platform": "edge", "optimizer": "gamma", "objective": "two_stage"},
               {"model": "resnet18,vgg16", "objective.stage2": "energy,power"}),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_the_paper_experiments(name):
    settings, grid = PAPER[name]
    cfg = composed([f"experiment={name}"])
    choices = cfg.hydra.runtime.choices
    assert {k: choices[k] for k in settings} == settings
    assert {k: v for k, v in cfg.hydra.sweeper.params.items() if k != "seed"} == grid


def test_the_table5_arms_are_gamma_and_the_fixed_dataflows():
    """Each arm's optimizer, dataflow, objective and label (the fixed ones are labelled by
    their dataflow by run.py; "arm" itself never enters a label)."""
    seen = {}
    for arm in composed(["experiment=table5"]).hydra.sweeper.params.arm.split(","):
        cfg = composed(["experiment=table5", f"arm={arm}"])
        ch = cfg.hydra.runtime.choices
        seen[arm] = (ch.optimizer, ch.get("dataflow") if ch.optimizer == "fixed" else None,
                     ch.objective, cfg.label)
    assert seen == {"gamma": ("gamma", None, "latency", None),
                    "gamma_energy": ("gamma", None, "energy", None),
                    **{d: ("fixed", d, "latency", None)
                       for d in ("nvdla", "eyeriss", "shidiannao")}}
    assert job_label({"name": "gamma"}, {"name": "gamma"}, ["arm=gamma_energy"]) == "gamma"


def test_without_an_experiment_the_mlflow_experiment_is_gamma():
    cfg = composed([])
    assert cfg.tracking.experiment == "gamma" and "experiment" not in cfg


def test_ablation_operator_arms_and_their_labels():
    arms = composed(["experiment=ablation_operators"]).hydra.sweeper.params.ablation.split(",")
    assert arms == ["full", *(f"{op}_off" for op in ABLATED), "no_elites"]
    labels = {}
    for arm in arms:
        cfg = composed(["experiment=ablation_operators", f"ablation={arm}"])
        labels[arm] = label_of(cfg)
        ops = OmegaConf.to_container(cfg.optimizer).get("operators", {})
        for op in ABLATED:
            switched = ops.get(op, {}).get("enabled", True)
            assert switched is (arm != f"{op}_off"), (arm, op)
    assert labels == {"full": "gamma", "crossover_off": "gamma crossover=off",
                      "mutation_off": "gamma mutation=off", "reorder_off": "gamma reorder=off",
                      "growth_off": "gamma growth=off", "aging_off": "gamma aging=off",
                      "structure_off": "gamma structure=off",
                      "no_elites": "gamma elite_ratio=0.0"}


def test_ablation_rate_arms_are_half_and_one_and_a_half_times_the_default():
    arms = composed(["experiment=ablation_rates"]).hydra.sweeper.params.ablation.split(",")
    assert arms[0] == "full" and len(arms) == 11
    seen = set()
    for arm in arms[1:]:
        op, _, level = arm.split("_")
        cfg = composed(["experiment=ablation_rates", f"ablation={arm}"])
        rate = cfg.optimizer.operators[op].rate
        default = GAMMA_DEFAULTS.get(f"{op}_rate") or GAMMA_DEFAULTS["operators"][op]["rate"]
        assert rate == pytest.approx(default * (0.5 if level == "low" else 1.5), abs=5e-4)
        assert label_of(cfg) == f"gamma {op}.rate={rate}"
        seen.add((op, level))
    assert seen == {(op, level) for op in OPERATORS for level in ("low", "high")}


def test_popgen_splits_the_same_budget():
    cfg = composed(["experiment=ablation_popgen"])
    pops = [int(p) for p in cfg.hydra.sweeper.params["optimizer.population"].split(",")]
    assert [(p, cfg.budget // p) for p in pops] == \
        [(20, 500), (50, 200), (100, 100), (200, 50), (500, 20), (1000, 10)]
    assert all(p * (cfg.budget // p) == cfg.budget for p in pops)


def test_a_tiny_popgen_sweep_command_line_values_win_over_the_grid(tmp_path):
    """seed=0 on the command line replaces the experiment's seed grid: 6 jobs (S2), one per
    population, in folders named by their overrides, each labelled by its population."""
    proc = run_cli(["-m", "experiment=ablation_popgen", "seed=0", "system=s2", "layers=[2]",
                    "budget=300", "tracking.enabled=false", "hydra/launcher=basic",
                    f"hydra.sweep.dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr
    jobs = sweep_jobs(tmp_path)
    # tracking.* and the launcher are left out of the folder names
    assert sorted(jobs) == sorted(f"budget=300,layers=[2],optimizer.population={p},seed=0,system=s2"
                                  for p in (20, 50, 100, 200, 500, 1000))
    assert {r["label"] for r in jobs.values()} == \
        {f"gamma population={p}" for p in (20, 50, 100, 500, 1000)} | {"gamma"}
    assert {(r["seed"], r["system"], r["status"], r["budget"]) for r in jobs.values()} == \
        {(0, "s2", "finished", 300)}
    costs = {r["label"]: r["layers"][0]["best_cost"] for r in jobs.values()}
    assert len(set(costs.values())) >= 2


def test_a_tiny_operator_ablation_runs_eight_labelled_arms(tmp_path):
    """Needs GAMMA's operator layout (optimizer.operators.<op>.enabled, parts helper)."""
    proc = run_cli(["-m", "experiment=ablation_operators", "seed=0", "system=s2", "layers=[2]",
                    "budget=600", "tracking.enabled=false",
                    "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr
    jobs = sweep_jobs(tmp_path)
    assert len(jobs) == 8 and all(r["status"] == "finished" for r in jobs.values())
    assert sorted(r["label"] for r in jobs.values()) == sorted(
        ["gamma", "gamma elite_ratio=0.0", *(f"gamma {op}=off" for op in ABLATED)])
    assert all(name.startswith("ablation=") for name in jobs)
    mappings = {json.dumps(r["layers"][0]["mapping"], sort_keys=True) for r in jobs.values()}
    assert len(mappings) >= 2  # switching parts off changes the search


def test_the_rate_search_is_optuna_over_the_five_rates():
    cfg = composed(["hparams_search=gamma_rates"])
    sweeper = cfg.hydra.sweeper
    assert "optuna" in sweeper._target_.lower() and sweeper.direction == "minimize"
    assert sorted(sweeper.params) == sorted(f"optimizer.operators.{op}.rate" for op in OPERATORS)
    assert all(v == "interval(0.0, 1.0)" for v in sweeper.params.values())
    assert sweeper.n_trials == 40 and cfg.tracking.experiment == "gamma_rates"


def test_a_tiny_rate_search_finishes_trials(tmp_path):
    """main returns each trial's total cost, which Optuna minimizes. Needs GAMMA's operator
    layout (optimizer.operators.<op>.rate, parts helper)."""
    proc = run_cli(["-m", "hparams_search=gamma_rates", "layers=[2]", "budget=400",
                    "optimizer.population=50", "tracking.enabled=false", "hydra.sweeper.n_trials=4",
                    "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr
    jobs = sweep_jobs(tmp_path)
    assert sorted(jobs) == [f"trial_{n}" for n in range(4)]
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    costs = [r["totals"]["latency_cycles"] for r in jobs.values()]
    assert best["best_value"] == min(costs)
    assert sorted(best["best_params"]) == sorted(f"optimizer.operators.{op}.rate" for op in OPERATORS)


def test_run_job_returns_the_total_cost_or_inf(tmp_path):
    """The objective main returns: the sum of the layers' best costs; inf when a layer has no
    feasible mapping (ResNet-18's first layer does not fit the cloud platform's L1)."""
    small = ["optimizer=random", "optimizer.batch=100", "budget=200", "tracking.enabled=false"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        ok = compose("config", overrides=[*small, "layers=[2,3,7]"])
        bad = compose("config", overrides=[*small, "layers=[1,2]", "platform=cloud"])
        energy = compose("config", overrides=[*small, "layers=[2,7]", "objective=energy"])
    out = run_job(ok, tmp_path / "ok")
    res = read_results(tmp_path / "ok" / "results.json")
    assert out.code == 0 and out.cost == res["totals"]["latency_cycles"]
    assert out.cost == sum(r["best"]["runtime_cycles"] for r in res["layers"])  # 3 layers, 2 shapes
    out = run_job(bad, tmp_path / "bad")
    res = read_results(tmp_path / "bad" / "results.json")
    assert out.code == 0 and out.cost == math.inf and 1 in res["totals"]["infeasible_layers"]
    out = run_job(energy, tmp_path / "energy")
    res = read_results(tmp_path / "energy" / "results.json")
    assert out.cost == pytest.approx(res["totals"]["energy_nJ"])
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        unknown = compose("config", overrides=[*small, "optimizer.name=nope"])
    out = run_job(unknown, tmp_path / "unknown")
    assert out.code == 1 and out.cost == math.inf
