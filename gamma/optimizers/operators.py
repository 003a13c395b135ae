"""GAMMA's genetic operators as objects acting on a population (:class:`~gamma.mapspace.Genome`).

Each operator is called as ``op(pop, space, rng)`` and changes ``pop`` in place (crossover
returns the children it breeds). After the operators, :func:`repair` restores the map space's
invariants; the reference code skipped that step (its bug 4, see ``gamma.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gamma.mapspace import G_R, G_S, GDIMS, Genome, MapSpace

#: Dims whose tiles crossover swaps (the reference code's choice; R and S stay full).
CROSSOVER_DIMS = np.array([GDIMS.index(d) for d in ("K", "C", "Y", "X")])


def _level_of(nlev: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniform random level in use, per individual."""
    return (rng.random(nlev.shape) * nlev).astype(np.int64)


@dataclass
class Crossover:
    """Breed ``n`` children from ``parents``: pairs drawn with replacement; at each level both
    parents have, with probability ``rate``, the two children swap one dim's tile (K, C, Y or X).
    Each child keeps its own order, parallel dims and depth."""

    rate: float = 0.57

    def __call__(self, parents: Genome, n: int, rng: np.random.Generator) -> Genome:
        pairs = (n + 1) // 2
        dad = rng.integers(0, len(parents), pairs)
        mom = rng.integers(0, len(parents), pairs)
        a, b = parents.take(dad), parents.take(mom)
        L = a.tile.shape[1]
        shared = np.arange(L)[None, :] < np.minimum(a.nlev, b.nlev)[:, None]
        swap = shared & (rng.random((pairs, L)) < self.rate)
        dims = CROSSOVER_DIMS[rng.integers(0, len(CROSSOVER_DIMS), (pairs, L))]
        rows, levels = np.nonzero(swap)
        d = dims[rows, levels]
        ta = a.tile[rows, levels, d].copy()
        a.tile[rows, levels, d] = b.tile[rows, levels, d]
        b.tile[rows, levels, d] = ta
        children = Genome.concat([a, b])
        return children.take(np.arange(n))


@dataclass
class Mutation:
    """``loci`` times per individual, with probability ``rate``: pick a random gene of a random
    level. A parallel gene gets a new parallel dim and, below the top, the cluster size is
    recomputed as the reference code does: its bound, i.e. the parent's tile of the new parallel
    dim (within the PEs the levels above leave; S1: the fixed cluster). A tile gene gets a new
    tile (top: uniform in [1, dim]; below: a tile of the parent's); R and S genes stay full."""

    rate: float = 0.52
    loci: int = 3

    def __call__(self, pop: Genome, space: MapSpace, rng: np.random.Generator) -> None:
        n = len(pop)
        for _ in range(self.loci):
            hit = np.flatnonzero(rng.random(n) < self.rate)
            if len(hit) == 0:
                continue
            level = _level_of(pop.nlev[hit], rng)
            gene = rng.integers(0, 7, len(hit))  # 0: parallel gene, 1..6: loop positions
            par = gene == 0
            i, l = hit[par], level[par]
            pop.par[i, l] = space.par_choices[rng.integers(0, len(space.par_choices), len(i))]
            inner = l > 0
            pop.cluster[i[inner], l[inner]] = space.cluster_bound(pop, i[inner], l[inner])
            i, l = hit[~par], level[~par]
            d = pop.order[i, l, gene[~par] - 1]
            keep = (d != G_R) & (d != G_S)
            i, l, d = i[keep], l[keep], d[keep]
            top = l == 0
            pop.tile[i[top], 0, d[top]] = 1 + (rng.random(top.sum()) * space.dims[d[top]]).astype(np.int64)
            j, lj, dj = i[~top], l[~top], d[~top]
            parent = pop.tile[j, lj - 1, :]
            pop.tile[j, lj, dj] = space.random_tiles(rng, parent)[np.arange(len(j)), dj]


@dataclass
class Reorder:
    """``len(pop)`` trials, each with probability ``rate``: swap two loop positions of a random
    level of a random individual. All six positions can move (the reference code never moved the
    innermost one: its bug 2)."""

    rate: float = 0.47

    def __call__(self, pop: Genome, space: MapSpace, rng: np.random.Generator) -> None:
        n = len(pop)
        trials = np.flatnonzero(rng.random(n) < self.rate)
        who = rng.integers(0, n, len(trials))
        level = _level_of(pop.nlev[who], rng)
        a, b = rng.integers(0, 6, len(trials)), rng.integers(0, 6, len(trials))
        for i, l, x, y in zip(who, level, a, b):  # sequential: an individual may be hit twice
            pop.order[i, l, x], pop.order[i, l, y] = pop.order[i, l, y], pop.order[i, l, x]


@dataclass
class Growth:
    """``len(pop)`` trials, each with probability ``rate``: a random individual below the
    system's deepest level gets a new innermost level (random parallel dim and order, tiles
    below the parent's, cluster size at its bound)."""

    rate: float = 0.57

    def __call__(self, pop: Genome, space: MapSpace, rng: np.random.Generator) -> None:
        n = len(pop)
        who = np.unique(rng.integers(0, n, np.count_nonzero(rng.random(n) < self.rate)))
        who = who[pop.nlev[who] < space.max_levels]
        if len(who) == 0:
            return
        l = pop.nlev[who]
        pop.par[who, l] = space.par_choices[rng.integers(0, len(space.par_choices), len(who))]
        pop.order[who, l] = np.argsort(rng.random((len(who), 6)), axis=1)
        pop.tile[who, l] = space.random_tiles(rng, pop.tile[who, l - 1])
        pop.nlev[who] += 1
        pop.cluster[who, l] = space.cluster_bound(pop, who, l)


@dataclass
class Aging:
    """``len(pop)`` trials, each with probability ``rate``: a random individual above the
    system's shallowest level loses its innermost level."""

    rate: float = 0.27

    def __call__(self, pop: Genome, space: MapSpace, rng: np.random.Generator) -> None:
        n = len(pop)
        who = np.unique(rng.integers(0, n, np.count_nonzero(rng.random(n) < self.rate)))
        who = who[pop.nlev[who] > space.min_levels]
        pop.nlev[who] -= 1
        space.clear_unused(pop)


def repair(pop: Genome, space: MapSpace) -> None:
    """Restore the map space's invariants after crossover and mutation: every inner tile is at
    most (by default: a divisor of) the tile above, R and S are full, cluster sizes within their
    bound (S1: fixed). The reference code let inner tiles exceed their parents (its bug 4), which
    is how it reached MAESTRO's undercounts."""
    n, L = pop.par.shape
    pop.tile[:, 0, :] = np.clip(pop.tile[:, 0, :], 1, space.dims)
    idx = np.arange(n)
    for l in range(1, L):
        used = pop.nlev > l
        parent = pop.tile[:, l - 1, :]
        t = np.minimum(pop.tile[:, l, :], parent)
        if space.inner_tiles == "divisors":
            t = largest_divisor_at_most(space, parent, t)
        pop.tile[:, l, :] = np.where(used[:, None], t, 1)
        if used.any():
            i = idx[used]
            bound = space.cluster_bound(pop, i, l)
            c = pop.cluster[i, l]
            pop.cluster[i, l] = bound if space.fixed_inner_cluster is not None and l == 1 else np.clip(c, 1, bound)
    pop.tile[:, :, G_R] = space.dims[G_R]
    pop.tile[:, :, G_S] = space.dims[G_S]
    space.clear_unused(pop)


def largest_divisor_at_most(space: MapSpace, parent: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Elementwise the largest divisor of ``parent`` that is <= ``t`` (both >= 1)."""
    divs, ndiv = space._divs[parent], space._ndiv[parent]
    ok = (divs <= t[..., None]) & (np.arange(divs.shape[-1]) < ndiv[..., None])
    k = ok.sum(axis=-1) - 1
    return np.take_along_axis(divs, k[..., None], axis=-1)[..., 0]
