"""A physical lower bound on the runtime of each mapping of a batch: the MACs of its busiest PE.

With one MAC per PE per cycle (``num_simd_lanes`` per cycle with a vector unit), no mapping can
finish before its busiest PE has done its share of the layer, whatever the cost model reports.
MAESTRO's edge-tile arithmetic can report less (docs/undercounts.md); the objective's guard
rejects such a runtime (:mod:`gamma.objectives.scalar`). It is computed on the map space's
cost-model-neutral batch (:class:`~gamma.mapping.MappingBatch`), so it holds for any cost model. Unlike the layer's compute bound
``ceil(MACs / num_pes)``, this bound sees the PEs a mapping leaves idle and the spatial rounds it
needs: 64 output channels over 168 PEs keep at most 64 busy.

**How.** MAESTRO iterates every combination of the tiles of a level, and sub-cluster ``j`` of a
level takes the tiles ``j, j + n, j + 2n, ...`` of the level's SpatialMap (``n`` sub-clusters:
``num_pes // prod(clusters)`` at the top, the cluster size below). So the index set a PE works on
is a product over the layer's dims, and PE 0 (sub-cluster 0 at every level) holds, per dim, at
least as many indices as any other PE (it takes the first tile of every round). Per dim, its share
follows the dim's extent down the levels: a temporal tile ``t`` splits an extent ``e`` into
``e // t`` full tiles and one partial tile ``e % t``, all of which PE 0 runs; a spatial tile splits
it into ``ceil(e / t)`` tiles of which PE 0 gets every ``n``-th, the last one partial when it is
the array's last tile. A dim without a directive in a level passes its extent down whole (MAESTRO
inherits or unrolls it). The bound is the product of the shares, in MACs, divided by the lanes.

**Which mappings.** The bound needs each level to assign every dim independently: exactly one
SpatialMap, at most one directive per dim, tiles that do not overlap (offset = size; an
input-centric Y (X) tile of size ``sz`` covers ``sz - R + 1`` output rows and must advance by
that many), R and S tiles covering the whole filter, and a layer stride of 1. That holds for every
mapping of GAMMA's map space and for the NVDLA- and ShiDianNao-like templates. For any other
mapping (two SpatialMaps in a level, as in the Eyeriss-like template; sliding output tiles) the
bound is 0 and only the compute bound applies.

The objective computes it for every batch (for the mappings that pass its other checks), so it is
a small compiled loop (numba, like the cost model's kernel), about 0.3 us per mapping: the same
computation in numpy array operations added about a quarter to the objective's time on GAMMA's
batches of 200 mappings. Units: MACs, cycles.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numba import njit

from gamma.mapping import DIM_INDEX, DIMS, MappingBatch
from gamma.workloads.layer import Layer

#: Loop dims of each layer type, output rows/cols as Y', X' (their product is the layer's MACs).
LOOP_DIMS = {"CONV": ("K", "C", "R", "S", "Y'", "X'"), "DSCONV": ("C", "R", "S", "Y'", "X'"),
             "GEMM": ("M", "N", "K")}
_R, _S, _Y, _X, _YP, _XP = (DIM_INDEX[d] for d in ("R", "S", "Y", "X", "Y'", "X'"))


def layer_dims(layer: Layer) -> np.ndarray:
    """The layer's size of every dimension, indexed by position in :data:`~gamma.mapping.DIMS`
    (Y', X': the output rows and columns; 1 for a dimension the layer type lacks)."""
    size = {"K": layer.K, "C": layer.C, "R": layer.R, "S": layer.S, "Y": layer.Y, "X": layer.X,
            "Y'": layer.Yo, "X'": layer.Xo, "M": 1, "N": 1}
    if layer.type == "GEMM":
        size = {d: 1 for d in DIMS} | {"M": layer.M, "N": layer.N, "K": layer.K}
    return np.array([size[d] for d in DIMS], np.int64)


def busiest_pe_macs(layer: Layer, num_pes: int, batch: MappingBatch,
                    want: np.ndarray | None = None) -> np.ndarray:
    """MACs of the busiest PE of each mapping of ``batch`` (B,), int64; 0 for a mapping whose
    shape the bound does not cover (see the module doc), and where ``want`` (B,) is False."""
    ldims = layer_dims(layer)
    loop = np.array([DIM_INDEX[d] for d in LOOP_DIMS[layer.type]], np.int64)
    out = np.zeros(len(batch), np.int64)
    want = np.ones(len(batch), np.bool_) if want is None else np.asarray(want, np.bool_)
    if layer.stride_y == 1 and layer.stride_x == 1:
        _busiest_pe(batch.nlev, batch.cluster, batch.ndir, batch.dim, batch.spatial, batch.size,
                    batch.offset, ldims, loop, int(num_pes), want, out)
    return out


def busiest_pe_bound(layer: Layer, num_pes: int, num_simd_lanes: int, batch: MappingBatch,
                     want: np.ndarray | None = None) -> np.ndarray:
    """The runtime lower bound of each mapping (B,), in cycles: its busiest PE's MACs over the
    SIMD lanes, rounded up; 0 where the bound does not apply or ``want`` is False."""
    macs = busiest_pe_macs(layer, num_pes, batch, want)
    return -(-macs // int(num_simd_lanes))


def pe0_shares(extent: int, tiles: np.ndarray, role: Sequence[int]) -> np.ndarray:
    """PE 0's share (N,) of one dim of ``extent`` indices under tile chains ``tiles`` (N, L),
    outermost level first, where ``role[l]`` is the sub-clusters the dim is spread over at level
    ``l`` (0 where it is temporal). The busiest-PE bound of a mapping is the product of its dims'
    shares (for the exhaustive search, which enumerates tiles dim by dim)."""
    tiles = np.ascontiguousarray(tiles, np.int64)
    role = np.asarray(role, np.int64)
    out = np.zeros(len(tiles), np.int64)
    _shares(int(extent), tiles, role, out)
    return out


@njit(cache=True)
def _shares(extent, tiles, role, out):  # pragma: no cover
    """``out[i]``: PE 0's share under tile chain ``tiles[i]`` (see :func:`pe0_shares`)."""
    N, L = tiles.shape
    P = 1 << L
    seen = np.ones((N, L), np.bool_)
    spatial = np.zeros((N, L), np.bool_)
    for i in range(N):
        for l in range(L):
            spatial[i, l] = role[l] > 0
    units = np.maximum(role, 1)
    cnt, ext = np.zeros(P, np.int64), np.zeros(P, np.int64)
    cnt2, ext2 = np.zeros(P, np.int64), np.zeros(P, np.int64)
    for i in range(N):
        out[i] = _share(extent, tiles, seen, spatial, i, units, L, cnt, ext, cnt2, ext2)


@njit(cache=True, inline="always")
def _share(extent, tile, seen, spatial, row, units, L, cnt, ext, cnt2, ext2):  # pragma: no cover
    """PE 0's share of a dim of ``extent`` indices through levels ``0..L-1``: ``tile[row, l]``
    (if ``seen[row, l]``; else one whole tile), spread over ``units[l]`` sub-clusters where
    ``spatial[row, l]``. ``cnt``, ``ext``, ``cnt2``, ``ext2``: (2**L,) scratch. The pieces PE 0
    runs, as (count, extent), are split at each level into full tiles and one partial tile."""
    m = 1
    cnt[0], ext[0] = 1, extent
    for l in range(L):
        k = 0
        for p in range(m):
            c, e = cnt[p], ext[p]
            if not seen[row, l] or tile[row, l] >= e:  # one whole tile (R, S; a dim not mapped)
                cnt2[k], ext2[k] = c, e
                k += 1
                continue
            t = max(tile[row, l], 1)
            full = e // t
            rem = e - full * t
            n_full, n_part = full, 1 if rem > 0 else 0
            if spatial[row, l]:  # PE 0 takes every n-th tile, from the first
                n = units[l]
                rounds = (full + n_part - 1) // n  # PE 0's tiles, less one
                last = full + n_part - 1 - rounds * n == 0  # the array's last tile is PE 0's
                n_part = 1 if (rem > 0 and last) else 0
                n_full = rounds + 1 - n_part
            if n_full > 0:
                cnt2[k], ext2[k] = c * n_full, t
                k += 1
            if n_part > 0:
                cnt2[k], ext2[k] = c, rem
                k += 1
        for p in range(k):
            cnt[p], ext[p] = cnt2[p], ext2[p]
        m = k
    share = 0
    for p in range(m):
        share += cnt[p] * ext[p]
    return share


@njit(cache=True)
def _busiest_pe(nlev, cluster, nd, dvar, dsp, dsz, dofs, ldims, loop, num_pes, want, out):  # pragma: no cover
    """Fill ``out[b]`` with the busiest PE's MACs of mapping ``b`` of a batch's arrays (0 if not
    covered or not ``want[b]``)."""
    B, L_max = cluster.shape
    NV = ldims.shape[0]
    tile = np.zeros((NV, L_max), np.int64)
    seen = np.zeros((NV, L_max), np.bool_)
    spatial = np.zeros((NV, L_max), np.bool_)
    units = np.ones(L_max, np.int64)
    P = 1 << L_max
    cnt, ext = np.zeros(P, np.int64), np.zeros(P, np.int64)
    cnt2, ext2 = np.zeros(P, np.int64), np.zeros(P, np.int64)
    for b in range(B):
        if not want[b]:
            out[b] = 0
            continue
        L = nlev[b]
        ok = L >= 1
        tile[:, :] = 0
        seen[:, :] = False
        spatial[:, :] = False
        for l in range(L):
            nsp = 0
            for d in range(nd[b, l]):
                v, sz, of = dvar[b, l, d], dsz[b, l, d], dofs[b, l, d]
                o = sz
                if v == _R or v == _S:  # the whole filter: one tile
                    ok = ok and sz >= ldims[v]
                else:
                    if v == _Y:  # an input-centric tile of sz rows covers sz - R + 1 outputs
                        o, v = sz - ldims[_R] + 1, _YP
                    elif v == _X:
                        o, v = sz - ldims[_S] + 1, _XP
                    ok = ok and o >= 1 and of == o
                ok = ok and not seen[v, l]  # one directive per dim (Y and Y' count as one)
                seen[v, l] = True
                tile[v, l] = o
                if dsp[b, l, d]:
                    spatial[v, l] = True
                    nsp += 1
            ok = ok and nsp == 1
        if not ok:
            out[b] = 0
            continue
        inner = 1
        for l in range(1, L):
            units[l] = max(cluster[b, l], 1)
            inner *= units[l]
        units[0] = max(num_pes // inner, 1)
        total = 1
        for i in range(loop.shape[0]):
            v = loop[i]
            total *= _share(ldims[v], tile, seen, spatial, v, units, L, cnt, ext, cnt2, ext2)
        out[b] = total


def warm_up() -> None:
    """Compile (and cache beside the sources) the bound's loops on a tiny batch."""
    from gamma.mapping import Directive, Level, Mapping

    layer = Layer("CONV", K=4, C=2, Y=3, X=3, R=1, S=1)
    top = Level((Directive("Spatial", "K", 1, 1), Directive("Temporal", "C", 1, 1)))
    busiest_pe_macs(layer, 4, MappingBatch.from_mappings([Mapping((top,))]))
    pe0_shares(4, np.ones((1, 1), np.int64), [2])


__all__ = ["busiest_pe_macs", "busiest_pe_bound", "LOOP_DIMS", "pe0_shares", "warm_up"]
