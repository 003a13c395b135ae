"""Transformer and recommendation workloads: the bert/dlrm configs searched end to end (real cost
model, real GAMMA), the generated BERT-base encoder block and decoder step read from ONNX (GEMM
layers with their M, N, K and instance counts, the graph's MACs, skipped operators with their
elements), and GAMMA against the proven optimum on BERT layers."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import onnx
import pytest
from onnx import shape_inference

from gamma.search.api import search_model
from gamma.workloads.files import load_model
from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_transformer_onnx",
                                               ROOT / "scripts" / "make_transformer_onnx.py")
make_onnx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_onnx)

#: BERT-base: sequence, hidden, heads, feed-forward width.
S, H, HEADS, F = 512, 768, 12, 3072
D = H // HEADS


def run_py(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def graph_macs(model: onnx.ModelProto) -> int:
    """MACs of every MatMul of a graph, from ONNX shape inference alone: the output's elements
    times the inner size (the first operand's last dimension)."""
    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    g = inferred.graph
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (*g.input, *g.value_info, *g.output)}
    return sum(math.prod(dims[n.output[0]]) * dims[n.input[0]][-1]
               for n in g.node if n.op_type == "MatMul")


def block_views(m: int, ctx: int) -> dict[str, int]:
    """The GEMM layers of a BERT-base block with ``m`` query tokens attending to ``ctx`` tokens,
    and how many of each: four projections, one Q K^T and one scores x V per head, the FFN."""
    return {f"GEMM M{m} N{H} K{H}": 4, f"GEMM M{m} N{ctx} K{D}": HEADS,
            f"GEMM M{m} N{D} K{ctx}": HEADS, f"GEMM M{m} N{F} K{H}": 1, f"GEMM M{m} N{H} K{F}": 1}


def saved(graph: onnx.ModelProto, path: Path):
    """``graph`` written to ``path`` and read back as a model."""
    onnx.save(graph, str(path))
    return load_model(path)


def test_help_lists_the_new_models(tmp_path: Path) -> None:
    proc = run_py("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = next(l for l in proc.stdout.splitlines() if l.startswith("model:"))
    assert {"bert", "albert", "t5", "transformer", "dlrm", "ncf"} <= set(line[6:].replace(",", " ").split())


@pytest.mark.parametrize("model", ["bert", "dlrm"])
def test_every_layer_feasible_on_s2_edge_and_cloud_at_the_default_budget(model: str) -> None:
    for platform in ("edge", "cloud"):
        res = search_model(model, platform, system="s2", seed=0)  # budget: conf's default
        assert res.config["budget"] == 10_000
        assert all(r.feasible for r in res.layers.values()), (model, platform)
        bound = sum(r.summary["compute_bound_cycles"] for r in res.layers.values())
        assert bound <= res.total_cost, (model, platform)


def test_the_table_and_results_show_gemm_shapes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_py("model=bert", "budget=1000", "tracking.enabled=false", f"hydra.run.dir={out}",
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout[proc.stdout.index("#  shape"):]
    for row in ("1  GEMM M512 N768 K768 ", "3  GEMM M64 N512 K512 ", "6  GEMM M512 N3072 K768 "):
        assert row in table, row
    assert "CONV" not in table.split("mapping")[0]
    assert "layer   5 GEMM M512 N768 K3072: " in proc.stdout
    res = read_results(out / "results.json")
    assert [r["gemm"] for r in res["layers"]][4] == {"M": 512, "N": 768, "K": 3072}
    assert res["layers"][4]["shape"] == "CONV K768 C3072 Y512 X1 R1 S1"  # what is evaluated


def test_bert_encoder_block_from_onnx(tmp_path: Path) -> None:
    """Q, K, V and output projections, Q K^T and scores x V once per head, the two feed-forward
    GEMMs; the MACs are the graph's; Softmax, LayerNorm, Gelu skipped with their elements."""
    graph = make_onnx.encoder_block(S, H, HEADS, F)
    model = saved(graph, tmp_path / "bert_block.onnx")
    assert Counter(l.view for l in model.layers) == block_views(S, S)
    assert all(l.gemm and l.type == "CONV" for l in model.layers)
    names = [l.name for l in model.layers]
    assert names[:3] == ["k_proj", "v_proj", "q_proj"] and names[-3:] == ["out_proj", "ffn_up", "ffn_down"]
    assert names[3:3 + HEADS] == [f"scores batch {i}/{HEADS}" for i in range(1, HEADS + 1)]
    assert len(model.unique_layers()[0]) == 5
    macs = 4 * S * H * H + 2 * HEADS * S * S * D + 2 * S * H * F
    assert model.macs == graph_macs(graph) == macs == 4_026_531_840
    ops = model.skipped_ops
    assert ops["Softmax"] == {"nodes": 1, "elements": HEADS * S * S}
    assert ops["LayerNormalization"] == {"nodes": 2, "elements": 2 * S * H}
    assert ops["Gelu"] == {"nodes": 1, "elements": S * F}
    assert ops["Add"]["nodes"] == 8 and ops["Reshape"]["nodes"] == ops["Transpose"]["nodes"] == 4


def test_encoder_job_counts_every_instance(tmp_path: Path) -> None:
    """A small encoder block (4 heads) through run.py: 14 layers, 5 searches; the totals and the
    compute bound sum every instance of the attention products."""
    path = tmp_path / "enc.onnx"
    onnx.save(make_onnx.encoder_block(seq=32, hidden=64, heads=4, ffn=128), str(path))
    out = tmp_path / "run"
    proc = run_py("model=onnx", f"model.path={path}", "budget=300", "tracking.enabled=false",
                  f"hydra.run.dir={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "enc: 14 of 14 layers (5 unique shapes)" in proc.stdout
    assert "Softmax 1 (4,096 elements)" in proc.stdout
    res = read_results(out / "results.json")
    layers, totals = res["layers"], res["totals"]
    assert len(layers) == 4 + 2 * 4 + 2 and totals["layers"] == 14 and totals["feasible"]
    views = Counter(f"M{r['gemm']['M']} N{r['gemm']['N']} K{r['gemm']['K']}" for r in layers)
    assert views == {"M32 N64 K64": 4, "M32 N32 K16": 4, "M32 N16 K32": 4, "M32 N128 K64": 1,
                     "M32 N64 K128": 1}
    model = load_model(path)
    assert totals["compute_bound_cycles"] == sum(math.ceil(l.macs / 168) for l in model.layers)
    assert totals["latency_cycles"] == sum(r["best"]["runtime_cycles"] for r in layers)
    scores = [r for r in layers if r["gemm"] == {"M": 32, "N": 32, "K": 16}]
    assert len(scores) == 4 and len({r["unique_index"] for r in scores}) == 1
    assert res["skipped_ops"]["Gelu"] == {"nodes": 1, "elements": 32 * 128}
    assert proc.stdout.count("GEMM M32 N32 K16 ") == 4  # a table row per instance


def test_decoder_step_is_matrix_vector_and_feasible(tmp_path: Path) -> None:
    graph = make_onnx.decoder_step(S, H, HEADS, F)
    model = saved(graph, tmp_path / "decoder_step.onnx")
    assert Counter(l.view for l in model.layers) == block_views(1, S)
    assert model.macs == graph_macs(graph) == 4 * H * H + 2 * HEADS * S * D + 2 * H * F
    assert model.skipped_ops["Concat"] == {"nodes": 2, "elements": 2 * HEADS * S * D}
    for platform in ("edge", "cloud"):
        res = search_model(model, platform, system="s2", budget=2000, seed=0)
        assert all(r.feasible for r in res.layers.values()), platform


def test_script_writes_both_graphs_and_refuses_bad_sizes(tmp_path: Path) -> None:
    assert make_onnx.main([str(tmp_path / "e.onnx"), "--seq", "8", "--hidden", "16", "--heads", "2",
                           "--ffn", "32"]) == 0
    assert make_onnx.main([str(tmp_path / "d.onnx"), "--kind", "decoder", "--seq", "8",
                           "--hidden", "16", "--heads", "2", "--ffn", "32"]) == 0
    assert {l.Y for l in load_model(tmp_path / "d.onnx").layers} == {1}
    assert len(load_model(tmp_path / "e.onnx")) == 4 + 2 * 2 + 2
    with pytest.raises(ValueError, match="not a multiple of --heads"):
        make_onnx.encoder_block(seq=8, hidden=10, heads=4, ffn=8)


def test_gamma_within_one_percent_of_the_proven_optimum_on_bert() -> None:
    """optimizer=exhaustive proves the latency optimum of the two attention layers of
    model=bert on S2 edge (the other three take 7-8 s each: docs/results.md); GAMMA at 10,000
    samples is within 1 % of it on seeds 0-4."""
    layers = [2, 3]
    proof = search_model("bert", "edge", system="s2", layers=layers, optimizer="exhaustive", seed=0)
    optimum = {}
    for i in layers:
        r = proof.layers[i]
        assert r.summary["optimizer_report"]["proven_optimal"] is True, i
        optimum[i] = r.cost
        assert r.cost >= r.summary["compute_bound_cycles"]
    for seed in range(5):
        res = search_model("bert", "edge", system="s2", layers=layers, seed=seed)
        for i in layers:
            assert optimum[i] <= res.layers[i].cost <= 1.01 * optimum[i], (seed, i)
