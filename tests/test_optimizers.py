"""The objective's rules, and one contract every optimizer must keep (run against each of them)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.maestro_io import parse_dataflow
from gamma.mapspace import MapSpace
from gamma.objective import R_BOUND, R_MACS, BudgetExceeded, Objective
from gamma.optimizers import available, make_optimizer
from gamma.workload import Layer

try:  # the baselines register themselves when their package is importable
    import baselines  # noqa: F401
except ImportError:  # pragma: no cover
    pass

EDGE = Hardware(num_pes=168, l1_size=512, l2_size=108_000, noc_bw=81_920_000, offchip_bw=70_000)
RESNET_L2 = Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3)
SMALL_PARAMS = {"gamma": {"population": 40}, "random": {"batch": 100},
                # baselines (see conf/optimizer/): DE with 100 members (30 found no feasible
                # mapping in 600 samples on S2); BO with fewer random and scored points
                "stdga": {}, "pso": {}, "cma": {}, "de": {"batch": 100},
                "tbpsa": {}, "bo": {"batch": 100, "initial": 100, "candidates": 2000}}


def objective(layer: Layer = RESNET_L2, hw: Hardware = EDGE, levels=(1, 2), budget: int = 600, **kw) -> Objective:
    return Objective(MapSpace(layer, hw.num_pes, *levels), hw, budget, **kw)


# --- the objective --------------------------------------------------------------------------------
def test_budget_is_hard() -> None:
    obj = objective(budget=100)
    rng = np.random.default_rng(0)
    obj.evaluate(obj.space.random(60, rng))
    with pytest.raises(BudgetExceeded, match="41 evaluations asked with 40 of 100 left"):
        obj.evaluate(obj.space.random(41, rng))
    obj.evaluate(obj.space.random(40, rng))
    assert (obj.used, obj.remaining) == (100, 0)
    assert [h[0] for h in obj.history] == [60, 100]


def test_guard_rejects_maestro_undercounts() -> None:
    # Rule A of the model doc: MAESTRO reports 73 cycles for 100 MACs on one PE.
    layer = Layer("CONV", Y=10, X=10)
    hw = Hardware(num_pes=1, l1_size=10**6, l2_size=10**6, noc_bw=81_920_000, offchip_bw=70_000)
    text = ("SpatialMap(1,1) K; TemporalMap(1,1) C; TemporalMap(6,6) Y'; TemporalMap(10,10) X'; "
            "TemporalMap(1,1) R; TemporalMap(1,1) S; Cluster(1,P); SpatialMap(1,1) K; TemporalMap(1,1) C; "
            "TemporalMap(5,5) Y'; TemporalMap(10,10) X'; TemporalMap(1,1) R; TemporalMap(1,1) S;")
    space = MapSpace(layer, 1, 2, 2, inner_tiles="any")
    g = space.random(1, np.random.default_rng(0))
    g.order[0, :] = [0, 1, 2, 3, 4, 5]  # K C Y' X' R S
    g.par[0, :] = 0
    g.cluster[0, 1] = 1
    g.tile[0, 0] = [1, 1, 6, 10, 1, 1]
    g.tile[0, 1] = [1, 1, 5, 10, 1, 1]
    assert space.to_mapping(g, 0) == parse_dataflow(text, layer=layer)
    guarded = Objective(space, hw, 10)
    assert guarded.evaluate(g)[0] == math.inf and guarded.rejections[R_BOUND] == 1
    assert guarded.best is None
    unguarded = Objective(space, hw, 10, guard=False)
    assert unguarded.evaluate(g)[0] == 73  # what the original GAMMA would have kept


def test_guard_rejects_lost_macs() -> None:
    # Rule B: 2 PEs, SpatialMap(2,2) C over C=7 loses channels 4-5 (50 of 70 MACs reported).
    layer = Layer("CONV", C=7, X=10)
    hw = Hardware(num_pes=2, l1_size=10**6, l2_size=10**6, noc_bw=81_920_000, offchip_bw=70_000)
    space = MapSpace(layer, 2, 1, 1)
    g = space.random(1, np.random.default_rng(0))
    g.par[0, 0] = 1
    g.tile[0, 0] = [1, 2, 1, 10, 1, 1]
    obj = Objective(space, hw, 10)
    assert obj.evaluate(g)[0] == math.inf
    assert obj.rejections[R_BOUND] + obj.rejections[R_MACS] == 1


def test_metrics_and_tie_break() -> None:
    rng = np.random.default_rng(3)
    g = MapSpace(RESNET_L2, 168, 1, 2).random(300, rng)
    lat = objective(budget=300)
    cost = lat.evaluate(g)
    en = objective(budget=300, metric="energy", tie_break="latency")
    e_cost, second = en.evaluate_with_tie_break(g)
    ok = np.isfinite(cost)
    assert ok.any() and np.array_equal(ok, np.isfinite(e_cost))
    np.testing.assert_array_equal(second[ok], cost[ok])
    assert en.best.outputs["energy_nJ"] == pytest.approx(e_cost[ok].min())
    with pytest.raises(GammaError, match="unknown objective 'speed'"):
        objective(metric="speed")


# --- the shared optimizer contract -------------------------------------------------------------------
OPTIMIZERS = available()


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("levels", [(1, 2), (2, 3)], ids=["s2", "s3"])
def test_optimizer_contract(name: str, levels) -> None:
    obj = objective(levels=levels, budget=600)
    seen: list[int] = []
    opt = make_optimizer(name, **SMALL_PARAMS.get(name, {}))
    opt.optimize(obj, np.random.default_rng(0), on_progress=lambda used, best: seen.append(used))
    assert obj.used == obj.budget == 600  # the whole budget, never more
    assert seen and seen[-1] == 600 and seen == sorted(seen)
    assert obj.best is not None, f"{name} found no feasible mapping in 600 samples"
    b = obj.best
    assert b.cost == b.outputs["runtime_cycles"] >= obj.compute_bound
    assert b.outputs["num_macs"] == RESNET_L2.macs
    assert b.outputs["l1_size_req"] <= EDGE.l1_size and b.outputs["l2_size_req"] <= EDGE.l2_size
    assert levels[0] <= b.mapping.num_levels <= levels[1]
    best_curve = [h[1] for h in obj.history]
    assert best_curve == sorted(best_curve, reverse=True)  # best-so-far never gets worse
    # Same seed, same result.
    again = objective(levels=levels, budget=600)
    make_optimizer(name, **SMALL_PARAMS.get(name, {})).optimize(again, np.random.default_rng(0))
    assert again.best.cost == b.cost and again.best.mapping == b.mapping


def test_unknown_optimizer_lists_choices() -> None:
    with pytest.raises(GammaError, match="unknown optimizer 'sgd'; available: .*gamma.*random"):
        make_optimizer("sgd")


def test_gamma_beats_random_on_resnet_layer_2() -> None:
    results = {}
    for name in ("gamma", "random"):
        obj = objective(budget=4000)
        make_optimizer(name, **({"population": 100} if name == "gamma" else {})).optimize(obj, np.random.default_rng(1))
        results[name] = obj.best.cost / obj.compute_bound
    assert 1.0 <= results["gamma"] < results["random"]
    assert results["gamma"] <= 1.25


# --- GAMMA's operators ------------------------------------------------------------------------------
def test_mutation_recomputes_the_cluster_of_a_mutated_parallel_gene() -> None:
    """As in the reference code, a mutated inner parallel gene gets the cluster size
    min(parent's tile of the new parallel dim, PEs left); other genes keep their cluster."""
    from gamma.optimizers.operators import Mutation

    space = MapSpace(RESNET_L2, 168, 2, 3)
    rng = np.random.default_rng(4)
    pop = space.random(400, rng)
    pop.cluster[:, 1:] = 1  # every bound is above 1 here: a recomputed cluster shows
    before = pop.take(np.arange(len(pop)))
    Mutation(rate=1.0, loci=1)(pop, space, rng)
    changed = np.argwhere(pop.cluster != before.cluster)
    assert len(changed) > 10
    for i, l in changed:
        assert l >= 1
        idx = np.array([i])
        assert pop.cluster[i, l] == space.cluster_bound(pop, idx, np.array([l]))[0]
        assert (pop.tile[i] == before.tile[i]).all()  # one locus: the parallel gene
    retiled = ~(pop.tile == before.tile).all(axis=(1, 2))  # a tile gene was the locus
    assert retiled.sum() > 100 and (pop.cluster[retiled] == before.cluster[retiled]).all()
