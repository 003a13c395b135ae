"""Co-search baselines (``codesign=digamma optimizer=X``, docs/codesign.md "Co-search
baselines"): every optimizer that can co-search honours one contract on a small job (ResNet-18
layers 2, 5, 6, 8: three unique shapes), with the real cost model; the others are refused."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from baselines.cocodec import CoCodec
from gamma.errors import GammaError
from gamma.hardware import area_um2
from gamma.mapspace.cospace import CoSpace
from gamma.objectives.nondominated import dominance
from gamma.optimizers import co_searchers
from gamma.search import codesign
from gamma.search.setup import build_setup, make_objective
from tests.jobs import ROOT, run_captured

BUDGET = 300
BASE = ["model=resnet18", "layers=[2,5,6,8]", f"budget={BUDGET}", "codesign=digamma",
        "tracking.enabled=false"]
#: A loose area budget and at most 16 PEs, so that a few hundred samples find designs that fit
#: (at the edge platform's area none of the optimizers finds one in 300 samples) and the few
#: PE counts keep the cost-model calls (one per PE count and layer) few.
LOOSE = ["codesign.area_mm2=1.0", "codesign.max_pes=16"]
CO_SEARCHERS = ["gamma", "random", "pso", "cma", "de", "stdga", "tbpsa"]


def config(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=[*BASE, *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def co_searches(optimizer: str, seeds: tuple[int, ...]) -> list[codesign.CoDesignSearch]:
    """One co-search of ``optimizer`` per seed (the config composed once)."""
    cfg = config(f"optimizer={optimizer}", *LOOSE)
    setup = build_setup(cfg)
    return [codesign.search({**cfg, "seed": s}, setup) for s in seeds]


def outcome(found: codesign.CoDesignSearch) -> tuple:
    """What a co-search found: the best cost, its design (PEs, L1, L2), where, and its curve."""
    d = found.design
    design = None if d is None else (d.hw.num_pes, d.hw.l1_size, d.hw.l2_size, d.samples)
    return found.objective.best_cost, design, found.objective.history


@pytest.fixture(scope="module")
def runs() -> dict:
    """Per co-searching optimizer: seed 0 twice and seed 1."""
    return {opt: co_searches(opt, (0, 0, 1)) for opt in CO_SEARCHERS}


def test_the_co_searchers_are_the_registered_ones_that_say_so():
    assert sorted(co_searchers()) == sorted(CO_SEARCHERS)


@pytest.mark.parametrize("optimizer", CO_SEARCHERS)
def test_co_search_contract(runs, optimizer):
    """Exactly ``budget`` samples on every unique layer; the design found fits the area budget
    with the buffers its mappings need and costs their latency sum; the same seed finds the
    same, another seed another."""
    first, again, other = runs[optimizer]
    for found in (first, again, other):
        assert [o.used for o in found.objective.objectives] == [BUDGET] * 3
        assert found.objective.history[-1][0] == BUDGET
        d = found.design
        assert d is not None, f"{optimizer} found no design that fits"
        model, budget = found.hwspace.area, found.hwspace.budget_um2
        assert budget == 1.0e6
        assert area_um2(d.hw.num_pes, d.hw.l1_size, d.hw.l2_size, model) <= budget
        assert 1 <= d.hw.num_pes <= 16
        assert all(r["l1_size_req"] <= d.hw.l1_size and r["l2_size_req"] <= d.hw.l2_size
                   for r in d.outputs)
        assert d.cost == pytest.approx(sum(c * r["runtime_cycles"] for c, r in
                                           zip(found.objective.counts, d.outputs)))
    assert outcome(first) == outcome(again)
    assert outcome(first) != outcome(other)


@pytest.mark.parametrize("optimizer", ["exhaustive", "bo"])
def test_an_optimizer_that_cannot_co_search_is_refused(optimizer):
    with pytest.raises(GammaError, match=f"optimizer={optimizer}: cannot co-search"):
        codesign.check(config(f"optimizer={optimizer}"))


def test_a_refused_optimizer_ends_with_an_error_naming_it(tmp_path):
    run = run_captured([*BASE, "optimizer=exhaustive", f"hydra.run.dir={tmp_path / 'run'}"])
    assert run.returncode == 1
    assert ("error: optimizer=exhaustive: cannot co-search hardware and mappings; "
            "codesign=digamma co-searches with cma, de, gamma, pso, random, stdga, tbpsa"
            in run.stderr)
    assert "Traceback" not in run.stderr + run.stdout


@pytest.mark.parametrize("system", ["s2", "s1"])
def test_joint_codec_decodes_fitting_arrays_and_repaired_genomes(system):
    """Uniform points of the joint box: every PE array fits the budget with one-element
    buffers, each genome is already repaired on its own design, and the layout's dimension is
    the hardware coordinates plus each layer's codec."""
    cfg = config(f"system={system}")
    setup, space = build_setup(cfg), codesign.hw_space(cfg)
    flat = {**cfg, "system": {**cfg["system"], "fixed_inner_cluster": None}}
    bases = [make_objective(flat, setup.unique[u], setup.hw).space for u in setup.todo]
    cospace = CoSpace(space, bases, cfg["system"].get("fixed_inner_cluster") is not None)
    codec = CoCodec(cospace)
    assert codec.dim == (2 if system == "s1" else 1) + {"s1": 13, "s2": 14}[system] * 3
    pop = codec.decode(np.random.default_rng(0).random((500, codec.dim)))
    assert space.fits(pop.hw).all()
    assert len(np.unique(pop.hw.pes)) > 100
    repaired = pop.take(np.arange(len(pop)))
    cospace.repair(repaired)
    for a, b in zip(pop.layers, repaired.layers):
        for f in ("nlev", "par", "order", "tile", "cluster"):
            assert np.array_equal(getattr(a, f), getattr(b, f))
    if system == "s1":
        assert (pop.layers[0].cluster[:, 1] == pop.hw.cols).all()


@pytest.mark.parametrize("optimizer", ["gamma", "random", "pso"])
def test_a_front_co_search_keeps_the_designs_none_dominates(optimizer):
    """objective=pareto: every co-searcher's front holds designs that fit, none dominated by
    another, each at the values of its own mappings; the best is the front's fastest."""
    cfg = config(f"optimizer={optimizer}", *LOOSE, "objective=pareto",
                 "objective.metrics=[latency,area]")
    found = codesign.search(cfg, build_setup(cfg))
    obj = found.objective
    assert [o.used for o in obj.objectives] == [BUDGET] * 3
    F = np.array([d.values for d in obj.front])
    assert len(F) >= 2, f"{optimizer}: a front of {len(F)} designs checks little"
    assert not dominance(F).any()
    for d, (latency, area) in zip(obj.front, F):
        assert area == pytest.approx(area_um2(d.hw.num_pes, d.hw.l1_size, d.hw.l2_size,
                                              found.hwspace.area)) and area <= 1.0e6
        assert latency == sum(c * r["runtime_cycles"] for c, r in zip(obj.counts, d.outputs))
    assert found.design is min(obj.front, key=lambda d: d.values)


def test_a_front_with_the_area_first_is_listed_smallest_area_first():
    """objective.metrics=[area,edp]: the best is the smallest design, the front listed by area."""
    cfg = config("optimizer=gamma", *LOOSE, "objective=pareto", "objective.metrics=[area,edp]")
    found = codesign.search(cfg, build_setup(cfg))
    designs = codesign.front_designs(found)
    assert len(designs) >= 2
    areas = [d.values[0] for d in designs]
    assert areas == sorted(areas) and found.design is designs[0]
    edp = [d.values[1] for d in designs]
    assert all(a > b for a, b in zip(edp, edp[1:]))  # more area, lower EDP
