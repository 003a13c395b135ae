"""Faults of the second audit (issue 18): numbers that were read wrong or overflowed, settings
that ended in a traceback, results.json files of the wrong shape, writes that fail. Each case
ends with ``error: ...`` naming the file or setting (exit 1) or is handled as valid input.

In-process jobs (Hydra's compose API, real cost model, tiny budgets) unless a case needs a
process of its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gamma.costmodel.evaluate import E_OVERFLOW, evaluate
from gamma.errors import GammaError, HardwareError, MappingFileError, ModelFileError
from gamma.hardware import Hardware
from gamma.limits import MAX_PRODUCT, MAX_SIZE, parse_int
from gamma.mapping import Cluster, Directive, Level, Mapping
from gamma.workloads.files import load_model
from gamma.workloads.layer import Layer, LayerError
from gamma.workloads.maestro_io import parse_dataflow

TINY = ["tracking.enabled=false", "budget=100",
        "layers=[2]"]
EDGE = Hardware(num_pes=168, l1_size=512, l2_size=108000, noc_bw=64, offchip_bw=64)


def job(tmp_path: Path, *overrides: str) -> tuple[int, dict | None]:
    """(exit code, results.json or None where the job wrote none) of an in-process job."""
    from hydra import compose, initialize_config_dir

    from gamma.search.job import execute
    from jobs import ROOT

    out = tmp_path / "run"
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=[*TINY, *overrides])
    code = execute(cfg, out)
    path = out / "results.json"
    return code, json.loads(path.read_text()) if path.is_file() else None


# --- integers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["1_0", "10.0", "1e3", "0x10", "", " ", "١٠", "+", "--3"])
def test_parse_int_takes_digits_only(text):
    with pytest.raises(ValueError):
        parse_int(text)


def test_parse_int_reads_plain_integers():
    assert [parse_int(t) for t in ("10", " 7 ", "+3", "-2", "007")] == [10, 7, 3, -2, 7]


def test_a_csv_cell_with_an_underscore_is_an_error(tmp_path):
    """Python's int("1_0") is 10; the model file's cell is refused, by row and column."""
    path = tmp_path / "m.csv"
    path.write_text("K,C,Y,X,R,S,T\n64,3,8,8,1,1,1\n1_0,3,8,8,1,1,1\n")
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    assert str(e.value) == f"{path}: row 2 (line 3): column K: '1_0' is not an integer"


@pytest.mark.parametrize("value", ["1_0", "0x10", "1:30", "0o17"])
def test_a_yaml_size_that_yaml_reads_as_a_number_is_an_error(tmp_path, value):
    """YAML 1.1 reads 1_0 as 10, 0x10 as 16, 1:30 as 90: refused by layer and field."""
    path = tmp_path / "m.yaml"
    path.write_text(f"name: m\nlayers:\n  - {{type: CONV, K: 64, C: {value}, Y: 8, X: 8}}\n")
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    assert str(e.value) == f"{path}: layer 1 field 'C': must be a positive integer, got '{value}'"


# --- what the cost model can compute ------------------------------------------------------------
def test_a_layer_whose_product_overflows_int64_is_an_error(tmp_path):
    """K = C = 2^31 - 1 fit one by one but K*C*Y*X does not fit the kernel's int64: it was
    reported infeasible ("runtime < 1"); now the file, row and field say why."""
    path = tmp_path / "m.csv"
    path.write_text(f"K,C,Y,X,R,S,T\n{MAX_SIZE},{MAX_SIZE},8,8,1,1,1\n")
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    assert str(e.value).startswith(f"{path}: row 1 (line 2): column K: K*C*R*S*Y*X = "
                                   "295,147,904,904,474,918,976 exceeds 576,460,752,303,423,488 (2^59)")
    assert "int64" in str(e.value)


def test_the_largest_layer_allowed_is_evaluated_without_overflow():
    """A layer at the product limit: every output of a plain mapping is positive and the MAC
    count is the layer's own (an int64 overflow made it 0 and the energy negative)."""
    layer = Layer("CONV", K=1 << 21, C=1 << 20, Y=1 << 9, X=1 << 9, R=1, S=1)
    assert layer.work == MAX_PRODUCT
    m = Mapping((Level((Directive("Spatial", "K", 1, 1), Directive("Temporal", "C", 1 << 20, 1 << 20),
                        Directive("Temporal", "Y", 1 << 9, 1 << 9), Directive("Temporal", "X", 1 << 9, 1 << 9),
                        Directive("Temporal", "R", 1, 1), Directive("Temporal", "S", 1, 1))),))
    res = evaluate(layer, EDGE, [m])
    assert res.error[0] == 0
    assert res.macs[0] == layer.macs and res.runtime[0] >= layer.macs // 168
    assert res.energy[0] > 0
    with pytest.raises(LayerError, match="exceeds"):
        Layer("CONV", K=(1 << 21) + 1, C=1 << 20, Y=1 << 9, X=1 << 9)


def test_tiles_beyond_the_layer_whose_product_overflows_are_rejected():
    """A fixed dataflow's tiles may exceed the layer's dimensions; when their product is beyond
    int64's reach the cost model rejects the mapping (with the reason) instead of wrapping."""
    layer = Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3)
    big = MAX_SIZE
    m = Mapping((Level((Directive("Spatial", "K", big, big), Directive("Temporal", "C", big, big),
                        Directive("Temporal", "Y", big, big), Directive("Temporal", "R", 3, 3),
                        Directive("Temporal", "S", 3, 3))),))
    ok = Mapping((Level((Directive("Spatial", "K", 1, 1), Directive("Temporal", "R", 3, 3),
                         Directive("Temporal", "S", 3, 3))),))
    res = evaluate(layer, EDGE, [m, ok, Mapping((Level((Directive("Spatial", "K", 10**23, 1),)),))])
    assert list(res.error) == [E_OVERFLOW, 0, E_OVERFLOW]
    assert "int64" in res.verdict(0)[1] and np.isnan(res.runtime[0])


def test_hardware_beyond_int64_is_an_error():
    with pytest.raises(HardwareError, match="num_pes.*at most 2,147,483,647"):
        Hardware(num_pes=10**30, l1_size=512, l2_size=1000, noc_bw=64, offchip_bw=64)


# --- dataflow directives ------------------------------------------------------------------------
@pytest.mark.parametrize("text, reason", [
    ("SpatialMap(1,1 K\nTemporalMap(1,1) C;", "1: expected ')' after 'SpatialMap(1,1' but found 'K'"),
    ("SpatialMap(1,1) K", "1: expected ';' after 'SpatialMap(1,1) K' but the input ended"),
    ("SpatialMap(1,1) K\nTemporalMap(1,1) C;", "2: expected ';' after 'SpatialMap(1,1) K' but found 'TemporalMap'"),
    ("SpatialMap 1 1 K;", "1: expected '(' after 'SpatialMap' but found '1'"),
    ("SpatialMap(1 1) K;", "1: expected ',' after 'SpatialMap(1' but found '1'"),
    ("SpatialMap(1,1) K;\nCluster(4,P)\nSpatialMap(1,1) C;", "3: expected ';' after 'Cluster(4,P)' but found 'SpatialMap'"),
    ("SpatialMap(Sz(K,1) K;", "1: expected ')' after 'Sz(K' but found ','"),
    ("SpatialMap(100000000000000000000000,1) K;", "1: the size after 'SpatialMap(' = "
                                                  "100,000,000,000,000,000,000,000 is too large"),
])
def test_an_incomplete_or_oversized_directive_is_an_error(text, reason):
    with pytest.raises(MappingFileError) as e:
        parse_dataflow(text, "df.m", layer=Layer("CONV", K=4, C=4, Y=4, X=4))
    assert str(e.value).startswith(f"df.m:{reason}")


def test_complete_directives_still_parse():
    m = parse_dataflow("SpatialMap(1,1) K;\nTemporalMap(Sz(C),Sz(C)) C;\nCluster(4,P);\n"
                       "SpatialMap(1,1) C; // note\n", layer=Layer("CONV", K=4, C=8, Y=4, X=4))
    assert [lv.cluster for lv in m.levels] == [None, Cluster(4, "P")]
    assert m.levels[0].directives[1].size == 8


def test_a_size_rule_beyond_the_limit_is_an_error(tmp_path):
    """A rule of 16 factors (C^16) overflowed int64 when packed (OverflowError)."""
    code, res = job(tmp_path, "optimizer=fixed", "dataflow=nvdla",
                    "dataflow.sizes.c=" + "*".join(["C"] * 16))
    assert code == 1 and res["status"] == "failed"
    assert res["error"].startswith("dataflow.nvdla: sizes.c = 'C*C*C*C*C*C*C*C*C*C*C*C*C*C*C*C' on "
                                   "layer CONV K64 C64 Y56 X56 R3 S3 = 79,228,162,514,264,337,593,543,950,336 "
                                   "is too large for the cost model")


# --- model files that include themselves ---------------------------------------------------------
def test_a_model_file_that_names_itself_is_an_error(tmp_path):
    path = tmp_path / "self.yaml"
    path.write_text("name: loop\npath: self.yaml\n")
    with pytest.raises(ModelFileError, match="a model file that includes itself"):
        load_model(path)


def test_a_cycle_of_model_files_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("path: b.yaml\n")
    (tmp_path / "b.yaml").write_text("path: a.yaml\n")
    with pytest.raises(ModelFileError) as e:
        load_model(tmp_path / "a.yaml")
    assert f"{tmp_path / 'a.yaml'} -> {tmp_path / 'b.yaml'} -> {tmp_path / 'a.yaml'}" in str(e.value)


# --- settings -------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    (["budget=inf"], "budget must be a non-negative integer, got inf"),
    (["mapspace.parallel_dims=[]"], "mapspace.parallel_dims must be a non-empty list"),
    (["optimizer=cma", "optimizer.options.scale=nan"], "optimizer.options.scale = nan: must be a finite number"),
    (["optimizer=cma", "optimizer.options.scale=abc"], "optimizer.options.scale = 'abc': must be a number"),
    (["optimizer=cma", "optimizer.options.scale=0"], "nevergrad's ParametrizedCMA cannot run with them"),
])
def test_a_bad_setting_is_an_error(tmp_path, capsys, overrides, message):
    code, _ = job(tmp_path, *overrides)
    assert code == 1
    assert message in capsys.readouterr().err


def test_no_parallel_dimension_for_a_depthwise_layer_is_an_error(tmp_path, capsys):
    code, res = job(tmp_path, "model=mobilenet_v2", "mapspace.parallel_dims=[K]")
    assert code == 1 and "no parallel dimension for a DSCONV layer" in res["error"]
