"""optimizer=exhaustive: its latency and buffer bounds against the cost model on many random
genomes, the loop-order equivalence it relies on, and its optimum against plain enumeration of
every mapping of small layers on S1-, S2- and S3-like systems."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

from gamma.search.api import settings
from gamma.search.setup import build_optimizer
from gamma.costmodel import evaluate
from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.mapspace.divisors import divisors_of
from gamma.mapspace.space import G_R, G_S, Genome, MapSpace
from gamma.objectives.scalar import R_BOUND, R_L2, R_PE, Objective
from gamma.optimizers import make_optimizer
from gamma.optimizers.bounds import (genome_structure, l1_bound, l2_bound, latency_bound,
                                     proof_obstacles)
from gamma.optimizers.exhaustive import Search
from gamma.results.records import UniqueResult, feasible_flag
from gamma.workloads.layer import Layer

EDGE = Hardware(num_pes=168, l1_size=512, l2_size=108_000, noc_bw=81_920_000, offchip_bw=70_000)
#: A small array with tight buffers: capacity limits bind often.
SMALL = Hardware(num_pes=6, l1_size=60, l2_size=400, noc_bw=81_920_000, offchip_bw=70_000)

LAYERS = {
    "resnet-l2": Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3),
    "resnet-l17": Layer("CONV", K=512, C=512, Y=7, X=7, R=3, S=3),
    "resnet-l7": Layer("CONV", K=128, C=128, Y=28, X=28, R=3, S=3),
    "odd": Layer("CONV", K=37, C=22, Y=19, X=13, R=3, S=1),
    "fc": Layer("CONV", K=1000, C=512),
    "dw": Layer("DSCONV", K=1, C=96, Y=30, X=30, R=3, S=3),
}
SYSTEMS = {"s1": dict(min_levels=2, max_levels=2, fixed_inner_cluster=14),
           "s2": dict(min_levels=1, max_levels=2), "s3": dict(min_levels=2, max_levels=3)}


def space(layer: Layer, hw: Hardware, system: str) -> MapSpace:
    kw = dict(SYSTEMS[system])
    if kw.get("fixed_inner_cluster") is not None:
        kw["fixed_inner_cluster"] = min(kw["fixed_inner_cluster"], hw.num_pes)
    return MapSpace(layer, hw.num_pes, kw["min_levels"], kw["max_levels"],
                    fixed_inner_cluster=kw.get("fixed_inner_cluster"))


def small_tiles(sp: MapSpace, g: Genome, rng: np.random.Generator) -> None:
    """Shrink the top tiles of half the genomes (more of them fit the buffers), keeping the map
    space's invariants."""
    half = rng.random(len(g)) < 0.5
    g.tile[half, 0] = np.maximum(1, (g.tile[half, 0] * rng.random((half.sum(), 6)) ** 2).astype(np.int64))
    sp.repair(g)


def feasible(obj: Objective, res, g: Genome) -> np.ndarray:
    return obj._feasible(res, obj.space.decode(g))


@pytest.mark.parametrize("hw_name", ["edge", "small"])
def test_bounds_hold_on_random_feasible_genomes(hw_name: str) -> None:
    """runtime >= latency bound for every feasible genome (equal for most), the L1 bound is the
    cost model's L1 requirement, the L2 bound at most its L2 requirement."""
    hw = EDGE if hw_name == "edge" else SMALL
    rng = np.random.default_rng(11)
    checked = exact = ran_total = 0
    for (lname, layer), system in itertools.product(LAYERS.items(), SYSTEMS):
        sp = space(layer, hw, system)
        assert proof_obstacles(hw, sp) == []
        obj = Objective(sp, hw, budget=10**9)
        g = sp.random(3000, rng)
        small_tiles(sp, g, rng)
        res = evaluate(layer, hw, sp.decode(g))
        f = np.flatnonzero(feasible(obj, res, g))
        # each bound is of one genome alone: computed for the genomes it is checked on
        lb = latency_bound(sp, g.take(f), hw.num_pes)
        assert (res.runtime[f] >= lb).all(), (lname, system)
        checked += len(f)
        exact += int((res.runtime[f] == lb).sum())
        ran = np.flatnonzero(~res.rejected & (res.runtime >= 1))
        inner = g.tile[ran, g.nlev[ran] - 1]
        np.testing.assert_array_equal(l1_bound(sp, inner), res.l1_size_req[ran])
        units0 = np.array([genome_structure(g, i).units(hw.num_pes)[0] for i in ran], np.int64)
        l2 = l2_bound(sp, g.tile[ran, 0], g.par[ran, 0], units0)
        assert (l2 <= res.l2_size_req[ran]).all(), (lname, system)
        ran_total += len(ran)
    assert checked >= 1500 and ran_total >= 20000, (checked, ran_total)
    assert exact >= 0.9 * checked


def test_an_undercount_the_guard_misses_stays_above_the_bound() -> None:
    """MAESTRO's mechanism B (a last spatial round of one full and one partial tile costed by the
    partial tile) with the input-centric output overcount making up the lost MACs: the guard
    accepts the mapping, and the bound must hold for it too."""
    layer = LAYERS["odd"]  # K37 C22 Y'17 X'13 R3 S1
    sp = MapSpace(layer, 168, 1, 2)
    tile = np.array([[[23, 19, 2, 5, 3, 1], [1, 19, 1, 1, 3, 1]]])
    g = Genome(np.array([2]), np.array([[2, 0]]), np.broadcast_to(np.arange(6), (1, 2, 6)).copy(),
               tile, np.array([[0, 23]]))
    obj = Objective(sp, EDGE, budget=1)
    assert obj.evaluate(g)[0] == 8917  # feasible: >= the compute bound, MACs as the layer's
    assert obj.compute_bound == 3213 and obj.best.outputs["num_macs"] == layer.macs
    assert latency_bound(sp, g, 168)[0] <= 8917


def test_loop_orders_do_not_change_latency_or_feasibility() -> None:
    """The equivalence the exhaustive search relies on (one order per level), on every layer and
    system above: the same genomes with random loop orders."""
    rng = np.random.default_rng(5)
    compared = 0
    for layer, system, hw in itertools.product(LAYERS.values(), SYSTEMS, (EDGE, SMALL)):
        sp = space(layer, hw, system)
        obj = Objective(sp, hw, budget=10**9)
        g = sp.random(1500, rng)
        small_tiles(sp, g, rng)
        a = evaluate(layer, hw, sp.decode(g))
        h = g.take(np.arange(len(g)))
        h.order = np.argsort(rng.random(h.order.shape), axis=2)
        sp.clear_unused(h)
        b = evaluate(layer, hw, sp.decode(h))
        fa, fb = feasible(obj, a, g), feasible(obj, b, h)
        np.testing.assert_array_equal(fa, fb)
        np.testing.assert_array_equal(a.runtime[fa], b.runtime[fa])
        compared += int(fa.sum())
    assert compared >= 1500


# --- against plain enumeration ------------------------------------------------------------------------
def every_mapping(sp: MapSpace, orders: bool) -> Genome:
    """Every genome of ``sp`` (loop orders: all 720 for 1-level genomes when ``orders``, else
    K C Y' X' R S at every level), built by plain nested loops."""
    dims = [int(d) for d in sp.dims]
    P, Lmax = sp.num_pes, sp.max_levels
    rows = []
    for L in range(sp.min_levels, sp.max_levels + 1):
        for pars in itertools.product([int(p) for p in sp.par_choices], repeat=L):
            top = [range(1, d + 1) if i not in (G_R, G_S) else [d] for i, d in enumerate(dims)]
            for t0 in itertools.product(*top):
                for chain in _inner(list(t0), L):
                    for clusters in _clusters(sp, pars, chain, P):
                        rows.append((L, pars, chain, clusters))
    perms = np.array(list(itertools.permutations(range(6))))
    reps = np.array([len(perms) if (orders and r[0] == 1) else 1 for r in rows])
    pad = [(Lmax - L) for L, _, _, _ in rows]  # the rows as arrays, levels beyond L unused
    g = Genome(np.repeat([L for L, _, _, _ in rows], reps),
               np.repeat([[*pars, *[0] * k] for (_, pars, _, _), k in zip(rows, pad)], reps, axis=0),
               np.broadcast_to(np.arange(6), (int(reps.sum()), Lmax, 6)).copy(),
               np.repeat([[*chain, *[[1] * 6] * k] for (_, _, chain, _), k in zip(rows, pad)], reps, axis=0),
               np.repeat([[0, *clusters, *[0] * k] for (_, _, _, clusters), k in zip(rows, pad)], reps, axis=0))
    for start in (np.cumsum(reps) - reps)[reps > 1]:  # a 1-level genome in every loop order
        g.order[start:start + len(perms), 0] = perms
    return g


def _inner(t0: list[int], L: int):
    if L == 1:
        yield [t0]
        return
    for rest in _inner_levels(t0, L - 1):
        yield [t0, *rest]


def _inner_levels(parent: list[int], k: int):
    if k == 0:
        yield []
        return
    choices = [_divisors(p) if i not in (G_R, G_S) else [p] for i, p in enumerate(parent)]
    for t in itertools.product(*choices):
        for rest in _inner_levels(list(t), k - 1):
            yield [list(t), *rest]


@functools.cache
def _divisors(n: int) -> list[int]:
    return divisors_of(n).tolist()


def _clusters(sp: MapSpace, pars, chain, P: int) -> list[tuple[int, ...]]:
    """Every choice of sub-clusters below the top level: level l's parallel tile (of its parent)
    and the PEs left bound it."""
    tiles = tuple(chain[l - 1][pars[l]] for l in range(1, len(pars)))
    return _cluster_choices(tiles, sp.fixed_inner_cluster, P)


@functools.cache
def _cluster_choices(tiles: tuple[int, ...], fixed: int | None, P: int) -> list[tuple[int, ...]]:
    def rec(l: int, prod: int):
        if l == len(tiles) + 1:
            yield ()
            return
        if l == 1 and fixed is not None:
            choices = [fixed]
        else:
            choices = range(1, max(1, min(tiles[l - 1], P // prod)) + 1)
        for c in choices:
            for rest in rec(l + 1, prod * c):
                yield (c, *rest)
    return list(rec(1, 1))


TINY = {
    "conv": Layer("CONV", K=3, C=2, Y=4, X=2, R=2, S=1),
    "conv-odd": Layer("CONV", K=5, C=3, Y=3, X=1, R=1, S=1),
    "dw": Layer("DSCONV", K=1, C=5, Y=4, X=3, R=2, S=2),
}
TINY_HW = {
    "pes4": Hardware(num_pes=4, l1_size=10**6, l2_size=10**6, noc_bw=81_920_000, offchip_bw=70_000),
    "pes6-tight": Hardware(num_pes=6, l1_size=40, l2_size=150, noc_bw=81_920_000, offchip_bw=70_000),
}
TINY_SYSTEMS = {"s1": (2, 2, 2), "s2": (1, 2, None), "s3": (2, 3, None)}


#: Every layer x hardware x system, but the odd-dimension layer on S3 (its odd divisors are
#: covered on S1 and S2; on S3 its enumeration alone took 9 s of the suite).
PLAIN_CASES = [(layer, hw, system) for system in TINY_SYSTEMS for hw in TINY_HW for layer in TINY
               if not (layer == "conv-odd" and system == "s3")]


@pytest.mark.parametrize("layer_name, hw_name, system", PLAIN_CASES)
def test_optimum_equals_plain_enumeration(layer_name: str, hw_name: str, system: str) -> None:
    """The proven optimum is the smallest feasible latency over every mapping of the space."""
    layer, hw = TINY[layer_name], TINY_HW[hw_name]
    lo, hi, fixed = TINY_SYSTEMS[system]
    sp = MapSpace(layer, hw.num_pes, lo, hi, fixed_inner_cluster=fixed)
    every = every_mapping(sp, orders=True)
    probe = every.take(np.arange(len(every)))
    sp.repair(probe)
    for f in ("nlev", "par", "order", "tile", "cluster"):  # all of them lie in the map space
        np.testing.assert_array_equal(getattr(probe, f), getattr(every, f))
    plain = Objective(sp, hw, budget=len(every))
    cost = plain.evaluate(every)
    assert len(every) >= 1000
    opt = make_optimizer("exhaustive", warm_start=0)  # the enumeration alone proves it
    obj = Objective(sp, hw, budget=opt.evaluation_budget(1000))
    opt.optimize(obj, np.random.default_rng(0))
    assert obj.report["proven_optimal"] is True
    if not np.isfinite(cost).any():
        assert obj.best is None
        return
    assert obj.best is not None and obj.best.cost == cost.min()
    assert obj.report["optimum_lower_bound_cycles"] == cost.min()
    assert obj.report["optimality_gap"] == 0
    assert obj.used < len(every)  # it pruned


# --- the optimizer's settings and records -----------------------------------------------------------
def resnet_objective(metric: str = "latency", budget: int = 10_000, layer: str = "resnet-l17",
                     **opt) -> tuple[Objective, object]:
    optimizer = make_optimizer("exhaustive", **opt)
    sp = MapSpace(LAYERS[layer], EDGE.num_pes, 1, 2)
    obj = Objective(sp, EDGE, budget=optimizer.evaluation_budget(budget), metric=metric)
    optimizer.optimize(obj, np.random.default_rng(0))
    return obj, optimizer


def test_resnet18_layer_17_optimum_on_s2_edge() -> None:
    """The issue's layer: K and C across 12 x 14 PEs, 1.020x the compute bound."""
    obj, _ = resnet_objective()
    assert obj.report["proven_optimal"] is True
    assert obj.best.cost == 358_050 and obj.compute_bound == 351_086
    levels = obj.best.mapping.levels
    assert len(levels) == 2 and levels[1].cluster.size * (168 // levels[1].cluster.size) == 168


def test_a_capped_search_says_how_far_from_proven_it_stopped() -> None:
    """ResNet-18 layer 7 needs 2,000 evaluations to close the gap (optimum 632,757 cycles); a
    cap of 500 is spent by the warm start, so the enumeration stops in its set-up, and the lower
    bound is still at least the compute bound."""
    obj, _ = resnet_objective(layer="resnet-l7", max_evaluations=500, batch=500)
    r = obj.report
    assert obj.used == 500 and r["proven_optimal"] is False
    assert r["exhaustive"]["stopped"] == "evaluation cap 500 reached while building the structures (set-up)"
    lb = r["optimum_lower_bound_cycles"]
    assert obj.compute_bound <= lb <= 632_757
    if obj.best is not None:
        assert r["optimality_gap"] == pytest.approx(obj.best.cost / lb - 1, abs=1e-6)


def test_other_objectives_enumerate_the_budget_and_are_not_proven() -> None:
    obj, _ = resnet_objective(metric="energy", budget=2000, batch=500)
    r = obj.report
    assert obj.used == 2000 and r["proven_optimal"] is False
    assert r["optimum_lower_bound_cycles"] is None
    assert "objective energy" in r["exhaustive"]["not_proven_because"][0]
    assert obj.best is not None


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(GammaError, match=r"optimizer.max_evaluations = 0: must be at least 1"):
        make_optimizer("exhaustive", max_evaluations=0)
    with pytest.raises(GammaError, match=r"optimizer.time_limit_s = 0"):
        make_optimizer("exhaustive", time_limit_s=0)


def test_obstacles_to_a_proof_are_named() -> None:
    slow_noc = Hardware(num_pes=168, l1_size=512, l2_size=108_000, noc_bw=64, offchip_bw=70_000)
    sp = MapSpace(LAYERS["resnet-l2"], 168, 1, 2)
    assert any("NoC bandwidth" in w for w in proof_obstacles(slow_noc, sp))
    assert proof_obstacles(EDGE, MapSpace(LAYERS["resnet-l2"], 168, 1, 2, inner_tiles="any"))


# --- what the search knows, and says ------------------------------------------------------------------
@pytest.mark.parametrize("layer", ["resnet-l2", "resnet-l7", "odd", "dw"])
def test_no_structure_bound_lies_below_the_compute_bound(layer: str) -> None:
    """Every structure's bound includes the busiest-PE bound, so none is below the compute bound
    ceil(MACs / PEs) and the reported lower bound never is (on ResNet-18 layer 2 the old bound
    started at 552,962 < 639,854); layer 2 keeps at most 162 PEs busy: 663,552."""
    sp = MapSpace(LAYERS[layer], 168, 1, 2)
    obj = Objective(sp, EDGE, budget=10**9)
    structures = Search(obj, make_optimizer("exhaustive"), None)._structures()
    assert min(lo for lo, _, _ in structures) >= obj.compute_bound
    if layer == "resnet-l2":
        assert structures[0][0] == 663_552


def test_a_capped_search_keeps_the_warm_start_best_and_its_gap() -> None:
    """A cap that stops the enumeration early still leaves GAMMA's feasible best, a lower bound
    between the compute bound and the optimum (632,757), and the gap between them."""
    obj, _ = resnet_objective(layer="resnet-l7", max_evaluations=2100, batch=100)
    r = obj.report
    assert r["proven_optimal"] is False and obj.used == 2100
    assert r["exhaustive"]["stopped"] == "evaluation cap 2,100 reached"
    assert r["exhaustive"]["warm_start"]["evaluations"] == 2000 and obj.best is not None
    lb = r["optimum_lower_bound_cycles"]
    assert obj.compute_bound < lb <= 632_757 <= obj.best.cost
    assert r["optimality_gap"] == pytest.approx(obj.best.cost / lb - 1, abs=1e-6)
    assert "infeasible_proven" not in r


def test_a_search_stopped_before_a_feasible_mapping_does_not_call_the_layer_infeasible() -> None:
    """No warm start and one evaluation: nothing feasible yet, nothing proven; results.json says
    `feasible: null` (unknown), not false."""
    obj, _ = resnet_objective(layer="resnet-l7", max_evaluations=1, warm_start=0)
    assert obj.best is None and obj.report["proven_optimal"] is False
    assert obj.report["infeasible_proven"] is False
    assert feasible_flag(UniqueResult.from_objective(obj, 0, 0.0)) is None


def test_a_space_where_nothing_fits_is_proven_infeasible() -> None:
    """L1 of 8 elements per PE: no mapping of a 3x3 layer fits (a filter alone needs 18); the
    search proves it and the layer is infeasible."""
    tiny_l1 = Hardware(num_pes=168, l1_size=8, l2_size=108_000, noc_bw=81_920_000, offchip_bw=70_000)
    opt = make_optimizer("exhaustive", warm_start=100)
    obj = Objective(MapSpace(LAYERS["resnet-l17"], 168, 1, 2), tiny_l1, budget=opt.evaluation_budget(1))
    opt.optimize(obj, np.random.default_rng(0))
    assert obj.best is None and obj.report["proven_optimal"] is True
    assert obj.report["infeasible_proven"] is True
    assert feasible_flag(UniqueResult.from_objective(obj, 0, 0.0)) is False


@pytest.mark.parametrize("override", ["mapspace.inner_tiles=any", "paper_mode=true"])
def test_the_any_map_space_is_refused(override: str) -> None:
    """The bounds and the one-order-per-level search hold where inner tiles divide their
    parent; elsewhere the job stops before searching, naming the setting."""
    cfg = settings(optimizer="exhaustive", overrides=[override])
    with pytest.raises(GammaError, match=r"mapspace.inner_tiles=any: optimizer=exhaustive"):
        build_optimizer(cfg)
    sp = MapSpace(LAYERS["resnet-l2"], 168, 1, 2, inner_tiles="any")
    with pytest.raises(GammaError, match=r"mapspace.inner_tiles=any"):
        make_optimizer("exhaustive").optimize(Objective(sp, EDGE, budget=10), np.random.default_rng(0))


def test_without_the_guard_nothing_is_proven() -> None:
    opt = make_optimizer("exhaustive", max_evaluations=3000)
    obj = Objective(MapSpace(LAYERS["resnet-l17"], 168, 1, 2), EDGE, budget=opt.evaluation_budget(1),
                    guard=False)
    opt.optimize(obj, np.random.default_rng(0))
    assert obj.report["proven_optimal"] is False and obj.report["optimum_lower_bound_cycles"] is None
    assert any("guard=false" in w for w in obj.report["exhaustive"]["not_proven_because"])


@pytest.mark.parametrize("layer", ["resnet-l2", "resnet-l17", "odd", "dw"])
def test_the_enumeration_meets_no_guard_bound_rejection(layer: str) -> None:
    """Candidates are ordered and pruned by the larger of the latency and busiest-PE bounds, so
    the enumeration (no warm start) evaluates none that the guard then rejects for running below
    the compute bound or its busiest PE (on ResNet-18 layer 2, S3, the old search evaluated 1.59 M
    such candidates); here only capacity rejections remain."""
    opt = make_optimizer("exhaustive", warm_start=0)
    obj = Objective(MapSpace(LAYERS[layer], 168, 1, 2), EDGE, budget=opt.evaluation_budget(1))
    opt.optimize(obj, np.random.default_rng(0))
    assert obj.report["proven_optimal"] is True
    assert set(obj.report["exhaustive"]["rejections"]) <= {R_L2}
    assert obj.rejections[R_BOUND] == obj.rejections[R_PE] == 0


# --- the evaluation cap in the set-up (issue 18) ---------------------------------------------------
HUGE = Layer("CONV", K=10**6, C=512, Y=224, X=224, R=3, S=3)


def test_an_evaluation_cap_bounds_the_set_up_of_a_huge_layer() -> None:
    """K = 10^6: the set-up builds billions of tile chains and evaluates nothing, so a cap of
    evaluations did not stop it (minutes). Now the cap allows it 2,000 chains per evaluation
    (here 300,000): it stops before building more, says so, and nothing is proven; the warm
    start's evaluations are all it made."""
    from gamma.optimizers.exhaustive import SETUP_CHAINS_PER_EVALUATION

    assert SETUP_CHAINS_PER_EVALUATION == 2_000
    opt = make_optimizer("exhaustive", max_evaluations=150, warm_start=50)
    obj = Objective(MapSpace(HUGE, 168, 1, 2), EDGE, budget=opt.evaluation_budget(10_000))
    opt.optimize(obj, np.random.default_rng(0))
    rec = obj.report["exhaustive"]
    assert rec["stopped"] == ("set-up beyond the evaluation cap 150: more than 300,000 tile chains "
                              "to bound (2,000 per evaluation) while building the structures (set-up)")
    # the first table, K's: its first level alone (10^6 top tiles) would pass 300,000
    assert rec["setup_chains"] == 10**6
    assert rec["evaluations"] == rec["warm_start"]["evaluations"] == 50 and rec["structures"] == 0
    assert obj.report["proven_optimal"] is False
    assert obj.report["optimum_lower_bound_cycles"] == obj.compute_bound


def test_the_set_up_of_resnet18_layers_fits_a_cap_above_the_warm_start() -> None:
    """The largest set-up of ResNet-18 (layer 17: K512 C512 on S2) bounds 2,740,946 tile chains:
    a cap of 2,000 evaluations (the warm start's) allows 4,000,000, so a capped search of an
    ordinary layer still enumerates after its warm start."""
    obj = Objective(MapSpace(LAYERS["resnet-l17"], 168, 1, 2), EDGE, budget=10**9)
    search = Search(obj, make_optimizer("exhaustive"), None)
    structures = search._structures()
    assert len(structures) > 1000 and search.setup_chains == 2_740_946
    capped = Search(Objective(obj.space, EDGE, budget=2000), make_optimizer("exhaustive", max_evaluations=2000), None)
    assert capped.setup_allowance == 4_000_000 and capped._structures() == structures


def test_without_a_cap_the_set_up_has_no_chain_limit() -> None:
    obj = Objective(MapSpace(LAYERS["resnet-l2"], 168, 1, 2), EDGE, budget=10**15)
    assert Search(obj, make_optimizer("exhaustive"), None).setup_allowance is None
