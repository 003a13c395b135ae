"""scripts/compare.py scoped to a sweep: two sweeps into one experiment, the latest one alone by
default, a sweep by its parent run id or its folder (read from the jobs' files, the same table),
the whole experiment with --experiment; an output folder holding only this call's files; seed
warnings and ablation ranks with their spread; infeasible arms never drawn as values; older
runs' metric names read as the current ones."""

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

from gamma.analysis import compare
from gamma.results.records import bound_ratio_text
from gamma.tracking import reader

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["budget=300", "layers=[2,6]", "tracking.experiment=two",
          "hydra/launcher=basic"]  # one process per sweep: less CPU for the tests


def run_cli(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory, new_store):
    """Sweep A: gamma and random on S2, seed 0; sweep B, later: gamma seeds 1 and 2 on S2."""
    tmp = tmp_path_factory.mktemp("two")
    env = dict(os.environ, MLFLOW_TRACKING_URI=new_store(tmp / "mlflow.db"))
    run_cli(["-m", "optimizer=gamma,random", "system=s2", "seed=0", *COMMON,
             f"hydra.sweep.dir={tmp / 'a'}"], env)
    run_cli(["-m", "optimizer=gamma", "system=s2", "seed=1,2", *COMMON,
             f"hydra.sweep.dir={tmp / 'b'}"], env)
    return tmp, env["MLFLOW_TRACKING_URI"]


def rows(out: Path) -> dict[str, dict]:
    return {r["label"]: r for r in csv.DictReader(open(out / "table.csv", encoding="utf-8"))}


def parent_of(folder: Path) -> str:
    return json.loads((folder / "mlflow_parent_run.json").read_text())["run_id"]


def test_no_selection_reports_only_the_latest_sweep(two_sweeps, capsys):
    tmp, uri = two_sweeps
    out = tmp / "latest"
    assert compare.main(["--out", str(out), "--uri", uri]) == 0
    got = rows(out)
    assert set(got) == {"gamma"} and got["gamma"]["seeds"] == "2"  # sweep B's two jobs only
    table = (out / "table.md").read_text()
    assert parent_of(tmp / "b") in table.splitlines()[0]
    b = [json.loads(p.read_text()) for p in (tmp / "b").glob("*/results.json")]
    lat = sorted(r["totals"]["latency_cycles"] for r in b)
    assert float(got["gamma"]["cost"]) == pytest.approx(float(np.median(lat)))
    assert (float(got["gamma"]["cost_min"]), float(got["gamma"]["cost_max"])) == (lat[0], lat[1])
    capsys.readouterr()


def test_a_sweep_by_run_id_by_folder_and_the_whole_experiment(two_sweeps, capsys):
    tmp, uri = two_sweeps
    by_id, by_dir, whole = tmp / "by_id", tmp / "by_dir", tmp / "whole"
    assert compare.main(["--sweep", parent_of(tmp / "a"), "--out", str(by_id), "--uri", uri]) == 0
    assert {k: v["seeds"] for k, v in rows(by_id).items()} == {"gamma": "1", "random": "1"}
    # the folder, read from the jobs' results.json without MLflow: the same figures
    assert compare.main(["--sweep", str(tmp / "a"), "--out", str(by_dir), "--no-plots"]) == 0
    cols = ["label", "seeds", "cost", "cost_min", "cost_max", "cost_vs_baseline", "latency_cycles",
            "ratio_to_bound", "energy_nJ", "infeasible_layers"]
    for label, r in rows(by_id).items():
        assert {c: r[c] for c in cols} == {c: rows(by_dir)[label][c] for c in cols}
    assert "read from their results.json" in (by_dir / "table.md").read_text()
    # --experiment alone: every job of both sweeps (gamma: seeds 0, 1, 2)
    assert compare.main(["--experiment", "two", "--out", str(whole), "--uri", uri]) == 0
    assert {k: v["seeds"] for k, v in rows(whole).items()} == {"gamma": "3", "random": "1"}
    err = capsys.readouterr().err
    assert "warning: arms differ in seeds" in err and "gamma 3, random 1" in err
    assert "warning: arms differ in seeds" in (whole / "table.md").read_text()
    # --sweep latest within the experiment is sweep B
    assert compare.main(["--experiment", "two", "--sweep", "latest", "--out", str(whole),
                         "--uri", uri, "--no-plots"]) == 0
    assert {k: v["seeds"] for k, v in rows(whole).items()} == {"gamma": "2"}


def test_output_folder_holds_only_this_calls_files(two_sweeps, capsys):
    tmp, uri = two_sweeps
    out = tmp / "fresh"
    out.mkdir()
    for stale in ("bars_s1_edge.png", "convergence_s9_edge.png", "ablation.md", "ratio_s1_cloud.png"):
        (out / stale).write_bytes(b"old")
    (out / "notes.txt").write_text("mine")  # not compare.py's: kept
    assert compare.main(["--sweep", parent_of(tmp / "a"), "--out", str(out), "--uri", uri]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "convergence_s2_edge.png", "notes.txt", "ratio_s2_edge.png", "table.csv", "table.md"]
    assert "removed 4 of an earlier call" in capsys.readouterr().out


def test_bad_selections_are_errors(two_sweeps, capsys):
    tmp, uri = two_sweeps
    run_dir = next((tmp / "a").glob("*/results.json")).parent
    job_run = json.loads((run_dir / "results.json").read_text())["mlflow"]["run_id"]
    assert compare.main(["--sweep", job_run, "--out", str(tmp / "x"), "--uri", uri]) == 1
    assert f"run {job_run} is not a sweep's parent run" in capsys.readouterr().err
    assert compare.main(["--sweep", "0" * 32, "--out", str(tmp / "x"), "--uri", uri]) == 1
    assert "no run '000" in capsys.readouterr().err
    empty = tmp / "empty"
    empty.mkdir()
    assert compare.main(["--sweep", str(empty), "--out", str(tmp / "x")]) == 1
    assert "no job folder" in capsys.readouterr().err


def test_old_metric_names_read_as_the_current_ones():
    """A run logged before the rename: totals and per-layer metrics under the old names give
    the same totals as the current names."""
    old = {"total_latency_cycles": 300.0, "total_energy_nJ": 50.0, "ratio_to_compute_bound": 1.5,
           "compute_bound_cycles": 200.0, "infeasible_layers": 0.0, "best_cost/layer_02": 100.0,
           "best_cost/layer_06": 200.0, "latency_cycles/layer_02": 100.0,
           "latency_cycles/layer_06": 200.0, "energy_nJ/layer_06": 30.0, "wall_s": 2.0}
    new = reader.current_metrics(old, "latency")
    assert new == {"latency_cycles": 300.0, "energy_nJ": 50.0, "x_bound": 1.5,
                   "compute_bound_cycles": 200.0, "infeasible_layers": 0.0,
                   "layers/best_cost_02": 100.0, "layers/best_cost_06": 200.0,
                   "layers/latency_cycles_02": 100.0, "layers/latency_cycles_06": 200.0,
                   "layers/energy_nJ_06": 30.0, "wall_s": 2.0, "feasible_layers": 2}
    assert reader.current_metrics(new, "latency") == new  # current names stay
    assert reader.current_metrics(old, "energy")["latency_x_bound"] == 1.5
    assert compare.totals_from_metrics(new) == {
        "cost": 300.0, "cost_feasible": 300.0, "infeasible": 0, "latency": 300.0,
        "latency_feasible": 300.0, "energy": 50.0, "bound": 200.0}


def arm(label: str, seeds: dict[str, float], infeasible: float = 0) -> dict:
    costs = list(seeds.values())
    med = float(np.median(costs))
    return {"label": label, "cost": med, "cost_min": min(costs), "cost_max": max(costs),
            "seeds": len(costs), "_seeds": seeds, "_ctx": ("m", "s2"), "objective": "latency",
            "optimum_cycles": math.nan, "infeasible_layers": infeasible}


def test_ablation_ranks_with_their_spread_and_seed_warnings():
    rows_ = [arm("gamma", {"0": 100.0, "1": 104.0, "2": 101.0}),
             arm("gamma mutation=off", {"0": 99.0, "1": 110.0, "2": 108.0}),
             arm("gamma crossover=off", {"0": 120.0})]
    compare.add_ranks(rows_)
    assert [(r["rank"], r["rank_min"], r["rank_max"]) for r in rows_] == [(1, 1, 2), (2, 1, 2), (3, 3, 3)]
    warnings = compare.seed_warnings(rows_)
    assert len(warnings) == 2
    assert "arms differ in seeds" in warnings[0] and "gamma crossover=off 1" in warnings[0]
    assert "one seed only" in warnings[1] and "gamma crossover=off" in warnings[1]


def test_infeasible_arms_are_marked_never_plotted_as_values():
    """The ratio chart divides by the best feasible arm, zooms to the values (not from zero) and
    marks an infeasible arm with a word; the convergence chart leaves out an arm summed over
    fewer layers and names it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [arm("gamma", {"0": 100.0, "1": 102.0}), arm("cma", {"0": 105.0, "1": 108.0}),
            arm("pso", {"0": math.inf, "1": math.inf}, infeasible=2)]
    ref, name = compare.reference(arms)
    assert (ref, name) == (101.0, "the best arm (gamma)")
    fig, ax = plt.subplots()
    compare.ratio_chart(ax, arms, ref, name, "latency (cycles)")
    lo, hi = ax.get_ylim()
    assert 0.9 < lo < 100 / 101 and 108 / 101 < hi < 1.2  # zoomed to 0.99-1.07, not from zero
    dots = [tuple(line.get_xydata()[0]) for line in ax.lines if line.get_marker() == "o"]
    assert dots == [(0.0, 1.0), (1.0, pytest.approx(106.5 / 101))]  # none for pso
    assert any(t.get_text().startswith("infeasible\n2 layers") for t in ax.texts)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["gamma\n2 seeds", "cma\n2 seeds", "pso\n2 seeds"]
    plt.close(fig)

    def results(costs: list[float | None]) -> dict:
        layers = [{"feasible": c is not None, "best": {"runtime_cycles": c} if c else None,
                   "best_cost": c, "history": [[10, None], [100, c]]} for c in costs]
        return {"layers": layers}

    fig, ax = plt.subplots()
    compare.convergence_chart(ax, {"gamma": [results([60.0, 41.0])], "pso": [results([30.0, None])]},
                              101.0, "the best arm (gamma)", "latency (cycles)")
    assert [line.get_label() for line in ax.lines if not line.get_label().startswith("_")] == ["gamma (1 seed)"]
    assert any("pso (1 seed): 1 layers infeasible" in t.get_text() for t in ax.texts)
    plt.close(fig)


def test_non_latency_objectives_name_their_ratio():
    totals = {"ratio_to_compute_bound": 26.924}
    assert bound_ratio_text({"objective": "latency", "totals": totals}) == "ratio to the bound 26.924x"
    assert bound_ratio_text({"objective": "energy", "totals": totals}) == \
        "latency 26.924x the compute bound (no energy bound)"
    assert bound_ratio_text({"objective": "energy", "totals": {"ratio_to_compute_bound": None}}) == ""
