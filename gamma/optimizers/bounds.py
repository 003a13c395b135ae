"""Lower bounds on the latency and buffer use of GAMMA-style mappings, for the exhaustive search.

A mapping's *spatial structure* is its number of levels, the parallel dim of each level and the
cluster size of each level below the top (the top level has ``num_pes // prod(clusters)``
sub-clusters). Under a structure, each genome dim d (K, C, Y', X', R, S) has a tile per level.

**The latency bound.** On a platform whose NoC never limits a step (``noc_bw`` at least the L2
size and a head latency ``noc_hops * noc_hop_latency`` of at most 1 cycle, one SIMD lane), the
cost model's runtime of a mapping that passes the objective's guard is (docs/cost-model.md, 6.2)

    runtime = sum over innermost steps of psums + 1 + (level-0 steps) + ... + (level-(L-2) steps)

since every step's delay is its compute delay, the first step of each analysed level adds one
ingress cycle, and an outer step's compute delay is the runtime of the level below. The steps of
a level are all combinations of one state per dim, so both sums factorize over the dims:

    bound = prod_d work_d + 1 + sum_{l < L-1} prod_d steps_d(l)

``work_d`` follows the dim's extent down the levels (:func:`dim_profile`): a temporal level with
tile t splits an extent e into ``e // t`` steps of t and one of ``e % t``; a spatial level with n
sub-clusters runs ``ceil(ceil(e/t)/n)`` rounds, each as long as its largest tile, except a last
round after others that holds one full and one partial tile, which counts only the partial tile
(MAESTRO's undercount mechanism B can
pass the guard when the input-centric output overcount makes up the lost MACs; an example is in
``tests/test_exhaustive.py``). Below the top, MAESTRO sizes a temporal edge step from the
parent's *full* tile (section 6.3); with inner tiles that divide their parent that is the full
inner tile, so a temporal edge extent is costed as whole tiles there. The bound is exact
for mappings without edges and a lower bound otherwise; ``tests/test_exhaustive.py`` checks
``runtime >= bound`` on many random feasible genomes of several layers and platforms.

**Capacity bounds.** :func:`l1_bound` is the innermost level's L1 requirement of the first step
(section 6.1), :func:`l2_bound` a lower bound on the top level's L2 requirement (each spatially
mapped tensor counted once per sub-cluster holding a full tile). Both are checked against the
cost model in the same tests. Units: cycles, elements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gamma.hardware import Hardware
from gamma.mapspace.space import G_C, G_K, G_R, G_S, G_X, G_Y, Genome, MapSpace

#: Genome dims coupled to each tensor (CONV); DSCONV has no K.
IN_DIMS = (G_C, G_Y, G_X)
W_DIMS = (G_K, G_C, G_R, G_S)
OUT_DIMS = (G_K, G_Y, G_X)


@dataclass(frozen=True, order=True)
class Structure:
    """Levels, parallel genome dim per level, cluster size per level (0 on level 0)."""

    pars: tuple[int, ...]
    clusters: tuple[int, ...]

    @property
    def nlev(self) -> int:
        return len(self.pars)

    def units(self, num_pes: int) -> tuple[int, ...]:
        """Sub-clusters per level: ``num_pes // prod(clusters)`` at the top, the cluster size
        below (docs/cost-model.md, 2.2)."""
        inner = math.prod(self.clusters[1:])
        return (num_pes // inner if self.nlev > 1 else num_pes, *self.clusters[1:])

    def role(self, d: int, num_pes: int) -> tuple[int, ...]:
        """Sub-clusters dim ``d`` is spread over at each level (0 where it is temporal)."""
        return tuple(u if p == d else 0 for p, u in zip(self.pars, self.units(num_pes)))


def proof_obstacles(hw: Hardware, space: MapSpace) -> list[str]:
    """Why the latency bounds may not hold on ``hw``/``space`` (empty: they hold)."""
    why = []
    if hw.noc_hops * hw.noc_hop_latency > 1:
        why.append("NoC head latency above 1 cycle")
    if hw.noc_bw < hw.l2_size:
        why.append("NoC bandwidth below the L2 size (a step's traffic could take several cycles)")
    if hw.num_simd_lanes != 1:
        why.append("more than one SIMD lane")
    if space.inner_tiles != "divisors":
        why.append("mapspace.inner_tiles=any (inner edge tiles can be undercounted)")
    if space.layer.stride_y != 1 or space.layer.stride_x != 1:
        why.append("a layer stride other than 1")
    return why


def dim_profile(extent: int, tiles: np.ndarray, role: Sequence[int],
                sliding: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Work and step counts of one dim for many tile chains at once.

    ``tiles``: (N, L) tile per level (outermost first); ``role``: sub-clusters per level, 0 where
    the dim is temporal; ``sliding``: an output dim (Y', X') whose filter (R, S) is longer than
    1, where MAESTRO's undercount mechanism B can pass the guard. Returns ``work`` (N,) (the dim's factor of the summed psums) and
    ``steps`` (N, L) (the dim's factor of the number of steps of each level, summed over all its
    analyses)."""
    tiles = np.asarray(tiles, np.int64)
    n, L = tiles.shape
    cnt = np.ones((n, 1), np.int64)
    ext = np.full((n, 1), int(extent), np.int64)
    steps = np.zeros((n, L), np.int64)
    for l in range(L):
        t = tiles[:, l:l + 1]
        u = int(role[l])
        live = ext > 0
        if u == 0 and l == 0:
            parts = [(cnt * (ext // t), t + 0 * ext), (cnt * (ext % t > 0), ext % t)]
        elif u == 0:  # edge extents costed as whole tiles (static tables from the full parent tile)
            parts = [(cnt * -(-ext // t), t + 0 * ext)]
        else:
            nt = -(-ext // t)
            rounds = -(-nt // u)
            last_tiles = nt - (rounds - 1) * u
            part_tile = ext - (nt - 1) * t  # the last tile's extent (t when it is full)
            # the last round lasts as long as its largest tile, except that MAESTRO costs a last
            # round (after others) of one full and one partial tile by the partial tile alone (top level)
            # (undercount mechanism B, which the guard misses when the input-centric overcount of
            # 5.3 makes up the MACs; docs/cost-model.md 3.2: ne counts the full tiles only)
            whole = (part_tile == t) | (last_tiles >= 3) | ((rounds == 1) & (last_tiles >= 2))
            if not sliding:  # elsewhere the guard's MAC check rejects it
                whole |= last_tiles >= 2
            last = np.where(whole, t, part_tile) if l == 0 else t + 0 * ext
            parts = [(cnt * np.maximum(rounds - 1, 0), t + 0 * ext), (cnt * live, last)]
        cnt = np.concatenate([c * live for c, _ in parts], axis=1)
        ext = np.concatenate([e for _, e in parts], axis=1)
        steps[:, l] = cnt.sum(axis=1)
    return (cnt * ext).sum(axis=1), steps


def sliding(space: MapSpace, d: int) -> bool:
    """Whether genome dim ``d`` is an output dim whose filter is longer than 1 (Y' with R > 1,
    X' with S > 1)."""
    return (d == G_Y and int(space.dims[G_R]) > 1) or (d == G_X and int(space.dims[G_S]) > 1)


def combine(works: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """The latency bound (cycles) from per-dim ``works`` (N, 6) and ``steps`` (N, 6, L)."""
    L = steps.shape[2]
    total = works.prod(axis=1) + 1
    for l in range(L - 1):
        total = total + steps[:, :, l].prod(axis=1)
    return total


def genome_structure(g: Genome, i: int) -> Structure:
    n = int(g.nlev[i])
    return Structure(tuple(int(p) for p in g.par[i, :n]),
                     (0, *(int(c) for c in g.cluster[i, 1:n])))


def latency_bound(space: MapSpace, g: Genome, num_pes: int) -> np.ndarray:
    """The latency bound (cycles) of every genome of ``g``, each of its own structure (for
    tests): the genomes of one structure at a time."""
    out = np.empty(len(g), np.int64)
    groups: dict[Structure, list[int]] = {}
    for i in range(len(g)):
        groups.setdefault(genome_structure(g, i), []).append(i)
    for s, rows in groups.items():
        idx = np.array(rows)
        works = np.ones((len(idx), 6), np.int64)
        steps = np.ones((len(idx), 6, s.nlev), np.int64)
        for d in range(6):
            works[:, d], steps[:, d] = dim_profile(int(space.dims[d]), g.tile[idx, :s.nlev, d],
                                                   s.role(d, num_pes), sliding(space, d))
        out[idx] = combine(works, steps)
    return out


def _tensor_volumes(t: np.ndarray, r: int, s: int, depthwise: bool,
                    output_centric_out: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input, weight and output tile volumes (elements) of tiles ``t`` (..., 6)."""
    k = np.ones_like(t[..., G_K]) if depthwise else t[..., G_K]
    c = t[..., G_C]
    yin, xin = t[..., G_Y] + r - 1, t[..., G_X] + s - 1
    vin = c * yin * xin
    vw = k * c * r * s
    oy, ox = (t[..., G_Y], t[..., G_X]) if output_centric_out else (yin, xin)
    vout = (c if depthwise else k) * oy * ox
    return vin, vw, vout


def l1_bound(space: MapSpace, inner: np.ndarray) -> np.ndarray:
    """L1 requirement (elements) of mappings whose innermost tiles are ``inner`` (..., 6):
    twice the input, weight and output tiles, Y and X input-centric (docs/cost-model.md, 6.1)."""
    r, s = int(space.dims[G_R]), int(space.dims[G_S])
    return 2 * sum(_tensor_volumes(np.asarray(inner, np.int64), r, s, space.depthwise, False))


def l2_bound(space: MapSpace, top: np.ndarray, par0: int, units0: int) -> np.ndarray:
    """Lower bound on the L2 requirement (elements) of mappings with top tiles ``top`` (..., 6),
    parallel dim ``par0`` and ``units0`` top sub-clusters: twice each tensor's top tile, times the
    sub-clusters that hold a full tile for the tensors coupled to ``par0`` (less one when the
    sub-clusters do not cover ``par0`` in whole rounds)."""
    top = np.asarray(top, np.int64)
    par0 = np.asarray(par0, np.int64)
    r, s = int(space.dims[G_R]), int(space.dims[G_S])
    vin, vw, vout = _tensor_volumes(top, r, s, space.depthwise, True)
    ptile = np.take_along_axis(top, np.broadcast_to(par0, top.shape[:-1])[..., None], axis=-1)[..., 0]
    dim = space.dims[par0]
    inexact = dim % (ptile * units0) != 0  # an edge round: its last sub-cluster may count less
    full = np.maximum(1, np.minimum(units0, dim // ptile) - inexact)
    w_dims = (G_C, G_R, G_S) if space.depthwise else W_DIMS
    out_dims = (G_C, G_Y, G_X) if space.depthwise else OUT_DIMS

    def times(dims: tuple[int, ...]) -> np.ndarray:
        return np.where(np.isin(par0, dims), full, 1)

    return 2 * (vin * times(IN_DIMS) + vw * times(w_dims) + vout * times(out_dims))
