"""codesign=digamma: one hardware searched with every unique layer's mapping under a hard area
budget. Real cost model, small budgets (docs/codesign.md)."""

from __future__ import annotations

import math

import pytest

from gamma.costmodel.base import costmodel_of
from gamma.hardware import AreaModel, Hardware, area_breakdown_um2, area_um2, hardware_area_um2
from gamma.objectives.codesign import R_AREA
from gamma.errors import GammaError
from gamma.search.codesign import UM2_PER_MM2, metrics_of
from gamma.workloads.maestro_hw import format_hardware_file, parse_hardware_file, read_hardware_file
from gamma.workloads.maestro_io import read_mapping_file
from tests.jobs import run_captured, run_inprocess

#: ResNet-18 layers of three unique shapes (layer 5 repeats layer 2's shape).
BASE = ["model=resnet18", "layers=[2,5,6,8]", "budget=1000", "codesign=digamma",
        "tracking.enabled=false"]
MODEL = AreaModel(mac_um2=282, sram_um2_per_bit=0.086, bits_per_element=8)
#: The edge platform's area under the model: 168 x 282 + (512 x 168 + 108,000) x 8 x 0.086 um^2.
EDGE_UM2 = 180_859.008


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Co-design jobs on S2 (the edge platform's area, and half of it) and S1 (rows x cols)."""
    tmp = tmp_path_factory.mktemp("codesign")
    out = {}
    for name, extra in (("s2", ["system=s2"]),
                        ("half", ["system=s2", f"codesign.area_mm2={EDGE_UM2 / 2 / 1e6}"]),
                        ("s1", ["system=s1"]),
                        ("random", ["system=s2", "optimizer=random"]),
                        ("pareto", ["system=s2", "objective=pareto",
                                    "objective.metrics=[latency,area]"]),
                        ("edp", ["system=s2", "objective=edp"])):
        args = [*BASE, *extra]
        if name == "pareto":  # 1,000 samples give a front of two designs, 1,500 of six
            args = [a for a in args if not a.startswith("budget=")] + ["budget=1500"]
        code, res = run_inprocess(args, tmp / name)
        assert code == 0
        out[name] = (res, tmp / name)
    return out


def test_area_model_of_the_edge_platform():
    parts = area_breakdown_um2(168, 512, 108_000, MODEL)
    assert parts == pytest.approx({"pes_um2": 47_376.0, "l1_um2": 59_179.008,
                                   "l2_um2": 74_304.0, "total_um2": EDGE_UM2})
    edge = Hardware(168, 512, 108_000, 81_920_000, 70_000)
    assert hardware_area_um2(edge, MODEL) == pytest.approx(EDGE_UM2)
    assert area_um2(1, 1, 1, MODEL) == pytest.approx(282 + 2 * 8 * 0.086)


@pytest.mark.parametrize("name, budget_um2", [("s2", EDGE_UM2), ("half", EDGE_UM2 / 2),
                                              ("s1", EDGE_UM2), ("edp", EDGE_UM2)])
def test_every_design_fits_its_budget_and_spends_the_budget(jobs, name, budget_um2):
    res, _ = jobs[name]
    hw = res["hardware"]
    assert res["codesign"]["area_budget_mm2"] == pytest.approx(budget_um2 / UM2_PER_MM2)
    assert hw["area_mm2"] <= res["codesign"]["area_budget_mm2"]
    assert area_um2(hw["num_pes"], hw["l1_size"], hw["l2_size"], MODEL) <= budget_um2
    assert hw["area_um2"]["total_um2"] == pytest.approx(
        hw["area_um2"]["pes_um2"] + hw["area_um2"]["l1_um2"] + hw["area_um2"]["l2_um2"])
    assert res["platform_hardware"]["area_mm2"] == pytest.approx(EDGE_UM2 / UM2_PER_MM2)
    assert res["totals"]["feasible"]
    for r in res["layers"]:
        assert r["samples_used"] == 1000
        assert r["best"]["l1_size_req"] <= hw["l1_size"]
        assert r["best"]["l2_size_req"] <= hw["l2_size"]
        assert r["compute_bound_cycles"] == math.ceil(_macs(r["shape"]) / hw["num_pes"])
    t = res["totals"]
    model_cost = {"latency": t["latency_cycles"], "edp": t["latency_cycles"] * t["energy_nJ"]}
    assert res["codesign"]["best_cost"] == pytest.approx(model_cost[res["objective"]], rel=1e-12)


def test_s1_designs_are_rows_by_columns_with_the_cluster_pinned_to_the_columns(jobs):
    res, _ = jobs["s1"]
    hw = res["hardware"]
    assert hw["num_pes"] == hw["array_rows"] * hw["array_cols"]
    for r in res["layers"]:
        assert r["mapping"]["levels"][1]["cluster"]["size"] == hw["array_cols"]


@pytest.mark.parametrize("name", ["s2", "s1", "random"])
def test_written_design_and_mappings_give_the_reported_numbers(jobs, name):
    """Also for a design assembled from each layer's best mapping on its array (random
    co-search's design here: 4.9 million cycles, its best whole individual 19.1 million)."""
    res, folder = jobs[name]
    assert res["hardware"] is not None
    hw = read_hardware_file(folder / "mappings" / "hardware.m",
                            base=Hardware(1, 1, 1, 81_920_000, 70_000))
    assert (hw.num_pes, hw.l1_size, hw.l2_size) == (res["hardware"]["num_pes"],
                                                    res["hardware"]["l1_size"],
                                                    res["hardware"]["l2_size"])
    model = costmodel_of("maestro")
    for r in res["layers"]:
        ((layer, mapping),) = read_mapping_file(folder / "mappings" / f"layer_{r['index']:02d}.m")
        out = model.evaluate(layer, hw, model.encode(layer, [mapping]))
        assert not out.rejected[0]
        assert out.runtime[0] == r["best"]["runtime_cycles"]
        assert out.energy[0] == pytest.approx(r["best"]["energy_nJ"])
        assert out.l1_size_req[0] <= hw.l1_size and out.l2_size_req[0] <= hw.l2_size


def test_hardware_file_round_trip_and_a_bad_line():
    hw = Hardware(191, 126, 56_868, 81_920_000, 70_000)
    assert parse_hardware_file(format_hardware_file(hw)) == hw
    with pytest.raises(Exception, match="hw.m:2"):
        parse_hardware_file("num_pes: 4\nl1_size_cstr: many\n", "hw.m")


def test_an_impossible_budget_is_an_error_naming_codesign_area_mm2(tmp_path):
    run = run_captured([*BASE, "codesign.area_mm2=0.0001", f"hydra.run.dir={tmp_path / 'run'}"])
    assert run.returncode == 1
    assert "error: codesign.area_mm2 = 0.0001: smaller than the smallest design" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def test_area_rejections_are_counted_with_the_samples(tmp_path):
    """PE counts up to 400 (0.113 mm^2 of MACs alone) under a 0.05 mm^2 budget: arrays over it
    are rejected before the cost model and counted as samples of every layer (random designs
    from the start: no start at the platform's array)."""
    code, res = run_inprocess([*BASE, "codesign.area_mm2=0.05", "codesign.max_pes=400",
                               "codesign.operators.platform_start=0"],
                              tmp_path / "run")
    assert code == 0
    for r in res["layers"]:
        assert r["samples_used"] == 1000
        assert r["rejections"][R_AREA] > 0
        assert sum(r["rejections"].values()) + r["feasible_samples"] == 1000
    assert res["codesign"]["rejections"][R_AREA] >= res["layers"][0]["rejections"][R_AREA]
    assert res["hardware"] is None or res["hardware"]["area_mm2"] <= 0.05


def test_codesign_off_is_the_plain_job(tmp_path):
    args = ["model=resnet18", "layers=[2,8]", "budget=400", "tracking.enabled=false"]
    code, plain = run_inprocess(args, tmp_path / "plain")
    code_off, off = run_inprocess([*args, "codesign=off"], tmp_path / "off")
    assert code == code_off == 0
    assert off["totals"] == plain["totals"]
    assert "codesign" not in off and off["hardware"]["num_pes"] == 168


def _macs(shape: str) -> int:
    """K*C*R*S*Y'*X' of a CONV shape string, e.g. 'CONV K64 C64 Y56 X56 R3 S3'."""
    d = {t[0]: int(t[1:]) for t in shape.split()[1:]}
    return d["K"] * d["C"] * d["R"] * d["S"] * (d["Y"] - d["R"] + 1) * (d["X"] - d["S"] + 1)


@pytest.mark.parametrize("extra, shape", [
    (["system=s2", f"codesign.area_mm2={EDGE_UM2 / 2 / 1e6}"], (1, 84)),  # 168 PEs scaled to half
    (["system=s1"], (12, 14)),                                   # the edge platform's rows x cols
    (["system=s2", "optimizer=random"], (1, 168))])              # random co-search starts there too
def test_a_search_held_at_its_start_searches_the_platforms_array(tmp_path, extra, shape):
    """With the whole budget at the start design, the design is the platform's array (scaled
    into a smaller budget), with the buffers its mappings need."""
    code, res = run_inprocess([*BASE, "codesign.operators.platform_start=1",
                               *extra], tmp_path / "run")
    assert code == 0
    hw = res["hardware"]
    assert hw["num_pes"] == shape[0] * shape[1]
    assert (hw.get("array_rows", 1), hw.get("array_cols", hw["num_pes"])) == shape
    assert hw["area_mm2"] <= res["codesign"]["area_budget_mm2"]


def test_assembled_children_take_each_layers_best_mapping_on_the_best_array():
    """assemble_best: child 0 gets the best design's array and, per layer, the mapping with the
    best layer score among the individuals on that array (not the best individual's own)."""
    import numpy as np
    from gamma.mapspace.hwspace import HwGenes
    from gamma.mapspace.space import Genome
    from gamma.objectives.codesign import Scores
    from gamma.optimizers.digamma import CoGamma, Population
    from gamma.optimizers.gamma import Gamma

    def genomes(marks):  # one-level genomes told apart by their top K tile
        n = len(marks)
        tile = np.ones((n, 1, 6), np.int64)
        tile[:, 0, 0] = marks
        return Genome(np.ones(n, np.int64), np.zeros((n, 1), np.int64),
                      np.tile(np.arange(6), (n, 1, 1)), tile, np.zeros((n, 1), np.int64))

    pop = Population(HwGenes(np.ones(4, np.int64), np.array([64, 64, 32, 64])),
                     [genomes([1, 2, 3, 4]), genomes([11, 12, 13, 14])])
    layer = np.array([[5.0, 1.0, 0.5, 3.0],    # layer 0: best on 64 PEs is individual 1
                      [2.0, 4.0, 0.1, 1.5]])   # layer 1: best on 64 PEs is individual 3
    scores = Scores(np.zeros(4), np.ones(4), np.zeros(4), layer, np.zeros(4, np.int64), np.ones(4),
                    np.ones(4, np.int64), np.ones(4, np.int64))
    children = Population(HwGenes(np.ones(3, np.int64), np.array([7, 7, 7])),
                          [genomes([0, 0, 0]), genomes([0, 0, 0])])
    cogamma = CoGamma(Gamma(), {"hw_crossover": 0.5, "hw_mutation": 0.3, "hw_step": 0.5,
                                "hw_fit": 0, "platform_start": 0, "assemble": 1,
                                "grow": False})
    cogamma.assemble_best(children, pop, scores, cost=np.array([1.0, 3.0, 0.5, 2.0]))
    # the best design (cost 0.5) is on 32 PEs, alone: its own mappings
    assert children.hw.cols.tolist() == [32, 7, 7]
    assert [children.layers[u].tile[0, 0, 0] for u in (0, 1)] == [3, 13]
    cogamma.assemble_best(children, pop, scores, cost=np.array([1.0, 3.0, 9.0, 2.0]))
    # the best design is on 64 PEs: each layer's best mapping among individuals 0, 1 and 3
    assert children.hw.cols.tolist() == [64, 7, 7]
    assert [children.layers[u].tile[0, 0, 0] for u in (0, 1)] == [2, 14]


def test_the_grown_child_is_the_best_fitting_design_on_the_array_its_buffers_allow():
    """grow_best: the child after the assembled ones takes the best design that fits (rank 0,
    lowest cost) on its fitting PEs, its mappings repaired there (cluster sizes within them);
    no child changes when that design has no room to grow."""
    from types import SimpleNamespace

    import numpy as np
    from gamma.mapspace.cospace import CoSpace
    from gamma.mapspace.hwspace import HwGenes, HwSpace
    from gamma.mapspace.space import MapSpace
    from gamma.objectives.codesign import Scores
    from gamma.optimizers.digamma import CoGamma, Population
    from gamma.optimizers.gamma import Gamma
    from gamma.workloads.layer import Layer

    base = MapSpace(Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3), 639, 1, 2)
    rng = np.random.default_rng(0)
    pop = Population(HwGenes(np.ones(3, np.int64), np.array([300, 100, 200])), [base.random(3, rng)])
    hwspace = HwSpace(False, 1, 639, 10_000, 10_000, MODEL, EDGE_UM2)
    objective = SimpleNamespace(hwspace=hwspace, costs=lambda s: s.raw)
    cogamma = CoGamma(Gamma(), {"hw_crossover": 0.5, "hw_mutation": 0.3, "hw_step": 0.5,
                                "hw_fit": 0, "platform_start": 0, "assemble": 1, "grow": True})
    children = Population(HwGenes(np.ones(3, np.int64), np.array([7, 7, 7])), [base.random(3, rng)])
    before = children.layers[0].tile.copy()
    # individual 0 is cheapest but does not fit (rank 1); of the fitting ones, 2 is cheaper
    scores = Scores(np.array([1.0, 0.0, 0.0]), np.array([1.0, 5.0, 3.0]), np.zeros(3),
                    np.zeros((1, 3)), np.array([600, 120, 250]), np.ones(3),
                    np.ones(3, np.int64), np.ones(3, np.int64))
    space = CoSpace(hwspace, [base], pinned=False)
    cogamma.grow_best(children, pop, scores, objective, space)
    assert children.hw.pes.tolist() == [7, 250, 7]
    expected = pop.layers[0].take(np.array([2]))  # individual 2's mapping, repaired on 250 PEs
    MapSpace(base.layer, 250, 1, 2).repair(expected)
    got = children.layers[0].take(np.array([1]))
    assert all((getattr(got, f) == getattr(expected, f)).all()
               for f in ("nlev", "par", "order", "tile", "cluster"))
    assert (children.layers[0].tile[[0, 2]] == before[[0, 2]]).all()
    no_room = Scores(scores.rank, scores.raw, scores.excess, scores.layer, np.array([600, 120, 150]),
                     scores.area, scores.l1, scores.l2)
    cogamma.grow_best(children, pop, no_room, objective, space)
    assert children.hw.pes.tolist() == [7, 250, 7]  # 150 < 200: not grown, nothing changed


def test_a_front_child_grows_a_front_design_into_the_area_up_to_the_next():
    """grow_into_gap (objective=pareto): the child after the grown one takes a design of the
    population's front grown to the most PEs whose area, with its buffers, stays within the
    next larger front design's area (the largest's: the budget); a dominated design and one
    with no room are never drawn."""
    from types import SimpleNamespace

    import numpy as np
    from gamma.mapspace.cospace import CoSpace
    from gamma.mapspace.hwspace import HwGenes, HwSpace
    from gamma.mapspace.space import MapSpace
    from gamma.objectives.codesign import Scores
    from gamma.optimizers.digamma import CoGamma, Population
    from gamma.optimizers.gamma import Gamma
    from gamma.workloads.layer import Layer

    base = MapSpace(Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3), 639, 1, 2)
    pes = np.array([100, 101, 200, 300])
    l1, l2 = np.array([10, 10, 10, 10]), np.array([100, 100, 100, 100])
    area = area_um2(pes, l1, l2, MODEL)
    # 0, 2 and 3 form the front; 1 (more area, slower than 0) is dominated
    raw = np.stack([np.array([9.0, 9.5, 5.0, 3.0]), area], axis=1)
    scores = Scores(np.zeros(4), raw, np.zeros(4), np.zeros((1, 4)), np.zeros(4, np.int64),
                    area, l1, l2)
    hwspace = HwSpace(False, 1, 639, 10_000, 10_000, MODEL, EDGE_UM2)
    objective = SimpleNamespace(hwspace=hwspace, costs=lambda s: s.raw, pareto=True)
    cogamma = CoGamma(Gamma(), {"hw_crossover": 0.5, "hw_mutation": 0.3, "hw_step": 0.5,
                                "hw_fit": 0, "platform_start": 0, "assemble": 1, "grow": True})
    space = CoSpace(hwspace, [base], pinned=False)
    pop = Population(HwGenes(np.ones(4, np.int64), pes.copy()), [base.random(4, np.random.default_rng(0))])
    sram1 = MODEL.sram_um2(1)
    fill = lambda upper: int((upper - 100 * sram1) // (MODEL.mac_um2 + 10 * sram1))  # noqa: E731
    allowed = {fill(area[2]), fill(area[3]), fill(EDGE_UM2)}  # from 0, 2 and 3
    seen = set()
    for seed in range(40):
        children = Population(HwGenes(np.ones(4, np.int64), np.full(4, 7)),
                              [base.random(4, np.random.default_rng(1))])
        cogamma.grow_into_gap(children, pop, scores, objective, space, np.random.default_rng(seed))
        assert children.hw.pes[[0, 1, 3]].tolist() == [7, 7, 7]
        seen.add(int(children.hw.pes[2]))
    assert seen == allowed  # each front design drawn at least once, nothing else
    assert all(p > q for p, q in zip(sorted(allowed), (100, 200, 300)))


def test_the_codesign_table_reads_the_jobs_folders(jobs, capsys):
    """scripts/codesign_table.py: a row per arm with the latency of each seed, its median and
    the designs; a folder without results is an error."""
    from scripts import codesign_table

    res, folder = jobs["s2"]
    assert codesign_table.main([str(folder), str(jobs["random"][1])]) == 0
    out = capsys.readouterr().out
    gamma_row = next(line for line in out.splitlines() if "co-search gamma" in line)
    assert f"{res['totals']['latency_cycles'] / 1e6:.4g}" in gamma_row
    assert f"{res['hardware']['num_pes']:,} @ {res['hardware']['area_mm2']:.4g}" in gamma_row
    assert any("co-search random" in line for line in out.splitlines())
    assert codesign_table.main([str(folder / "mappings")]) == 1
    assert "error: no finished results.json" in capsys.readouterr().err


def test_edp_is_the_models_latency_total_times_its_energy_total_per_layer_its_own(jobs):
    """objective=edp minimizes (sum of latency) x (sum of energy) over the model, not the sum of
    the layers' EDPs; each layer's best_cost is its own EDP."""
    res, _ = jobs["edp"]
    for r in res["layers"]:
        assert r["best_cost"] == pytest.approx(r["best"]["runtime_cycles"] * r["best"]["energy_nJ"])
    layer_sum = sum(r["best_cost"] for r in res["layers"])
    assert res["codesign"]["best_cost"] > 1.5 * layer_sum  # the product, not the sum


def _front(res: dict) -> list[dict]:
    front = res["codesign"]["front"]
    assert front["metrics"] == ["latency", "area"] and front["units"] == ["cycles", "um^2"]
    return front["points"]


def test_a_front_of_designs_that_fit_none_dominated_smallest_area_first(jobs):
    res, folder = jobs["pareto"]
    points = _front(res)
    assert len(points) >= 3, "a front of fewer than three designs checks little"
    assert res["objective_metrics"] == ["latency", "area"]
    budget = res["codesign"]["area_budget_mm2"]
    areas = [p["hardware"]["area_mm2"] for p in points]
    latencies = [p["latency_cycles"] for p in points]
    assert areas == sorted(areas) and len(set(areas)) == len(areas)
    assert all(a < b for a, b in zip(latencies[1:], latencies))  # more area, less latency
    assert max(areas) <= budget and min(areas) < 0.8 * max(areas)
    for p in points:
        assert p["values"] == [p["latency_cycles"], pytest.approx(p["hardware"]["area_mm2"] * 1e6)]
        assert area_um2(p["hardware"]["num_pes"], p["hardware"]["l1_size"],
                        p["hardware"]["l2_size"], MODEL) <= budget * UM2_PER_MM2
        assert (folder / p["files"] / "hardware.m").is_file()
    # the reported design is the front's fastest, and its layers add up to it
    assert res["hardware"] == points[-1]["hardware"]
    assert res["totals"]["latency_cycles"] == latencies[-1] == res["codesign"]["best_cost"]
    assert (folder / "pareto.png").stat().st_size > 10_000


def test_every_front_designs_files_give_its_numbers(jobs):
    """Each design's MAESTRO files (hardware and one mapping per unique shape), evaluated in
    our cost model, give the front's latency and energy (each shape times its layers)."""
    res, folder = jobs["pareto"]
    counts: dict[int, int] = {}
    for r in res["layers"]:
        counts[r["unique_index"]] = counts.get(r["unique_index"], 0) + 1
    first = {r["unique_index"]: r["index"] for r in reversed(res["layers"])}
    model = costmodel_of("maestro")
    for p in _front(res):
        hw = read_hardware_file(folder / p["files"] / "hardware.m",
                                base=Hardware(1, 1, 1, 81_920_000, 70_000))
        latency = energy = 0.0
        for u, i in first.items():
            ((layer, mapping),) = read_mapping_file(folder / p["files"] / f"layer_{i:02d}.m")
            out = model.evaluate(layer, hw, model.encode(layer, [mapping]))
            assert not out.rejected[0]
            assert out.l1_size_req[0] <= hw.l1_size and out.l2_size_req[0] <= hw.l2_size
            latency += counts[u] * float(out.runtime[0])
            energy += counts[u] * float(out.energy[0])
        assert latency == p["latency_cycles"]
        assert energy == pytest.approx(p["energy_nJ"])


@pytest.mark.parametrize("metrics, want", [
    (["latency", "area"], ("latency", "area")),
    (["area", "edp"], ("area", "edp")),
    (["latency", "energy"], ("latency", "energy", "area")),
    (["latency", "power"], "not power"),
    (["latency", "energy", "edp"], "name at most two other metrics"),
])
def test_a_codesign_front_is_over_the_designs_area(metrics, want):
    cfg = {"objective": {"name": "pareto", "metrics": metrics}}
    if isinstance(want, tuple):
        assert metrics_of(cfg) == want
    else:
        with pytest.raises(GammaError, match=want):
            metrics_of(cfg)


def test_the_front_table_reads_fronts_and_one_search_per_budget(jobs, capsys):
    """scripts/codesign_front.py: the front's fastest design within each share of the budget
    against the latency co-searches under each budget (here the full and the half area)."""
    from scripts import codesign_front

    res, folder = jobs["pareto"]
    assert codesign_front.main([str(folder), str(jobs["s2"][1]), str(jobs["half"][1])]) == 0
    lines = capsys.readouterr().out.splitlines()
    front = next(line for line in lines if line.startswith("| front, gamma"))
    points = res["codesign"]["front"]["points"]
    half = min(p["latency_cycles"] for p in points if p["hardware"]["area_mm2"] <= EDGE_UM2 / 2e6)
    assert front.split(" | ")[1] == f"{len(points)}"
    assert front.split(" | ")[3] == f"{half / 1e6:.4g}"
    assert front.split(" | ")[5].rstrip(" |") == f"{points[-1]['latency_cycles'] / 1e6:.4g}"
    per_budget = next(line for line in lines if line.startswith("| one search per budget"))
    cells = per_budget.split(" | ")
    assert cells[3] == f"{jobs['half'][0]['totals']['latency_cycles'] / 1e6:.4g}"
    assert cells[5].rstrip(" |") == f"{jobs['s2'][0]['totals']['latency_cycles'] / 1e6:.4g}"
    assert codesign_front.main([str(folder / "mappings")]) == 1
