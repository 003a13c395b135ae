"""Proven mappings in a co-design: ``codesign.check=exhaustive`` (the GA design's mappings against
the proven optima on that design) and ``codesign.inner=exhaustive`` (hardware candidates scored by
proven per-layer optima). Real cost model and exhaustive search, one small layer
(docs/codesign.md, "Proven mappings")."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gamma.hardware import AreaModel, Hardware, area_um2
from gamma.mapping import Mapping
from gamma.search import optima
from gamma.search.codesign_inner import prove_layer
from gamma.search.setup import make_objective
from gamma.workloads.maestro_hw import read_hardware_file
from gamma.workloads.layer import Layer
from tests.jobs import ROOT, run_captured, run_inprocess

#: ResNet-18 layer 8 (CONV K128 C64 Y56 X56 R1 S1): its exhaustive search takes about a second.
#: A 200-evaluation warm start (instead of 2,000) keeps the tests short; the proofs are the same.
BASE = ["model=resnet18", "layers=[8]", "budget=1000", "codesign=digamma", "tracking.enabled=false",
        "codesign.exhaustive.warm_start=200"]
MODEL = AreaModel(mac_um2=282, sram_um2_per_bit=0.086, bits_per_element=8)
EDGE_MM2 = 0.180859008


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The GA's co-design with the check, then the grid of exactly its PE count and L1 (L2 the
    rest of the budget, so at least the GA design's), each with its own optima cache."""
    tmp = tmp_path_factory.mktemp("inner")
    code, ga = run_inprocess([*BASE, "codesign.check=exhaustive", f"optima={tmp / 'ga.json'}"],
                             tmp / "ga")
    assert code == 0
    hw = ga["hardware"]
    code, grid = run_inprocess([*BASE, "codesign.inner=exhaustive",
                                f"codesign.grid.pes=[{hw['num_pes'] // 2},{hw['num_pes']}]",
                                f"codesign.grid.l1=[{hw['l1_size']}]",
                                f"optima={tmp / 'grid.json'}"], tmp / "grid")
    assert code == 0
    return ga, grid, tmp


def test_the_check_proves_optima_at_or_below_the_ga_mappings(runs):
    ga, _, _ = runs
    check = ga["codesign"]["check"]
    hw = ga["hardware"]
    assert check["hardware"] == {k: hw[k] for k in ("num_pes", "l1_size", "l2_size")}
    assert check["proven_optimal"] is True
    (layer,) = ga["layers"]
    (row,) = check["layers"]
    assert row["proven_optimal"] and not row["cached"] and row["evaluations"] > 0
    assert row["ga_cycles"] == layer["best_cost"] == ga["codesign"]["best_cost"]
    assert row["optimum_cycles"] <= row["ga_cycles"]
    assert row["ga_over_optimum"] == pytest.approx(row["ga_cycles"] / row["optimum_cycles"], 1e-6)
    assert check["ga_over_optimum"] == pytest.approx(check["ga_cycles"] / check["optimum_cycles"],
                                                     1e-6)
    # the layer's record carries it as a fixed-platform job's records do
    assert layer["optimum_cycles"] == row["optimum_cycles"]
    assert layer["ratio_to_optimum"] == row["ga_over_optimum"]


def test_the_checked_optimum_is_a_real_mapping_on_the_design_and_is_cached(runs):
    """The cached optimal mapping, evaluated on the design's hardware, gives the optimum; a
    second search of the same layer and hardware takes it from the cache."""
    ga, _, tmp = runs
    cfg = _cfg(f"optima={tmp / 'ga.json'}")
    hw = Hardware.from_dict(ga["hardware"])
    layer = Layer("CONV", K=128, C=64, Y=56, X=56, R=1, S=1)
    assert layer.shape == ga["layers"][0]["shape"]
    (entry,) = optima.load(tmp / "ga.json").values()
    obj = make_objective(cfg, layer, hw, 1)
    cost, _ = obj.evaluate_mappings([Mapping.from_dict(entry["mapping"])])
    assert cost[0] == ga["codesign"]["check"]["optimum_cycles"]
    again = prove_layer(cfg, layer, hw, np.random.default_rng(0), tmp / "ga.json")
    assert again.cached and again.proven and again.evaluations == 1
    assert again.cycles == cost[0]


def test_the_grid_design_is_at_least_as_fast_as_the_ga_design_and_fits(runs):
    ga, grid, tmp = runs
    cd = grid["codesign"]
    assert cd["inner"] == "exhaustive" and cd["certified"] is True
    assert grid["totals"]["latency_cycles"] == cd["best_cost"]
    # the grid holds the GA's PEs and L1 with at least its L2: the proven optimum cannot be slower
    assert cd["best_cost"] <= ga["codesign"]["best_cost"]
    assert cd["best_cost"] <= ga["codesign"]["check"]["optimum_cycles"]
    hw = grid["hardware"]
    best = cd["best_candidate"]
    assert hw["l1_size"] <= best["l1_capacity"] and hw["l2_size"] <= best["l2_capacity"]
    assert hw["area_mm2"] <= EDGE_MM2
    assert area_um2(hw["num_pes"], hw["l1_size"], hw["l2_size"], MODEL) <= EDGE_MM2 * 1e6
    written = read_hardware_file(tmp / "grid" / "mappings" / "hardware.m",
                                 Hardware.from_dict(hw))
    assert written == Hardware.from_dict(hw)
    assert area_um2(best["num_pes"], best["l1_capacity"], best["l2_capacity"], MODEL) <= EDGE_MM2 * 1e6
    (layer,) = grid["layers"]
    assert layer["proven_optimal"] is True
    assert layer["best"]["l1_size_req"] <= hw["l1_size"]
    assert layer["best"]["l2_size_req"] <= hw["l2_size"]
    ev = cd["evaluated"]
    assert ev["candidates"] == 2
    assert ev["searched_to_the_end"] + ev["stopped_by_bound"] + ev["infeasible"] == 2
    assert ev["exhaustive_searches"] >= 1 and ev["costmodel_evaluations"] > 0
    # half the PEs: its compute bound alone is above the best, so it is stopped unsearched
    half = [c for c in cd["candidates"] if c["num_pes"] == ga["hardware"]["num_pes"] // 2]
    assert half[0]["lower_bound_cycles"] >= cd["best_cost"]


def test_an_s1_grid_is_of_arrays_with_the_cluster_pinned_to_the_columns(tmp_path):
    """S1: candidates are rows x cols arrays; every proof runs with the inner cluster pinned to
    the candidate's columns, so the best mapping's cluster is its column count."""
    code, res = run_inprocess([*BASE, "system=s1", "codesign.inner=exhaustive",
                               "codesign.grid.rows=[4,8]", "codesign.grid.cols=[14,21]",
                               "codesign.grid.l1=[512]", f"optima={tmp_path / 'o.json'}"],
                              tmp_path / "run")
    assert code == 0
    cd, hw = res["codesign"], res["hardware"]
    assert cd["grid"]["rows"] == [4, 8] and cd["grid"]["cols"] == [14, 21]
    shapes = sorted((c["array_rows"], c["array_cols"]) for c in cd["candidates"])
    assert shapes == [(4, 14), (4, 21), (8, 14), (8, 21)]
    assert all(c["num_pes"] == c["array_rows"] * c["array_cols"] for c in cd["candidates"])
    assert hw["num_pes"] == hw["array_rows"] * hw["array_cols"] == cd["best_candidate"]["num_pes"]
    assert cd["certified"] is True and res["totals"]["latency_cycles"] == cd["best_cost"]
    (layer,) = res["layers"]
    assert layer["mapping"]["levels"][1]["cluster"]["size"] == hw["array_cols"]
    assert area_um2(hw["num_pes"], hw["l1_size"], hw["l2_size"], MODEL) <= EDGE_MM2 * 1e6
    searched = [c for c in cd["candidates"] if c["stopped"] is None]
    assert searched and all(c["cycles"] >= cd["best_cost"] for c in searched)


@pytest.mark.parametrize("extra, message", [
    (["codesign.inner=exhaustive", "system=s1", "codesign.grid.cols=[0]"], "codesign.grid.cols = [0]"),
    (["codesign.check=exhaustive", "objective=energy"], "codesign.check=exhaustive: proves latency"),
    (["codesign.inner=exhaustive", "codesign.grid.pes=[]"], "codesign.grid.pes = []"),
    (["codesign.inner=exhaustive", "codesign.grid.pes=[600]", "codesign.grid.l1=[512]"],
     "codesign.grid: no candidate fits codesign.area_mm2"),
    (["codesign.inner=exhaustive", "codesign.check=exhaustive"], "codesign.check=exhaustive: with"),
    (["codesign.check=proven"], "codesign.check = 'proven'"),
    (["codesign.check=exhaustive", "codesign.exhaustive.batch=0"],
     "codesign.exhaustive.batch = 0"),
])
def test_impossible_settings_are_errors_naming_the_setting(tmp_path, extra, message):
    run = run_captured([*BASE, *extra, f"hydra.run.dir={tmp_path / 'run'}"])
    assert run.returncode == 1
    assert f"error: {message}" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def _cfg(*overrides: str) -> dict:
    """The job's config of ``BASE`` and ``overrides`` as plain dicts."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=[*BASE, *overrides])
    return OmegaConf.to_container(cfg, resolve=True)
