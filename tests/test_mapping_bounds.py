"""The busiest-PE bound (gamma/objectives/pe_bound.py) against a plain enumeration of every PE's work,
on the cost model, and in the objective's guard."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from gamma.search.api import search_layer
from gamma.costmodel import evaluate
from gamma.mapping import MappingBatch
from gamma.hardware import Hardware
from gamma.workloads.maestro_io import parse_dataflow
from gamma.mapping import Mapping
from gamma.objectives.pe_bound import busiest_pe_bound, busiest_pe_macs
from gamma.mapspace.space import MapSpace
from gamma.objectives.scalar import R_PE, Objective
from gamma.workloads.layer import Layer

EDGE = Hardware(num_pes=168, l1_size=512, l2_size=108_000, noc_bw=81_920_000, offchip_bw=70_000)
L2 = Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3)  # ResNet-18 layer 2
#: GAMMA's best of ResNet-18 layer 2 on S2 edge with mapspace.inner_tiles=any and the compute-bound
#: guard only (seed 0): MAESTRO reports 642,853 cycles, below what 162 busy PEs can do (663,552).
L2_UNDERCOUNT = """
TemporalMap(28,28) C; TemporalMap(3,3) S; TemporalMap(54,54) X'; TemporalMap(3,3) R;
SpatialMap(3,3) Y'; TemporalMap(40,40) K;
Cluster(54,P);
TemporalMap(3,3) R; TemporalMap(1,1) C; TemporalMap(9,9) K; SpatialMap(1,1) X'; TemporalMap(3,3) S;
TemporalMap(1,1) Y';
"""


# --- a plain enumeration of every PE's work --------------------------------------------------------
def _dim_tiles(layer: Layer, mapping: Mapping) -> dict[str, list[tuple[int, bool]]]:
    """Per loop dim, its (output-index tile, spatial) at each level (tile 0: no directive)."""
    out: dict[str, list[tuple[int, bool]]] = {d: [] for d in ("K", "C", "R", "S", "Y'", "X'")}
    for level in mapping.levels:
        seen = {d: (0, False) for d in out}
        for x in level.directives:
            dim, size = x.dim, x.size
            if dim == "Y":
                dim, size = "Y'", size - layer.R + 1
            elif dim == "X":
                dim, size = "X'", size - layer.S + 1
            seen[dim] = (size, x.spatial)
        for d in out:
            out[d].append(seen[d])
    return out


def _indices(extent: int, chain: list[tuple[int, bool]], units: list[int], pe: tuple[int, ...]) -> int:
    """How many indices of a dim of ``extent`` the PE ``pe`` (its sub-cluster at each level) works
    on: at each level every piece it holds is cut into tiles; a SpatialMap gives tile i to
    sub-cluster i mod n."""
    pieces = [(0, extent)]
    for (tile, spatial), n, j in zip(chain, units, pe):
        new = []
        for start, length in pieces:
            t = min(tile, length) if tile else length
            for i in range(-(-length // t)):
                if not spatial or i % n == j:
                    new.append((start + i * t, min(t, length - i * t)))
        pieces = new
    return sum(length for _, length in pieces)


def busiest_by_enumeration(layer: Layer, mapping: Mapping, num_pes: int) -> int:
    """The largest number of MACs any PE of ``mapping`` runs, PE by PE."""
    clusters = [lv.cluster.size for lv in mapping.levels[1:]]
    units = [num_pes // math.prod(clusters), *clusters]
    extents = {"K": layer.K if layer.type == "CONV" else 1, "C": layer.C, "R": layer.R,
               "S": layer.S, "Y'": layer.Yo, "X'": layer.Xo}
    chains = _dim_tiles(layer, mapping)
    return max(math.prod(_indices(extents[d], chains[d], units, pe) for d in extents)
               for pe in itertools.product(*(range(n) for n in units)))


@pytest.mark.parametrize("inner_tiles", ["divisors", "any"])
def test_the_bound_is_the_busiest_pe_of_a_plain_enumeration(inner_tiles: str) -> None:
    """Random genomes of small layers (tiles that do not divide, partial spatial rounds, 1 to 3
    levels) on 6 and 7 PEs: the bound equals the largest per-PE MAC count, PE by PE."""
    rng = np.random.default_rng(4)
    layers = [Layer("CONV", K=7, C=5, Y=9, X=6, R=3, S=1), Layer("DSCONV", C=11, Y=7, X=7, R=2, S=2),
              Layer("CONV", K=13, C=3, Y=4, X=5, R=1, S=1)]
    checked = 0
    for layer, num_pes in itertools.product(layers, (6, 7)):
        space = MapSpace(layer, num_pes, 1, 3, inner_tiles=inner_tiles)
        g = space.random(150, rng)
        got = busiest_pe_macs(layer, num_pes, space.decode(g))
        for i in range(len(g)):
            assert got[i] == busiest_by_enumeration(layer, space.to_mapping(g, i), num_pes), i
            checked += 1
    assert checked == 900


def test_the_bound_is_tight_where_maestro_has_no_edges() -> None:
    """Every tile divides its parent and the layer: MAESTRO's runtime is the busiest PE's MACs
    plus the ingress cycles of its steps (a few cycles), never less."""
    text = ("SpatialMap(1,1) K; TemporalMap(16,16) C; TemporalMap(27,27) Y'; TemporalMap(54,54) X'; "
            "TemporalMap(3,3) R; TemporalMap(3,3) S; Cluster(27,P); SpatialMap(1,1) Y'; "
            "TemporalMap(1,1) C; TemporalMap(54,54) X'; TemporalMap(3,3) R; TemporalMap(3,3) S;")
    m = parse_dataflow(text, layer=L2)
    res = evaluate(L2, EDGE, [m])
    pe = busiest_pe_macs(L2, 168, MappingBatch.from_mappings([m]))[0]
    assert pe == busiest_by_enumeration(L2, m, 168) == 11 * 64 * 2 * 54 * 9  # 6 clusters: 11 rounds of K
    assert pe <= res.runtime[0] <= pe + 200


def test_mappings_the_bound_does_not_cover_get_zero() -> None:
    """Two SpatialMaps in a level (the Eyeriss-like template), an overlapping tile, a partial R
    tile and a strided layer: 0, so only the compute bound applies."""
    cases = ["SpatialMap(1,1) Y'; SpatialMap(1,1) K; TemporalMap(64,64) C;",
             "SpatialMap(1,1) K; TemporalMap(4,2) C;",
             "SpatialMap(1,1) K; SpatialMap(1,1) R;",
             "SpatialMap(1,1) K; TemporalMap(4,4) C; TemporalMap(2,2) C;"]
    packed = MappingBatch.from_mappings([parse_dataflow(t, layer=L2) for t in cases])
    assert busiest_pe_macs(L2, 168, packed).tolist() == [0, 0, 0, 0]
    strided = Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3, stride_y=2, stride_x=2)
    one = MappingBatch.from_mappings([parse_dataflow("SpatialMap(1,1) K;", layer=L2)])
    assert busiest_pe_macs(strided, 168, one)[0] == 0 and busiest_pe_macs(L2, 168, one)[0] > 0


def test_input_centric_sliding_windows_count_their_outputs() -> None:
    """NVDLA-like Y/X windows (size R, offset 1: one output row per step) and a ShiDianNao-like
    X window (x + S - 1 columns, offset x) are covered, as their output tiles."""
    a = parse_dataflow("SpatialMap(1,1) K; TemporalMap(Sz(R),1) Y; TemporalMap(Sz(S),1) X;", layer=L2)
    b = parse_dataflow("SpatialMap(1,1) K; TemporalMap(1,1) Y'; TemporalMap(1,1) X';", layer=L2)
    c = parse_dataflow("SpatialMap(3,1) Y; TemporalMap(10,8) X;", layer=L2)
    got = busiest_pe_macs(L2, 168, MappingBatch.from_mappings([a, b, c])).tolist()
    assert got[0] == got[1] == 64 * 9 * 54 * 54  # one K per PE, 64 of 168 busy
    assert got[2] == busiest_by_enumeration(L2, c, 168) == 64 * 64 * 9 * 54  # one output row each


def test_simd_lanes_divide_the_bound() -> None:
    packed = MappingBatch.from_mappings([parse_dataflow("SpatialMap(1,1) K;", layer=L2)])
    macs = busiest_pe_macs(L2, 168, packed)[0]
    assert busiest_pe_bound(L2, 168, 4, packed)[0] == -(-macs // 4)


# --- the guard --------------------------------------------------------------------------------------
def test_the_guard_rejects_a_runtime_below_the_busiest_pe() -> None:
    """GAMMA's undercount of layer 2 in the `any` map space: above the compute bound (639,854)
    with the layer's MAC count, so the compute-bound guard kept it; its busiest PE runs 663,552
    MACs (162 PEs busy), so the guard now rejects it and says why."""
    m = parse_dataflow(L2_UNDERCOUNT, layer=L2)
    space = MapSpace(L2, 168, 1, 2, inner_tiles="any")
    obj = Objective(space, EDGE, budget=10)
    cost, why = obj.evaluate_mappings([m])
    assert cost[0] == math.inf
    assert why[0] == f"{R_PE} (642853 < 663552 cycles)"
    assert obj.summary()["rejections"] == {R_PE: 1}
    unguarded = Objective(space, EDGE, budget=10, guard=False)
    assert unguarded.evaluate_mappings([m])[0][0] == 642_853


@pytest.mark.parametrize("layer", [L2, Layer("CONV", K=128, C=128, Y=28, X=28, R=3, S=3),
                                   Layer("CONV", K=256, C=128, Y=28, X=28, R=1, S=1),
                                   Layer("DSCONV", C=96, Y=30, X=30, R=3, S=3)])
def test_the_guard_keeps_every_default_space_mapping_the_compute_bound_kept(layer: Layer) -> None:
    """In the default map space (inner tiles divide their parent) on edge, 1 to 3 levels: no
    mapping that passes the compute-bound and MAC checks runs below its busiest PE, so the new
    check changes no search there."""
    rng = np.random.default_rng(8)
    kept = 0
    for levels in ((1, 2), (2, 3)):
        space = MapSpace(layer, 168, *levels)
        g = space.random(20_000, rng)
        small = rng.random(len(g)) < 0.5  # smaller top tiles: more of them fit the buffers
        g.tile[small, 0] = np.maximum(1, (g.tile[small, 0] * rng.random((small.sum(), 6)) ** 2).astype(np.int64))
        space.repair(g)
        old = Objective(space, EDGE, budget=10**9, guard=False)
        new = Objective(space, EDGE, budget=10**9)
        res = evaluate(layer, EDGE, space.decode(g))
        before = old._feasible(res, space.decode(g)) & (res.runtime >= new.compute_bound) & (res.macs == layer.macs)
        after = new._feasible(res, space.decode(g))
        np.testing.assert_array_equal(before, after)
        kept += int(after.sum())
    assert kept >= 5000


def test_gamma_in_the_any_map_space_stays_above_what_162_busy_pes_can_do() -> None:
    """GAMMA on layer 2, S2 edge, inner tiles `any`, seed 0: with the compute-bound guard alone
    its best was 642,853 cycles; no mapping can keep more than 162 PEs busy (663,552 cycles)."""
    res = search_layer(L2, "edge", optimizer="gamma", seed=[0, 1],
                       overrides=["mapspace.inner_tiles=any"])
    assert res.feasible and res.cost >= 663_552
    assert res.summary["rejections"][R_PE] > 0
