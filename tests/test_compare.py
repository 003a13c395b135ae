"""scripts/compare.py on real sweeps logged to a temporary MLflow store: the table's medians,
spreads and ratios are those of the jobs' results.json, every arm is its own row, ``--baseline``
moves the ratios, the objective's unit labels the tables, the ablation table, the plots and the
summary run exist, failed jobs are listed, and the end-to-end helpers count infeasible layers.
Also the objective's best-so-far grid: the same steps for every optimizer, and per-sample bests."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from gamma.analysis import compare, optima as optima_script
from gamma.results.layout import read_results
from jobs import run_inprocess

ROOT = Path(__file__).resolve().parents[1]


COMMON = ["budget=1000", "layers=[2,6]", "tracking.experiment=cmp"]


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, new_store):
    """gamma and random, seeds 0 and 1, two layers of ResNet-18 on S2/edge; one failing job."""
    tmp = tmp_path_factory.mktemp("cmp")
    env = dict(os.environ, MLFLOW_TRACKING_URI=new_store(tmp / "mlflow.db"))
    proc = run_cli(["-m", "optimizer=gamma,random", "seed=0,1", *COMMON, "hydra/launcher=basic",
                    f"hydra.sweep.dir={tmp / 'sweep'}"], env)  # one process: less CPU for the tests
    assert proc.returncode == 0, proc.stderr
    code, _ = run_inprocess(["optimizer=random", "optimizer.name=nosuch", *COMMON,
                             f"tracking.uri={env['MLFLOW_TRACKING_URI']}"], tmp / "bad")
    assert code != 0
    jobs = [read_results(f) for f in (tmp / "sweep").glob("*/results.json")]
    assert len(jobs) == 4
    return tmp, env["MLFLOW_TRACKING_URI"], jobs


def test_table_medians_and_ratios(sweep, capsys):
    tmp, uri, jobs = sweep
    out = tmp / "report"
    assert compare.main(["--experiment", "cmp", "--out", str(out), "--uri", uri]) == 0
    rows = {r["label"]: r for r in csv.DictReader(open(out / "table.csv", encoding="utf-8"))}
    assert set(rows) == {"gamma", "random"}
    med = {}
    for opt in rows:
        mine = [j for j in jobs if j["optimizer"] == opt]
        assert all(j["totals"]["feasible"] for j in mine)
        lat = [j["totals"]["latency_cycles"] for j in mine]
        en = [j["totals"]["energy_nJ"] for j in mine]
        med[opt] = (float(np.median(lat)), float(np.median(en)))
        r = rows[opt]
        assert (r["system"], r["platform"], r["seeds"], r["objective"], r["unit"]) == \
            ("s2", "edge", "2", "latency", "cycles")
        assert (r["model"], r["budget"], r["layers"]) == ("resnet18", "1000", "[2, 6]")
        assert float(r["cost"]) == pytest.approx(med[opt][0])
        assert (float(r["cost_min"]), float(r["cost_max"])) == (min(lat), max(lat))
        assert float(r["latency_cycles"]) == pytest.approx(med[opt][0])
        assert float(r["energy_nJ"]) == pytest.approx(med[opt][1])
        assert float(r["ratio_to_bound"]) == pytest.approx(
            med[opt][0] / mine[0]["totals"]["compute_bound_cycles"])
        assert float(r["ratio_to_bound"]) >= 1.0
        assert float(r["infeasible_layers"]) == 0
    assert float(rows["gamma"]["cost_vs_baseline"]) == 1.0
    assert float(rows["random"]["cost_vs_baseline"]) == pytest.approx(med["random"][0] / med["gamma"][0])
    assert float(rows["random"]["energy_vs_baseline"]) == pytest.approx(med["random"][1] / med["gamma"][1])
    table = (out / "table.md").read_text(encoding="utf-8")
    assert "Failed or unfinished jobs:" in table and "nosuch" in table
    assert f"{med['gamma'][0]:,.0f}" in table and "latency (cycles), median" in table
    assert not (out / "ablation.md").exists()  # one arm per optimizer
    for name in ("convergence_s2_edge.png", "ratio_s2_edge.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run_id = capsys.readouterr().out.strip().split()[-1]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.data.tags["gamma.summary"] == "1"
    logged = {a.path for a in client.list_artifacts(run_id)}
    assert {"table.md", "table.csv", "convergence_s2_edge.png", "ratio_s2_edge.png"} <= logged
    # a second report leaves the summary run out of the jobs it reads
    assert compare.main(["--experiment", "cmp", "--out", str(tmp / "again"), "--uri", uri]) == 0
    assert (tmp / "again" / "table.csv").read_text() == (out / "table.csv").read_text()
    # the table alone (no results.json downloaded) is the same
    assert compare.main(["--experiment", "cmp", "--out", str(tmp / "quick"), "--uri", uri,
                         "--no-plots"]) == 0
    assert (tmp / "quick" / "table.csv").read_text() == (out / "table.csv").read_text()
    assert not list((tmp / "quick").glob("*.png"))


def test_optimizers_record_best_so_far_on_one_grid(sweep):
    """gamma (population 200) and random (batches of 1,000) at budget 1,000: the same steps,
    from the first sample to the last, every 10th sample among them, at most 200; a best that
    never gets worse."""
    _, _, jobs = sweep
    steps = {tuple(s for s, _ in layer["history"]) for j in jobs for layer in j["layers"]}
    assert {j["optimizer"] for j in jobs} == {"gamma", "random"} and len(steps) == 1
    (grid,) = steps
    assert grid[0] == 1 and grid[-1] == 1000 and len(grid) <= 200 and list(grid) == sorted(set(grid))
    assert set(range(10, 1001, 10)) <= set(grid) and {2, 3, 4} <= set(grid)  # log-spaced start
    for j in jobs:
        for layer in j["layers"]:
            best = [math.inf if c is None else c for _, c in layer["history"]]
            assert best == sorted(best, reverse=True) and best[-1] == layer["best_cost"]


def test_unknown_experiment(sweep, capsys):
    _, uri, _ = sweep
    assert compare.main(["--experiment", "nosuch", "--out", str(sweep[0] / "x"), "--uri", uri]) == 1
    assert "no MLflow experiment 'nosuch'" in capsys.readouterr().err


def fake(layers: list[tuple[float | None, list[list[float]]]]) -> dict:
    """A results.json with one entry per layer: (best runtime or None, history)."""
    out = []
    for runtime, hist in layers:
        best = None if runtime is None else {"runtime_cycles": runtime, "energy_nJ": 2 * runtime}
        out.append({"feasible": runtime is not None, "best": best, "history": hist})
    ok = all(r is not None for r, _ in layers)
    total = sum(r for r, _ in layers if r is not None)
    return {"layers": out, "totals": {"feasible": ok, "latency_cycles": total if ok else None,
                                      "energy_nJ": 2 * total if ok else None}}


def test_end_to_end_helpers_count_infeasible_layers():
    res = fake([(100.0, [[10, math.inf], [20, 150.0], [40, 100.0]]), (None, [[10, math.inf]])])
    assert compare.end_to_end(res, "latency_cycles") == math.inf
    assert compare.feasible_part(res, "latency_cycles") == (100.0, 1)
    assert compare.feasible_part(res, "energy_nJ") == (200.0, 1)
    ok = fake([(100.0, [[10, math.inf], [20, 150.0], [40, 100.0]]), (7.0, [[10, 9.0], [40, 7.0]])])
    assert compare.end_to_end(ok, "latency_cycles") == 107.0
    grid = np.array([5, 10, 20, 30, 40])
    assert compare.curve(ok, grid).tolist() == [math.inf, math.inf, 159.0, 159.0, 107.0]
    assert compare.curve(res, grid).tolist() == [math.inf] * 5
    assert compare.curve(res, grid, feasible_only=True).tolist() == [math.inf, math.inf, 150.0, 150.0, 100.0]
    assert compare.ratio_to(150.0, 100.0) == 1.5
    assert math.isnan(compare.ratio_to(150.0, math.inf))  # GAMMA infeasible: no ratio
    assert math.isnan(compare.ratio_to(math.inf, math.inf))
    assert compare.ratio_to(math.inf, 100.0) == math.inf  # shown as "-" next to "infeasible"


def test_a_job_run_again_counts_once_by_its_newest_run():
    def run(run_id: str, start: int, seed: str) -> dict:
        return {"run_id": run_id, "start_time": start, "params": {"optimizer.name": "gamma", "seed": seed},
                "results": None, "status": "FINISHED", "error": None}

    runs = [run("a", 10, "0"), run("b", 30, "0"), run("c", 20, "0"), run("d", 5, "1"),
            {**run("e", 1, "0"), "params": {}}]
    kept, left_out = compare.latest_runs(runs)
    assert sorted(r["run_id"] for r in kept) == ["b", "d", "e"] and left_out == 2


# --- every arm its own row ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def arms(tmp_path_factory, new_store):
    """Two arms of random search (batches of 100 and 250), seeds 0 and 1, latency and energy."""
    tmp = tmp_path_factory.mktemp("arms")
    env = dict(os.environ, MLFLOW_TRACKING_URI=new_store(tmp / "mlflow.db"))
    proc = run_cli(["-m", "optimizer=random", "optimizer.batch=100,250", "seed=0,1",
                    "objective=latency,energy", "budget=1000", "layers=[2,6]", "tracking.experiment=arms",
                    "hydra/launcher=basic", f"hydra.sweep.dir={tmp / 'sweep'}"], env)
    assert proc.returncode == 0, proc.stderr
    jobs = []
    for f in (tmp / "sweep").glob("*/results.json"):
        cfg = yaml.safe_load((f.parent / "config.yaml").read_text())
        jobs.append((cfg["optimizer"]["batch"], cfg["objective"]["name"], read_results(f)))
    assert len(jobs) == 8 and all(r["totals"]["feasible"] for _, _, r in jobs)
    return tmp, env["MLFLOW_TRACKING_URI"], jobs


def expected(jobs: list, batch: int, objective: str) -> tuple[float, float, float]:
    """(median, min, max) over seeds of the end-to-end objective, from results.json."""
    field = {"latency": "latency_cycles", "energy": "energy_nJ"}[objective]
    v = [r["totals"][field] for b, o, r in jobs if (b, o) == (batch, objective)]
    assert len(v) == 2
    return float(np.median(v)), min(v), max(v)


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path, encoding="utf-8")))


def test_every_arm_its_own_row(arms):
    tmp, uri, jobs = arms
    out = tmp / "report"
    assert compare.main(["--experiment", "arms", "--out", str(out), "--uri", uri,
                         "--baseline", "random batch=250"]) == 0
    rows = {(r["label"], r["objective"]): r for r in read_csv(out / "table.csv")}
    assert set(rows) == {(f"random batch={b}", o) for b in (100, 250) for o in ("latency", "energy")}
    for (label, objective), r in rows.items():
        med, lo, hi = expected(jobs, int(label.split("=")[1]), objective)
        assert (float(r["cost"]), float(r["cost_min"]), float(r["cost_max"])) == \
            pytest.approx((med, lo, hi))
        assert r["unit"] == {"latency": "cycles", "energy": "nJ"}[objective]
        assert r["seeds"] == "2"
        base = expected(jobs, 250, objective)[0]
        assert float(r["cost_vs_baseline"]) == pytest.approx(med / base)
    table = (out / "table.md").read_text(encoding="utf-8")
    assert "energy (nJ), median" in table and "latency (cycles), median" in table
    assert "x random batch=250" in table
    # another baseline, other ratios; no such arm, no ratios
    assert compare.main(["--experiment", "arms", "--out", str(tmp / "b50"), "--uri", uri,
                         "--baseline", "random batch=100", "--no-plots"]) == 0
    for r in read_csv(tmp / "b50" / "table.csv"):
        med = expected(jobs, int(r["label"].split("=")[1]), r["objective"])[0]
        assert float(r["cost_vs_baseline"]) == pytest.approx(med / expected(jobs, 100, r["objective"])[0])
    assert compare.main(["--experiment", "arms", "--out", str(tmp / "none"), "--uri", uri,
                         "--no-plots"]) == 0
    assert all(math.isnan(float(r["cost_vs_baseline"])) for r in read_csv(tmp / "none" / "table.csv"))


def test_ablation_table(arms):
    tmp, uri, jobs = arms
    out = tmp / "report"  # written by test_every_arm_its_own_row's first report, or now
    if not (out / "ablation.csv").exists():
        assert compare.main(["--experiment", "arms", "--out", str(out), "--uri", uri,
                             "--baseline", "random batch=250"]) == 0
    rows = read_csv(out / "ablation.csv")
    assert [r["objective"] for r in rows] == ["energy", "energy", "latency", "latency"]
    for objective in ("energy", "latency"):
        mine = [r for r in rows if r["objective"] == objective]
        ratios = [float(r["cost_vs_baseline"]) for r in mine]
        assert ratios == sorted(ratios) and 1.0 in ratios
        base = expected(jobs, 250, objective)[0]
        for r in mine:
            med, lo, hi = expected(jobs, int(r["label"].split("=")[1]), objective)
            assert float(r["cost_vs_baseline"]) == pytest.approx(med / base)
            assert (float(r["ratio_min"]), float(r["ratio_max"])) == pytest.approx((lo / base, hi / base))
            assert (r["system"], r["platform"], r["unit"]) == \
                ("s2", "edge", {"latency": "cycles", "energy": "nJ"}[objective])
    text = (out / "ablation.md").read_text(encoding="utf-8")
    assert "(energy in nJ)" in text and "| random batch=100 | 2 |" in text
    for name in ("ratio_s2_edge_latency.png", "ratio_s2_edge_energy.png",
                 "convergence_s2_edge_energy.png"):
        assert (out / name).is_file()


def test_runs_that_differ_in_a_setting_are_never_merged():
    """Old runs (no label) of one optimizer with different settings: one arm per value."""
    def run(batch: str, seed: str) -> dict:
        return {"params": {"optimizer.name": "random", "optimizer.batch": batch, "seed": seed,
                           "label": "None", "tracking.uri": f"x{seed}"},
                "tags": {}, "results": None, "arm": {"label": "random"}}

    arms = compare.split_arms([run("50", "0"), run("50", "1"), run("100", "0")])
    assert {k: len(v) for k, v in arms.items()} == {"random batch=50": 2, "random batch=100": 1}
    assert list(compare.split_arms([run("50", "0"), run("50", "1")])) == ["random"]
    assert compare.describe(run("50", "0"))["label"] == "random"  # no label anywhere: the optimizer


def test_all_layers_read_all_even_with_the_results_downloaded():
    """layers=null is "all": results.json's per-layer records are not the config's layer list
    (a downloaded results.json once turned the whole record list into a file name)."""
    results = {"label": "gamma", "layers": [{"index": 1, "feasible": True}]}
    run = {"params": {"optimizer.name": "gamma", "layers": "None", "seed": "0"}, "tags": {},
           "results": results}
    assert compare.describe(run)["layers"] == "all"
    run["params"]["layers"] = "[2, 7]"
    assert compare.describe(run)["layers"] == "[2, 7]"


def test_bar_chart_is_linear_from_zero_with_seed_spread():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    compare.bar_chart(ax, ["a", "b", "c"], [100.0, 115.0, math.inf], [90.0, 110.0, math.inf],
                      [120.0, math.inf, math.inf], "end-to-end latency (cycles)")
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    assert ax.get_ylim()[1] > 120.0  # the highest whisker is inside the axes
    heights = [p.get_height() for p in ax.patches]
    assert heights == [100.0, 115.0, 0.0]  # an infeasible median has no bar
    (segments,) = [c for c in ax.collections if c.get_segments()]
    whiskers = sorted((float(s[0][1]), float(s[1][1])) for s in segments.get_segments())
    assert whiskers == [(0.0, 0.0), (90.0, 120.0), (110.0, 115.0)]  # min-max; no max if infeasible
    assert [t.get_text() for t in ax.texts][2] == "infeasible"
    plt.close(fig)


# --- the best-so-far grid -----------------------------------------------------------------------
def test_best_so_far_per_sample_on_the_grid_whatever_the_batches():
    """Batches of different sizes record, at every grid point, the minimum of every cost up to
    that sample, as a sample-by-sample evaluation of the same genomes finds it."""
    from gamma.hardware import Hardware
    from gamma.mapspace.space import MapSpace
    from gamma.objectives.scalar import Objective
    from gamma.workloads.layer import Layer

    hw = Hardware(num_pes=168, l1_size=512, l2_size=108_000, noc_bw=81_920_000, offchip_bw=70_000)
    space = MapSpace(Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3), hw.num_pes, 1, 2)
    n = 450
    genomes = space.random(n, np.random.default_rng(5))
    one = Objective(space, hw, n)
    costs = np.array([one.evaluate(genomes.take(np.array([i])))[0] for i in range(n)])
    assert np.isfinite(costs).sum() >= 5  # some feasible mappings, found at different samples
    grid = [s for s, _ in one.curve]
    assert grid[0] == 1 and grid[-1] == n and len(grid) <= 200
    assert {int(np.ceil(k * 4.5)) for k in range(1, 101)} <= set(grid)  # every budget/100-th
    want = [float(costs[:s].min()) for s in grid]
    assert [c for _, c in one.curve] == want
    for sizes in ([n], [7, 60, 1, 133, 249], [2] * 225):
        obj = Objective(space, hw, n)
        start = 0
        for k in sizes:
            obj.evaluate(genomes.take(np.arange(start, start + k)))
            start += k
        assert obj.curve == one.curve
        assert obj.best_cost == want[-1]
    part = Objective(space, hw, n)  # a search that stops before its budget ends on its last sample
    part.evaluate(genomes.take(np.arange(100)))
    assert part.best_curve[-1] == (100, float(costs[:100].min()))
    assert [s for s, _ in part.best_curve][:-1] == [s for s in grid if s < 100]


# --- against the proven optimum -------------------------------------------------------------------
def test_x_optimum_column_and_per_layer_view(sweep, capsys):
    """With the optima of layers 2 and 6 proven (scripts/optima.py into a cache file), every arm
    gets its median latency over the summed optima, and layers.md each layer's ratio."""
    tmp, uri, jobs = sweep
    cache = tmp / "optima.json"
    rows = optima_script.prove("resnet18", "s2", "edge", [2, 6], cache=cache, say=lambda _: None)
    assert [r["proven"] for r in rows] == [True, True]
    opt = {r["layer"]: r["best_cycles"] for r in rows}
    assert opt == {2: 663_577, 6: 1_327_153}
    out = tmp / "with_optima"
    assert compare.main(["--experiment", "cmp", "--out", str(out), "--uri", uri, "--no-plots",
                         "--optima", str(cache)]) == 0
    table = {r["label"]: r for r in csv.DictReader(open(out / "table.csv", encoding="utf-8"))}
    for label, r in table.items():
        lat = float(np.median([j["totals"]["latency_cycles"] for j in jobs if j["optimizer"] == label]))
        assert float(r["optimum_cycles"]) == sum(opt.values())
        assert float(r["ratio_to_optimum"]) == pytest.approx(lat / sum(opt.values()))
        assert float(r["ratio_to_optimum"]) >= 1.0
    assert "latency x optimum" in (out / "table.md").read_text(encoding="utf-8")
    per_layer = list(csv.DictReader(open(out / "layers.csv", encoding="utf-8")))
    assert {(r["label"], int(r["layer"])) for r in per_layer} == {(a, i) for a in table for i in (2, 6)}
    for r in per_layer:
        lat = float(np.median([layer["best"]["runtime_cycles"] for j in jobs if j["optimizer"] == r["label"]
                               for layer in j["layers"] if layer["index"] == int(r["layer"])]))
        assert float(r["optimum_cycles"]) == opt[int(r["layer"])]
        assert float(r["ratio_to_optimum"]) == pytest.approx(lat / opt[int(r["layer"])])
    # no optimum known: the column stays empty and there is no per-layer view
    none = tmp / "without_optima"
    assert compare.main(["--experiment", "cmp", "--out", str(none), "--uri", uri, "--no-plots",
                         "--optima", str(tmp / "empty.json")]) == 0
    assert {r["ratio_to_optimum"] for r in csv.DictReader(open(none / "table.csv", encoding="utf-8"))} == {"nan"}
    assert not (none / "layers.md").exists()
