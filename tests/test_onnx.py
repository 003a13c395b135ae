"""ONNX graphs as workloads (gamma/workloads/onnx.py): graphs built here with onnx.helper become the
layers their shapes say; nodes we cannot map and broken files are errors naming them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gamma.errors import ModelFileError
from gamma.workloads.files import load_model, model_from_config
from gamma.workloads.layer import Layer
from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("onnx_example", ROOT / "scripts" / "onnx_example.py")
onnx_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(onnx_example)


def w(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def save(tmp_path: Path, nodes: list, inputs: list, output: str, inits: list,
         name: str = "net", rank: int = 4) -> Path:
    """``nodes`` as a model file; the output ``output`` has ``rank`` dimensions of unknown size."""
    out = helper.make_tensor_value_info(output, TensorProto.FLOAT, [None] * rank)
    graph = helper.make_graph(nodes, name, inputs, [out], inits)
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def image(name: str, *shape: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def test_two_convs_and_a_gemm(tmp_path: Path) -> None:
    path = tmp_path / "example.onnx"
    onnx.save(onnx_example.example_model(), str(path))
    model = load_model(path)
    assert model.name == "example"
    # conv1: 32x32 output (pad 1) -> Y = 32 + 3 - 1; conv2: stride 2, pad 1 -> 16x16 output;
    # Gemm 1x32 @ 32x10 -> K=N=10, C=K=32, Y=M=1.
    assert list(model.layers) == [Layer("CONV", K=16, C=3, Y=34, X=34, R=3, S=3),
                                  Layer("CONV", K=32, C=16, Y=18, X=18, R=3, S=3),
                                  Layer("CONV", K=10, C=32, Y=1)]
    assert [l.name for l in model.layers] == ["conv1", "conv2", "fc"]
    assert [l.macs for l in model.layers] == [16 * 3 * 9 * 32 * 32, 32 * 16 * 9 * 16 * 16, 320]
    assert [l.view for l in model.layers][2] == "GEMM M1 N10 K32" and model.layers[2].gemm
    # nodes and output elements: Relu 16x32x32 + 32x16x16, pool and flatten 32 each
    assert model.skipped_ops == {"Flatten": {"nodes": 1, "elements": 32},
                                 "GlobalAveragePool": {"nodes": 1, "elements": 32},
                                 "Relu": {"nodes": 2, "elements": 16 * 32 * 32 + 32 * 16 * 16}}
    strided = load_model(path, apply_strides=True).layers[1]
    assert (strided.Y, strided.stride_y, strided.stride_x) == (33, 2, 2)  # (16 - 1) * 2 + 3 rows


def test_depthwise_grouped_and_auto_pad(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "wd"], ["d"], name="dw", group=8, kernel_shape=[3, 3],
                         auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("Conv", ["d", "wm"], ["m"], name="dw2", group=8, kernel_shape=[5, 5],
                         dilations=[2, 2], pads=[4, 4, 4, 4]),
        helper.make_node("Conv", ["m", "wg"], ["y"], name="grouped", group=4),
    ]
    path = save(tmp_path, nodes, [image("x", 1, 8, 15, 15)], "y",
                [w("wd", 8, 1, 3, 3), w("wm", 16, 1, 5, 5), w("wg", 12, 4, 1, 1)])
    layers = load_model(path).layers
    # depthwise, SAME_UPPER at stride 2: output ceil(15 / 2) = 8 rows -> Y = 8 + 3 - 1
    assert layers[0] == Layer("DSCONV", K=1, C=8, Y=10, X=10, R=3, S=3)
    # channel multiplier 2 (16 filters on 8 channels), dilation 2, pad 4: output 8 + 8 - 9 + 1
    # = 8 rows -> two DSCONV layers with Y = 8 + 5 - 1, 16 x 25 x 8 x 8 MACs in all
    assert layers[1:3] == (Layer("DSCONV", K=1, C=8, Y=12, X=12, R=5, S=5),) * 2
    assert [l.name for l in layers[1:3]] == ["dw2 multiplier 1/2", "dw2 multiplier 2/2"]
    assert layers[1].macs + layers[2].macs == 16 * 25 * 8 * 8
    # 16 channels in 4 groups of 4, 12 filters in groups of 3: four CONV K3 C4 layers
    assert layers[3:] == (Layer("CONV", K=3, C=4, Y=8, X=8),) * 4
    assert [l.name for l in layers[3:]] == [f"grouped group {i}/4" for i in range(1, 5)]


def test_matmul_batch_folds_or_repeats(tmp_path: Path) -> None:
    nodes = [helper.make_node("MatMul", ["a", "wb"], ["h"], name="proj"),
             helper.make_node("Transpose", ["h"], ["ht"], name="t", perm=[0, 2, 1]),
             helper.make_node("MatMul", ["h", "ht"], ["y"], name="scores")]
    path = save(tmp_path, nodes, [image("a", 2, 5, 6)], "y", [w("wb", 6, 7)], rank=3)
    model = load_model(path)
    assert model.layers[0] == Layer("CONV", K=7, C=6, Y=10)   # shared weight: M = 2 x 5
    assert model.layers[1:] == (Layer("CONV", K=5, C=7, Y=5),) * 2  # one GEMM per batch element
    assert [l.view for l in model.layers] == ["GEMM M10 N7 K6"] + ["GEMM M5 N5 K7"] * 2
    assert [l.name for l in model.layers[1:]] == ["scores batch 1/2", "scores batch 2/2"]
    assert model.skipped_ops == {"Transpose": {"nodes": 1, "elements": 70}}


def test_conv_transpose_names_the_node(tmp_path: Path) -> None:
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], name="c1", kernel_shape=[3, 3]),
             helper.make_node("ConvTranspose", ["c", "w2"], ["y"], name="up1", kernel_shape=[2, 2],
                              strides=[2, 2])]
    path = save(tmp_path, nodes, [image("x", 1, 4, 8, 8)], "y", [w("w1", 4, 4, 3, 3), w("w2", 4, 4, 2, 2)])
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    assert str(e.value).startswith(f"{path}: node up1 (ConvTranspose): transposed convolution")


def test_unknown_sizes_and_batch_are_errors(tmp_path: Path) -> None:
    node = helper.make_node("Conv", ["x", "w1"], ["y"], name="c1")
    path = save(tmp_path, [node], [image("x", 1, 4, "H", 8)], "y", [w("w1", 4, 4, 3, 3)], name="symbolic")
    with pytest.raises(ModelFileError, match=r"node c1 \(Conv\): input 'x' has shape \[1, 4, '\?', 8\]"):
        load_model(path)
    path = save(tmp_path, [node], [image("x", 2, 4, 8, 8)], "y", [w("w1", 4, 4, 3, 3)], name="batch2")
    with pytest.raises(ModelFileError, match=r"node c1 \(Conv\): batch size 2"):
        load_model(path)
    path = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [image("x", 1, 4)], "y", [], name="nolayer", rank=2)
    with pytest.raises(ModelFileError, match=r"file: no Conv, Gemm or MatMul node to map \(operators: Relu 1\)"):
        load_model(path)


def test_malformed_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf \xff\xfe")
    with pytest.raises(ModelFileError, match=r"bad.onnx: file: not a readable ONNX model"):
        load_model(bad)
    with pytest.raises(ModelFileError, match="missing.onnx: file: not found"):
        load_model(tmp_path / "missing.onnx")
    # a graph whose node reads a tensor nothing produces fails the checker
    path = save(tmp_path, [helper.make_node("Conv", ["x", "nowhere"], ["y"], name="c1")],
                [image("x", 1, 4, 8, 8)], "y", [], name="dangling")
    with pytest.raises(ModelFileError, match=r"dangling.onnx: file: invalid ONNX model"):
        load_model(path)


def test_model_config_names_the_model_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    onnx.save(onnx_example.example_model(size=8), str(path))
    model = model_from_config({"name": "onnx", "path": str(path), "layers": None})
    assert model.name == "tiny" and len(model) == 3 and model.skipped_ops["Relu"]["nodes"] == 2
    mine = model_from_config({"name": "mine", "path": str(path), "layers": None})
    assert mine.skipped_ops["Relu"] == {"nodes": 2, "elements": 16 * 8 * 8 + 32 * 4 * 4}
    with pytest.raises(ModelFileError, match=r"e\.g\. model=onnx model\.path=net\.onnx"):
        model_from_config({"name": "onnx", "path": "???", "layers": None})


def run_py(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_run_py_on_an_onnx_model(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    onnx.save(onnx_example.example_model(size=8), str(path))
    out = tmp_path / "run"
    proc = run_py("model=onnx", f"model.path={path}", "budget=200", "tracking.enabled=false",
                  f"hydra.run.dir={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ("skipped operators (no layer): Flatten 1 (32 elements), GlobalAveragePool 1 "
            "(32 elements), Relu 2 (1,536 elements)") in proc.stdout
    results = read_results(out / "results.json")
    assert results["model"] == "tiny" and results["status"] == "finished"
    assert results["skipped_ops"] == {"Flatten": {"nodes": 1, "elements": 32},
                                      "GlobalAveragePool": {"nodes": 1, "elements": 32},
                                      "Relu": {"nodes": 2, "elements": 1536}}
    assert [r.get("gemm") for r in results["layers"]] == [None, None, {"M": 1, "N": 10, "K": 32}]
    assert "3  GEMM M1 N10 K32 " in proc.stdout  # the table shows the GEMM, results.json both
    assert [r["shape"] for r in results["layers"]] == [
        "CONV K16 C3 Y10 X10 R3 S3", "CONV K32 C16 Y6 X6 R3 S3", "CONV K10 C32 Y1 X1 R1 S1"]
    assert all(r["feasible"] and r["samples_used"] == 200 for r in results["layers"])
    assert results["totals"]["latency_cycles"] == sum(r["best"]["runtime_cycles"] for r in results["layers"])


def test_run_py_errors_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model at all")
    proc = run_py("model=onnx", f"model.path={bad}", "tracking.enabled=false",
                  f"hydra.run.dir={tmp_path / 'r1'}", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: {bad}: file: not a readable ONNX model")
    assert "Traceback" not in proc.stderr + proc.stdout
    nodes = [helper.make_node("ConvTranspose", ["x", "w2"], ["y"], name="up1", kernel_shape=[2, 2])]
    path = save(tmp_path, nodes, [image("x", 1, 4, 8, 8)], "y", [w("w2", 4, 4, 2, 2)], name="up")
    proc = run_py("model=onnx", f"model.path={path}", "tracking.enabled=false",
                  f"hydra.run.dir={tmp_path / 'r2'}", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: {path}: node up1 (ConvTranspose): ")
    assert "Traceback" not in proc.stderr + proc.stdout


def test_skipped_text_with_unknown_elements() -> None:
    from gamma.workloads.layer import Model

    model = Model("m", (Layer("CONV", K=2),), skipped_ops={
        "Relu": {"nodes": 2, "elements": None}, "Softmax": {"nodes": 1, "elements": 3_145_728}})
    assert model.skipped_text() == "Relu 2 (? elements), Softmax 1 (3,145,728 elements)"
