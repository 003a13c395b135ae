"""A co-design job (codesign=digamma) in MLflow, compare.py and a sweep's summary: the chosen
design as params, its area as metrics beside the latency, a run name and arm of its own, and
area columns that show the design's area and, for the fixed-platform arm, the platform's.
Real jobs (small budgets) into a temporary MLflow store; nothing is mocked."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from gamma.analysis import compare
from gamma.results import sweep as S
from jobs import run_inprocess

SMALL = ["model=resnet18", "layers=[2,5,6,8]", "budget=600", "tracking.experiment=cdt"]
#: The edge platform under the co-design area model (docs/codesign.md): 0.1809 mm^2.
EDGE_MM2 = 0.180859008
#: Job folder: its overrides (besides SMALL).
JOBS = {"codesign_s0": ["codesign=digamma", "seed=0"],
        "codesign_s1": ["codesign=digamma", "seed=1"],
        "codesign_grid": ["codesign=digamma", "system=s1"],
        "fixed": ["seed=0"]}


@pytest.fixture(scope="module")
def logged(tmp_path_factory, new_store):
    """Co-design jobs (S2 seeds 0 and 1, S1) and GAMMA on the fixed edge platform, each run in
    this process into one store, their folders in one sweep folder."""
    from mlflow.tracking import MlflowClient

    tmp = tmp_path_factory.mktemp("cdt")
    uri = new_store(tmp / "mlflow.db")
    results = {}
    for name, extra in JOBS.items():
        code, res = run_inprocess([*SMALL, *extra, f"tracking.uri={uri}"], tmp / "sweep" / name)
        assert code == 0 and res["totals"]["feasible"]
        results[name] = res
    client = MlflowClient(uri)
    runs = {r.info.run_id: r for r in
            client.search_runs([client.get_experiment_by_name("cdt").experiment_id])}
    return {"tmp": tmp, "uri": uri, "results": results,
            "runs": {name: runs[res["mlflow"]["run_id"]] for name, res in results.items()}}


def test_a_codesign_runs_params_and_metrics_are_its_results(logged):
    for name in ("codesign_s0", "codesign_grid"):
        res, run = logged["results"][name], logged["runs"][name]
        hw, params, metrics = res["hardware"], run.data.params, run.data.metrics
        assert params["hardware.num_pes"] == str(hw["num_pes"])
        assert params["hardware.l1_size"] == str(hw["l1_size"])
        assert params["hardware.l2_size"] == str(hw["l2_size"])
        assert params["hardware.noc_bw"] == str(hw["noc_bw"])
        assert params["codesign.area_budget_mm2"] == str(res["codesign"]["area_budget_mm2"])
        assert float(params["codesign.area_budget_mm2"]) == pytest.approx(EDGE_MM2)
        assert metrics["area_mm2"] == pytest.approx(hw["area_mm2"])
        assert metrics["area_mm2"] <= EDGE_MM2
        for part in ("pes", "l1", "l2"):
            assert metrics[f"area/{part}_mm2"] == pytest.approx(hw["area_um2"][f"{part}_um2"] / 1e6)
        assert metrics["platform_area_mm2"] == pytest.approx(EDGE_MM2)
        assert metrics["latency_cycles"] == res["totals"]["latency_cycles"]
    grid = logged["runs"]["codesign_grid"].data.params
    hw = logged["results"]["codesign_grid"]["hardware"]
    assert (grid["hardware.array_rows"], grid["hardware.array_cols"]) == \
        (str(hw["array_rows"]), str(hw["array_cols"]))
    assert "hardware.array_rows" not in logged["runs"]["codesign_s0"].data.params
    fixed = logged["runs"]["fixed"].data
    assert not any(k.startswith("hardware.") for k in fixed.params)
    assert not {"area_mm2", "platform_area_mm2"} & set(fixed.metrics)


def test_a_front_run_logs_its_designs_as_series_over_the_area(tmp_path, new_store):
    from mlflow.tracking import MlflowClient

    uri = new_store(tmp_path / "mlflow.db")
    code, res = run_inprocess(["model=resnet18", "layers=[2,5,6,8]", "budget=1500",
                               "codesign=digamma", "objective=pareto",
                               "objective.metrics=[latency,area]", f"tracking.uri={uri}"],
                              tmp_path / "run")
    assert code == 0
    client = MlflowClient(uri)
    run = client.get_run(res["mlflow"]["run_id"])
    points = res["codesign"]["front"]["points"]
    assert len(points) >= 3 and run.data.metrics["front_designs"] == len(points)
    series = client.get_metric_history(run.info.run_id, "front/latency")
    got = sorted((m.step, m.value) for m in series)
    assert got == [(round(p["hardware"]["area_mm2"] * 1e6), p["latency_cycles"]) for p in points]
    assert {"pareto.png", "mappings"} <= {a.path for a in client.list_artifacts(run.info.run_id)}


def test_a_codesign_run_is_named_and_tagged_apart_from_the_fixed_platform(logged):
    co, fixed = logged["runs"]["codesign_s0"], logged["runs"]["fixed"]
    assert co.info.run_name == "s2 gamma codesign | resnet18 edge seed 0"
    assert fixed.info.run_name == "s2 gamma | resnet18 edge seed 0"
    assert co.data.tags["arm"] == \
        "s2 gamma codesign | resnet18 edge latency 600 layers [2, 5, 6, 8]"
    assert fixed.data.tags["arm"] == "s2 gamma | resnet18 edge latency 600 layers [2, 5, 6, 8]"
    assert co.data.tags["label"] == logged["results"]["codesign_s0"]["label"] == "gamma codesign"


def rows_by_label(table: Path) -> dict[tuple[str, str], dict]:
    return {(r["label"], r["system"]): r for r in csv.DictReader(open(table, encoding="utf-8"))}


@pytest.mark.parametrize("source", ["mlflow", "folder"])
def test_compare_shows_area_and_splits_codesign_from_fixed(logged, source):
    out = logged["tmp"] / f"report_{source}"
    where = (["--experiment", "cdt", "--uri", logged["uri"]] if source == "mlflow"
             else ["--sweep", str(logged["tmp"] / "sweep")])
    assert compare.main([*where, "--out", str(out), "--no-plots"]) == 0
    rows = rows_by_label(out / "table.csv")
    assert set(rows) == {("gamma", "s2"), ("gamma codesign", "s2"), ("gamma codesign", "s1")}
    res = logged["results"]
    designs = [res[n]["hardware"]["area_mm2"] for n in ("codesign_s0", "codesign_s1")]
    co = rows[("gamma codesign", "s2")]
    assert co["seeds"] == "2"  # two seeds, two designs: one arm
    assert float(co["area_mm2"]) == pytest.approx(statistics.median(designs))
    assert (float(co["area_min"]), float(co["area_max"])) == \
        pytest.approx((min(designs), max(designs)))
    assert float(co["area_budget_mm2"]) == pytest.approx(EDGE_MM2)
    assert float(co["cost"]) == pytest.approx(statistics.median(
        res[n]["totals"]["latency_cycles"] for n in ("codesign_s0", "codesign_s1")))
    # latency x bound: each seed over the bound on its own design's PEs, then the median
    assert float(co["ratio_to_bound"]) == pytest.approx(statistics.median(
        res[n]["totals"]["ratio_to_compute_bound"] for n in ("codesign_s0", "codesign_s1")),
        rel=1e-6)
    assert float(co["ratio_to_bound"]) >= 1.0
    fixed = rows[("gamma", "s2")]
    assert float(fixed["area_mm2"]) == pytest.approx(EDGE_MM2)  # recorded by the co-design runs
    assert fixed["area_budget_mm2"] == ""
    assert float(fixed["cost"]) == res["fixed"]["totals"]["latency_cycles"]
    grid = rows[("gamma codesign", "s1")]
    assert float(grid["area_mm2"]) == pytest.approx(res["codesign_grid"]["hardware"]["area_mm2"])
    table = (out / "table.md").read_text(encoding="utf-8")
    assert "| area (mm^2) |" in table
    assert f"| {EDGE_MM2:.4f} platform |" in table
    assert f" of {EDGE_MM2:.4f} |" in table


def test_compare_has_no_area_column_without_codesign_and_blank_area_where_unknown(tmp_path):
    run = {"params": {"optimizer.name": "gamma", "seed": "0", "platform.name": "edge",
                      "platform.num_pes": "168", "platform.l1_size": "512",
                      "platform.l2_size": "108000", "codesign.name": "off"},
           "metrics": {}, "tags": {}, "results": None, "run_id": "a",
           "totals": {"cost": 10.0, "cost_feasible": 10.0, "infeasible": 0, "latency": 10.0,
                      "latency_feasible": 10.0, "energy": 1.0, "bound": 5.0}, "optimum": None}
    run["arm"] = compare.describe(run)
    rows = compare.summarize(compare.group_runs([run]), "gamma")
    assert rows[0]["codesign"] is False and rows[0]["area_mm2"] is None
    compare.write_tables(rows, [], "gamma", tmp_path)
    assert "area" not in (tmp_path / "table.md").read_text(encoding="utf-8")


def test_a_codesign_arms_designs_never_split_it_but_codesign_does():
    """Seeds of a co-design arm chose different designs (params hardware.*): one arm; a
    co-design run and a fixed one under one hand-set label: two arms."""
    def run(seed: str, codesign: str, pes: str | None) -> dict:
        params = {"optimizer.name": "gamma", "seed": seed, "label": "mine",
                  "codesign.name": codesign}
        if pes:
            params |= {"hardware.num_pes": pes, "codesign.area_budget_mm2": "0.18"}
        return {"params": params, "tags": {}, "results": None, "arm": {"label": "mine"},
                "run_id": seed + codesign, "start_time": 0}

    same = [run("0", "digamma", "258"), run("1", "digamma", "146")]
    assert {k: len(v) for k, v in compare.split_arms(same).items()} == {"mine": 2}
    assert len(compare.latest_runs(same)[0]) == 2
    mixed = compare.split_arms([run("0", "digamma", "258"), run("0", "off", None)])
    assert sorted(mixed) == ["mine codesign.name=digamma", "mine codesign.name=off"]


def test_the_sweep_summary_has_an_area_column_and_metric_when_jobs_are_codesign(logged):
    res = logged["results"]
    rows = S.summarize(list(res.values()))
    by = {(r["label"], r["system"]): r for r in rows}
    designs = [res[n]["hardware"]["area_mm2"] for n in ("codesign_s0", "codesign_s1")]
    assert by["gamma codesign", "s2"]["area_mm2"] == pytest.approx(statistics.median(designs))
    assert by["gamma codesign", "s2"]["area_budget_mm2"] == pytest.approx(EDGE_MM2)
    assert by["gamma", "s2"]["area_mm2"] == pytest.approx(EDGE_MM2)
    table = S.summary_table(rows)
    head, *lines = table.splitlines()
    assert "area (mm^2)" in head
    assert any(line.startswith("gamma codesign") and f"of {EDGE_MM2:.4f}" in line for line in lines)
    assert any(line.startswith("gamma ") and f"{EDGE_MM2:.4f} platform" in line for line in lines)
    metrics = S.summary_metrics(rows)
    assert metrics["area_mm2/gamma codesign.s2"] == pytest.approx(statistics.median(designs))
    assert metrics["area_mm2/gamma.s2"] == pytest.approx(EDGE_MM2)
    assert metrics["latency_cycles/gamma codesign.s2"] == statistics.median(
        res[n]["totals"]["latency_cycles"] for n in ("codesign_s0", "codesign_s1"))
    plain = S.summarize([res["fixed"]])
    assert "area" not in S.summary_table(plain) and plain[0]["area_mm2"] is None
    assert not any(k.startswith("area") for k in S.summary_metrics(plain))
    co = res["codesign_s1"]
    assert S.job_line(co).startswith(f"{co['totals']['latency_cycles']:,.0f} cycles")
    assert (f"design {co['hardware']['num_pes']:,} PEs, {co['hardware']['area_mm2']:.4f} of "
            f"{EDGE_MM2:.4f} mm^2, 4 layers") in S.job_line(co)
    assert "design" not in S.job_line(res["fixed"])
