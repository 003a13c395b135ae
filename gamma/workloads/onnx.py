"""Any ONNX graph as a workload: its Conv, Gemm and MatMul nodes become :class:`Layer` s.

``load_onnx(path)`` reads the file (``onnx.load``), checks it (``onnx.checker``), inlines local
functions, runs ``onnx.shape_inference`` (with data propagation) and walks the main graph in node
order. Units: element counts; every layer is evaluated at stride 1 as our other loaders do
(see :mod:`gamma.workloads.files`), so a layer is the **stride-1 equivalent** of its node: the same
output size and the same MACs.

* **Conv** (1-D or 2-D, NCHW, batch 1 or symbolic): ``K`` = output channels, ``C`` = input
  channels, ``R x S`` = kernel taps, and ``Y = Yo + R - 1``, ``X = Xo + S - 1`` where ``Yo x Xo``
  is the node's real output size from the graph (strides, pads, ``auto_pad`` and dilations
  honoured). MAESTRO's output ``Y - R + 1`` is then the node's output and the MAC count
  ``K C R S Yo Xo`` is the node's. (A dilated or strided kernel reads a wider, sparser input
  window than this; the input footprint is the undilated, stride-1 one.) With
  ``apply_strides=True`` the layer keeps the stride instead (``stride_y``/``stride_x``) with
  ``Y = (Yo - 1) stride + R`` rows of input covered, as the YAML loader's ``stride``; dilations
  are refused there.
  1-D convolutions have ``Y = R = 1``.
* **Depthwise** Conv (``group == C`` with one input channel per filter, ``K = m C``): ``m``
  DSCONV layers (``K = 1``, ``C``); ``m`` is 1 for a plain depthwise conv.
* **Grouped** Conv (1 < ``group`` < C): ``group`` identical CONV layers with ``C / group`` input
  and ``K / group`` output channels, one per group (named ``<node> group i/g``): the groups run
  one after another, the MACs are the node's, and the search runs once per unique shape.
* **Gemm** (``Y = op(A) op(B)``, ``op(A)`` M x K, ``op(B)`` K x N) and **MatMul**: a GEMM-view
  CONV layer (``Layer.gemm``, shown as ``GEMM M N K``) with ``K = N``, ``C = K``, ``Y = M``, the
  rest 1, as GAMMA's tables turn GEMM rows into 1x1 convolutions
  (:func:`gamma.workloads.files.layer_from_csv_row`). MatMul's leading dimensions: with a 2-D (or
  broadcast) right operand they fold into ``M`` (a projection of every token); when both operands
  have batch dimensions (attention's batch x heads), the product of the broadcast batch
  dimensions is the **count** of identical GEMM layers, one per instance (``<node> batch i/n``):
  the model's identical layers share one search, and the totals and the compute bound sum every
  instance. A 1-D operand is a 1 x K row / K x 1 column.
* Every other operator of the standard domain that carries no MACs (pooling, activations, Softmax,
  LayerNormalization, Gelu, reshapes, adds, ...) is skipped and counted per operator type
  (:attr:`Model.skipped_ops`: nodes, and elements = the sum of their first outputs' sizes, None
  when a shape is unknown). An operator that does carry MACs and that we cannot map
  (:data:`UNMAPPABLE`, 3-D convolutions, batch > 1, control flow holding such nodes, custom
  domains' conv/matmul-like operators) is an error naming the node and its operator.

Errors are :class:`ModelFileError`: ``<file>: node <name> (<op>): <reason>`` or
``<file>: file: <reason>`` for a file that is not a readable ONNX model.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gamma.errors import ModelFileError
from gamma.workloads.layer import Layer, LayerError, Model

#: Operators with MACs that no layer type of ours represents.
UNMAPPABLE: dict[str, str] = {
    "ConvTranspose": "transposed convolution is not a CONV/DSCONV/GEMM layer",
    "ConvInteger": "integer (quantized) convolution is not mapped",
    "QLinearConv": "quantized convolution is not mapped",
    "MatMulInteger": "integer (quantized) matrix product is not mapped",
    "QLinearMatMul": "quantized matrix product is not mapped",
    "Einsum": "a general tensor contraction is not mapped",
    "DeformConv": "deformable convolution is not mapped",
    "LSTM": "recurrent layers are not mapped",
    "GRU": "recurrent layers are not mapped",
    "RNN": "recurrent layers are not mapped",
    "Attention": "the fused attention operator is not mapped (export it as MatMuls)",
}
#: Operators that become layers.
MAPPED = ("Conv", "Gemm", "MatMul")
#: Substrings that mark a custom-domain operator as one carrying MACs.
MAC_HINTS = ("conv", "matmul", "gemm", "attention", "einsum")

Shapes = dict[str, list[int | None]]


class NodeError(Exception):
    """A node we cannot map; the loader adds the file, node name and operator."""


def load_onnx(path: str | Path, apply_strides: bool = False, source: str | None = None) -> Model:
    """The layers of the ONNX model at ``path``, named after the file (see the module doc)."""
    p = Path(path).expanduser()
    src = source or str(path)
    graph, shapes = _read(p, src)
    layers: list[Layer] = []
    skipped: Counter[str] = Counter()
    elements: dict[str, int | None] = {}
    for n, node in enumerate(graph.node, 1):
        where = f"node {node.name or '#' + str(n)} ({node.op_type})"
        try:
            if node.domain in ("", "ai.onnx") and node.op_type in MAPPED:
                layers += _MAPPERS[node.op_type](node, shapes, apply_strides)
            else:
                _check_skippable(node)
                kind = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
                skipped[kind] += 1
                elements[kind] = _add_known(elements.get(kind, 0), _output_elements(node, shapes))
        except NodeError as e:
            raise ModelFileError(src, where, str(e)) from None
        except LayerError as e:
            raise ModelFileError(src, where, f"impossible layer: {e.field}: {e.reason}") from None
    if not layers:
        ops = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "none"
        raise ModelFileError(src, "file", f"no Conv, Gemm or MatMul node to map (operators: {ops})")
    ops = {k: {"nodes": skipped[k], "elements": elements[k]} for k in sorted(skipped)}
    return Model(p.stem, tuple(layers), skipped_ops=ops)


def _output_elements(node: Any, shapes: Shapes) -> int | None:
    """Elements of the node's first output (what an element-wise operator computes); None when
    its shape is not fully known."""
    dims = shapes.get(node.output[0]) if node.output else None
    if dims is None or any(d is None or d < 0 for d in dims):
        return None
    return math.prod(int(d) for d in dims)


def _add_known(total: int | None, n: int | None) -> int | None:
    """``total + n``, None as soon as either is unknown."""
    return None if total is None or n is None else total + n


# --- reading ------------------------------------------------------------------------------------
def _read(p: Path, src: str) -> tuple[Any, Shapes]:
    """The checked, inlined, shape-inferred main graph and every known tensor shape."""
    import onnx
    from onnx import shape_inference

    if not p.exists():
        raise ModelFileError(src, "file", "not found")
    if not p.is_file():
        raise ModelFileError(src, "file", "is not a file (a directory)" if p.is_dir() else "is not a file")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise ModelFileError(src, "file", f"not a readable ONNX model ({type(e).__name__}: {e})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelFileError(src, "file", "not an ONNX model: no graph nodes")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 - onnx.checker.ValidationError and C++ errors
        raise ModelFileError(src, "file", f"invalid ONNX model: {_first_line(e)}") from None
    try:
        if model.functions:
            from onnx import inliner

            model = inliner.inline_local_functions(model)
        model = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as e:  # noqa: BLE001 - InferenceError
        raise ModelFileError(src, "file", f"shape inference failed: {_first_line(e)}") from None
    g = model.graph
    shapes: Shapes = {t.name: list(t.dims) for t in g.initializer}
    for vi in (*g.input, *g.value_info, *g.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            shapes.setdefault(vi.name, [d.dim_value if d.HasField("dim_value") else None
                                        for d in tt.shape.dim])
    return g, shapes


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def _shape(shapes: Shapes, name: str, what: str) -> list[int]:
    """The fully known shape of tensor ``name``; a :class:`NodeError` otherwise."""
    if name not in shapes:
        raise NodeError(f"{what} '{name}' has no known shape (give the graph fixed input sizes)")
    dims = shapes[name]
    if any(d is None or d < 1 for d in dims):
        raise NodeError(f"{what} '{name}' has shape {['?' if d is None else d for d in dims]} "
                        "with unknown sizes (give the graph fixed input sizes)")
    return [int(d) for d in dims]


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _check_skippable(node: Any) -> None:
    """Raise for a node that carries MACs we cannot map; return for one to skip."""
    op = node.op_type
    if node.domain in ("", "ai.onnx"):
        if op in UNMAPPABLE:
            raise NodeError(UNMAPPABLE[op])
        for a in node.attribute:  # If / Loop / Scan bodies
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                inner = [m for m in g.node if m.op_type in MAPPED or m.op_type in UNMAPPABLE
                         or (m.domain not in ("", "ai.onnx") and any(h in m.op_type.lower() for h in MAC_HINTS))]
                if inner:
                    raise NodeError(f"its subgraph '{a.name}' holds {inner[0].op_type} nodes; "
                                    "control-flow bodies are not mapped")
        return
    if any(h in op.lower() for h in MAC_HINTS):
        raise NodeError(f"operator of domain '{node.domain}' looks like it carries MACs and "
                        "is not mapped (export it with standard ONNX operators)")


# --- Conv -----------------------------------------------------------------------------------------
def _conv(node: Any, shapes: Shapes, apply_strides: bool) -> list[Layer]:
    if len(node.input) < 2:
        raise NodeError("expected inputs X and W")
    x = _shape(shapes, node.input[0], "input")
    w = _shape(shapes, node.input[1], "weight")
    if len(x) not in (3, 4) or len(w) != len(x):
        raise NodeError(f"{len(x) - 2}-D convolution (input {x}, weight {w}): only 1-D and 2-D "
                        "convolutions are mapped")
    if x[0] != 1:
        raise NodeError(f"batch size {x[0]}: layers are mapped for one input at a time; export "
                        "the graph with batch 1 (or a symbolic batch)")
    a = _attrs(node)
    group = int(a.get("group", 1))
    spatial = len(x) - 2
    strides = list(a.get("strides", [1] * spatial))
    dilations = list(a.get("dilations", [1] * spatial))
    C, M, per_group = x[1], w[0], w[1]
    if group < 1 or C % group or M % group or per_group != C // group:
        raise NodeError(f"group={group} does not fit input channels {C} and weight {w}")
    out = _conv_output(node, shapes, x, w, a)
    if spatial == 1:  # 1-D: one row
        x, w, out = x[:2] + [1] + x[2:], w[:2] + [1] + w[2:], [1] + out
        strides, dilations = [1] + strides, [1] + dilations
    R, S = w[2], w[3]
    Yo, Xo = out
    if apply_strides:
        if dilations != [1, 1]:
            raise NodeError(f"dilations {dilations} cannot be kept with apply_strides")
        Y, X = (Yo - 1) * strides[0] + R, (Xo - 1) * strides[1] + S
        sy, sx = strides
    else:
        Y, X, sy, sx = Yo + R - 1, Xo + S - 1, 1, 1
    name = node.name
    if group > 1 and group == C and per_group == 1:  # depthwise, channel multiplier M / C
        mult = M // C
        return [Layer("DSCONV", K=1, C=C, Y=Y, X=X, R=R, S=S, stride_y=sy, stride_x=sx,
                      name=name if mult == 1 else f"{name} multiplier {i}/{mult}")
                for i in range(1, mult + 1)]
    if group > 1:
        return [Layer("CONV", K=M // group, C=C // group, Y=Y, X=X, R=R, S=S, stride_y=sy,
                      stride_x=sx, name=f"{name} group {i}/{group}") for i in range(1, group + 1)]
    return [Layer("CONV", K=M, C=C, Y=Y, X=X, R=R, S=S, stride_y=sy, stride_x=sx, name=name)]


def _conv_output(node: Any, shapes: Shapes, x: list[int], w: list[int], a: dict[str, Any]) -> list[int]:
    """The node's output spatial size: shape inference's, else ONNX's formula."""
    spatial = len(x) - 2
    inferred = shapes.get(node.output[0])
    if inferred and len(inferred) == len(x) and all(d for d in inferred[2:]):
        return [int(d) for d in inferred[2:]]
    strides = list(a.get("strides", [1] * spatial))
    dil = list(a.get("dilations", [1] * spatial))
    pads = list(a.get("pads", [0] * 2 * spatial))
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    out = []
    for i in range(spatial):
        extent = dil[i] * (w[2 + i] - 1) + 1
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            o = math.ceil(x[2 + i] / strides[i])
        elif auto == "VALID":
            o = (x[2 + i] - extent) // strides[i] + 1
        else:
            o = (x[2 + i] + pads[i] + pads[i + spatial] - extent) // strides[i] + 1
        if o < 1:
            raise NodeError(f"kernel {w[2:]} (dilations {dil}) does not fit input {x[2:]}")
        out.append(o)
    return out


# --- Gemm / MatMul --------------------------------------------------------------------------------
def _fc(M: int, K: int, N: int, name: str, copies: int = 1) -> list[Layer]:
    """``copies`` GEMMs ``out[M,N] += A[M,K] B[K,N]`` as GEMM-view CONV layers (K=N, C=K, Y=M)."""
    if copies == 1:
        return [Layer("CONV", K=N, C=K, Y=M, name=name, gemm=True)]
    return [Layer("CONV", K=N, C=K, Y=M, name=f"{name} batch {i}/{copies}", gemm=True)
            for i in range(1, copies + 1)]


def _gemm(node: Any, shapes: Shapes, apply_strides: bool) -> list[Layer]:
    a = _shape(shapes, node.input[0], "input A")
    b = _shape(shapes, node.input[1], "input B")
    if len(a) != 2 or len(b) != 2:
        raise NodeError(f"Gemm operands must be 2-D, got {a} and {b}")
    at = _attrs(node)
    M, K = (a[1], a[0]) if at.get("transA", 0) else (a[0], a[1])
    K2, N = (b[1], b[0]) if at.get("transB", 0) else (b[0], b[1])
    if K != K2:
        raise NodeError(f"inner sizes differ: op(A) is {M}x{K}, op(B) is {K2}x{N}")
    return _fc(M, K, N, node.name)


def _matmul(node: Any, shapes: Shapes, apply_strides: bool) -> list[Layer]:
    a = _shape(shapes, node.input[0], "input A")
    b = _shape(shapes, node.input[1], "input B")
    a = [1] + a if len(a) == 1 else a
    b = b + [1] if len(b) == 1 else b
    M, K = a[-2:]
    K2, N = b[-2:]
    if K != K2:
        raise NodeError(f"inner sizes differ: A is {a}, B is {b}")
    try:
        batch = math.prod(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))
    except ValueError:
        raise NodeError(f"batch dimensions of {a} and {b} do not broadcast") from None
    if math.prod(b[:-2]) == 1:  # the right operand is shared: fold A's batch into M
        return _fc(M * batch, K, N, node.name)
    return _fc(M, K, N, node.name, copies=batch)


_MAPPERS: dict[str, Callable[[Any, Shapes, bool], list[Layer]]] = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul}
