#!/usr/bin/env python
"""Write a small ONNX network built with ``onnx.helper``, to try ``model=onnx`` without PyTorch.

Usage: python scripts/onnx_example.py OUT.onnx

The graph (batch 1, float32, random weights): input 1x3x32x32 -> Conv 16x3x3x3 pad 1 -> Relu ->
Conv 32x16x3x3 stride 2 pad 1 -> Relu -> GlobalAveragePool -> Flatten -> Gemm 32 -> 10. It
becomes three layers (two CONV, one GEMM-shaped CONV) and four skipped operators. A network of
your own exported from PyTorch (``torch.onnx.export(net, torch.randn(1, 3, 224, 224),
"net.onnx")``) is read the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def weight(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> onnx.TensorProto:
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def example_model(size: int = 32, seed: int = 0) -> onnx.ModelProto:
    """The example network above on a ``size`` x ``size`` input."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1),
    ]
    inits = [weight("w1", (16, 3, 3, 3), rng), weight("w2", (32, 16, 3, 3), rng),
             weight("w3", (10, 32), rng), weight("b3", (10,), rng)]
    graph = helper.make_graph(
        nodes, "example",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python scripts/onnx_example.py OUT.onnx", file=sys.stderr)
        return 1
    out = Path(args[0])
    onnx.save(example_model(), str(out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
