"""A sweep read as one result: how many jobs it has, its jobs' one console line each, its summary
table, and the local launcher's jobs at once. The sweep itself runs as a user types it in
tests/test_tracking.py (its console, the summary printed and logged to the parent run)."""

from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gamma.results import sweep as S
from gamma.search.sweep import job_prefix, jobs_at_once, sweep_grid

ROOT = Path(__file__).resolve().parents[1]


def composed(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        return compose("config", overrides=overrides, return_hydra_config=True)


def swept(task: list[str], base: list[str] = ()):
    """The config a sweep's launching process has: ``base`` composed, the command line's
    overrides ``task`` (sweeps included) in ``hydra.overrides.task`` as Hydra puts them."""
    cfg = composed(list(base))
    OmegaConf.update(cfg, "hydra.overrides.task", task, force_add=True)
    return cfg


def test_the_grid_of_a_command_line_sweep():
    cfg = swept(["optimizer=gamma,cma,pso", "system=s1,s2,s3", "budget=300"])
    assert sweep_grid(cfg) == (9, ["optimizer", "system"])
    assert sweep_grid(swept(["seed=range(0,5)", "budget=300"])) == (5, ["seed"])


def test_a_command_line_value_replaces_the_experiments_grid():
    # fig6: 8 optimizers x 3 systems x 2 platforms x 3 seeds; seed=0 and system=s2 given
    assert sweep_grid(swept(["experiment=fig6"], ["experiment=fig6"]))[0] == 144
    jobs, keys = sweep_grid(swept(["experiment=fig6", "seed=0", "system=s2"], ["experiment=fig6"]))
    assert jobs == 16 and sorted(keys) == ["optimizer", "platform"]


def test_the_optuna_sweeper_counts_its_trials():
    cfg = swept([], ["hparams_search=gamma_rates", "hydra.sweeper.n_trials=7"])
    assert sweep_grid(cfg) == (7, None)


def test_the_local_launcher_shares_the_cores_with_each_jobs_workers():
    cores = len(os.sched_getaffinity(0))
    assert composed([]).hydra.launcher.n_jobs == cores
    assert composed(["parallel.workers=2"]).hydra.launcher.n_jobs == max(1, cores // 2)
    assert jobs_at_once(10 * cores) == 1
    assert composed(["hydra/launcher=basic"]).hydra.launcher._target_.endswith("BasicLauncher")


def test_a_jobs_prefix_is_what_the_sweep_varies():
    overrides = ["optimizer=cma", "system=s3", "budget=300", "hydra.sweep.dir=x"]
    assert job_prefix(overrides, ["optimizer", "system"]) == "cma s3"
    assert job_prefix(overrides, None) == "cma s3 300"
    assert job_prefix(["budget=300"], ["seed"]) == "job"


def job(label: str, system: str, latency: float | None, bound: float = 1000.0,
        optimum: float | None = None, status: str = "finished") -> dict:
    feasible = latency is not None
    totals = {"layers": 2, "feasible": feasible, "infeasible_layers": [] if feasible else [2],
              "latency_cycles": latency, "compute_bound_cycles": bound,
              "ratio_to_compute_bound": latency / bound if feasible else None}
    if optimum is not None and feasible:
        totals["ratio_to_optimum"] = latency / optimum
    return {"label": label, "model": "resnet18", "system": system, "platform": "edge",
            "status": status, "totals": totals, "wall_s": 2.0, "objective": "latency"}


def test_summary_rows_over_seeds_with_an_infeasible_seed_and_a_known_optimum():
    jobs = [job("gamma", "s2", 1100.0, optimum=1000.0), job("gamma", "s2", 1300.0, optimum=1000.0),
            job("gamma", "s2", 1200.0, optimum=1000.0),
            job("pso", "s2", 1500.0), job("pso", "s2", None),
            job("cma", "s1", None, status="failed")]
    rows = {(r["label"], r["system"]): r for r in S.summarize(jobs)}
    g = rows["gamma", "s2"]
    assert (g["seeds"], g["latency_cycles"], g["latency_min"], g["latency_max"]) == (3, 1200, 1100, 1300)
    assert g["x_bound"] == 1.2 and g["x_optimum"] == 1.2 and g["wall_s"] == 6.0
    p = rows["pso", "s2"]  # one seed infeasible: no latency for the arm, its fewest feasible layers
    assert p["latency_cycles"] is None and p["x_bound"] is None and p["feasible_layers"] == 1
    assert rows["cma", "s1"]["failed"] == 1
    text = S.summary_table(S.summarize(jobs))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["arm", "system", "seeds"]  # model, platform: one value, hidden
    assert "1,200 (1,100-1,300)" in text and "1.2000x" in text
    assert any(line.startswith("pso") and "infeasible" in line for line in lines)
    assert any(line.startswith("cma") and "failed" in line for line in lines)
    metrics = S.summary_metrics(S.summarize(jobs))
    assert metrics["latency_cycles/gamma.s2"] == 1200 and metrics["x_optimum/gamma.s2"] == 1.2
    assert "latency_cycles/pso.s2" not in metrics and metrics["feasible_layers/pso.s2"] == 1


def test_progress_note_estimates_the_time_left():
    info = S.SweepInfo(jobs=9, start=1000.0)
    assert S.progress_note(4, info, done=3, now=1030.0) == "job 4 of 9, 3 done, about 1 min 0 s left"
    assert S.progress_note(9, info, done=9, now=1090.0) == "job 9 of 9, 9 done"
    assert S.progress_note(2, None, done=0) == "job 2"


def test_a_non_latency_jobs_line_names_its_objective_and_the_latency_bound():
    energy = {**job("gamma", "s2", 1100.0), "objective": "energy", "objective_unit": "nJ",
              "layers": [{"best_cost": 120000.5}, {"best_cost": 3000.0}]}
    line = S.job_line(energy)
    assert line.startswith("energy 123,000 nJ, latency 1,100 cycles, 1.1000x the compute bound")
    assert S.job_line(job("gamma", "s2", 1100.0)).startswith("1,100 cycles, 1.1000x bound, 2 layers")
