"""The seams later work plugs into, checked on the real cost model: the cost-model interface, a
map space that produces mappings (not a cost model's arrays), hardware that may differ from one
evaluated batch to the next, the one metric registry, and the search rules decided once."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from gamma.costmodel import evaluate
from gamma.costmodel.base import BUSIEST_PE, COMPUTE_BOUND, MAC_COUNT, CostModel, costmodel_of
from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.mapping import MappingBatch
from gamma.mapspace.space import MapSpace
from gamma.objectives.metrics import METRICS, UNITS, network_values
from gamma.objectives.scalar import R_BOUND, R_L1, Objective
from gamma.search.api import settings
from gamma.search.rules import PARETO, SCALAR, TWO_STAGE, search_rules
from gamma.workloads.layer import Layer

ROOT = Path(__file__).resolve().parents[1]
EDGE = Hardware(num_pes=168, l1_size=512, l2_size=108_000, noc_bw=81_920_000, offchip_bw=70_000)
LAYER = Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3)  # ResNet-18 layer 2


def population(n: int = 400, seed: int = 0):
    space = MapSpace(LAYER, EDGE.num_pes, 1, 2)
    return space, space.random(n, np.random.default_rng(seed))


# --- the cost-model interface ----------------------------------------------------------------
def test_maestro_is_a_cost_model_that_says_what_it_is():
    cm = costmodel_of("maestro")
    assert isinstance(cm, CostModel) and cm.name == "maestro" and costmodel_of("maestro") is cm
    assert cm.outputs["runtime_cycles"] == "cycles" and cm.outputs["energy_nJ"] == "nJ"
    assert cm.outputs["l1_size_req"] == "elements"
    assert set(cm.lower_bounds) == {COMPUTE_BOUND, MAC_COUNT, BUSIEST_PE} and cm.undercounts
    with pytest.raises(GammaError, match="costmodel: unknown cost model 'nope'; available: maestro"):
        costmodel_of("nope")


def test_the_map_space_produces_mappings_that_any_cost_model_encodes():
    """decode gives a cost-model-neutral batch: its mappings are the genomes' mappings, and the
    interface's numbers equal the cost model's on those mappings read one by one."""
    space, g = population(60)
    batch = space.decode(g)
    assert isinstance(batch, MappingBatch) and len(batch) == 60
    mappings = [batch.mapping(i) for i in range(60)]
    assert mappings == [space.to_mapping(g, i) for i in range(60)]
    cm = costmodel_of("maestro")
    via_seam = cm.evaluate_batch(LAYER, EDGE, batch)
    one_by_one = evaluate(LAYER, EDGE, mappings)
    ran = ~one_by_one.rejected
    assert ran.sum() > 10  # the comparison compared something
    np.testing.assert_array_equal(via_seam.error, one_by_one.error)
    np.testing.assert_array_equal(via_seam.raw[ran], one_by_one.raw[ran])


# --- hardware per evaluated batch ------------------------------------------------------------
def test_each_batch_is_judged_on_its_own_hardware():
    """One objective, the same genomes on two hardware: capacities and the compute bound are
    the batch's hardware's, and the default stays the objective's."""
    space, g = population(400, seed=1)
    obj = Objective(space, EDGE, budget=1200)
    on_edge = obj.evaluate(g)
    small_l1 = Hardware(**{**EDGE.to_dict(), "l1_size": 16})
    on_small = obj.evaluate(g, hw=small_l1)
    assert np.isfinite(on_edge).sum() > np.isfinite(on_small).sum() and np.isfinite(on_edge).any()
    assert obj.rejections[R_L1] > 0
    res = costmodel_of("maestro").evaluate_batch(LAYER, small_l1, space.decode(g))
    l1_ok = res.l1_size_req <= 16
    assert not np.isfinite(on_small[~l1_ok]).any()  # every mapping over 16 elements refused
    fewer_pes = Hardware(**{**EDGE.to_dict(), "num_pes": 84})
    bound = obj.compute_bound_of(fewer_pes)
    assert bound == math.ceil(LAYER.macs / 84) > obj.compute_bound
    before = obj.rejections[R_BOUND]
    on_84 = obj.evaluate(g, hw=fewer_pes)
    assert obj.rejections[R_BOUND] >= before
    assert (on_84[np.isfinite(on_84)] >= bound).all() and obj.used == 1200


# --- the metric registry ---------------------------------------------------------------------
def test_every_objective_config_names_a_registered_metric():
    names = {yaml.safe_load(p.read_text())["name"] for p in (ROOT / "conf" / "objective").glob("*.yaml")}
    assert names - {"pareto", "two_stage"} == set(METRICS)
    assert UNITS == {"latency": "cycles", "energy": "nJ", "power": "mW", "edp": "nJ*cycles",
                     "area": "um^2"}


def test_a_network_combines_its_layers_as_the_registry_says():
    a = {"runtime_cycles": 100.0, "energy_nJ": 2.0, "power": 5.0, "area": 7.0}
    b = {"runtime_cycles": 300.0, "energy_nJ": 4.0, "power": 3.0, "area": 9.0}
    assert network_values([a, b], ["latency", "energy", "power", "area", "edp"]) == \
        [400.0, 6.0, 5.0, 9.0, 400.0 * 6.0]
    assert METRICS["edp"].of_outputs(a) == 200.0


def test_the_objective_scores_with_the_registry():
    space, g = population(200, seed=2)
    res = costmodel_of("maestro").evaluate_batch(LAYER, EDGE, space.decode(g))
    for name in METRICS:
        obj = Objective(space, EDGE, budget=200, metric=name, guard=False)
        cost = obj.evaluate(g)
        ok = np.isfinite(cost)
        assert ok.sum() >= 5, name
        np.testing.assert_array_equal(cost[ok], METRICS[name].batch(res)[ok])


# --- the search rules ------------------------------------------------------------------------
def test_paper_mode_is_decided_once_for_everything_that_reads_it():
    rules = search_rules(settings(paper_mode=True))
    assert (rules.inner_tiles, rules.guard, rules.paper_mode, rules.kind) == ("any", False, True, SCALAR)
    default = search_rules(settings())
    assert (default.inner_tiles, default.guard, default.costmodel) == ("divisors", True, "maestro")
    assert search_rules(settings(objective="pareto")).kind == PARETO
    assert search_rules(settings(objective="pareto")).num_metrics == 2
    assert search_rules(settings(objective="two_stage")).kind == TWO_STAGE
    with pytest.raises(GammaError, match="paper_mode must be true or false"):
        search_rules({**settings(), "paper_mode": "yes"})
