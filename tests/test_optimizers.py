"""The objective's rules, one contract every optimizer must keep (run against each of them), and
GAMMA's parts (selection, operators that can be switched off)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.workloads.maestro_io import parse_dataflow
from gamma.mapspace.space import G_R, G_S, Genome, MapSpace
from gamma.objectives.scalar import R_BOUND, R_MACS, BudgetExceeded, Objective
from gamma.optimizers import available, make_optimizer
from gamma.optimizers import operators as ops
from gamma.optimizers.selection import Truncation
from gamma.optimizers.settings import SettingError
from gamma.workloads.layer import Layer


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
#: The searches. ``fixed`` evaluates one given mapping per layer (no genomes, no budget to spend,
#: no randomness): tests/test_fixed_dataflows.py checks it; ``exhaustive`` stops when its optimum
#: is proven and is deterministic: tests/test_exhaustive.py.
OPTIMIZERS = [name for name in available() if name not in ("fixed", "exhaustive")]
assert {"gamma", "random", "stdga", "pso", "cma", "de", "tbpsa", "bo"} <= set(OPTIMIZERS)


def check_invariants(g: Genome, sp: MapSpace) -> None:
    """The map space's invariants (what ``MapSpace.repair`` restores), checked directly."""
    n, L = g.par.shape
    assert ((sp.min_levels <= g.nlev) & (g.nlev <= sp.max_levels)).all()
    assert np.isin(g.par[:, 0], sp.par_choices).all()
    assert (np.sort(g.order, axis=2) == np.arange(6)).all()
    assert ((1 <= g.tile[:, 0]) & (g.tile[:, 0] <= sp.dims)).all()
    used = np.arange(L)[None, :] < g.nlev[:, None]
    assert (g.tile[used][:, [G_R, G_S]] == sp.dims[[G_R, G_S]]).all()  # R and S full
    for l in range(1, L):
        i = np.flatnonzero(g.nlev > l)
        child, parent = g.tile[i, l], g.tile[i, l - 1]
        assert ((1 <= child) & (child <= parent)).all()
        if sp.inner_tiles == "divisors":
            assert (parent % child == 0).all()
        assert np.isin(g.par[i, l], sp.par_choices).all()
        bound = sp.cluster_bound(g, i, np.full(len(i), l))
        assert ((1 <= g.cluster[i, l]) & (g.cluster[i, l] <= bound)).all()
        if sp.fixed_inner_cluster is not None and l == 1:
            assert (g.cluster[i, l] == sp.fixed_inner_cluster).all()
        unused = np.flatnonzero(g.nlev <= l)
        assert (g.cluster[unused, l] == 0).all() and (g.tile[unused, l] == 1).all()
    assert (g.cluster[:, 0] == 0).all()


class RecordingObjective(Objective):
    """The real objective, keeping every batch of genomes it was asked to score."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.batches: list[Genome] = []

    def evaluate_with_tie_break(self, genomes: Genome, hw=None):
        out = super().evaluate_with_tie_break(genomes, hw)
        self.batches.append(genomes.take(np.arange(len(genomes))))
        return out


def recording(levels=(1, 2), budget: int = 600) -> RecordingObjective:
    return RecordingObjective(MapSpace(RESNET_L2, EDGE.num_pes, *levels), EDGE, budget)


def run(name: str, obj: Objective, seed: int = 0, seen: list[int] | None = None, **changes) -> Objective:
    """Optimizer ``name`` (small settings plus ``changes``) on ``obj`` with generator ``seed``."""
    opt = make_optimizer(name, **{**SMALL_PARAMS.get(name, {}), **changes})
    on_progress = (lambda used, best: seen.append(used)) if seen is not None else None
    opt.optimize(obj, np.random.default_rng(seed), on_progress=on_progress)
    return obj


def chunk(name: str) -> int:
    """Evaluations per round of ``name`` with its small settings: GAMMA's population, else its batch."""
    opt = make_optimizer(name, **SMALL_PARAMS.get(name, {}))
    return opt.population if name == "gamma" else opt.batch


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("levels", [(1, 2), (2, 3)], ids=["s2", "s3"])
def test_optimizer_contract(name: str, levels) -> None:
    """The whole budget is spent (more raises BudgetExceeded in the objective; less is a bug
    here), progress reaches the end, every proposed genome lies in the map space, a feasible
    mapping is found, and the same seed repeats the search."""
    seen: list[int] = []
    obj = run(name, recording(levels), seen=seen)
    assert obj.used == obj.budget == 600
    assert seen and seen[-1] == 600
    proposed = Genome.concat(obj.batches)
    assert len(proposed) == 600
    check_invariants(proposed, obj.space)
    assert obj.best is not None, f"{name} found no feasible mapping in 600 samples"
    again = run(name, recording(levels))
    assert again.history == obj.history
    assert again.best.genome.key(0) == obj.best.genome.key(0) and again.best.mapping == obj.best.mapping


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("kind", ["601", "chunk-1"])
def test_budgets_that_are_not_a_multiple_of_the_batch(name: str, kind: str) -> None:
    budget = 601 if kind == "601" else chunk(name) - 1
    seen: list[int] = []
    obj = run(name, recording(budget=budget), seen=seen)
    assert obj.used == budget and seen[-1] == budget
    check_invariants(Genome.concat(obj.batches), obj.space)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_different_seed_gives_a_different_search(name: str) -> None:
    a, b = run(name, recording(), seed=0), run(name, recording(), seed=1)
    assert a.history != b.history or a.best.genome.key(0) != b.best.genome.key(0)
    first_a, first_b = a.batches[0], b.batches[0]
    assert [first_a.key(i) for i in range(len(first_a))] != [first_b.key(i) for i in range(len(first_b))]


def test_unknown_optimizer_lists_choices() -> None:
    with pytest.raises(GammaError, match="unknown optimizer 'sgd'; available: .*bo.*gamma.*random"):
        make_optimizer("sgd")


def test_gamma_beats_random_on_resnet_layer_2() -> None:
    results = {}
    for name in ("gamma", "random"):
        obj = objective(budget=4000)
        make_optimizer(name, **({"population": 100} if name == "gamma" else {})).optimize(obj, np.random.default_rng(1))
        results[name] = obj.best.cost / obj.compute_bound
    assert 1.0 <= results["gamma"] < results["random"]
    assert results["gamma"] <= 1.25


# --- GAMMA from parts ----------------------------------------------------------------------------
CONF = Path(__file__).resolve().parents[1] / "conf" / "optimizer"
OPERATOR_NAMES = list(ops.OPERATORS)


def test_gamma_config_is_the_constructor_default() -> None:
    cfg = yaml.safe_load((CONF / "gamma.yaml").read_text())
    assert cfg.pop("name") == "gamma"
    built, default = make_optimizer("gamma", **cfg), make_optimizer("gamma")
    assert built.population == default.population == 200
    assert built.selection == default.selection == Truncation(0.05, 0.4)
    assert built.operators == default.operators
    assert [op.rate for op in built.operators.values()] == [0.57, 0.52, 0.47, 0.57, 0.27, 0.1]
    assert built.operators["mutation"].loci == 3 and all(built.enabled.values())
    assert set(cfg["operators"]) == set(OPERATOR_NAMES)


@pytest.fixture
def applications(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts every call of each operator class, wrapping the real operators."""
    counts = dict.fromkeys(OPERATOR_NAMES, 0)
    for name, cls in ops.OPERATORS.items():
        real = cls.__call__

        def counted(self, *args, _real=real, _name=name, **kwargs):
            counts[_name] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__call__", counted)
    return counts


@pytest.mark.parametrize("off", OPERATOR_NAMES)
def test_a_switched_off_operator_is_never_applied(off: str, applications: dict[str, int]) -> None:
    full = run("gamma", recording(budget=400))
    generations = 400 // 40
    assert applications == dict.fromkeys(OPERATOR_NAMES, generations - 1)
    applications.update(dict.fromkeys(OPERATOR_NAMES, 0))
    opt = make_optimizer("gamma", population=40, operators={off: {"enabled": False}})
    assert opt.operators[off].rate == ops.OPERATORS[off]().rate  # switched off, rate kept
    obj = recording(budget=400)
    opt.optimize(obj, np.random.default_rng(0))
    assert applications[off] == 0
    assert all(applications[n] == generations - 1 for n in OPERATOR_NAMES if n != off)
    assert obj.used == 400
    check_invariants(Genome.concat(obj.batches), obj.space)
    first = [obj.batches[0].key(i) for i in range(40)]
    assert first == [full.batches[0].key(i) for i in range(40)]  # same initial population
    assert obj.history != full.history or obj.best.genome.key(0) != full.best.genome.key(0)


def test_without_operators_children_are_copies_of_parents(applications: dict[str, int]) -> None:
    """Every operator off and no elites: each generation is drawn from the previous one, so the
    search only ever re-evaluates the random initial population (on S3, where it has feasible
    members: otherwise GAMMA restarts from a new random population)."""
    off = {n: {"enabled": False} for n in OPERATOR_NAMES}
    obj = run("gamma", recording((2, 3), budget=400), operators=off, selection={"elite_ratio": 0.0})
    assert sum(applications.values()) == 0
    initial = {obj.batches[0].key(i) for i in range(40)}
    later = {b.key(i) for b in obj.batches[1:] for i in range(len(b))}
    assert obj.history[0][1] < math.inf and later and later <= initial
    assert len(later) < len(initial)  # parents come from the best feasible only


def test_elite_ratio_zero_keeps_no_elites(monkeypatch: pytest.MonkeyPatch) -> None:
    """The population the selection sees: children plus elites; with elite_ratio 0, children only."""
    cost = np.array([5.0, np.inf, 1.0, 3.0, 2.0, np.inf])
    elites, parents = Truncation(0.0, 0.5).select(cost, np.zeros(6), 6)
    assert len(elites) == 0 and list(parents) == [2, 4, 3]
    elites, parents = Truncation(0.5, 1.0).select(cost, np.zeros(6), 6)
    assert list(elites) == [2, 4, 3] and list(parents) == [2, 4, 3, 0]  # feasible only
    assert Truncation().counts(200) == (10, 80) and Truncation().counts(10) == (0, 4)
    sizes: list[int] = []
    real = Truncation.select

    def spy(self, cost, second, population):
        sizes.append(len(cost))
        return real(self, cost, second, population)

    monkeypatch.setattr(Truncation, "select", spy)
    run("gamma", recording((2, 3), budget=400), selection={"elite_ratio": 0.0})
    assert sizes == [40] * 9
    sizes.clear()
    run("gamma", recording((2, 3), budget=400), selection={"elite_ratio": 0.1})
    # 4 elites once 4 children are feasible (elites are feasible individuals only)
    assert sizes[0] == 40 and all(41 <= n <= 44 for n in sizes[1:]) and sizes[-1] == 44


@pytest.mark.parametrize("params, field", [
    ({"population": 1}, "optimizer.population = 1: must be at least 2"),
    ({"population": 2.5}, "optimizer.population = 2.5: must be an integer"),
    ({"selection": {"elite_ratio": 0.5}}, "optimizer.selection.elite_ratio = 0.5: must not exceed"),
    ({"selection": {"parents_ratio": 0.0}}, r"optimizer.selection.parents_ratio = 0.0: must be in \(0, 1\]"),
    ({"selection": {"name": "tournament"}}, "optimizer.selection.name = 'tournament'"),
    ({"operators": {"crossover": {"rate": -0.1}}}, r"optimizer.operators.crossover.rate = -0.1: must be in \[0, 1\]"),
    ({"operators": {"aging": {"rate": 1.01}}}, "optimizer.operators.aging.rate = 1.01"),
    ({"operators": {"mutation": {"loci": 0}}}, "optimizer.operators.mutation.loci = 0: must be at least 1"),
    ({"operators": {"growth": {"enabled": "no"}}}, "optimizer.operators.growth.enabled = 'no': must be true or false"),
    ({"operators": {"reorder": False}}, "optimizer.operators.reorder = False: must be a mapping"),
    ({"operators": {"flip": {"rate": 1}}}, "optimizer.operators.flip = .*unknown setting"),
    ({"operators": {"mutation": {"loc": 2}}}, "optimizer.operators.mutation.loc = 2: unknown setting"),
])
def test_bad_gamma_settings_are_refused(params: dict, field: str) -> None:
    with pytest.raises(SettingError, match=field):
        make_optimizer("gamma", **params)


def test_bad_settings_of_every_optimizer_name_the_field() -> None:
    with pytest.raises(GammaError, match=r"optimizer.batch = 0: must be at least 1"):
        make_optimizer("random", batch=0)
    with pytest.raises(GammaError, match=r"optimizer 'random': bad settings \['batches'\]"):
        make_optimizer("random", batches=3)


# --- GAMMA's operators ------------------------------------------------------------------------------
def test_mutation_recomputes_the_cluster_of_a_mutated_parallel_gene() -> None:
    """As in the reference code, a mutated inner parallel gene gets the cluster size
    min(parent's tile of the new parallel dim, PEs left); other genes keep their cluster."""
    space = MapSpace(RESNET_L2, 168, 2, 3)
    rng = np.random.default_rng(4)
    pop = space.random(400, rng)
    pop.cluster[:, 1:] = 1  # every bound is above 1 here: a recomputed cluster shows
    before = pop.take(np.arange(len(pop)))
    ops.Mutation(rate=1.0, loci=1)(pop, space, rng)
    changed = np.argwhere(pop.cluster != before.cluster)
    assert len(changed) > 10
    for i, l in changed:
        assert l >= 1
        idx = np.array([i])
        assert pop.cluster[i, l] == space.cluster_bound(pop, idx, np.array([l]))[0]
        assert (pop.tile[i] == before.tile[i]).all()  # one locus: the parallel gene
    retiled = ~(pop.tile == before.tile).all(axis=(1, 2))  # a tile gene was the locus
    assert retiled.sum() > 100 and (pop.cluster[retiled] == before.cluster[retiled]).all()


RESNET_L17 = Layer("CONV", K=512, C=512, Y=7, X=7, R=3, S=3)  # ResNet-18 layer 17: 5 x 5 outputs


@pytest.mark.parametrize("levels, fixed", [((1, 2), None), ((2, 3), None), ((2, 2), 14)],
                         ids=["s2", "s3", "s1"])
def test_structure_mutation_redraws_parallel_dims_and_clusters_coherently(levels, fixed) -> None:
    """Each individual hit keeps its depth and loop orders and gets new parallel dims; below the
    top a cluster size that divides the PEs the levels above leave (S1: the fixed 14), and the
    tile of the level's parallel dim one level up equal to that cluster size (at most the dim or
    the tile above), so repair keeps the cluster unless the dim is smaller. Every other tile of
    a level is kept, except the tile of the level's own parallel dim, which becomes 1."""
    space = MapSpace(RESNET_L17, 168, *levels, fixed_inner_cluster=fixed)
    rng = np.random.default_rng(3)
    pop = space.random(600, rng)
    before = pop.take(np.arange(len(pop)))
    ops.Structure(rate=1.0)(pop, space, rng)
    assert (pop.nlev == before.nlev).all() and (pop.order == before.order).all()
    assert (pop.par[:, 0] != before.par[:, 0]).mean() == pytest.approx(0.75, abs=0.06)
    for i in range(len(pop)):
        n, free = int(pop.nlev[i]), 168
        for l in range(n):
            p = pop.par[i, l]
            parallel_below = pop.par[i, l + 1] if l + 1 < n else -1
            kept = [d for d in range(6) if d not in (p, parallel_below)]
            assert (pop.tile[i, l, kept] == before.tile[i, l, kept]).all()
            if p != parallel_below:
                assert pop.tile[i, l, p] == 1
            if l == 0:
                continue
            c = pop.cluster[i, l]
            assert free % c == 0 and (fixed is None or l > 1 or c == fixed)
            free //= c
            above = space.dims[p] if l == 1 else pop.tile[i, l - 2, p]
            assert pop.tile[i, l - 1, p] == min(c, above)
    drawn = pop.take(np.arange(len(pop)))
    space.repair(pop)
    check_invariants(pop, space)
    two = np.flatnonzero(pop.nlev == 2)
    kept = drawn.cluster[two, 1] if fixed else np.minimum(drawn.cluster[two, 1], space.dims[pop.par[two, 1]])
    assert (pop.cluster[two, 1] == kept).all()  # S1: repair pins the fixed cluster whatever the dim
    assert len(set(drawn.cluster[two, 1])) == (1 if fixed else 16)  # 168 has 16 divisors


#: ResNet-18 layers on S2 edge: the proven latency optima (cycles) of the map space, found by the
#: exhaustive search (``optimizer=exhaustive``; GAMMA with 100,000 samples reaches the same on
#: layers 2, 7 and 17 and 525,351 on layer 12).
OPTIMA_S2 = {2: 663_577, 7: 632_757, 12: 525_339, 17: 358_050}


def test_gamma_leaves_the_layer_17_stall_with_the_structure_mutation() -> None:
    """ResNet-18 layer 17 (K512 C512, 5 x 5 outputs), S2 edge, seed 0 as ``python run.py``: GAMMA
    without the structure mutation stalls at 1.18x the compute bound (Y' parallel at the top over
    5 clusters of 29 PEs, 414,785 cycles; the proven optimum, 358,050, has K and C parallel on the
    two levels, 14 clusters of 12 PEs). With it, GAMMA at 10,000 samples ends within 3 % of the
    proven optimum on layers 2, 7, 12 and 17 for every seed 0-4 (issue 12; without it, 16 % above
    on layer 17 with seeds 0 and 2, 5 % on layer 12 with seed 3)."""
    from gamma.search.api import search_model

    off = search_model("resnet18", "edge", system="s2", seed=0, layers=[17],
                       overrides=["optimizer.operators.structure.enabled=false"]).layers[17]
    assert off.cost / off.summary["compute_bound_cycles"] > 1.15
    assert off.cost > 1.15 * OPTIMA_S2[17]
    for seed in range(5):
        res = search_model("resnet18", "edge", system="s2", seed=seed, layers=list(OPTIMA_S2))
        worst = max(res.layers[i].cost / best for i, best in OPTIMA_S2.items())
        assert worst <= 1.03, (seed, {i: res.layers[i].cost for i in OPTIMA_S2})


def test_paper_mode_runs_gamma_without_the_structure_mutation() -> None:
    """The paper's GAMMA has five operators: ``paper_mode=true`` switches ours off (and keeps its
    rate), whatever the config says; other optimizers' settings are left alone."""
    from gamma.search.api import settings
    from gamma.search.rules import optimizer_spec

    name, params = optimizer_spec(settings(paper_mode=True))
    assert name == "gamma" and params["operators"]["structure"] == {"enabled": False, "rate": 0.1}
    opt = make_optimizer(name, **params)
    assert not opt.enabled["structure"] and all(opt.enabled[n] for n in OPERATOR_NAMES if n != "structure")
    assert optimizer_spec(settings())[1]["operators"]["structure"]["enabled"] is True
    assert optimizer_spec(settings(optimizer="random", paper_mode=True)) == ("random", {"batch": 1000})
