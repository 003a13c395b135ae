#!/usr/bin/env python
"""Write a transformer block as an ONNX graph built with ``onnx.helper``, to try ``model=onnx`` on
attention without PyTorch.

Usage: python scripts/make_transformer_onnx.py OUT.onnx [--kind encoder|decoder] [--seq 512]
       [--hidden 768] [--heads 12] [--ffn 3072]

* ``encoder`` (default): one BERT-base encoder block at batch 1 on ``seq`` tokens: Q, K, V
  projections (MatMul + bias Add), per-head split (Reshape, Transpose), scores ``Q K^T`` per head
  (MatMul [1, heads, seq, d] x [1, heads, d, seq]), scaling (Mul), Softmax, ``scores V`` per head,
  head merge, output projection, residual Add, LayerNormalization, feed-forward MatMul ->
  Gelu -> MatMul, residual Add, LayerNormalization.
* ``decoder``: one decoding step of a GPT-style decoder block: one query token (``M = 1``, the
  matrix-vector case of LLM decoding) attending to a cache of ``seq - 1`` earlier tokens
  (graph inputs ``past_key``/``past_value``, [1, heads, seq - 1, d]) plus its own: every GEMM has
  M = 1, the attention products have N = seq (scores) and K = seq (scores x V).

With ``model=onnx`` the encoder gives, for ``seq`` S, hidden H, ``heads`` h (d = H / h) and
``ffn`` F: four projections GEMM M=S N=H K=H, h instances of GEMM M=S N=S K=d (Q K^T), h of GEMM
M=S N=d K=S (scores x V) and the feed-forward GEMMs M=S N=F K=H and M=S N=H K=F; Softmax,
LayerNormalization, Gelu, the Adds, Reshapes and Transposes are skipped operators. The weights are
graph inputs (the file stays a few kB; a real export has them as initializers, read the same way).
Opset 20 (Gelu is an ONNX operator from opset 20 on).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: ONNX opset of the graphs (Gelu: 20).
OPSET = 20


class Builder:
    """Nodes, graph inputs and constants of one graph; each helper returns its output's name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.inits: list[onnx.TensorProto] = []

    def input(self, name: str, shape: list[int]) -> str:
        """A float graph input of a fixed ``shape`` (elements)."""
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        return name

    def const(self, name: str, values: list[int] | list[float], dtype: type = np.int64) -> str:
        """A small constant (a shape or a scale) as an initializer."""
        self.inits.append(numpy_helper.from_array(np.array(values, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: object) -> str:
        """A node ``name`` whose one output is also called ``name``."""
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def linear(self, x: str, name: str, n_in: int, n_out: int) -> str:
        """``x W + b`` with W [n_in, n_out] and b [n_out] graph inputs."""
        w = self.input(f"{name}.weight", [n_in, n_out])
        b = self.input(f"{name}.bias", [n_out])
        return self.op("Add", [self.op("MatMul", [x, w], name), b], f"{name}.add_bias")

    def layer_norm(self, x: str, name: str, hidden: int) -> str:
        """LayerNormalization over the last axis (scale and bias graph inputs)."""
        scale = self.input(f"{name}.scale", [hidden])
        bias = self.input(f"{name}.bias", [hidden])
        return self.op("LayerNormalization", [x, scale, bias], name, axis=-1)

    def heads(self, x: str, name: str, tokens: int, heads: int, perm: list[int]) -> str:
        """[1, tokens, heads * d] -> [1, heads, tokens, d] (perm 0,2,1,3) or [1, heads, d, tokens]
        (perm 0,2,3,1, a transposed key)."""
        shape = self.const(f"{name}.shape", [1, tokens, heads, -1])
        return self.op("Transpose", [self.op("Reshape", [x, shape], f"{name}.split")], name, perm=perm)

    def model(self, name: str, output: str, out_shape: list[int]) -> onnx.ModelProto:
        """The checked model with graph output ``output``."""
        graph = helper.make_graph(self.nodes, name, self.inputs,
                                  [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)],
                                  self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="gamma scripts/make_transformer_onnx.py")
        onnx.checker.check_model(model)
        return model


def attention_and_ffn(b: Builder, x: str, q_tokens: int, kv: tuple[str, str], kv_tokens: int,
                      hidden: int, heads: int, ffn: int) -> str:
    """The block after the Q/K/V projections: per-head products, Softmax, output projection,
    residual + LayerNorm, feed-forward (Gelu), residual + LayerNorm. ``kv``: keys as
    [1, heads, d, kv_tokens] and values as [1, heads, kv_tokens, d]."""
    d = hidden // heads
    q = b.heads(b.linear(x, "q_proj", hidden, hidden), "q", q_tokens, heads, [0, 2, 1, 3])
    scores = b.op("MatMul", [q, kv[0]], "scores")                      # [1, h, q, kv]
    scaled = b.op("Mul", [scores, b.const("scale", [d ** -0.5], np.float32)], "scale_scores")
    probs = b.op("Softmax", [scaled], "softmax", axis=-1)
    context = b.op("MatMul", [probs, kv[1]], "context")                # [1, h, q, d]
    merged = b.op("Reshape", [b.op("Transpose", [context], "merge", perm=[0, 2, 1, 3]),
                              b.const("merge.shape", [1, q_tokens, hidden])], "merge.reshape")
    attn = b.linear(merged, "out_proj", hidden, hidden)
    h = b.layer_norm(b.op("Add", [attn, x], "residual1"), "norm1", hidden)
    up = b.op("Gelu", [b.linear(h, "ffn_up", hidden, ffn)], "gelu")
    down = b.linear(up, "ffn_down", ffn, hidden)
    return b.layer_norm(b.op("Add", [down, h], "residual2"), "norm2", hidden)


def encoder_block(seq: int = 512, hidden: int = 768, heads: int = 12, ffn: int = 3072) -> onnx.ModelProto:
    """A BERT-base encoder block (batch 1, ``seq`` tokens; see the module doc)."""
    check_sizes(seq, hidden, heads, ffn)
    b = Builder()
    x = b.input("x", [1, seq, hidden])
    keys = b.heads(b.linear(x, "k_proj", hidden, hidden), "k", seq, heads, [0, 2, 3, 1])
    values = b.heads(b.linear(x, "v_proj", hidden, hidden), "v", seq, heads, [0, 2, 1, 3])
    y = attention_and_ffn(b, x, seq, (keys, values), seq, hidden, heads, ffn)
    return b.model("bert_encoder_block", y, [1, seq, hidden])


def decoder_step(seq: int = 512, hidden: int = 768, heads: int = 12, ffn: int = 3072) -> onnx.ModelProto:
    """One decoding step: one query token and a key/value cache of ``seq - 1`` tokens (see the
    module doc)."""
    check_sizes(seq, hidden, heads, ffn)
    if seq < 2:
        raise ValueError(f"a decoder step needs seq >= 2 (one cached token), got {seq}")
    d = hidden // heads
    b = Builder()
    x = b.input("x", [1, 1, hidden])
    past_k = b.input("past_key", [1, heads, seq - 1, d])
    past_v = b.input("past_value", [1, heads, seq - 1, d])
    k_new = b.heads(b.linear(x, "k_proj", hidden, hidden), "k", 1, heads, [0, 2, 1, 3])
    v_new = b.heads(b.linear(x, "v_proj", hidden, hidden), "v", 1, heads, [0, 2, 1, 3])
    keys = b.op("Concat", [past_k, k_new], "key_cache", axis=2)        # [1, h, seq, d]
    values = b.op("Concat", [past_v, v_new], "value_cache", axis=2)
    keys_t = b.op("Transpose", [keys], "key_cache.t", perm=[0, 1, 3, 2])
    y = attention_and_ffn(b, x, 1, (keys_t, values), seq, hidden, heads, ffn)
    return b.model("decoder_step", y, [1, 1, hidden])


def check_sizes(seq: int, hidden: int, heads: int, ffn: int) -> None:
    """Positive sizes, ``hidden`` a multiple of ``heads``; a ValueError otherwise."""
    for name, v in (("seq", seq), ("hidden", hidden), ("heads", heads), ("ffn", ffn)):
        if v < 1:
            raise ValueError(f"--{name} must be a positive integer, got {v}")
    if hidden % heads:
        raise ValueError(f"--hidden {hidden} is not a multiple of --heads {heads}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the .onnx file to write")
    parser.add_argument("--kind", choices=("encoder", "decoder"), default="encoder")
    parser.add_argument("--seq", type=int, default=512, help="tokens (decoder: cache + 1) [512]")
    parser.add_argument("--hidden", type=int, default=768, help="model width [768]")
    parser.add_argument("--heads", type=int, default=12, help="attention heads [12]")
    parser.add_argument("--ffn", type=int, default=3072, help="feed-forward width [3072]")
    args = parser.parse_args(argv)
    build = encoder_block if args.kind == "encoder" else decoder_step
    try:
        model = build(args.seq, args.hidden, args.heads, args.ffn)
        onnx.save(model, str(args.out))
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({args.kind}: {len(model.graph.node)} nodes); try: python run.py "
          f"model=onnx model.path={args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
