"""One codec from a point of the unit box [0, 1)^d to GAMMA's genome, for every baseline.

Black-box optimizers (nevergrad, scikit-optimize) search a flat box; this module turns a batch of
points ``x`` of shape (n, d) into a :class:`~gamma.mapspace.space.Genome` of the same map space GAMMA
searches, so every baseline is decoded by the same code and scored by the same objective.

Layout, level by level (``L = space.max_levels``, outermost level first), then one optional
coordinate::

    level 0:      par, order, tile K, tile C, tile Y', tile X'             (6 coordinates)
    level l > 0:  par, order, tile K, tile C, tile Y', tile X', cluster    (7 coordinates)
    depth:        number of levels, only if min_levels < max_levels        (1 coordinate)

so d = 6 + 7 (L - 1) (+ 1): S1 13, S2 14, S3 21. A coordinate ``u`` picks item
``floor(u * m)`` of ``m`` choices (``u`` is clipped into [0, 1]; ``u = 1`` picks the last):

* par: one of ``space.par_choices``;
* order: one of the 720 permutations of the genome dims (K, C, Y, X, R, S), in the lexicographic
  order of ``itertools.permutations`` (the reference code's order table, over our dim names);
* top-level tiles: 1 .. the layer's dim (uniform, as GAMMA's top-level draws);
* inner tiles: relative to the parent tile: with ``inner_tiles="divisors"`` the divisors of the
  parent tile (ascending), else 1 .. parent tile;
* cluster (inner levels): 1 .. ``MapSpace.cluster_bound`` (the parent's tile of the level's
  parallel dim, and no more PEs than the levels above leave); S1's fixed inner cluster ignores
  its coordinate;
* depth: min_levels .. max_levels.

R and S tiles are always full (no coordinate). A decoded genome keeps every invariant that
:meth:`~gamma.mapspace.space.MapSpace.repair` restores (top tiles in [1, dim], inner tiles divisors
of, or at most, their parent's, cluster sizes in [1, their bound] computed by the map space's own
``cluster_bound``, unused levels cleared), so ``decode`` does not run it: it was half of a small
batch's decoding time. The tests repair decoded genomes of every system and check that nothing
changes, which keeps the codec and GAMMA on one definition of the map space.

Where the box differs from GAMMA's genome space:

* Coordinates of levels beyond the decoded depth are inactive (they do not change the genome),
  and so is the cluster coordinate of S1's fixed level and the K tile of depthwise layers.
* Inner tiles and cluster sizes are relative: the same coordinate means a different tile when
  the parent tile (or parallel dim) changes, so the box is not a product of the genome's genes.
* Divisor choices are uniform per divisor, not per tile value; the loop order is one categorical
  coordinate (neighbouring indices share their outer loops, nothing more).
"""

from __future__ import annotations

import itertools

import numpy as np

from gamma.mapspace.space import G_R, G_S, Genome, MapSpace

#: The 720 loop orders (genome dim indices, outermost first), lexicographic.
ORDERS = np.array(list(itertools.permutations(range(6))), np.int64)
#: Genome dims with a tile coordinate (K, C, Y', X'); R and S stay full.
TILE_DIMS = np.arange(4)


def pick(u: np.ndarray, m: np.ndarray | int) -> np.ndarray:
    """Index ``floor(u * m)`` in 0 .. m - 1 (``u`` clipped into [0, 1])."""
    return pick_clipped(np.clip(u, 0.0, 1.0), m)


def pick_clipped(u: np.ndarray, m: np.ndarray | int) -> np.ndarray:
    """:func:`pick` of ``u`` already in [0, 1]."""
    return np.minimum((u * m).astype(np.int64), np.asarray(m, np.int64) - 1)


def checked_points(x: np.ndarray, dim: int) -> np.ndarray:
    """A batch of points of shape (n, ``dim``), finite, clipped into [0, 1] (every coordinate
    once, as :func:`pick` does); a ValueError otherwise."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"expected points of shape (n, {dim}), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("points must be finite")
    return np.clip(x, 0.0, 1.0)


class Codec:
    """Decodes points of [0, 1)^``dim`` to genomes of ``space`` (see the module docstring)."""

    def __init__(self, space: MapSpace) -> None:
        self.space = space
        self.levels = space.max_levels
        # Start column of each level's coordinates: 6 on level 0, 7 on the others.
        self.start = np.array([0] + [6 + 7 * (l - 1) for l in range(1, self.levels)], np.int64)
        end = 6 + 7 * (self.levels - 1)
        self.depth_col = end if space.min_levels < space.max_levels else None
        self.dim = end + (self.depth_col is not None)

    def decode(self, x: np.ndarray) -> Genome:
        """The genomes of a batch ``x`` of shape (n, dim)."""
        x = checked_points(x, self.dim)
        pick = pick_clipped
        sp, L, n = self.space, self.levels, x.shape[0]
        idx = np.arange(n)
        if self.depth_col is None:
            nlev = np.full(n, sp.min_levels, np.int64)
        else:
            nlev = sp.min_levels + pick(x[:, self.depth_col], sp.max_levels - sp.min_levels + 1)
        par = np.zeros((n, L), np.int64)
        order = np.zeros((n, L, 6), np.int64)
        tile = np.ones((n, L, 6), np.int64)
        cluster = np.zeros((n, L), np.int64)
        g = Genome(nlev, par, order, tile, cluster)
        for l in range(L):
            c = x[:, self.start[l]: self.start[l] + 7]
            par[:, l] = sp.par_choices[pick(c[:, 0], len(sp.par_choices))]
            order[:, l] = ORDERS[pick(c[:, 1], len(ORDERS))]
            u = c[:, 2:6]
            if l == 0:
                tile[:, 0, :4] = 1 + pick(u, sp.dims[TILE_DIMS])
            else:
                parent = tile[:, l - 1, :4]
                tile[:, l, :4] = sp.inner_tile(parent, pick(u, sp.inner_tile_count(parent)))
            tile[:, l, G_R], tile[:, l, G_S] = sp.dims[G_R], sp.dims[G_S]
            if l > 0:
                bound = sp.cluster_bound(g, idx, l)
                fixed = sp.fixed_inner_cluster is not None and l == 1
                cluster[:, l] = bound if fixed else 1 + pick(c[:, 6], bound)
        sp.clear_unused(g)
        return g
