"""Fixed dataflows (optimizer=fixed dataflow=...; gamma/dataflows.py, gamma/optimizers/fixed.py)
and paper_mode (gamma.search.api.search_rules), on the real cost model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gamma.search.api import search_layer, settings
from gamma.search.setup import make_objective
from gamma.mapspace.dataflows import Dataflow, eval_rule, fit_clusters, shrink_for
from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.search.labels import job_label
from gamma.mapping import Cluster, Directive, Level, Mapping
from gamma.workloads.maestro_io import foreign_dims
from gamma.mapspace.space import G_R, G_S
from gamma.objectives.scalar import R_BOUND, R_L1, R_L2, R_MACS
from gamma.workloads.layer import Layer
from tests.jobs import ROOT, run_captured, run_inprocess
from gamma.results.layout import read_results

TEMPLATES = ("nvdla", "eyeriss", "shidiannao")
#: Real layers: MobileNet-V2's stem, a depthwise layer and a 1x1 projection, ResNet-50's 7x7 stem
#: and a late VGG-like layer whose output (7 columns) is narrower than ShiDianNao's 8-wide row.
LAYERS = [Layer("CONV", K=32, C=3, Y=224, X=224, R=3, S=3),
          Layer("DSCONV", K=1, C=96, Y=112, X=112, R=3, S=3),
          Layer("CONV", K=24, C=96, Y=56, X=56, R=1, S=1),
          Layer("CONV", K=64, C=3, Y=224, X=224, R=7, S=7),
          Layer("CONV", K=512, C=512, Y=9, X=9, R=3, S=3)]
MID = Layer("CONV", K=64, C=64, Y=58, X=58, R=3, S=3)  # ResNet's 3x3 64-channel layer


def hw(**changes) -> Hardware:
    base = dict(num_pes=168, l1_size=512, l2_size=108000, noc_bw=81920000, offchip_bw=70000)
    return Hardware(**{**base, **changes})


def fixed(layer: Layer, flow: str, hardware: Hardware | str = "edge", *more: str):
    return search_layer(layer, hardware, optimizer="fixed", overrides=[f"dataflow={flow}", *more])


def directive(mapping: Mapping, level: int, dim: str) -> Directive:
    return next(d for d in mapping.levels[level].directives if d.dim == dim)


@pytest.mark.parametrize("flow", TEMPLATES)
@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: l.shape.replace(" ", ""))
def test_every_template_gives_one_counted_feasible_evaluation_with_the_layers_macs(flow, layer):
    res = fixed(layer, flow)
    assert res.feasible, res.summary
    assert res.summary["samples_used"] == 1 and res.summary["feasible_samples"] == 1
    assert res.outputs["num_macs"] == layer.macs
    assert res.cost == res.outputs["runtime_cycles"] >= res.summary["compute_bound_cycles"]
    # the same mapping without the guard (paper mode): MAESTRO still counts every MAC
    free = fixed(layer, flow, "edge", "paper_mode=true")
    assert free.mapping == res.mapping and free.outputs["num_macs"] == layer.macs


@pytest.mark.parametrize("flow", TEMPLATES)
def test_depthwise_layers_get_each_dataflows_depthwise_directives(flow):
    """No K directive on a DSCONV layer (MAESTRO: "Dimension K not found"). Eyeriss and
    ShiDianNao drop their K temporal map (K = 1 there: the numbers do not change); NVDLA, whose
    clusters split K, splits C across clusters instead (c channels per cluster, one per PE)."""
    dw = LAYERS[1]  # DSCONV K1 C96 Y112 X112 R3 S3
    flows = {name: Dataflow.from_config(settings(optimizer="fixed", overrides=[f"dataflow={name}"])["dataflow"])
             for name in TEMPLATES}
    m = flows[flow].mapping(dw, hw())
    assert foreign_dims("DSCONV", m) == [] and all(d.dim != "K" for lv in m.levels for d in lv.directives)
    as_conv = Layer("CONV", K=1, C=96, Y=112, X=112, R=3, S=3)  # the same shape as a 1-filter CONV
    conv = flows[flow].mapping(as_conv, hw())
    if flow == "nvdla":
        assert m.levels[0].directives[0] == Directive("Spatial", "C", 64, 64)
        assert m.levels[1].cluster == Cluster(64) and m.levels[1].directives[0] == Directive("Spatial", "C", 1, 1)
        assert [lv.directives[1:] for lv in m.levels] == [conv.levels[0].directives[2:], conv.levels[1].directives[1:]]
    else:
        without_k = Mapping(tuple(Level(tuple(d for d in lv.directives if d.dim != "K"), lv.cluster)
                                  for lv in conv.levels))
        assert m == without_k
        assert fixed(dw, flow).cost == search_layer(as_conv, "edge", optimizer="fixed",
                                                    overrides=[f"dataflow={flow}"]).cost
    res = fixed(dw, flow)
    assert res.feasible and res.outputs["num_macs"] == dw.macs


def test_the_size_rules_follow_the_layer():
    nv = fixed(LAYERS[0], "nvdla").mapping  # C = 3: a cluster of 3 PEs, C tile 3
    assert nv.levels[1].cluster == Cluster(3) and directive(nv, 0, "C").size == 3
    nv = fixed(MID, "nvdla").mapping  # C = 64: the full 64
    assert nv.levels[1].cluster == Cluster(64)
    eye = fixed(LAYERS[3], "eyeriss").mapping  # one PE per filter row (R = 7)
    assert eye.levels[1].cluster == Cluster(7) and directive(eye, 0, "K").size == 16
    shi = fixed(LAYERS[4], "shidiannao").mapping  # Xo = 7 < 8: 7 outputs need 9 input columns
    assert shi.levels[1].cluster == Cluster(7)
    assert directive(shi, 0, "X") == Directive("Temporal", "X", 9, 7)
    shi = fixed(MID, "shidiannao").mapping
    assert directive(shi, 0, "X") == Directive("Temporal", "X", 10, 8)


def test_an_oversized_template_shrinks_until_it_fits_and_every_attempt_counts():
    # cloud: 64 elements of L1 per PE. Eyeriss's 16 output channels per step need 198.
    res = fixed(MID, "eyeriss", "cloud")
    assert res.feasible
    assert res.summary["samples_used"] == 3 and res.summary["rejections"] == {R_L1: 2}
    assert directive(res.mapping, 0, "K").size == 4  # 16 -> 8 -> 4
    assert res.outputs["l1_size_req"] <= 64 < fixed(MID, "eyeriss").outputs["l1_size_req"]
    # L2 too small: the outermost level's largest tile (NVDLA's C tile, 64) halves first
    res = fixed(MID, "nvdla", hw(l2_size=600))
    assert res.feasible and res.summary["rejections"] == {R_L2: 3}
    assert directive(res.mapping, 0, "C").size == 8 and res.outputs["l2_size_req"] <= 600


def test_a_layer_where_nothing_fits_is_infeasible():
    # a 7x7 filter needs 2*49 weights per PE in NVDLA's PE; cloud has 64: halving C (3 -> 1)
    # is all the rule can do
    res = fixed(LAYERS[3], "nvdla", "cloud")
    assert not res.feasible and res.mapping is None and res.cost == np.inf
    assert res.summary["samples_used"] == 2 and res.summary["rejections"] == {R_L1: 2}


def test_clusters_beyond_the_pe_count_are_halved_before_any_evaluation():
    m = Mapping((Level((Directive("Spatial", "K", 1, 1),)),
                 Level((Directive("Spatial", "C", 1, 1),), Cluster(64)),
                 Level((Directive("Spatial", "Y'", 1, 1),), Cluster(4))))
    fitted = fit_clusters(m, 16)
    assert [lv.cluster.size for lv in fitted.levels[1:]] == [4, 4]
    assert fit_clusters(m, 256) == m


def test_shrinking_keeps_sliding_windows_and_filter_tiles():
    layer = Layer("CONV", K=8, C=8, Y=20, X=20, R=3, S=3)
    m = Mapping((Level((Directive("Temporal", "X", 10, 8), Directive("Spatial", "Y", 3, 1),
                        Directive("Temporal", "R", 3, 3))),))
    once = shrink_for(layer, m, R_L1)
    assert once.levels[0].directives[0] == Directive("Temporal", "X", 6, 4)  # 8 outputs -> 4
    assert once.levels[0].directives[1:] == m.levels[0].directives[1:]
    assert shrink_for(layer, m, R_BOUND) is None  # shrinking cannot fix the guard
    last = m
    while (nxt := shrink_for(layer, last, R_L2)) is not None:
        last = nxt
    assert last.levels[0].directives[0] == Directive("Temporal", "X", 3, 1)


def test_size_rules_are_checked():
    assert eval_rule("min(64, C, P) // 2 + 1", {"C": 30, "P": 168}) == 16
    for bad in ("__import__('os')", "C ** 2", "D + 1", "1 +"):
        with pytest.raises(ValueError):
            eval_rule(bad, {"C": 3})
    cfg = {"name": "t", "sizes": {"c": "C - 64"}, "dataflow": "SpatialMap(1,1) K; TemporalMap(c,c) C;"}
    with pytest.raises(GammaError, match=r"dataflow\.t: sizes\.c = 'C - 64' is 0"):
        Dataflow.from_config(cfg)
    with pytest.raises(GammaError, match="needs a dataflow"):
        Dataflow.from_config(None)
    with pytest.raises(GammaError, match="dataflow.path: only dataflow=file reads a file"):
        Dataflow.from_config({**cfg, "path": "my.m"})


def test_labels_name_the_dataflow():
    cfg = settings(optimizer="fixed", overrides=["dataflow=shidiannao"])
    assert job_label(cfg["optimizer"], {"name": "fixed", "dataflow": "${dataflow}"},
                     ["optimizer=fixed", "dataflow=shidiannao", "model=mnasnet"], cfg) == "fixed shidiannao"
    cfg = settings(optimizer="fixed", overrides=["dataflow=file", "dataflow.path=a/my.m", "paper_mode=true"])
    assert job_label(cfg["optimizer"], {"name": "fixed"},
                     ["dataflow=file", "dataflow.path=a/my.m", "paper_mode=true"], cfg) == \
        "fixed file:my.m paper_mode=true"


def test_results_record_the_dataflow_paper_mode_and_below_bound(tmp_path):
    code, res = run_inprocess(["optimizer=fixed", "dataflow=nvdla", "model=mobilenet_v2",
                               "layers=[1,2,3]", "tracking.enabled=false"], tmp_path / "a")
    assert code == 0 and res["dataflow"] == "nvdla" and res["label"] == "fixed nvdla"
    assert res["paper_mode"] is False and res["guard"] is True
    assert [r["samples_used"] for r in res["layers"]] == [1, 1, 1]
    assert [r["below_bound"] for r in res["layers"]] == [False] * 3
    assert res["totals"]["below_bound_layers"] == 0
    code, res = run_inprocess(["optimizer=random", "budget=300", "layers=[1]", "paper_mode=true",
                               "tracking.enabled=false"], tmp_path / "b")
    assert code == 0 and res["dataflow"] is None and res["paper_mode"] is True
    assert res["guard"] is False


def test_paper_mode_keeps_mappings_below_the_compute_bound_and_counts_them(tmp_path):
    args = ["model=mobilenet_v2", "system=s3", "budget=1000", "layers=[2,3]", "tracking.enabled=false"]
    code, paper = run_inprocess([*args, "paper_mode=true"], tmp_path / "paper")
    assert code == 0 and paper["paper_mode"] is True and paper["guard"] is False
    for r in paper["layers"]:
        assert r["below_bound"] is True and r["best"]["runtime_cycles"] < r["compute_bound_cycles"]
        assert R_BOUND not in r["rejections"] and R_MACS not in r["rejections"]
    assert paper["totals"]["below_bound_layers"] == 2
    code, honest = run_inprocess(args, tmp_path / "honest")
    assert [r["below_bound"] for r in honest["layers"]] == [False, False]
    assert honest["totals"]["below_bound_layers"] == 0


def test_paper_mode_turns_the_guard_off_and_inner_tiles_to_any():
    layer = Layer("CONV", K=64, C=64, Y=58, X=58, R=3, S=3)
    edge = hw()
    honest = make_objective(settings(system="s3"), layer, edge)
    paper = make_objective(settings(system="s3", paper_mode=True, guard=True), layer, edge)
    assert (honest.guard, honest.space.inner_tiles) == (True, "divisors")
    assert (paper.guard, paper.space.inner_tiles) == (False, "any")
    rng = np.random.default_rng(0)

    def non_divisors(space) -> int:
        g = space.random(400, np.random.default_rng(1), levels=3)
        parent, child = g.tile[:, :-1, :G_R], g.tile[:, 1:, :G_R]
        return int((parent % child != 0).sum())

    assert non_divisors(honest.space) == 0 and non_divisors(paper.space) > 0
    # the same random genomes: the guard rejects some with it on, none without it
    g = honest.space.random(2000, rng)
    honest.evaluate(g)
    paper.evaluate(g)
    assert honest.rejections[R_BOUND] + honest.rejections[R_MACS] > 0
    assert paper.rejections[R_BOUND] == paper.rejections[R_MACS] == 0
    assert paper.feasible_count > honest.feasible_count


def test_paper_mode_must_be_a_boolean(tmp_path, capsys):
    code, res = run_inprocess(["paper_mode=yes", "layers=[1]", "tracking.enabled=false"], tmp_path)
    assert code == 1 and "error: paper_mode must be true or false" in capsys.readouterr().err
    assert res is None  # refused before any search: nothing to keep


# --- run.py with a user's dataflow file (subprocess: the user's view, no traceback) ---------------
WS_FILE = """// weight stationary: K across clusters, C across a cluster's PEs
Dataflow {
  SpatialMap(1,1) K;
  TemporalMap(Sz(C),Sz(C)) C;
  TemporalMap(Sz(R),Sz(R)) R;
  TemporalMap(Sz(S),Sz(S)) S;
  TemporalMap(Sz(R),1) Y;
  TemporalMap(Sz(S),1) X;
  Cluster(8,P);
  SpatialMap(1,1) C;
  TemporalMap(Sz(R),1) Y;
  TemporalMap(Sz(S),1) X;
  TemporalMap(Sz(R),Sz(R)) R;
  TemporalMap(Sz(S),Sz(S)) S;
}
"""


JOB = ["model=mobilenet_v2", "layers=[1,2]", "tracking.enabled=false"]


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *JOB,
                           f"hydra.run.dir={tmp_path / 'run'}", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def run_job(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The job of ``args`` in this process (tests/jobs.py), its output captured."""
    return run_captured([*JOB, f"hydra.run.dir={tmp_path / 'run'}", *args])


#: WS_FILE for depthwise layers (no K): C across clusters and across a cluster's PEs.
WS_DW_FILE = WS_FILE.replace("  SpatialMap(1,1) K;\n  TemporalMap(Sz(C),Sz(C)) C;\n", "  SpatialMap(8,8) C;\n")


def test_a_users_dataflow_file_runs_on_every_layer(tmp_path):
    path, dw = tmp_path / "ws.m", tmp_path / "ws_dw.m"
    path.write_text(WS_FILE)
    dw.write_text(WS_DW_FILE)
    p = run_cli(tmp_path, "optimizer=fixed", "dataflow=file", f"dataflow.path={path}",
                f"dataflow.depthwise_path={dw}")
    assert p.returncode == 0, p.stderr
    res = read_results(tmp_path / "run" / "results.json")
    assert res["dataflow"] == "file" and res["label"] == "fixed file:ws.m+ws_dw.m"
    layers = res["layers"]
    assert [r["feasible"] for r in layers] == [True, True]
    assert layers[0]["mapping"]["levels"][0]["directives"][1] == \
        {"type": "Temporal", "dim": "C", "size": 3, "offset": 3}  # Sz(C) of layer 1
    assert layers[1]["mapping"]["levels"][0]["directives"][0] == \
        {"type": "Spatial", "dim": "C", "size": 8, "offset": 8}  # layer 2 (DSCONV): the depthwise file
    assert [r["best"]["num_macs"] for r in layers] == [32 * 3 * 222 * 222 * 9, 32 * 110 * 110 * 9]


def test_a_users_file_with_k_directives_on_a_depthwise_layer_is_an_error_naming_it(tmp_path):
    """Layer 2 of MobileNet-V2 is depthwise: MAESTRO would stop with "Dimension K not found"."""
    path = tmp_path / "ws.m"
    path.write_text(WS_FILE)
    p = run_job(tmp_path, "optimizer=fixed", "dataflow=file", f"dataflow.path={path}")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    line = next(x for x in p.stderr.splitlines() if x.startswith("error:"))
    assert line.startswith(f"error: {path}: directives on K, which DSCONV layers (layer DSCONV K1 C32 "
                           "Y112 X112 R3 S3) do not have; MAESTRO stops with 'Dimension K not found'; "
                           "give the dataflow's depthwise directives (dataflow.depthwise_path"), line


@pytest.mark.parametrize("text, extra, reason", [
    ("SpatialMap(1,1) K;\nTemporalMap(2,2) Q;\n", [], r":2: unknown dimension 'Q'"),
    ("SpatialMap(1,1) K;\nCluster(4,P);\n", [], "a cluster level has no directives"),
    (WS_FILE, ["platform.l1_size=16"], r"does not fit layer CONV K32 C3 Y224 X224 R3 S3 .*L1 over capacity"),
])
def test_a_bad_or_non_fitting_dataflow_file_is_an_error_naming_it(tmp_path, text, extra, reason):
    path = tmp_path / "bad.m"
    path.write_text(text)
    p = run_job(tmp_path, "optimizer=fixed", "dataflow=file", f"dataflow.path={path}", *extra)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    line = next(x for x in p.stderr.splitlines() if x.startswith("error:"))
    assert line.startswith(f"error: {path}") and __import__("re").search(reason, line), line


def test_fixed_without_a_dataflow_or_path_is_an_error(tmp_path):
    p = run_cli(tmp_path, "optimizer=fixed")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "error: optimizer=fixed needs a dataflow" in p.stderr
    p = run_job(tmp_path, "optimizer=fixed", "dataflow=file")
    assert p.returncode == 1 and "error: dataflow.path: dataflow=file needs dataflow.path" in p.stderr
