"""The cache of proven optima (gamma/search/optima.py): keys, store and lookup, a conflicting optimum
refused; a job with optimizer=exhaustive fills it and later latency jobs record
``optimum_cycles`` and ``ratio_to_optimum`` per layer and in the totals."""

from __future__ import annotations

import json

import pytest

from gamma.search import optima
from gamma.hardware import Hardware
from tests.jobs import run_inprocess

EDGE = Hardware(num_pes=168, l1_size=512, l2_size=108_000, noc_bw=81_920_000, offchip_bw=70_000)
S2 = {"system": {"min_levels": 1, "max_levels": 2, "fixed_inner_cluster": None},
      "mapspace": {"inner_tiles": "divisors", "parallel_dims": ["Y", "X", "K", "C"]}, "guard": True}


def test_keys_separate_what_an_optimum_depends_on():
    ctx = optima.space_context(S2)
    assert ctx == {"levels": [1, 2], "fixed_inner_cluster": None, "inner_tiles": "divisors",
                   "parallel_dims": ["C", "K", "X", "Y"], "guard": True, "costmodel": "maestro"}
    k = optima.key("CONV K512 C512 Y7 X7 R3 S3", EDGE.to_dict(), ctx)
    assert k == optima.key("CONV K512 C512 Y7 X7 R3 S3", dict(reversed(EDGE.to_dict().items())), ctx)
    others = [optima.key("CONV K512 C512 Y7 X7 R3 S3 s2", EDGE.to_dict(), ctx),
              optima.key("CONV K512 C512 Y7 X7 R3 S3", {**EDGE.to_dict(), "l1_size": 256}, ctx),
              optima.key("CONV K512 C512 Y7 X7 R3 S3", EDGE.to_dict(), {**ctx, "guard": False}),
              optima.key("CONV K512 C512 Y7 X7 R3 S3", EDGE.to_dict(), {**ctx, "levels": [2, 3]}),
              optima.key("CONV K512 C512 Y7 X7 R3 S3", EDGE.to_dict(), {**ctx, "fixed_inner_cluster": 14}),
              optima.key("CONV K512 C512 Y7 X7 R3 S3", EDGE.to_dict(), {**ctx, "costmodel": "other"})]
    assert len({k, *others}) == 7


def test_paper_mode_is_never_keyed_as_the_guarded_space():
    """paper_mode=true searches inner tiles `any` without the guard, whatever the config's
    mapspace and guard say: its optimum is another space's, so its key must differ."""
    paper = optima.space_context({**S2, "paper_mode": True})
    assert paper["inner_tiles"] == "any" and paper["guard"] is False
    default = optima.space_context(S2)
    assert optima.key("CONV K64 C64 Y56 X56 R3 S3", EDGE.to_dict(), paper) != \
        optima.key("CONV K64 C64 Y56 X56 R3 S3", EDGE.to_dict(), default)
    from_params = optima.context_of_results(
        {"paper_mode": True}, {"system.min_levels": "1", "system.max_levels": "2",
                               "mapspace.inner_tiles": "divisors", "guard": "True"})
    assert from_params["inner_tiles"] == "any" and from_params["guard"] is False


def test_store_lookup_and_a_conflicting_optimum(tmp_path):
    path = tmp_path / "sub" / "optima.json"
    assert optima.load(path) == {} and optima.lookup(path, "k") is None
    optima.store(path, "k", {"optimum_cycles": 358_050, "shape": "x"})
    optima.store(path, "k", {"optimum_cycles": 358_050, "shape": "x"})  # the same again: fine
    optima.store(path, "j", {"optimum_cycles": 7})
    assert optima.lookup(path, "k") == 358_050 and optima.lookup(path, "j") == 7
    before = path.read_text()
    with pytest.raises(ValueError, match="optimum 358049 cycles .* but 358050 cycles is cached"):
        optima.store(path, "k", {"optimum_cycles": 358_049})
    assert path.read_text() == before
    data = json.loads(before)
    assert data["version"] == 1 and data["optima"]["k"]["found"].endswith("Z")


def test_exhaustive_job_fills_the_cache_and_other_jobs_use_it(tmp_path):
    cache = tmp_path / "optima.json"
    common = ["layers=[17]", "tracking.enabled=false", f"optima={cache}"]
    code, res = run_inprocess(["optimizer=exhaustive", *common], tmp_path / "ex")
    assert code == 0
    (layer,) = res["layers"]
    assert layer["proven_optimal"] is True and layer["optimality_gap"] == 0
    assert layer["best_cost"] == layer["optimum_cycles"] == layer["optimum_lower_bound_cycles"] == 358_050
    assert layer["samples_used"] == layer["exhaustive"]["evaluations"] < res["budget"]
    assert res["totals"]["optimum_cycles"] == 358_050 and res["totals"]["ratio_to_optimum"] == 1.0
    (entry,) = optima.load(cache).values()
    assert entry["optimum_cycles"] == 358_050 and entry["system"] == "s2"
    assert entry["mapping"] == layer["mapping"]
    code, res = run_inprocess(["optimizer=random", "budget=300", *common], tmp_path / "rnd")
    assert code == 0
    (layer,) = res["layers"]
    assert "proven_optimal" not in layer
    assert layer["optimum_cycles"] == 358_050
    assert layer["ratio_to_optimum"] == pytest.approx(layer["best_cost"] / 358_050, abs=1e-6)
    assert layer["ratio_to_optimum"] >= 1
    # another system: another key, no optimum known
    code, res = run_inprocess(["optimizer=random", "budget=300", "system=s3", *common], tmp_path / "s3")
    assert code == 0 and "optimum_cycles" not in res["layers"][0]
    assert "optimum_cycles" not in res["totals"]
