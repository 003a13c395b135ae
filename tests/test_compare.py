"""scripts/compare.py on a real sweep logged to a temporary MLflow store: the table's medians and
ratios are those of the jobs' results.json, the plots and the summary run exist, failed jobs are
listed, and the end-to-end helpers count infeasible layers."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("compare", ROOT / "scripts" / "compare.py")
compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare)
COMMON = ["budget=1000", "layers=[2,6]", "experiment=cmp"]


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """gamma and random, seeds 0 and 1, two layers of ResNet-18 on S2/edge; one failing job."""
    tmp = tmp_path_factory.mktemp("cmp")
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}")
    proc = run_cli(["-m", "optimizer=gamma,random", "seed=0,1", *COMMON,
                    f"hydra.sweep.dir={tmp / 'sweep'}"], env)
    assert proc.returncode == 0, proc.stderr
    bad = run_cli(["optimizer=random", "optimizer.name=nosuch", *COMMON,
                   f"hydra.run.dir={tmp / 'bad'}"], env)
    assert bad.returncode != 0
    jobs = [json.loads(f.read_text()) for f in (tmp / "sweep").glob("*/results.json")]
    assert len(jobs) == 4
    return tmp, env["MLFLOW_TRACKING_URI"], jobs


def test_table_medians_and_ratios(sweep, capsys):
    tmp, uri, jobs = sweep
    out = tmp / "report"
    assert compare.main(["--experiment", "cmp", "--out", str(out), "--uri", uri]) == 0
    rows = {r["optimizer"]: r for r in csv.DictReader(open(out / "table.csv", encoding="utf-8"))}
    assert set(rows) == {"gamma", "random"}
    med = {}
    for opt in rows:
        mine = [j for j in jobs if j["optimizer"] == opt]
        assert all(j["totals"]["feasible"] for j in mine)
        lat = [j["totals"]["latency_cycles"] for j in mine]
        en = [j["totals"]["energy_nJ"] for j in mine]
        med[opt] = (float(np.median(lat)), float(np.median(en)))
        r = rows[opt]
        assert (r["system"], r["platform"], r["seeds"]) == ("s2", "edge", "2")
        assert float(r["latency_cycles"]) == pytest.approx(med[opt][0])
        assert float(r["energy_nJ"]) == pytest.approx(med[opt][1])
        assert float(r["ratio_to_bound"]) == pytest.approx(
            med[opt][0] / mine[0]["totals"]["compute_bound_cycles"])
        assert float(r["ratio_to_bound"]) >= 1.0
        assert float(r["infeasible_layers"]) == 0
    assert float(rows["gamma"]["latency_vs_gamma"]) == 1.0
    assert float(rows["random"]["latency_vs_gamma"]) == pytest.approx(med["random"][0] / med["gamma"][0])
    assert float(rows["random"]["energy_vs_gamma"]) == pytest.approx(med["random"][1] / med["gamma"][1])
    table = (out / "table.md").read_text(encoding="utf-8")
    assert "Failed or unfinished jobs:" in table and "nosuch" in table
    assert f"{med['gamma'][0]:,.0f}" in table
    for name in ("convergence_s2_edge.png", "bars_s2_edge.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run_id = capsys.readouterr().out.strip().split()[-1]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.data.tags["gamma.summary"] == "1"
    logged = {a.path for a in client.list_artifacts(run_id)}
    assert {"table.md", "table.csv", "convergence_s2_edge.png", "bars_s2_edge.png"} <= logged
    # a second report leaves the summary run out of the jobs it reads
    assert compare.main(["--experiment", "cmp", "--out", str(tmp / "again"), "--uri", uri]) == 0
    assert (tmp / "again" / "table.csv").read_text() == (out / "table.csv").read_text()


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
