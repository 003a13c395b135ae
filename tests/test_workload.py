"""Tests of gamma.workloads.layer: layers, models, the CSV/YAML loaders and conf/model/*.yaml."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gamma.costmodel.reference_cases import read_cases
from gamma.errors import ModelFileError
from gamma.workloads.files import layer_from_csv_row, load_model, model_from_config
from gamma.workloads.layer import Layer, LayerError, Model

PROJECT = Path(__file__).resolve().parents[1]
CONF_MODEL = PROJECT / "conf" / "model"
DATA = Path(__file__).resolve().parent / "data"
#: The reference code's layer tables (see tests/data/README.md).
REF_MODELS = DATA / "models"
PUBLIC_CASES = DATA / "maestro_public.jsonl.gz"

MODEL_LAYERS = {
    "alexnet": 5, "vgg16": 13, "resnet18": 20, "resnet50": 53, "resnext50_32x4d": 53, "wide_resnet50": 53,
    "mobilenet_v2": 52, "mnasnet": 52, "shufflenet_v2": 56, "squeezenet": 26, "googlenet": 59, "densenet": 160,
}


def reference_rows(name: str) -> list[list[int]]:
    with (REF_MODELS / f"{name}.csv").open(newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    return [[int(c) for c in r] for r in rows[1:]]


# ---------------------------------------------------------------- model configs vs reference tables

#: The transformer and recommendation configs: name -> (reference table, layers, unique shapes).
GEMM_MODELS = {
    "bert": ("BERT_m", 6, 5), "albert": ("ALBERT_m", 5, 5), "t5": ("T5_m", 6, 5),
    "transformer": ("transformer", 96, 5), "dlrm": ("dlrmRMC1_m", 6, 5), "ncf": ("ncf_m", 12, 7),
}


def test_every_config_is_tested() -> None:
    assert ({p.stem for p in CONF_MODEL.glob("*.yaml")}
            == set(MODEL_LAYERS) | set(GEMM_MODELS) | {"file", "onnx"})  # the last two read model.path


@pytest.mark.parametrize("name", sorted(GEMM_MODELS))
def test_gemm_config_matches_reference_table(name: str) -> None:
    """Each row of a GEMM table (``M,N,K,0,0,0,3``) or FC table (``O,I,0,0,0,0,0``) is one
    GEMM-view layer: evaluated as CONV K=N, C=K, Y=M, shown as GEMM M N K; the header names the
    table it comes from."""
    table, n, unique = GEMM_MODELS[name]
    model = load_model(CONF_MODEL / f"{name}.yaml")
    rows = reference_rows(table)
    assert model.name == name and len(model) == len(rows) == n
    assert len(model.unique_layers()[0]) == unique
    for i, (layer, row) in enumerate(zip(model.layers, rows), 1):
        a, b, c, *rest, T = row
        M, N, K = (a, b, c) if T == 3 else (1, a, b)  # FC: O outputs, I inputs, batch 1
        assert T in (0, 3) and set(rest) <= {0, 1}, (name, i)
        assert layer.gemm and layer.gemm_dims == {"M": M, "N": N, "K": K}, f"{name} layer {i}"
        assert (layer.type, layer.K, layer.C, layer.Y, layer.X, layer.R, layer.S) == ("CONV", N, K, M, 1, 1, 1)
        assert layer.view == f"GEMM M{M} N{N} K{K}" and layer.macs == M * N * K
    from_csv = load_model(REF_MODELS / f"{table}.csv").layers
    assert from_csv == model.layers and all(l.gemm for l in from_csv)
    text = (CONF_MODEL / f"{name}.yaml").read_text()
    assert f"Source: the GAMMA reference code's layer table data/model/{table}.csv" in text


def test_configs_are_what_the_generator_writes(tmp_path: Path) -> None:
    """scripts/make_model_configs.py regenerates every bundled model config byte for byte."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_model_configs",
                                                  PROJECT / "scripts" / "make_model_configs.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.main(REF_MODELS, tmp_path)
    names = set(MODEL_LAYERS) | set(GEMM_MODELS)
    assert {p.stem for p in tmp_path.glob("*.yaml")} == names
    for name in sorted(names):
        assert (tmp_path / f"{name}.yaml").read_text() == (CONF_MODEL / f"{name}.yaml").read_text(), name


def test_gemm_view_layer() -> None:
    """A GEMM-view layer is its CONV for equality, the cost model and the shape key; only the
    view and the record differ."""
    g = Layer("CONV", K=768, C=3072, Y=512, gemm=True)
    assert g == Layer("CONV", K=768, C=3072, Y=512) and hash(g) == hash(Layer("CONV", K=768, C=3072, Y=512))
    assert g.shape == "CONV K768 C3072 Y512 X1 R1 S1" and g.view == "GEMM M512 N768 K3072"
    assert g.gemm_dims == {"M": 512, "N": 768, "K": 3072} and Layer("CONV", K=4).gemm_dims is None
    assert g.to_dict()["gemm"] is True and Layer.from_dict(g.to_dict()).gemm
    assert "gemm" not in Layer("CONV", K=4).to_dict()
    for bad, field in ((dict(type="CONV", K=4, X=2), "X"), (dict(type="CONV", K=4, Y=3, R=3), "R"),
                       (dict(type="DSCONV", C=4), "gemm"), (dict(type="GEMM", M=2), "gemm"),
                       (dict(type="CONV", K=4, stride_y=2), "stride_y")):
        with pytest.raises(LayerError) as e:
            Layer(**bad, gemm=True)
        assert e.value.field == field, bad
    with pytest.raises(LayerError, match="must be true or false"):
        Layer("CONV", gemm=1)


def test_yaml_gemm_as_conv(tmp_path: Path) -> None:
    p = bad_file(tmp_path, "layers:\n  - {type: GEMM, M: 16, N: 32, K: 64, as: CONV, name: proj}\n"
                           "  - {type: GEMM, M: 16, N: 32, K: 64}\n", "g.yaml")
    view, native = load_model(p).layers
    assert view == Layer("CONV", K=32, C=64, Y=16) and view.gemm and view.name == "proj"
    assert native == Layer("GEMM", M=16, N=32, K=64) and not native.gemm
    for line, where, reason in (
            ("{type: GEMM, M: 16, N: 32, K: 64, as: GEMM}", "layer 1 field 'as'", "the only value is CONV"),
            ("{type: CONV, K: 16, as: CONV}", "layer 1 field 'as'", "only a GEMM layer"),
            ("{type: GEMM, M: 16, N: 32, K: 64, R: 3, as: CONV}", "layer 1 field 'R'", "GEMM layers use only M, N, K"),
            ("{type: GEMM, M: 0, N: 32, K: 64, as: CONV}", "layer 1 field 'M'", "positive integer")):
        q = bad_file(tmp_path, f"layers:\n  - {line}\n", "bad.yaml")
        with pytest.raises(ModelFileError) as e:
            load_model(q)
        assert e.value.where == where and reason in e.value.reason, line


def test_csv_fc_and_gemm_rows_are_gemm_views() -> None:
    fc = layer_from_csv_row(["256", "128", "0", "0", "0", "0", "0"], "t.csv", 1)
    gemm = layer_from_csv_row(["512", "64", "512", "0", "0", "0", "3"], "t.csv", 1)
    conv = layer_from_csv_row(["8", "4", "6", "6", "1", "1", "1"], "t.csv", 1)
    assert (fc.view, gemm.view, conv.gemm) == ("GEMM M1 N256 K128", "GEMM M512 N64 K512", False)


@pytest.mark.parametrize("name", sorted(MODEL_LAYERS))
def test_config_matches_reference_table(name: str) -> None:
    model = load_model(CONF_MODEL / f"{name}.yaml")
    rows = reference_rows(name)
    assert model.name == name
    assert len(model) == len(rows) == MODEL_LAYERS[name]
    for i, (layer, row) in enumerate(zip(model.layers, rows), 1):
        K, C, Y, X, R, S, T = row
        assert T in (1, 2), (name, i)
        expected = ("CONV" if T == 1 else "DSCONV", K, C, Y, X, R, S)
        got = (layer.type, layer.K, layer.C, layer.Y, layer.X, layer.R, layer.S)
        assert got == expected, f"{name} layer {i}"
        assert (layer.stride_y, layer.stride_x) == (1, 1)  # default: GAMMA's stride-1 evaluation
    # the CSV loader reads the same table into the same layers
    assert load_model(REF_MODELS / f"{name}.csv").layers == model.layers


@pytest.mark.parametrize("name", sorted(MODEL_LAYERS))
def test_config_via_model_from_config(name: str) -> None:
    import yaml

    cfg = yaml.safe_load((CONF_MODEL / f"{name}.yaml").read_text())
    assert cfg["path"] is None
    assert model_from_config(cfg) == load_model(CONF_MODEL / f"{name}.yaml")


def test_strides_only_with_apply_strides() -> None:
    plain = load_model(CONF_MODEL / "resnet18.yaml")
    strided = load_model(CONF_MODEL / "resnet18.yaml", apply_strides=True)
    assert [i for i, l in enumerate(strided.layers, 1) if l.stride_y == 2] == [1, 6, 8, 11, 13, 16, 18]
    assert all(l.stride_x == l.stride_y for l in strided.layers)
    assert {l.stride_y for l in plain.layers} == {1}
    assert strided.layers[5].shape == "CONV K128 C64 Y56 X56 R3 S3 s2"
    assert plain.layers[5].shape == "CONV K128 C64 Y56 X56 R3 S3"
    assert strided.layers[0] != plain.layers[0]  # stride is part of the shape key
    assert load_model(CONF_MODEL / "alexnet.yaml", apply_strides=True).layers[0].stride_y == 4
    mb = load_model(CONF_MODEL / "mobilenet_v2.yaml", apply_strides=True)
    assert [i for i, l in enumerate(mb.layers, 1) if l.stride_y == 2] == [1, 5, 11, 20, 41]
    assert all(mb.layers[i - 1].type == "DSCONV" for i in (5, 11, 20, 41))


def test_hydra_config_group(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    csv_file = tmp_path / "tiny.csv"
    csv_file.write_text("K,C,Y,X,R,S,T\n8,4,10,10,3,3,1\n")
    with initialize_config_dir(config_dir=str(PROJECT / "conf"), version_base="1.3"):
        cfg = compose(overrides=["+model=resnet18"])
        model = model_from_config(cfg.model)
        assert model.name == "resnet18" and len(model) == 20
        cfg = compose(overrides=["+model=file", f"model.path={csv_file}"])
        model = model_from_config(cfg.model)
        assert model.name == "tiny"
        assert model.layers == (Layer("CONV", K=8, C=4, Y=10, X=10, R=3, S=3),)
        cfg = compose(overrides=["+model=file"])
        with pytest.raises(ModelFileError, match="'path'.*is required"):
            model_from_config(cfg.model)


def test_model_from_config_path_and_name(tmp_path: Path) -> None:
    f = tmp_path / "net.csv"
    f.write_text("16,8,5,5,1,1,1\n")
    assert model_from_config({"name": "mine", "path": str(f), "layers": None}).name == "mine"
    assert model_from_config({"name": "file", "path": str(f), "layers": None}).name == "net"
    with pytest.raises(ModelFileError, match="not both"):
        model_from_config({"name": "x", "path": str(f), "layers": [{"type": "CONV"}]})
    with pytest.raises(ModelFileError, match="no layers"):
        model_from_config({"name": "x", "path": None, "layers": None})


# ---------------------------------------------------------------- Layer

def test_layer_derived_values() -> None:
    conv = Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3)
    assert (conv.Yo, conv.Xo) == (54, 54)
    assert conv.macs == 64 * 64 * 3 * 3 * 54 * 54 == 107_495_424
    assert conv.dims == {"K": 64, "C": 64, "R": 3, "S": 3, "Y": 56, "X": 56}
    assert list(conv.dims) == ["K", "C", "R", "S", "Y", "X"]
    assert conv.shape == "CONV K64 C64 Y56 X56 R3 S3"

    dw = Layer("DSCONV", C=32, Y=112, X=112, R=3, S=3)
    assert dw.K == 1
    assert dw.macs == 32 * 3 * 3 * 110 * 110 == 3_484_800
    assert dw.dims == {"K": 1, "C": 32, "R": 3, "S": 3, "Y": 112, "X": 112}

    gemm = Layer("GEMM", M=512, N=768, K=3072)
    assert gemm.macs == 512 * 768 * 3072
    assert gemm.dims == {"M": 512, "N": 768, "K": 3072}
    assert gemm.shape == "GEMM M512 N768 K3072"

    assert Layer("CONV", K=2, C=2, Y=9, X=9, R=3, S=3, stride_y=2, stride_x=2).shape.endswith(" s2")
    assert Layer("CONV", K=2, C=2, Y=9, X=9, R=3, S=3, stride_y=2, stride_x=1).shape.endswith(" s2x1")


def test_layer_name_not_part_of_equality() -> None:
    a = Layer("CONV", K=4, C=4, Y=8, X=8, R=3, S=3, name="a")
    b = Layer("CONV", K=4, C=4, Y=8, X=8, R=3, S=3, name="b")
    assert a == b and hash(a) == hash(b)
    assert a != Layer("CONV", K=4, C=4, Y=8, X=8, R=3, S=3, stride_y=2, stride_x=2)


@pytest.mark.parametrize(
    "kwargs, field, text",
    [
        (dict(type="POOL"), "type", "unknown layer type 'POOL'"),
        (dict(type="CONV", K=0), "K", "must be a positive integer, got 0"),
        (dict(type="CONV", C=2.5), "C", "must be a positive integer, got 2.5"),
        (dict(type="CONV", K=True), "K", "must be a positive integer"),
        (dict(type="CONV", Y=3, R=5), "R", "R=5 exceed input rows Y=3"),
        (dict(type="CONV", X=3, S=4), "S", "S=4 exceed input cols X=3"),
        (dict(type="DSCONV", K=32, C=32, Y=8, X=8), "K", "must have K=1, got K=32"),
        (dict(type="GEMM", M=4, N=4, K=4, R=3), "R", "GEMM layers use only M, N, K"),
        (dict(type="CONV", M=4), "M", "only for GEMM"),
    ],
)
def test_layer_validation(kwargs: dict, field: str, text: str) -> None:
    with pytest.raises(LayerError, match=text) as info:
        Layer(**kwargs)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_layer_dict_round_trip() -> None:
    conv = Layer("CONV", K=8, C=3, Y=32, X=30, R=3, S=5, stride_y=2, stride_x=1)
    assert conv.to_dict() == {"type": "CONV", "K": 8, "C": 3, "Y": 32, "X": 30, "R": 3, "S": 5,
                              "stride_y": 2, "stride_x": 1}
    assert Layer.from_dict(conv.to_dict()) == conv
    gemm = Layer("GEMM", M=64, N=256, K=512, name="g")
    assert gemm.to_dict() == {"type": "GEMM", "M": 64, "N": 256, "K": 512, "name": "g"}
    assert Layer.from_dict(gemm.to_dict()).name == "g"
    with pytest.raises(LayerError, match="unknown layer field"):
        Layer.from_dict({"type": "CONV", "P": 3})


def test_reference_cases_round_trip_and_csv_conversion() -> None:
    """Every ``layer`` of maestro_public.jsonl parses, round-trips, and its source CSV row converts
    to the same layer (at stride 1): CONV, DSCONV, FC (ncf_m) and GEMM (BERT_m) rows."""
    kinds: set[str] = set()
    cases = list(read_cases(PUBLIC_CASES))
    assert len(cases) == 406
    for case in cases:
        layer = Layer.from_dict(case["layer"])
        assert layer.to_dict() == case["layer"]
        src = case["layer_source"]
        if "csv_row" not in src:
            assert layer.type == "GEMM"
            continue
        kinds.add(src["csv_layer_kind"])
        from_csv = layer_from_csv_row(src["csv_row"], src["model"], src["layer_index"] + 1)
        assert from_csv == Layer.from_dict({**case["layer"], "stride_y": 1, "stride_x": 1}), case["id"]
    assert {"CONV", "DSCONV"} <= kinds


def test_macs_match_maestro_reports() -> None:
    """MAESTRO's "Num MACs" equals the dense count at stride 1 for the classic dataflows and native
    GEMMs (GAMMA-style mappings with oversized tiles and strided layers can report other counts)."""
    checked = 0
    for case in read_cases(PUBLIC_CASES):
        layer = Layer.from_dict(case["layer"])
        if (case["status"] == "ok" and layer.stride_y == 1
                and case["mapping_style"] in ("gemm", "nvdla", "eyeriss", "nlr", "xp_ws", "ckp_ws")):
            assert layer.macs == case["outputs"]["num_macs"], case["id"]
            checked += 1
    assert checked == 79


# ---------------------------------------------------------------- Model

def test_unique_layers_and_expand() -> None:
    a = Layer("CONV", K=4, C=4, Y=8, X=8, R=3, S=3, name="first")
    b = Layer("DSCONV", C=4, Y=8, X=8, R=3, S=3)
    c = Layer("CONV", K=4, C=4, Y=8, X=8, R=1, S=1)
    model = Model("m", [a, b, Layer("CONV", K=4, C=4, Y=8, X=8, R=3, S=3, name="again"), c, b])
    assert isinstance(model.layers, tuple)
    unique, which = model.unique_layers()
    assert unique == [a, b, c] and unique[0].name == "first"
    assert which == [0, 1, 0, 2, 1]
    assert model.expand(["A", "B", "C"]) == ["A", "B", "A", "C", "B"]
    with pytest.raises(ValueError, match="expected 3 results"):
        model.expand([1, 2])
    assert model.macs == 2 * a.macs + 2 * b.macs + c.macs


def test_resnet50_unique_layers() -> None:
    model = load_model(CONF_MODEL / "resnet50.yaml")
    unique, which = model.unique_layers()
    assert len(unique) == 23
    assert [unique[i] for i in which] == list(model.layers)
    assert model.expand(list(range(len(unique)))) == which
    assert model.macs == sum(unique[i].macs for i in which)
    assert which[:12] == [0, 1, 2, 3, 3, 4, 2, 3, 4, 2, 3, 5]  # layer1 repeats its blocks


def test_vgg16_total_macs() -> None:
    model = load_model(CONF_MODEL / "vgg16.yaml")
    expected = sum(K * C * R * S * (Y - R + 1) * (X - S + 1) for K, C, Y, X, R, S, _ in reference_rows("vgg16"))
    assert model.macs == expected == 13_884_537_600


# ---------------------------------------------------------------- CSV loader

def test_csv_fc_gemm_dsconv_rows(tmp_path: Path) -> None:
    f = tmp_path / "mixed.csv"
    f.write_text("256,128,1,1,1,1,0\n\n512,768,3072,0,0,0,3\n1,32,112,112,3,3,2\n64,3,224,224,7,7,1\n\n")
    model = load_model(f)  # no header, blank lines skipped
    assert model.name == "mixed"
    assert model.layers == (
        Layer("CONV", K=256, C=128),                       # FC: K=out, C=in
        Layer("CONV", K=768, C=3072, Y=512),               # GEMM M=512,N=768,K=3072: K=N, C=K, Y=M
        Layer("DSCONV", K=1, C=32, Y=112, X=112, R=3, S=3),
        Layer("CONV", K=64, C=3, Y=224, X=224, R=7, S=7),
    )
    assert model.layers[1].macs == 512 * 768 * 3072  # conversion keeps the MAC count


def test_csv_headers_of_reference_gemm_and_fc_tables() -> None:
    bert = load_model(REF_MODELS / "BERT_m.csv")
    assert len(bert) == 6
    assert bert.layers[0] == Layer("CONV", K=768, C=768, Y=512)
    assert bert.layers[1] == Layer("CONV", K=64, C=512, Y=512)
    ncf = load_model(REF_MODELS / "ncf_m.csv")
    assert len(ncf) == 12 and ncf.layers[0] == Layer("CONV", K=256, C=128)
    assert len(load_model(REF_MODELS / "initial_release_42530ea_modelfile" / "resnet18_m.csv")) == 20
    assert load_model(REF_MODELS / "try.csv").layers[2] == Layer("DSCONV", C=576, Y=7, X=7)


def bad_file(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, where, reason",
    [
        ("K,C,Y,X,R,S,T\n32,32,16,16.1,1,1\n", "row 1 (line 2)", "expected 7 columns K,C,Y,X,R,S,T, got 6"),
        ("K,C,Y,X,R,S,T\n1,2,8,8,1,1,1\n32,32,16,16.1,1,1,1\n", "row 2 (line 3)", "column X: '16.1' is not an integer"),
        ("8,8,8,8,3,3,1\n\n8,0,8,8,3,3,1\n", "row 2 (line 3)", "column C: must be a positive integer, got 0"),
        ("8,8,8,8,3,-3,1\n", "row 1 (line 1)", "column S: must be a positive integer, got -3"),
        ("8,8,4,4,5,3,1\n", "row 1 (line 1)", "column R: filter rows R=5 exceed input rows Y=4"),
        ("8,8,8,8,3,3,7\n", "row 1 (line 1)", "unknown layer type T=7"),
        ("16,8,8,8,3,3,2\n", "row 1 (line 1)", "column K: DSCONV (depthwise) layers must have K=1, got K=16"),
        ("64,3,224,224,3,3,0\n", "row 1 (line 1)", "FC (T=0) rows use only the columns O,I; column 3 must be 0 or 1, got 224"),
        ("M,N,K,0,0,0,T\n0,8,8,1,1,1,3\n", "row 1 (line 2)", "column M: must be a positive integer, got 0"),
        ("K,C,Y,X,R,S,T\n\n", "file", "empty model: no layer rows"),
        ("", "file", "empty model: no layer rows"),
    ],
)
def test_csv_errors_name_file_row_reason(tmp_path: Path, text: str, where: str, reason: str) -> None:
    path = bad_file(tmp_path, text)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    err = info.value
    assert (err.path, err.where) == (str(path), where)
    assert reason in err.reason
    assert str(err).startswith(f"{path}: {where}: ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="nope.csv: file: not found"):
        load_model(tmp_path / "nope.csv")
    with pytest.raises(ModelFileError, match="is not a file"):
        load_model(tmp_path)


# ---------------------------------------------------------------- YAML loader

def test_yaml_model(tmp_path: Path) -> None:
    p = bad_file(tmp_path, """\
name: tiny
path: null
layers:
  - {type: CONV, K: 8, C: 3, Y: 10, X: 10, R: 3, S: 3, stride: 2, name: stem}
  - {type: DSCONV, C: 8, Y: 4, X: 4, R: 3, S: 3, stride_y: 1, stride_x: 1}
  - {type: GEMM, M: 16, N: 32, K: 64}
""", "tiny.yaml")
    model = load_model(p)
    assert model.name == "tiny"
    assert model.layers == (Layer("CONV", K=8, C=3, Y=10, X=10, R=3, S=3), Layer("DSCONV", C=8, Y=4, X=4, R=3, S=3),
                            Layer("GEMM", M=16, N=32, K=64))
    assert model.layers[0].name == "stem"
    strided = load_model(p, apply_strides=True)
    assert (strided.layers[0].stride_y, strided.layers[0].stride_x) == (2, 2)
    assert strided.layers[0].shape == "CONV K8 C3 Y10 X10 R3 S3 s2"


def test_yaml_path_relative_to_file(tmp_path: Path) -> None:
    bad_file(tmp_path, "4,4,4,4,1,1,1\n", "t.csv")
    model = load_model(bad_file(tmp_path, "name: wrapped\npath: t.csv\nlayers: null\n", "w.yaml"))
    assert model.name == "wrapped" and model.layers == (Layer("CONV", K=4, C=4, Y=4, X=4),)


@pytest.mark.parametrize(
    "text, where, reason",
    [
        ("name: m\nlayers:\n  - {type: CONV, K: 4, C: 4, Y: 8, X: 8, R: 9, S: 3}\n",
         "layer 1 field 'R'", "filter rows R=9 exceed input rows Y=8"),
        ("layers:\n  - {type: CONV}\n  - {type: CONV, K: 4, P: 2}\n", "layer 2 field 'P'", "unknown field"),
        ("layers:\n  - {type: CONV}\n  - {type: CONV, K: x}\n", "layer 2 field 'K'", "must be a positive integer, got 'x'"),
        ("layers:\n  - {type: CONV, K: 0}\n", "layer 1 field 'K'", "must be a positive integer, got 0"),
        ("layers:\n  - {type: CONV, stride: 0}\n", "layer 1 field 'stride'", "must be a positive integer, got 0"),
        ("layers:\n  - {K: 4}\n", "layer 1 field 'type'", "is required"),
        ("layers:\n  - {type: FC, K: 4}\n", "layer 1 field 'type'", "unknown layer type 'FC'"),
        ("layers:\n  - {type: DSCONV, K: 4, C: 4}\n", "layer 1 field 'K'", "must have K=1"),
        ("layers:\n  - [1, 2, 3]\n", "layer 1", "must be a mapping"),
        ("name: m\nlayers: []\n", "key 'layers'", "empty model"),
        ("name: m\n", "key 'layers'", "no layers"),
        ("name: m\nlayer: []\n", "key 'layer'", "unknown key; expected name, path, layers"),
        ("- 1\n- 2\n", "file", "expected a mapping"),
        ("name: m\nlayers: [\n", "line 3", "invalid YAML"),
    ],
)
def test_yaml_errors_name_file_layer_reason(tmp_path: Path, text: str, where: str, reason: str) -> None:
    path = bad_file(tmp_path, text, "bad.yaml")
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    err = info.value
    assert (err.path, err.where) == (str(path), where)
    assert reason in err.reason


def test_config_errors_name_the_config() -> None:
    with pytest.raises(ModelFileError) as info:
        model_from_config({"name": "net", "path": None, "layers": [{"type": "CONV", "R": 3}]})
    assert str(info.value) == "model config 'net': layer 1 field 'R': filter rows R=3 exceed input rows Y=1"
