"""scripts/reproduce_paper.py end to end on a tiny plan (one layer, 100 samples, one seed, two arms
per comparison) into a temporary MLflow store: every table and figure of the report is written and
shows the jobs' own numbers, and a second run reuses every job from MLflow. Also the grids that
cover exactly a set of missing jobs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from gamma.analysis import paper
from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]

TINY = {"all": {"seed": "0", "budget": "100", "layers": [7]},
        "fig6": {"optimizer": "gamma,random", "system": "s2", "platform": "edge"},
        "fig6_paper": {"optimizer": "gamma,random", "system": "s2"},
        "table5": {"arm": "gamma,nvdla", "model": "resnet18", "platform": "edge"},
        "table5_paper": {"arm": "gamma,nvdla", "model": "resnet18", "platform": "edge"},
        "fig8": {"optimizer": "gamma,random", "platform": "edge"},
        "fig9": {"model": "resnet18"},
        "table6": {"model": "resnet18", "objective.stage2": "energy"}}
FIGURES = ("fig6.png", "fig6_paper.png", "table5.png", "fig8.png", "fig9.png", "table6.png")


@pytest.fixture(scope="module")
def report(tmp_path_factory, new_store):
    tmp = tmp_path_factory.mktemp("paper")
    plan = yaml.safe_load(paper.PLAN.read_text())
    plan["quick"] = TINY
    plan["launcher"] = "basic"  # one or two tiny jobs per sweep: no worker processes to start,
    plan["sweeps_at_once"] = 2  # two such sweeps at a time on the two cores
    (tmp / "plan.yaml").write_text(yaml.safe_dump(plan))
    args = ["--quick", "--plan", str(tmp / "plan.yaml"), "--uri", new_store(tmp / "mlflow.db"),
            "--sweep-dir", str(tmp / "sweeps")]
    assert paper.main([*args, "--out", str(tmp / "report")]) == 0
    return tmp, args


def test_every_table_and_figure_is_written(report):
    tmp, _ = report
    out = tmp / "report"
    text = (out / "README.md").read_text()
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"]({name})" in text
    for title in ("## Figure 6", "paper mode (`paper_mode=true`", "## Table 5", "## Figure 8",
                  "## Figure 9", "## Table 6", "Share of the best per-layer mappings below the compute bound"):
        assert title in text, title
    assert "quick run" in text and "Missing" not in text
    assert re.search(r"12 jobs \(12 run now, 0 reused from MLflow, 0 missing\)", text)


def test_the_report_shows_the_jobs_numbers(report):
    """GAMMA's latency in Figure 6, the fixed dataflow's in Table 5 and the bottleneck of
    Table 6 are those of the jobs' results.json."""
    tmp, _ = report
    text = (tmp / "report" / "README.md").read_text()

    def results(part: str, name: str) -> dict:
        (found,) = [f for f in (tmp / "sweeps").glob(f"{part}_[0-9]*/*/results.json") if name in f.parent.name]
        return read_results(found)

    gamma = results("fig6", "optimizer=gamma")["totals"]
    cell = f"{gamma['latency_cycles']:,.0f}" if gamma["feasible"] else "infeasible"
    assert f"| s2 | edge | {cell} |" in text
    nvdla = results("table5", "arm=nvdla")
    assert (nvdla["dataflow"], nvdla["label"]) == ("nvdla", "fixed nvdla")
    assert results("table5", "arm=gamma")["label"] == "gamma"  # the arm is not in the label
    if nvdla["totals"]["feasible"]:
        assert f"{nvdla['totals']['latency_cycles']:,.0f}" in text
    two = results("table6", "model=resnet18")["two_stage"]
    assert f"layer {two['bottleneck_layer']}, {two['bottleneck_cycles']:,.0f} cycles" in text


def test_a_second_run_reuses_every_job(report, capsys):
    tmp, args = report
    assert paper.main([*args, "--out", str(tmp / "again")]) == 0
    assert "12 jobs in 7 parts; 12 reused from MLflow" in capsys.readouterr().out
    for name in FIGURES:
        assert (tmp / "again" / name).stat().st_size > 0


def test_missing_jobs_are_covered_by_exact_grids():
    def job(**values: str):
        return paper.Job("p", "fig6", values)

    full = [job(o=o, s=s) for o in "abc" for s in "01"]
    assert paper.boxes(full) == [{"o": ["a", "b", "c"], "s": ["0", "1"]}]
    ragged = [*full[:-1], job(o="d", s="0")]  # (c, 1) done already, d only with seed 0
    grids = paper.boxes(ragged)
    covered = sorted((o, s) for g in grids for o in g["o"] for s in g["s"])
    assert covered == sorted((j.values["o"], j.values["s"]) for j in ragged)
    assert paper.split_values("a,[1,2],b") == ["a", "[1,2]", "b"]
