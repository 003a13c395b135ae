"""scripts/reproduce_paper.py end to end on a tiny plan (one layer, 100 samples, one seed, two arms
per comparison) into a temporary MLflow store: every table and figure of the report is written and
shows the jobs' own numbers, and a second run reuses every job from MLflow. The report goes to a
new run folder by default, to the committed report only with --update-report, and these tests
write nothing into the repository (the run folders' root and the committed report are moved to
temporary folders). Also the grids that cover exactly a set of missing jobs, and the numbers'
formats."""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from gamma.analysis import paper
from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]

TINY = {"all": {"seed": "0", "budget": "100", "layers": [7]},
        "fig6": {"optimizer": "gamma,random", "system": "s2", "platform": "edge", "budget": "600"},
        "fig6_paper": {"optimizer": "gamma,random", "system": "s2", "budget": "600"},
        "fig6_any": {"system": "s2", "budget": "600"}, "fig6_noguard": {"system": "s2", "budget": "600"},
        "fig6_nostructure": {"system": "s2", "budget": "600"},
        "table5": {"arm": "gamma,nvdla", "model": "resnet18", "platform": "edge"},
        "table5_paper": {"arm": "gamma,nvdla", "model": "resnet18", "platform": "edge"},
        "fig8": {"optimizer": "gamma,random", "platform": "edge"},
        "fig9": {"model": "resnet18"},
        "table6": {"model": "resnet18", "objective.stage2": "energy"}}
FIGURES = ("fig6.png", "fig6_paper.png", "table5.png", "fig8.png", "fig9.png", "table6.png")


def committed_report() -> dict[str, str]:
    """The repository's reports/paper/ files and their digests, and its git status."""
    files = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(paper.REPORT.iterdir())}
    status = subprocess.run(["git", "status", "--porcelain", "--", str(paper.REPORT)], cwd=ROOT,
                            capture_output=True, text=True).stdout
    return {**files, "git status": status}


@pytest.fixture(scope="module")
def report(tmp_path_factory, new_store):
    """The tiny plan run once, its report in ``--out``; the run folders' root and the committed
    report moved to temporary folders for the whole module."""
    tmp = tmp_path_factory.mktemp("paper")
    before = committed_report()
    plan = yaml.safe_load(paper.PLAN.read_text())
    plan["quick"] = TINY
    plan["launcher"] = "basic"  # one or two tiny jobs per sweep: no worker processes to start,
    plan["sweeps_at_once"] = 2  # two such sweeps at a time on the two cores
    (tmp / "plan.yaml").write_text(yaml.safe_dump(plan))
    args = ["--quick", "--plan", str(tmp / "plan.yaml"), "--uri", new_store(tmp / "mlflow.db")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paper, "OUTPUTS", tmp / "outputs")
        mp.setattr(paper, "REPORT", tmp / "committed")
        assert paper.main([*args, "--out", str(tmp / "report")]) == 0
        yield tmp, args
    assert committed_report() == before


def test_every_table_and_figure_is_written(report):
    tmp, _ = report
    out = tmp / "report"
    text = (out / "README.md").read_text()
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"]({name})" in text
    for title in ("## Figure 6", "paper mode (`paper_mode=true`", "## Table 5", "## Figure 8",
                  "## Figure 9", "## Table 6", "Share of the best per-layer mappings below the compute bound",
                  "## GAMMA with our defaults and in paper mode"):
        assert title in text, title
    assert "quick run" in text and "Missing" not in text
    assert re.search(r"15 jobs \(15 run now, 0 reused from MLflow, 0 missing\)", text)
    assert "`python scripts/reproduce_paper.py --quick`" in text
    # the sweeps went to the report folder's sweeps/, nothing to the run folders' root
    assert sorted(f.name for f in (out / "sweeps").iterdir())[:2] == ["fig6_0", "fig6_any_0"]
    assert not (tmp / "outputs").exists() and not (tmp / "committed").exists()


def test_the_report_shows_the_jobs_numbers(report):
    """GAMMA's latency in Figure 6, the fixed dataflow's in Table 5 and the bottleneck of
    Table 6 are those of the jobs' results.json."""
    tmp, _ = report
    text = (tmp / "report" / "README.md").read_text()

    def results(part: str, name: str) -> dict:
        (found,) = [f for f in (tmp / "report" / "sweeps").glob(f"{part}_[0-9]*/*/results.json")
                    if name in f.parent.name]
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


def test_a_second_run_reuses_every_job_into_a_new_run_folder(report, capsys):
    """Without --out the report goes to a new folder under the run folders' root, which it
    prints (a second call: another folder, test_a_run_folder_is_never_reused); the committed
    report is not touched."""
    tmp, args = report
    assert paper.main(args) == 0
    out = capsys.readouterr().out
    assert out.count("15 jobs in 10 parts; 15 reused from MLflow") == 1
    (folder,) = sorted((tmp / "outputs").iterdir())
    assert f"report: {folder}" in out and f"wrote 7 files to {folder}" in out
    assert sorted(f.name for f in folder.iterdir()) == sorted(["README.md", *FIGURES])
    assert not (tmp / "committed").exists()


def test_update_report_rewrites_the_committed_report_only(report, capsys):
    tmp, args = report
    runs_before = sorted((tmp / "outputs").iterdir()) if (tmp / "outputs").exists() else []
    assert paper.main([*args, "--update-report"]) == 0
    assert f"wrote 7 files to {tmp / 'committed'}" in capsys.readouterr().out
    assert sorted(f.name for f in (tmp / "committed").iterdir()) == sorted(["README.md", *FIGURES])
    assert "`python scripts/reproduce_paper.py --quick --update-report`" in \
        (tmp / "committed" / "README.md").read_text()
    assert (sorted((tmp / "outputs").iterdir()) if (tmp / "outputs").exists() else []) == runs_before


def test_out_and_update_report_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as e:
        paper.main(["--out", "x", "--update-report"])
    assert e.value.code == 2 and "not allowed with argument --out" in capsys.readouterr().err


def test_defaults_and_paper_mode_side_by_side(report):
    """GAMMA's Figure 6 edge latency with our defaults, each change alone and in paper mode,
    as the jobs' results.json give them."""
    tmp, _ = report
    text = (tmp / "report" / "README.md").read_text()
    section = text[text.index("## GAMMA with our defaults"):text.index("## Figure 8")]

    def latency(part: str) -> float:
        """GAMMA's end-to-end latency in the part's results.json (inf: infeasible)."""
        (found,) = [f for f in (tmp / "report" / "sweeps").glob(f"{part}_[0-9]*/*/results.json")
                    if "optimizer=gamma" in f.parent.name]
        return read_results(found)["totals"]["latency_cycles"] or math.inf

    def cell(v: float) -> str:
        return f"{v:,.0f}" if math.isfinite(v) else "infeasible"

    def change(v: float, base: float) -> str:
        return f"{100 * (v / base - 1):+.1f} %" if math.isfinite(v) and math.isfinite(base) else "-"

    default, mode = latency("fig6"), latency("fig6_paper")
    assert (f"| Figure 6, ResNet-18, s2 edge: latency (cycles) | {cell(default)} | {cell(mode)} | "
            f"{change(mode, default)} |") in section
    for part, setting in (("fig6_any", "| map space: inner tiles"), ("fig6_noguard", "| guard (`guard`)"),
                          ("fig6_nostructure", "| GAMMA's operators")):
        v = latency(part)
        (row,) = [line for line in section.splitlines() if line.startswith(setting)]
        expected = f"s2: {cell(v)}" + (f" ({change(v, default)})" if math.isfinite(v * default) else "")
        assert expected + " |" in row, (expected, row)
    assert "| Table 5, resnet18, S3 edge: latency (cycles) |" in section


def test_numbers_for_people():
    assert [paper.fmt_x(v) for v in (1035.2, 36.24, 2.738, 1.0017, 0.642, 0.00062)] == \
        ["1,035x", "36.2x", "2.74x", "1.002x", "0.64x", "0.00062x"]
    assert [paper.fmt_x(v) for v in (11.0, 5.0)] == ["11x", "5x"]
    assert paper.vs_paper(1.05, [209, 1035]) == "199x-986x lower"
    assert paper.vs_paper(0.642, [209, 1035]) == "326x-1,612x lower"
    assert paper.vs_paper(181.0, 5.0) == "36.2x higher"
    assert paper.vs_paper(300.0, [209, 1035]) == "within the paper's range"
    assert paper.vs_paper(2.0, None) == "the paper gives none"
    assert paper.fmt_num(163_300_000.0) == "163,300,000" and paper.fmt_num(238.71) == "238.7"
    assert paper.fmt_num(9.67e5, "cycles") == "967,000 cycles"
    assert paper.fmt_vs(1.059) == "+5.9 %" and paper.fmt_vs(0.642) == "-35.8 %"


def test_every_factor_in_the_report_is_written_for_people(report):
    text = (report[0] / "report" / "README.md").read_text()
    assert not re.search(r"\d[eE][+-]\d", text), re.search(r".{30}\d[eE][+-]\d.{30}", text)
    assert "ours / paper" not in text


def test_a_run_folder_is_never_reused(tmp_path):
    first = paper.run_folder(tmp_path, 0.0)
    first.mkdir()
    second = paper.run_folder(tmp_path, 0.0)
    assert second.name == f"{first.name}_2" and not second.exists()


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
