"""The library API used as in a notebook: in memory, nothing written or printed, and the same
mappings as `python run.py` for the same seed (real cost model, real GAMMA)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gamma.search.api import LayerResult, ModelResult, search_layer, search_model
from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.results.records import history_record
from gamma.workloads.layer import Layer
from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]
CLI = ["layers=[2,7,3]", "budget=600", "optimizer.population=100", "seed=1", "system=s3",
       "tracking.enabled=false"]


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("cli")
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *CLI, f"hydra.run.dir={out}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return read_results(out / "results.json")


@pytest.fixture(scope="module")
def notebook(tmp_path_factory) -> tuple[ModelResult, list[Path], str]:
    """search_model from an empty folder, capturing everything it prints."""
    import contextlib
    import io
    import os

    cwd = tmp_path_factory.mktemp("notebook")
    here = os.getcwd()
    printed = io.StringIO()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            res = search_model("resnet18", "edge", layers=[7, 2, 3], budget=600, seed=1,
                               system="s3", optimizer={"name": "gamma", "population": 100})
    finally:
        os.chdir(here)
    return res, list(cwd.iterdir()), printed.getvalue()


def test_search_model_equals_the_cli(notebook, cli_results):
    res, written, printed = notebook
    assert written == [] and printed == ""  # no files, no printing (and no MLflow run)
    assert sorted(res.layers) == [2, 3, 7] and res.model.name == "resnet18"
    assert res.layers[2] is res.layers[3]  # one shape, one search
    assert res.hardware == Hardware.from_dict(cli_results["hardware"])
    for r in cli_results["layers"]:
        mine = res.layers[r["index"]]
        assert isinstance(mine, LayerResult) and mine.feasible
        assert mine.layer.shape == r["shape"]
        assert mine.cost == r["best_cost"] == r["best"]["runtime_cycles"]
        assert mine.mapping.to_dict() == r["mapping"]
        assert mine.outputs == pytest.approx(r["best"])
        assert mine.summary["samples_used"] == r["samples_used"] == 600
        assert mine.summary["rejections"] == r["rejections"]
        assert mine.history[-1] == (600, r["best_cost"])
        assert history_record(mine.history) == r["history"]
    assert res.total_cost == cli_results["totals"]["latency_cycles"] == \
        sum(res.layers[i].cost for i in (2, 3, 7))
    assert res.config["optimizer"]["population"] == 100
    assert res.config["optimizer"]["name"] == "gamma" and res.config["system"]["name"] == "s3"


def test_search_layer_with_the_unique_layers_seed_is_the_models_result(notebook):
    res, _, _ = notebook
    layer7 = res.layers[7]
    u = res.model.unique_layers()[1][6]  # layer 7's unique index: the job's generator is rng([1, u])
    assert u == 3
    hw = Hardware(num_pes=168, l1_size=512, l2_size=108000, noc_bw=81920000, offchip_bw=70000)
    alone = search_layer(Layer("CONV", K=128, C=128, Y=28, X=28, R=3, S=3), hw,
                         optimizer={"name": "gamma", "population": 100}, budget=600, seed=[1, u],
                         system="s3")
    assert alone.layer.shape == layer7.layer.shape
    assert alone.cost == layer7.cost and alone.mapping.to_dict() == layer7.mapping.to_dict()
    again = search_layer(layer7.layer, "edge", optimizer={"name": "gamma", "population": 100},
                         budget=600, rng=np.random.default_rng([1, u]), system="s3")
    assert again.cost == layer7.cost and again.history == layer7.history
    other = search_layer(layer7.layer, hw, optimizer={"name": "gamma", "population": 100},
                         budget=600, seed=[2, u], system="s3")
    assert other.mapping.to_dict() != layer7.mapping.to_dict()


def test_an_infeasible_layer_costs_inf():
    """ResNet-18's 7x7 first layer fits no mapping into the cloud platform's 64-element L1."""
    res = search_model("resnet18", "cloud", layers=[1, 2], budget=200, optimizer="random")
    assert not res.layers[1].feasible and res.layers[1].cost == math.inf
    assert res.layers[1].mapping is None and res.layers[1].outputs is None
    assert res.layers[2].feasible and res.total_cost == math.inf and not res.feasible


def test_bad_settings_raise_gamma_errors():
    with pytest.raises(GammaError, match="layers: \\[21\\] not in 1..20"):
        search_model("resnet18", layers=[21], budget=10)
    with pytest.raises(GammaError, match="unknown optimizer 'nope'"):
        search_model("resnet18", layers=[2], budget=10, optimizer={"name": "nope"})
    with pytest.raises(GammaError, match="budget must be a non-negative integer"):
        search_layer(Layer("CONV", K=8, C=8, Y=8, X=8, R=3, S=3), budget=-1)


def test_every_registered_optimizer_from_the_library_without_importing_baselines():
    """The baselines are found by name (entry points) from Python as from run.py: a CMA-ES
    search in a fresh interpreter that never imports ``baselines`` by hand; its result equals
    run.py's for the same seed."""
    code = ("import json, sys\n"
            "from gamma.search.api import search_model\n"
            "assert 'baselines' not in sys.modules\n"
            "res = search_model('resnet18', 'edge', system='s2', optimizer='cma', budget=300,\n"
            "                   seed=0, layers=[8])\n"
            "print(json.dumps([res.layers[8].cost, res.layers[8].summary['samples_used']]))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cost, used = json.loads(proc.stdout.strip().splitlines()[-1])
    assert used == 300 and math.isfinite(cost) and cost >= 150_000  # layer 8's optimum: 154,127


def test_registering_an_optimizer_name_twice_is_an_error():
    from gamma.optimizers import Optimizer, register, register_lazy

    class One(Optimizer):
        def optimize(self, objective, rng, on_progress=None):  # pragma: no cover - never run
            pass

    with pytest.raises(GammaError, match="'gamma' is registered twice"):
        register("gamma")(One)
    with pytest.raises(GammaError, match="'cma' is registered twice"):
        register_lazy("cma", "somewhere.else:CMA")
    register_lazy("gamma", "gamma.optimizers.gamma:Gamma")  # the same target again: fine
