"""The baselines' codec (box -> GAMMA genome), their losses, configs and batching. The shared
optimizer contract (tests/test_optimizers.py) runs every baseline on S2 and S3 as well."""

from __future__ import annotations

import copy
from pathlib import Path

import nevergrad as ng
import numpy as np
import pytest
import yaml

from nevergrad.optimization import optimizerlib
from skopt.utils import cook_estimator

import baselines.bayesopt as bayesopt
from baselines.bayesopt import OnePassForest, surrogate_targets
from baselines.codec import ORDERS, Codec
from baselines.loss import PENALTY, to_loss
from baselines.nevergrad_opt import CachedCMA, CMAPopulations, with_cached_cma
from baselines.unitbox import UnitBox, full_range_sampling
from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.mapspace.space import Genome, MapSpace
from gamma.objectives.scalar import Objective
from gamma.optimizers import make_optimizer
from gamma.optimizers.settings import SettingError
from gamma.workloads.layer import Layer
from test_optimizers import check_invariants  # tests/ is on sys.path under pytest

EDGE = Hardware(num_pes=168, l1_size=512, l2_size=108_000, noc_bw=81_920_000, offchip_bw=70_000)
RESNET_L2 = Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3)
DWCONV = Layer("DSCONV", K=1, C=96, Y=113, X=113, R=3, S=3, stride_y=2, stride_x=2)
CONF = Path(__file__).resolve().parents[1] / "conf" / "optimizer"
BASELINES = ["stdga", "pso", "cma", "de", "tbpsa", "bo"]

SPACES = {
    "s1": MapSpace(RESNET_L2, 168, 2, 2, fixed_inner_cluster=14),
    "s2": MapSpace(RESNET_L2, 168, 1, 2),
    "s3": MapSpace(RESNET_L2, 168, 2, 3),
    "any": MapSpace(RESNET_L2, 168, 1, 3, inner_tiles="any"),
    "dw": MapSpace(DWCONV, 168, 1, 2),
}


def points(dim: int, n: int = 3000) -> np.ndarray:
    """Random points plus the box's corners and edges (0, and values at or next to 1)."""
    x = np.random.default_rng(7).random((n, dim))
    x[:3] = 0.0
    x[3:6] = 1.0
    x[6:9] = np.nextafter(1.0, 0.0)
    x[9:400:2, ::2] = 0.0
    x[10:400:2, 1::2] = 1.0
    return x


# --- the codec -----------------------------------------------------------------------------------
@pytest.mark.parametrize("key", list(SPACES))
def test_codec_decodes_every_point_into_the_map_space(key: str) -> None:
    sp = SPACES[key]
    codec = Codec(sp)
    g = codec.decode(points(codec.dim))
    check_invariants(g, sp)
    repaired = copy.deepcopy(g)
    sp.repair(repaired)  # repair changes nothing on a decoded genome
    for f in ("nlev", "par", "order", "tile", "cluster"):
        np.testing.assert_array_equal(getattr(repaired, f), getattr(g, f))
    again = codec.decode(points(codec.dim))  # deterministic
    assert all(g.key(i) == again.key(i) for i in range(len(g)))
    assert len(sp.decode(g).nlev) == len(g)  # the cost model's format accepts them


def test_codec_layout_and_coverage() -> None:
    assert [Codec(SPACES[k]).dim for k in ("s1", "s2", "s3")] == [13, 14, 21]
    assert len(ORDERS) == 720 and len({tuple(o) for o in ORDERS}) == 720
    assert list(ORDERS[0]) == [0, 1, 2, 3, 4, 5] and list(ORDERS[-1]) == [5, 4, 3, 2, 1, 0]
    sp = SPACES["s3"]
    codec = Codec(sp)
    g = codec.decode(points(codec.dim, 20000))
    assert set(np.unique(g.nlev)) == {2, 3}
    assert set(np.unique(g.par[:, 0])) == set(sp.par_choices)
    assert len(np.unique(g.tile[:, 0, 0])) == 64  # every top-level K tile 1..64 is reachable
    lo, hi = codec.decode(np.zeros((1, codec.dim))), codec.decode(np.ones((1, codec.dim)))
    assert hi.nlev[0] == 3 and lo.nlev[0] == 2
    assert (lo.tile[0, :, :4] == 1).all() and (hi.tile[0, 0, :4] == sp.dims[:4]).all()
    assert (hi.tile[0, 1:, :4] == hi.tile[0, 0, :4]).all()  # u = 1: the parent's largest divisor
    with pytest.raises(ValueError, match="shape"):
        codec.decode(np.zeros((2, codec.dim + 1)))
    with pytest.raises(ValueError, match="finite"):
        codec.decode(np.full((1, codec.dim), np.nan))


def test_inactive_coordinates_do_not_change_the_genome() -> None:
    sp = SPACES["s2"]
    codec = Codec(sp)
    x = points(codec.dim, 200)
    x[:, codec.depth_col] = 0.0  # one level: level 2's coordinates are inactive
    y = x.copy()
    y[:, 6:13] = np.random.default_rng(1).random((len(x), 7))
    a, b = codec.decode(x), codec.decode(y)
    assert all(a.key(i) == b.key(i) for i in range(len(a)))


# --- losses ----------------------------------------------------------------------------------------
def test_losses_are_finite_and_keep_the_order() -> None:
    cost = np.array([np.inf, 1.0, 3.5e6, 1e300, 2.0])
    loss = to_loss(cost)
    assert np.isfinite(loss).all() and loss[0] == PENALTY and (loss[1:] < PENALTY).all()
    assert list(np.argsort(loss[1:])) == list(np.argsort(cost[1:]))
    y = surrogate_targets(cost)
    assert y[0] == pytest.approx(300 + 1) and y[1] == 0.0
    assert (surrogate_targets(np.full(3, np.inf)) == 0.0).all()


# --- the baselines -----------------------------------------------------------------------------------
def small(name: str) -> dict:
    """The baseline's small settings, shared with the optimizer contract."""
    from test_optimizers import SMALL_PARAMS  # tests/ is on sys.path under pytest

    return SMALL_PARAMS[name]


@pytest.mark.parametrize("name", BASELINES)
def test_config_builds_the_baseline(name: str) -> None:
    cfg = yaml.safe_load((CONF / f"{name}.yaml").read_text())
    assert cfg.pop("name") == name
    opt = make_optimizer(name, **cfg)
    assert opt.name == name and opt.batch == cfg["batch"]
    default = make_optimizer(name)  # the constructor's defaults are the config's
    assert vars(default).keys() == vars(opt).keys()
    assert all(repr(vars(default)[k]) == repr(vars(opt)[k]) for k in vars(opt))


@pytest.mark.parametrize("name", BASELINES)
def test_batches_spend_the_budget_exactly_on_s1(name: str) -> None:
    params = small(name)
    opt = make_optimizer(name, **params)
    batch = opt.batch
    budget = 2 * batch + batch // 2 + 1  # the last batch is truncated
    obj = Objective(SPACES["s1"], EDGE, budget)
    seen: list[int] = []
    opt.optimize(obj, np.random.default_rng(3), on_progress=lambda used, best: seen.append(used))
    assert obj.used == budget and seen[-1] == budget
    steps = np.diff([0] + seen)
    assert len(obj.history) == len(seen) and (steps <= batch).all() and steps[-1] < batch


@pytest.mark.parametrize("name", ["de", "bo"])
def test_library_failures_propagate(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("library failure")

    if name == "bo":
        monkeypatch.setattr(bayesopt, "gaussian_ei", boom)
    else:
        monkeypatch.setattr(ng.optimizers.base.Optimizer, "tell", boom)
    obj = Objective(SPACES["s2"], EDGE, 400)
    with pytest.raises(RuntimeError, match="library failure"):
        make_optimizer(name, **small(name)).optimize(obj, np.random.default_rng(0))


def test_bad_settings_are_refused() -> None:
    """Constructors check their settings against nevergrad's registry and families and skopt's
    surrogates; each error names the setting (``optimizer.<field>``)."""
    with pytest.raises(SettingError, match="optimizer.optimizer = 'NoSuchOpt': nevergrad has no optimizer"):
        make_optimizer("de", optimizer="NoSuchOpt")
    with pytest.raises(SettingError, match="optimizer.options = .*'DE' takes no options"):
        make_optimizer("de", options={"popsize": 40})
    with pytest.raises(SettingError, match="optimizer.options = .*not accepted by nevergrad's ParametrizedCMA"):
        make_optimizer("cma", options={"scale": 3.0, "nosuch": 1})
    with pytest.raises(SettingError, match="optimizer.options = .*not accepted by nevergrad's cGA"):
        make_optimizer("stdga", optimizer="cGA", options={"nosuch": 1})
    assert make_optimizer("stdga", optimizer="cGA", options={"arity": 50}).batch == 40
    with pytest.raises(SettingError, match="optimizer.batch = 0: must be at least 1"):
        make_optimizer("pso", batch=0)
    with pytest.raises(SettingError, match="optimizer.surrogate = 'GP': choose from ET, RF"):
        make_optimizer("bo", surrogate="GP")
    with pytest.raises(SettingError, match=r"optimizer.candidates = 10: must be at least optimizer.batch \(500\)"):
        make_optimizer("bo", candidates=10)
    with pytest.raises(SettingError, match=r"optimizer.local_fraction = 2: must be in \[0, 1\]"):
        make_optimizer("bo", local_fraction=2)
    with pytest.raises(SettingError, match=r"optimizer.local_scale = 0: must be above 0"):
        make_optimizer("bo", local_scale=0)
    with pytest.raises(GammaError, match=r"optimizer 'tbpsa': bad settings \['population'\]"):
        make_optimizer("tbpsa", population=10)


class RecordingObjective(Objective):
    """The real objective, keeping every batch's costs."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.costs: list[np.ndarray] = []

    def evaluate(self, genomes: Genome) -> np.ndarray:
        cost = super().evaluate(genomes)
        self.costs.append(cost)
        return cost


def test_cached_cma_is_nevergrads_cma() -> None:
    """CachedCMA skips nevergrad's per-access Normalizer only: same samples, same costs."""
    runs = []
    for cached in (True, False):
        opt = make_optimizer("cma")
        assert isinstance(opt.factory, ng.optimizers.base.ConfiguredOptimizer)
        assert opt.factory._OptimizerClass is CachedCMA
        if not cached:
            opt.factory = copy.copy(opt.factory)
            opt.factory._OptimizerClass = optimizerlib._CMA
        obj = RecordingObjective(SPACES["s2"], EDGE, 13 * 40)
        opt.optimize(obj, np.random.default_rng(5))
        runs.append(np.concatenate(obj.costs))
    assert np.isfinite(runs[0]).sum() > 0
    assert np.array_equal(runs[0], runs[1])
    assert with_cached_cma(ng.optimizers.registry["DE"]) is ng.optimizers.registry["DE"]
    assert with_cached_cma(ng.optimizers.registry["DiagonalCMA"])._OptimizerClass is CachedCMA


@pytest.mark.parametrize("surrogate", ["ET", "RF"])
def test_one_pass_forest_predicts_as_skopt(surrogate: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.random((600, 17))
    y = surrogate_targets(np.where(rng.random(600) < 0.2, np.inf, 1e5 + 1e6 * rng.random(600)))
    model = cook_estimator(surrogate, random_state=3).fit(X, y)
    cand = rng.random((3000, 17))
    mean, std = model.predict(cand, return_std=True)
    fast_mean, fast_std = OnePassForest(model).predict(cand, return_std=True)
    assert np.array_equal(mean, fast_mean) and np.array_equal(std, fast_std)
    assert np.array_equal(model.predict(cand), OnePassForest(model).predict(cand))
    assert std.min() >= 0 and std.max() > 0


# --- the fast paths: the same samples as nevergrad's own ask and tell ---------------------------
def nevergrad_reference(name: str, space: MapSpace, budget: int, seed: int) -> np.ndarray:
    """The costs of every sample of baseline ``name`` (default settings) searched as before its
    fast paths: nevergrad's own ``Array`` box (sampling uniformly) and CMA-ES class, ask and
    tell per candidate."""
    opt = make_optimizer(name)
    factory = opt.factory
    if getattr(factory, "_OptimizerClass", None) is CachedCMA:
        factory = copy.copy(factory)
        factory._OptimizerClass = optimizerlib._CMA
    codec = Codec(space)
    param = full_range_sampling(ng.p.Array(shape=(codec.dim,), lower=0.0, upper=1.0))
    param.random_state = np.random.RandomState(int(np.random.default_rng(seed).integers(2**32)))
    ng_opt = factory(parametrization=param, budget=budget, num_workers=opt.batch)
    obj = RecordingObjective(space, EDGE, budget)
    while obj.remaining:
        cands = [ng_opt.ask() for _ in range(min(opt.batch, obj.remaining))]
        cost = obj.evaluate(codec.decode(np.stack([c.value for c in cands])))
        with np.errstate(divide="ignore", invalid="ignore"):
            for cand, loss in zip(cands, to_loss(cost)):
                ng_opt.tell(cand, float(loss))
    return np.concatenate(obj.costs)


@pytest.mark.parametrize("name", ["stdga", "pso", "cma", "de", "tbpsa"])
@pytest.mark.parametrize("key", ["s1", "s3"])
def test_fast_paths_sample_as_nevergrad(name: str, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """UnitBox, CMA-ES by populations and the archive-free tells change no sample: every cost,
    in order, equals nevergrad's own ask and tell on its own Array (CMA-ES across restarts)."""
    budget = 1300
    built: list = []
    fits = CMAPopulations.fits
    monkeypatch.setattr(CMAPopulations, "fits", staticmethod(lambda opt: built.append(opt) or fits(opt)))
    obj = RecordingObjective(SPACES[key], EDGE, budget)
    make_optimizer(name).optimize(obj, np.random.default_rng(0))
    fast = np.concatenate(obj.costs)
    assert np.isfinite(fast).sum() > 0
    assert np.array_equal(fast, nevergrad_reference(name, SPACES[key], budget, 0))
    if name == "cma":  # driven by populations, and restarted at least once
        assert isinstance(built[0], CachedCMA) and fits(built[0])
        assert built[0]._es.countiter < budget // built[0]._popsize


def test_unit_box_is_nevergrads_array() -> None:
    """Values, standardized data, samples and freezing as nevergrad's Array(lower=0, upper=1)."""
    box, ref = UnitBox(5), full_range_sampling(ng.p.Array(shape=(5,), lower=0.0, upper=1.0))
    box.random_state, ref.random_state = np.random.RandomState(1), np.random.RandomState(1)
    assert box.dimension == ref.dimension == 5 and box.sigma.value == ref.sigma.value
    data = np.array([-7.0, -2.9, 0.1, 3.1, 12.0])  # outside on both sides: bounced or clipped
    for a, b in ((box, ref), (box.sample(), ref.sample())):
        ca = a.spawn_child().set_standardized_data(data, reference=box)
        cb = b.spawn_child().set_standardized_data(data, reference=ref)
        assert np.array_equal(ca.value, cb.value) and (ca.value >= 0).all() and (ca.value <= 1).all()
        assert np.array_equal(ca.get_standardized_data(reference=box), cb.get_standardized_data(reference=ref))
        assert ca.generation == cb.generation and ca.parents_uids == [a.uid] and ca.uid != a.uid
        assert np.array_equal(a.value, b.value)
    child = box.spawn_child()
    child.freeze()
    with pytest.raises(RuntimeError, match="frozen"):
        child.set_standardized_data(data, reference=box)
    assert child.satisfies_constraints(box) and box.spawn_child(new_value=np.full(5, 0.25)).value[0] == 0.25


#: (baseline, map space, seed) -> (best cost, feasible samples, sum of the feasible costs) of a
#: 1,000-sample search of ResNet-18 layer 2 on the edge platform. stdga, tbpsa and bo: measured
#: before the fast paths (nevergrad's own ask and tell on its Array box), which must find the
#: same. pso, cma and de draw their first points with the box's ``sample()``, uniform since
#: then (before: around the box centre, e.g. pso s2 seed 0 found 53 feasible samples, best
#: 1,119,799 cycles; cma s2 seed 0 805, best 682,625; de s2 seed 1 430, best 684,421).
BEFORE = {
    ("stdga", "s2", 0): (2115105.0, 227, 1150269027.0),
    ("stdga", "s3", 1): (1308493.0, 438, 2218288746.0),
    ("pso", "s2", 0): (746605.0, 296, 2253872324.0),
    ("pso", "s3", 1): (705673.0, 597, 13313326259.0),
    ("cma", "s2", 0): (746529.0, 520, 1549775084.0),
    ("cma", "s3", 1): (722473.0, 755, 1023263484.0),
    ("de", "s2", 1): (682425.0, 533, 4955854266.0),
    ("de", "s3", 0): (701515.0, 658, 5009482306.0),
    ("tbpsa", "s2", 0): (1033217.0, 11, 256382434.0),
    ("tbpsa", "s3", 1): (788041.0, 478, 5528677537.0),
    ("bo", "s2", 0): (684619.0, 699, 2282586471.0),
    ("bo", "s3", 1): (687105.0, 675, 6230969101.0),
}


def test_box_samples_uniformly() -> None:
    """The box's sample() is uniform in [0, 1]^d (std 1/sqrt(12) = 0.289); nevergrad's own
    Array(lower=0, upper=1).sample() is the centre plus N(0, 1/6) noise (see baselines/unitbox.py)."""
    box, plain = UnitBox(14), ng.p.Array(shape=(14,), lower=0.0, upper=1.0)
    box.random_state, plain.random_state = np.random.RandomState(0), np.random.RandomState(0)
    x = np.array([box.sample().value for _ in range(3000)])
    assert abs(x.mean() - 0.5) < 0.01 and 0.28 < x.std() < 0.30 and x.min() < 1e-3 and x.max() > 1 - 1e-3
    assert np.histogram(x, bins=10, range=(0, 1))[0].min() > 0.09 * x.size
    y = np.array([plain.sample().value for _ in range(3000)])
    assert 0.15 < y.std() < 0.18


@pytest.mark.parametrize("case", list(BEFORE), ids=lambda c: "-".join(map(str, c)))
def test_baselines_find_what_they_found_before(case: tuple[str, str, int]) -> None:
    name, key, seed = case
    obj = RecordingObjective(SPACES[key], EDGE, 1000)
    make_optimizer(name).optimize(obj, np.random.default_rng(seed))
    cost = np.concatenate(obj.costs)
    assert (obj.best_cost, obj.feasible_count, float(np.sum(cost[np.isfinite(cost)]))) == BEFORE[case]
