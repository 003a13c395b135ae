"""GAMMA's map space: a variable-depth genome held as numpy arrays, and its decoding to mappings.

A genome has 1 to ``max_levels`` levels (outermost first). Each level has

* a parallel dimension ``par`` (one of K, C, Y, X; R and S behind ``parallel_dims``),
* a loop order ``order``: a permutation of the six genome dims K, C, Y, X, R, S, outermost first,
* a tile per genome dim ``tile`` (elements); Y and X tiles are output-centric (Y', X'), R and S
  tiles are the full filter (MAESTRO rejects partial R/S temporal tiles),
* a cluster size ``cluster`` (PEs per cluster) on every level after the first.

Tiles of an inner level never exceed the tile of the level above. By default
(``inner_tiles="divisors"``) they also divide it, which keeps MAESTRO's edge-tile arithmetic out
of the search (see ``docs/undercounts.md``); ``inner_tiles="any"`` restores the reference code's
uniform draw in [1, parent tile]. Depthwise layers have no K (its tile is 1 and decoding omits it).

A population of ``n`` genomes is a :class:`Genome` whose arrays have a leading axis ``n``.
The map space owns these invariants: it samples genomes that keep them (:meth:`MapSpace.random`)
and restores them after a variation (:meth:`MapSpace.repair`, used by GAMMA and by the baselines'
codec alike). Decoding to a batch of mappings (:class:`~gamma.mapping.MappingBatch`, the
form every cost model takes) is vectorized.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from gamma.mapping import DIM_INDEX, Cluster, Directive, Level, Mapping, MappingBatch
from gamma.mapspace.divisors import DenseDivisors, LazyDivisors, make_divisors
from gamma.workloads.layer import Layer

#: Genome dimension indices and names (Y and X are output rows/cols Y', X').
GDIMS = ("K", "C", "Y", "X", "R", "S")
G_K, G_C, G_Y, G_X, G_R, G_S = range(6)
#: MAESTRO directive dim written for each genome dim.
GDIM_DIRECTIVE = ("K", "C", "Y'", "X'", "R", "S")
_GENE_TO_DIM = np.array([DIM_INDEX[d] for d in GDIM_DIRECTIVE], np.int64)

InnerTiles = Literal["divisors", "any"]


@dataclass
class Genome:
    """A population of genomes (leading axis = individual; level axis padded to max_levels)."""

    nlev: np.ndarray  # (n,) levels in use
    par: np.ndarray  # (n, L) parallel genome dim per level
    order: np.ndarray  # (n, L, 6) loop order, outermost first
    tile: np.ndarray  # (n, L, 6) tile per genome dim
    cluster: np.ndarray  # (n, L) cluster size (0 on level 0)

    def __len__(self) -> int:
        return int(self.nlev.shape[0])

    def take(self, idx: np.ndarray) -> "Genome":
        """The individuals at ``idx`` (a copy)."""
        return Genome(self.nlev[idx].copy(), self.par[idx].copy(), self.order[idx].copy(),
                      self.tile[idx].copy(), self.cluster[idx].copy())

    @staticmethod
    def concat(parts: list["Genome"]) -> "Genome":
        return Genome(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in ("nlev", "par", "order", "tile", "cluster")))

    def key(self, i: int) -> bytes:
        """Hashable identity of individual ``i`` (only the levels in use count)."""
        n = int(self.nlev[i])
        return b"".join(a[i, :n].tobytes() for a in (self.par, self.order, self.tile, self.cluster))


@dataclass
class MapSpace:
    """The mappings of one layer on an array of ``num_pes`` PEs that the search may propose.

    ``fixed_inner_cluster``: if set, the cluster size of level 2 (system S1's row length).
    """

    layer: Layer
    num_pes: int
    min_levels: int = 1
    max_levels: int = 2
    parallel_dims: tuple[str, ...] = ("K", "C", "Y", "X")
    inner_tiles: InnerTiles = "divisors"
    fixed_inner_cluster: int | None = None
    dims: np.ndarray = field(init=False)
    par_choices: np.ndarray = field(init=False)
    _divisors: DenseDivisors | LazyDivisors | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        lay = self.layer
        if self.fixed_inner_cluster is not None and not 1 <= self.fixed_inner_cluster <= self.num_pes:
            raise ValueError(f"fixed inner cluster {self.fixed_inner_cluster} must be within 1..num_pes "
                             f"({self.num_pes})")
        if lay.type == "GEMM":
            raise ValueError("the GAMMA map space covers CONV and DSCONV layers; give GEMM/FC "
                             "layers as CONV (K=N, C=K, Y=M) as the model loader does")
        if not 1 <= self.min_levels <= self.max_levels <= 3:
            raise ValueError(f"levels must satisfy 1 <= min_levels <= max_levels <= 3, got "
                             f"{self.min_levels}..{self.max_levels}")
        if self.inner_tiles not in ("divisors", "any"):
            raise ValueError(f"inner_tiles must be 'divisors' or 'any', got {self.inner_tiles!r}")
        k = 1 if lay.type == "DSCONV" else lay.K
        self.dims = np.array([k, lay.C, lay.Yo, lay.Xo, lay.R, lay.S], np.int64)
        bad = [d for d in self.parallel_dims if d not in GDIMS]
        if bad:
            raise ValueError(f"unknown parallel dims {bad}; choose from {GDIMS}")
        choices = [GDIMS.index(d) for d in self.parallel_dims
                   if not (d == "K" and lay.type == "DSCONV")]
        if not choices:
            raise ValueError(f"no parallel dimension for a {lay.type} layer: parallel_dims is "
                             f"{list(self.parallel_dims)}; give at least one of "
                             f"{', '.join(d for d in GDIMS if d != 'K' or not self.depthwise)}")
        self.par_choices = np.array(choices, np.int64)
        self._divisors = make_divisors(int(self.dims.max())) if self.inner_tiles == "divisors" else None

    # --- sampling -----------------------------------------------------------------------------
    @property
    def depthwise(self) -> bool:
        return self.layer.type == "DSCONV"

    def inner_tile_count(self, parent: np.ndarray) -> np.ndarray:
        """How many tiles an inner level may take below ``parent`` (elementwise): the divisors
        of the parent tile, or every value 1..parent (``inner_tiles="any"``)."""
        parent = np.asarray(parent, np.int64)
        return self._divisors.count(parent) if self._divisors is not None else parent.copy()

    def inner_tile(self, parent: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The ``k``-th (0-based, ascending) tile allowed below ``parent``, elementwise
        (``0 <= k < inner_tile_count(parent)``)."""
        parent = np.asarray(parent, np.int64)
        if self._divisors is None:
            return 1 + np.asarray(k, np.int64)
        return self._divisors.kth(parent, np.asarray(k, np.int64))

    def random_tiles(self, rng: np.random.Generator, parent: np.ndarray) -> np.ndarray:
        """Tiles below ``parent`` (same shape): a divisor of it, or uniform in [1, parent]."""
        pick = (rng.random(parent.shape) * self.inner_tile_count(parent)).astype(np.int64)
        t = self.inner_tile(parent, pick)
        t[..., G_R] = parent[..., G_R]
        t[..., G_S] = parent[..., G_S]
        return t

    def random_top_tiles(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Top-level tiles uniform in [1, dim] (R, S full)."""
        t = 1 + (rng.random((n, 6)) * self.dims).astype(np.int64)
        t[:, G_R], t[:, G_S] = self.dims[G_R], self.dims[G_S]
        return t

    def cluster_bound(self, g: Genome, i: np.ndarray, l: np.ndarray | int) -> np.ndarray:
        """Cluster size of level ``l`` (>= 1) of individuals ``i`` at its bound, as GAMMA sets
        it: the parent's tile of the level's parallel dim, and no more PEs than the levels above
        leave (the product of all cluster sizes must not exceed num_pes); S1's fixed cluster on
        level 1."""
        l = np.broadcast_to(np.asarray(l, np.int64), np.shape(i))
        ptile = g.tile[i, l - 1, g.par[i, l]]
        above = np.ones(len(i), np.int64)
        for k in range(1, g.cluster.shape[1]):
            above *= np.where(k < l, np.maximum(g.cluster[i, k], 1), 1)
        bound = np.maximum(1, np.minimum(ptile, self.num_pes // above))
        if self.fixed_inner_cluster is not None:
            bound = np.where(l == 1, self.fixed_inner_cluster, bound)
        return bound

    def random(self, n: int, rng: np.random.Generator, levels: int | np.ndarray | None = None) -> Genome:
        """``n`` uniform random genomes; ``levels`` fixes the depth (default: uniform in range)."""
        L = self.max_levels
        if levels is None:
            nlev = rng.integers(self.min_levels, self.max_levels + 1, n)
        else:
            nlev = np.broadcast_to(np.asarray(levels, np.int64), (n,)).copy()
        par = self.par_choices[rng.integers(0, len(self.par_choices), (n, L))]
        order = np.argsort(rng.random((n, L, 6)), axis=2)
        tile = np.ones((n, L, 6), np.int64)
        cluster = np.zeros((n, L), np.int64)
        tile[:, 0] = self.random_top_tiles(rng, n)
        g = Genome(nlev, par, order, tile, cluster)
        for l in range(1, L):
            tile[:, l] = self.random_tiles(rng, tile[:, l - 1])
            cluster[:, l] = self.cluster_bound(g, np.arange(n), l)
        self.clear_unused(g)
        return g

    def clear_unused(self, g: Genome) -> None:
        """Zero the padding levels beyond ``nlev`` so that equal genomes compare equal."""
        unused = np.arange(g.par.shape[1])[None, :] >= g.nlev[:, None]
        g.par[unused] = 0
        g.cluster[unused] = 0
        g.order[unused] = np.arange(6)
        g.tile[unused] = 1

    # --- repair -------------------------------------------------------------------------------
    def repair(self, pop: Genome) -> None:
        """Restore the map space's invariants in place, after crossover and mutation: top tiles in
        [1, dim], every inner tile at most (by default: a divisor of) the tile above, R and S
        full, cluster sizes in [1, their bound] (S1: the fixed cluster), unused levels cleared.
        Changes nothing on a genome that already keeps them. The reference code skipped this
        (its bug 4, see ``gamma/optimizers/gamma.py``), which is how it reached MAESTRO's
        undercounts."""
        n, L = pop.par.shape
        pop.tile[:, 0, :] = np.clip(pop.tile[:, 0, :], 1, self.dims)
        idx = np.arange(n)
        for l in range(1, L):
            used = pop.nlev > l
            parent = pop.tile[:, l - 1, :]
            t = np.minimum(pop.tile[:, l, :], parent)
            if self.inner_tiles == "divisors":
                t = self.largest_divisor_at_most(parent, t)
            pop.tile[:, l, :] = np.where(used[:, None], t, 1)
            if used.any():
                i = idx[used]
                bound = self.cluster_bound(pop, i, l)
                c = pop.cluster[i, l]
                fixed = self.fixed_inner_cluster is not None and l == 1
                pop.cluster[i, l] = bound if fixed else np.clip(c, 1, bound)
        pop.tile[:, :, G_R] = self.dims[G_R]
        pop.tile[:, :, G_S] = self.dims[G_S]
        self.clear_unused(pop)

    def largest_divisor_at_most(self, parent: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Elementwise the largest divisor of ``parent`` that is <= ``t`` (both >= 1, parent at
        most the layer's largest dim)."""
        divisors = self._divisors if self._divisors is not None else make_divisors(int(self.dims.max()))
        return divisors.largest_at_most(parent, t)

    # --- decoding -----------------------------------------------------------------------------
    def decode(self, g: Genome) -> MappingBatch:
        """Every genome as a mapping, in one batch of arrays (vectorized)."""
        n, L = g.par.shape
        order = g.order
        if self.depthwise:
            # Move K to the end of each level's order and drop it (5 directives).
            is_k = order == G_K
            order = np.take_along_axis(order, np.argsort(is_k, axis=2, kind="stable"), axis=2)
        nd = 5 if self.depthwise else 6
        sizes = np.take_along_axis(g.tile, order, axis=2)
        used = np.arange(L)[None, :] < g.nlev[:, None]
        cluster = np.where(used, g.cluster, 0)
        cluster[:, 0] = 0
        return MappingBatch(nlev=g.nlev.copy(), cluster=cluster, ndir=np.where(used, nd, 0),
                            dim=_GENE_TO_DIM[order], spatial=order == g.par[:, :, None],
                            size=sizes, offset=sizes.copy())

    def to_mapping(self, g: Genome, i: int) -> Mapping:
        """Individual ``i`` as mapping data (for files, MLflow and MAESTRO)."""
        levels = []
        for l in range(int(g.nlev[i])):
            dirs = []
            for gd in g.order[i, l]:
                if gd == G_K and self.depthwise:
                    continue
                kind = "Spatial" if gd == g.par[i, l] else "Temporal"
                t = int(g.tile[i, l, gd])
                dirs.append(Directive(kind, GDIM_DIRECTIVE[gd], t, t))
            cluster = Cluster(int(g.cluster[i, l])) if l > 0 else None
            levels.append(Level(tuple(dirs), cluster))
        return Mapping(tuple(levels))
