"""scripts/sample_efficiency.py on small settings: real run.py sweeps into a temporary MLflow
store; the table and the plot are written, their figures are the runs' results.json, and a second
call reuses the runs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from gamma.analysis import sample_efficiency as se
from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, new_store) -> dict:
    tmp = tmp_path_factory.mktemp("se")
    uri = new_store(tmp / "mlflow.db")
    out = tmp / "out"
    args = ["--layers", "7", "--budgets", "200,1000", "--optimizers", "gamma,random", "--seeds", "1",
            "--uri", uri, "--out", str(out), "--experiment", "se_test",
            "--jobs", "1"]  # one job at a time in the sweep's process: no joblib workers to start
    assert se.main(args) == 0
    return {"args": args, "out": out}


def job_results(out: Path) -> dict[tuple[str, int], dict]:
    """results.json of every job the sweeps ran, by (optimizer, budget)."""
    found = {}
    for path in out.glob("sweeps/*/*/results.json"):
        res = read_results(path)
        found[(res["optimizer"], res["budget"])] = res
    return found


def test_table_matches_the_runs(small: dict) -> None:
    runs = job_results(small["out"])
    assert sorted(runs) == [("gamma", 200), ("gamma", 1000), ("random", 200), ("random", 1000)]
    cost = {k: sum(math.inf if l["best_cost"] is None else l["best_cost"] for l in r["layers"])
            for k, r in runs.items()}  # GAMMA's first generation may find nothing feasible
    assert math.isfinite(cost[("gamma", 1000)]) and math.isfinite(cost[("random", 1000)])
    best = min(cost.values())
    with open(small["out"] / "table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["optimizer"], int(r["budget"])) for r in rows] == sorted(runs)
    for r in rows:
        c = cost[(r["optimizer"], int(r["budget"]))]
        assert float(r["median_cycles"]) == float(r["min_cycles"]) == float(r["max_cycles"]) == c
        assert float(r["median_ratio_to_best"]) == pytest.approx(c / best, rel=1e-12)
    md = (small["out"] / "table.md").read_text()
    assert f"{best:,.0f} cycles" in md
    assert (small["out"] / "sample_efficiency.png").read_bytes()[:4] == b"\x89PNG"


def test_within_5_percent_from_the_curve(small: dict) -> None:
    runs = job_results(small["out"])
    best = min(r["layers"][0]["best_cost"] or math.inf for r in runs.values())
    md = (small["out"] / "table.md").read_text()
    for opt in ("gamma", "random"):
        hist = runs[(opt, 1000)]["layers"][0]["history"]
        first = next((n for n, v in hist if v is not None and v <= 1.05 * best), None)
        within = md.split("Samples per layer to come within 5 %")[1]
        line = next(l for l in within.splitlines() if l.startswith(f"| {opt} | "))
        assert line.split("|")[3].strip() == (f"{first:,}" if first else ">1,000")
    # GAMMA's 200-sample run is the start of its 1000-sample run (same first generation)
    g200, g1000 = runs[("gamma", 200)], runs[("gamma", 1000)]
    at200 = dict(map(tuple, g1000["layers"][0]["history"]))[200]
    assert at200 == g200["layers"][0]["best_cost"]
    assert "| gamma | " in md and "| 1/1 |" in md


def test_second_call_reuses_the_runs(small: dict, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert se.main(small["args"]) == 0
    assert "4 jobs: 4 reused from MLflow experiment 'se_test', 0 to run" in capsys.readouterr().out
    table = (small["out"] / "table.csv").read_text()
    assert se.main([*small["args"], "--available", "--seeds", "2"]) == 0  # seed 1 was never run
    assert (small["out"] / "table.csv").read_text() == table


def test_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        se.main(["--budgets", "0,100"])


def test_cap_leaves_out_large_budgets() -> None:
    args = se.parse_args(["--budgets", "2000,600", "--optimizers", "gamma,bo", "--seeds", "2",
                          "--cap", "bo=600"])
    assert se.wanted(args) == [("gamma", 600, 0), ("gamma", 600, 1), ("gamma", 2000, 0),
                               ("gamma", 2000, 1), ("bo", 600, 0), ("bo", 600, 1)]
    with pytest.raises(SystemExit):
        se.parse_args(["--optimizers", "gamma", "--cap", "bo=600"])


def test_missing_jobs_become_cartesian_sweeps() -> None:
    missing = [("gamma", 600, 0), ("gamma", 600, 1), ("gamma", 2000, 0), ("gamma", 2000, 1),
               ("cma", 600, 0), ("cma", 600, 1), ("cma", 2000, 0), ("cma", 2000, 1), ("bo", 600, 1)]
    blocks = se.sweep_blocks(missing)
    assert sorted(blocks) == [(["bo"], [600], [1]), (["gamma", "cma"], [2000, 600], [0, 1])]
    assert sorted((o, b, s) for opts, bs, ss in blocks for o in opts for b in bs for s in ss) == sorted(missing)
