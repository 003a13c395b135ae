"""One-off generator of conf/model/*.yaml from GAMMA's layer tables (dev tool, not used at run time).

Usage: python scripts/make_model_configs.py [CSV_DIR] [OUT_DIR]
(defaults: tests/data/models, the reference code's tables, and conf/model).

CNNs: the layer sizes come from the tables; the strides and the header notes are ours, written
from the torchvision architectures (see STRIDES). Transformer and recommendation models
(GEMM_TABLES): every row is a GEMM (an FC row one with M = 1), written as
``{type: GEMM, M, N, K, as: CONV}``: searched as the 1x1 CONV GAMMA makes of it, shown as the GEMM.
The YAML files are the project's own definitions: nothing reads the tables at run time.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gamma.workloads.files import load_model

ROOT = Path(__file__).resolve().parents[1]

#: 1-based table rows whose real network stride is not 1 (all others are stride 1).
STRIDES: dict[str, dict[int, int]] = {
    "alexnet": {1: 4},
    "vgg16": {},
    # conv1; layerN.0.conv1 (3x3) and layerN.0.downsample (1x1) of layers 2-4
    "resnet18": {1: 2, 6: 2, 8: 2, 11: 2, 13: 2, 16: 2, 18: 2},
    # torchvision v1.5: stride on layerN.0.conv2 (3x3) and layerN.0.downsample of layers 2-4
    "resnet50": {1: 2, 13: 2, 15: 2, 26: 2, 28: 2, 45: 2, 47: 2},
    "resnext50_32x4d": {1: 2, 13: 2, 15: 2, 26: 2, 28: 2, 45: 2, 47: 2},
    "wide_resnet50": {1: 2, 13: 2, 15: 2, 26: 2, 28: 2, 45: 2, 47: 2},
    # stem; depthwise conv of the first block of the 24, 32, 64 and 160 channel stages
    "mobilenet_v2": {1: 2, 5: 2, 11: 2, 20: 2, 41: 2},
    # stem; depthwise conv of the first block of the 24, 40, 80 and 192 channel stacks
    "mnasnet": {1: 2, 5: 2, 14: 2, 23: 2, 38: 2},
    # conv1; both depthwise convs (branch1, branch2) of the first block of stages 2, 3, 4
    "shufflenet_v2": {1: 2, 2: 2, 5: 2, 16: 2, 19: 2, 42: 2, 45: 2},
    "squeezenet": {1: 2},
    "googlenet": {1: 2},
    "densenet": {1: 2},
}

TITLES: dict[str, str] = {
    "alexnet": "AlexNet (torchvision), 5 conv layers; the 3 FC layers are not included. "
               "Y/X after max-pooling.",
    "vgg16": "VGG-16 (torchvision), 13 conv layers (3x3, pad 1, stride 1); FC layers not included.",
    "resnet18": "ResNet-18 (torchvision), 20 conv layers incl. 3 1x1 downsample convs; FC not included.",
    "resnet50": "ResNet-50 (torchvision, v1.5 = stride on the 3x3 conv), 53 conv layers incl. 4 1x1 "
                "downsample convs; FC not included.",
    "resnext50_32x4d": "ResNeXt-50 32x4d (torchvision), 53 conv layers. The grouped 3x3 convs (32 groups) are "
                       "listed as dense convs, as in GAMMA's table, so their MACs are 32x the real ones.",
    "wide_resnet50": "Wide ResNet-50-2 (torchvision), 53 conv layers incl. 4 1x1 downsample convs.",
    "mobilenet_v2": "MobileNet-V2 1.0 (torchvision), 52 layers: 1x1/stem CONVs and 3x3 depthwise DSCONVs "
                    "(K=1); FC not included.",
    "mnasnet": "MNASNet 1.0 (torchvision), 52 layers: 1x1/stem CONVs and 3x3/5x5 depthwise DSCONVs (K=1); "
               "FC not included.",
    "shufflenet_v2": "ShuffleNet-V2 x1.0 (torchvision), 56 layers: CONVs and 3x3 depthwise DSCONVs (K=1); "
                     "channel split/shuffle and FC not modelled.",
    "squeezenet": "SqueezeNet 1.0 (torchvision), 26 conv layers: stem, 8 fire modules (squeeze, expand 1x1, "
                  "expand 3x3), classifier conv. Y/X after max-pooling.",
    "googlenet": "GoogLeNet (torchvision), 59 conv layers: stem (3), 9 inception modules (6 each; branch 3 "
                 "is 3x3 as in torchvision) and the two aux-classifier 1x1 convs at 4x4; FC not included.",
    "densenet": "DenseNet-161 (torchvision), 160 conv layers: stem, 78 dense layers (1x1 + 3x3), "
                "3 transition 1x1 convs; FC not included.",
}

HEADER = """\
# {title}
# Layer sizes follow GAMMA's {name}.csv table. Y/X = input rows/cols, no padding; MAESTRO's output
# is Y-R+1 x X-S+1. `stride` is the real network stride, informational only: gamma evaluates every
# layer at stride 1 (as GAMMA did) unless load_model/model_from_config get apply_strides=True.
# Generated once by scripts/make_model_configs.py; this file is the definition.
name: {name}
path: null
layers:
"""


#: GAMMA's GEMM (T=3) and FC (T=0) tables: config name -> (table file, header lines). The notes
#: on what each row is are ours, from the shapes (the tables carry only the numbers).
GEMM_TABLES: dict[str, tuple[str, str]] = {
    "bert": ("BERT_m.csv", """\
BERT-base encoder layer (hidden 768, 12 heads of 64, feed-forward 3072, sequence 512): one row per
# kind of GEMM, as the reference lists them: a projection (Q, K, V and the output projection share
# its shape), scores x V of one head (M512 N64 K512), the Q K^T product of one head as the table
# writes it (M64 N512 K512: Q K^T is M512 N512 K64, the same 16.8 M MACs with M and K exchanged),
# the output projection, the two feed-forward GEMMs (768 -> 3072 -> 768, listed second-first).
# The table does not repeat Q/K/V, the 12 heads or the 12 layers: its MACs are not BERT-base's
# (an encoder block with every instance: scripts/make_transformer_onnx.py and model=onnx)."""),
    "albert": ("ALBERT_m.csv", """\
ALBERT-xxlarge encoder layer (hidden 4096, 64 heads of 64, feed-forward 16384, sequence 512),
# one row per kind of GEMM as in the reference: projection (Q, K, V, output), scores x V of one
# head, Q K^T of one head as the table writes it (M64 N512 K512), the two feed-forward GEMMs."""),
    "t5": ("T5_m.csv", """\
T5-small layer (d_model 512, 8 heads of 64, d_ff 2048, sequence 512), one row per kind of GEMM
# as in the reference: projection, scores x V of one head, Q K^T of one head as the table writes
# it (M64 N512 K512), output projection, the two feed-forward GEMMs."""),
    "transformer": ("transformer.csv", """\
The reference's "transformer": the six GEMMs of its BERT table (conf/model/bert.yaml) repeated
# 16 times, 96 layers (5 unique shapes, rows 1 and 4 being one: each unique shape is searched
# once, the totals sum all 96)."""),
    "dlrm": ("dlrmRMC1_m.csv", """\
DLRM, the reference's RMC1 table: 6 fully connected layers at batch 1, by their shapes a
# bottom MLP (256 -> 256 -> 128 -> 32) and a top MLP (256 -> 256 -> 64 -> 1), each a GEMM with
# M = 1, N = outputs, K = inputs; the embedding lookups carry no MACs and are not listed."""),
    "ncf": ("ncf_m.csv", """\
NCF (neural collaborative filtering), the reference's table: 12 fully connected layers at
# batch 1, each a GEMM with M = 1, N = outputs, K = inputs; the embedding lookups carry no MACs
# and are not listed."""),
}

GEMM_HEADER = """\
# {title}
# Source: the GAMMA reference code's layer table data/model/{table} (copied verbatim in
# tests/data/models/{table}). Each layer is a GEMM out[M,N] += A[M,K] B[K,N], searched and
# evaluated as the 1x1 CONV K = N, C = K, Y = M of GAMMA's tables (`as: CONV`, the same MACs);
# the console table and results.json show it as GEMM M N K.
# Generated once by scripts/make_model_configs.py; this file is the definition.
name: {name}
path: null
layers:
"""


def gemm_line(layer) -> str:
    """A GEMM-view layer as ``{type: GEMM, M, N, K, as: CONV}``."""
    g = layer.gemm_dims
    assert g is not None, layer
    return f"  - {{type: GEMM, M: {g['M']}, N: {g['N']}, K: {g['K']}, as: CONV}}\n"


def layer_line(layer, stride: int) -> str:
    d = {k: v for k, v in layer.to_dict().items() if not k.startswith("stride")}
    body = ", ".join(f"{k}: {v}" for k, v in d.items())
    return f"  - {{{body}, stride: {stride}}}\n"


def main(csv_dir: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, strides in STRIDES.items():
        model = load_model(csv_dir / f"{name}.csv")
        assert all(i <= len(model) for i in strides), name
        text = HEADER.format(title=TITLES[name], name=name)
        text += "".join(layer_line(layer, strides.get(i, 1)) for i, layer in enumerate(model.layers, 1))
        (out_dir / f"{name}.yaml").write_text(text, encoding="utf-8")
        print(f"{name}: {len(model)} layers, {sum(s != 1 for s in strides.values())} with stride != 1")
    for name, (table, title) in GEMM_TABLES.items():
        model = load_model(csv_dir / table)
        text = GEMM_HEADER.format(title=title, name=name, table=table)
        text += "".join(gemm_line(layer) for layer in model.layers)
        (out_dir / f"{name}.yaml").write_text(text, encoding="utf-8")
        print(f"{name}: {len(model)} GEMM layers ({len(model.unique_layers()[0])} unique) from {table}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]) if args else ROOT / "tests" / "data" / "models",
         Path(args[1]) if len(args) > 1 else ROOT / "conf" / "model")
