"""GAMMA's genetic operators as objects, built from ``optimizer.operators`` (one entry per
operator: ``enabled`` and its settings; see :func:`build_operators`).

Crossover acts on mating pairs (drawn by the selection, :meth:`Selection.mate`) and swaps genes
between the two members of each pair in place. The other operators (mutation, reorder, growth,
aging) are called as ``op(pop, space, rng)`` and change ``pop`` in place. After the operators,
the map space restores its invariants (:meth:`~gamma.mapspace.space.MapSpace.repair`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from gamma.mapspace.divisors import divisors_of
from gamma.mapspace.space import G_R, G_S, GDIMS, Genome, MapSpace
from gamma.optimizers.settings import SettingError, check_bool, check_int, check_keys, check_rate

#: Dims whose tiles crossover swaps (the reference code's choice; R and S stay full).
CROSSOVER_DIMS = np.array([GDIMS.index(d) for d in ("K", "C", "Y", "X")])


def _level_of(nlev: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniform random level in use, per individual."""
    return (rng.random(nlev.shape) * nlev).astype(np.int64)


class Operator(ABC):
    """A genetic operator with a probability ``rate`` (what it applies to: see each operator);
    ``name`` is its key in ``optimizer.operators``."""

    name: ClassVar[str]
    rate: float

    def __post_init__(self) -> None:
        check_rate(f"operators.{self.name}.rate", self.rate)


class Variation(Operator):
    """An operator that changes a population in place."""

    @abstractmethod
    def __call__(self, pop: Genome, space: MapSpace, rng: np.random.Generator) -> None:
        """Change ``pop`` (genomes of ``space``) in place."""


@dataclass
class Crossover(Operator):
    """At each level both members of a mating pair have, with probability ``rate``, the two swap
    one dim's tile (K, C, Y or X), in place. Each keeps its own order, parallel dims and depth."""

    name: ClassVar[str] = "crossover"
    rate: float = 0.57

    def __call__(self, a: Genome, b: Genome, rng: np.random.Generator) -> None:
        pairs, L = len(a), a.tile.shape[1]
        shared = np.arange(L)[None, :] < np.minimum(a.nlev, b.nlev)[:, None]
        swap = shared & (rng.random((pairs, L)) < self.rate)
        dims = CROSSOVER_DIMS[rng.integers(0, len(CROSSOVER_DIMS), (pairs, L))]
        rows, levels = np.nonzero(swap)
        d = dims[rows, levels]
        ta = a.tile[rows, levels, d].copy()
        a.tile[rows, levels, d] = b.tile[rows, levels, d]
        b.tile[rows, levels, d] = ta


@dataclass
class Mutation(Variation):
    """``loci`` times per individual, with probability ``rate``: pick a random gene of a random
    level. A parallel gene gets a new parallel dim and, below the top, the cluster size is
    recomputed as the reference code does: its bound, i.e. the parent's tile of the new parallel
    dim (within the PEs the levels above leave; S1: the fixed cluster). A tile gene gets a new
    tile (top: uniform in [1, dim]; below: a tile of the parent's); R and S genes stay full."""

    name: ClassVar[str] = "mutation"
    rate: float = 0.52
    loci: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("operators.mutation.loci", self.loci, 1)

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
class Reorder(Variation):
    """``len(pop)`` trials, each with probability ``rate``: swap two loop positions of a random
    level of a random individual. All six positions can move (the reference code never moved the
    innermost one: its bug 2)."""

    name: ClassVar[str] = "reorder"
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
class Growth(Variation):
    """``len(pop)`` trials, each with probability ``rate``: a random individual below the
    system's deepest level gets a new innermost level (random parallel dim and order, tiles
    below the parent's, cluster size at its bound)."""

    name: ClassVar[str] = "growth"
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
class Aging(Variation):
    """``len(pop)`` trials, each with probability ``rate``: a random individual above the
    system's shallowest level loses its innermost level."""

    name: ClassVar[str] = "aging"
    rate: float = 0.27

    def __call__(self, pop: Genome, space: MapSpace, rng: np.random.Generator) -> None:
        n = len(pop)
        who = np.unique(rng.integers(0, n, np.count_nonzero(rng.random(n) < self.rate)))
        who = who[pop.nlev[who] > space.min_levels]
        pop.nlev[who] -= 1
        space.clear_unused(pop)


@dataclass
class Structure(Variation):
    """With probability ``rate`` per individual: re-draw its spatial structure, i.e. the parallel
    dim of every level and the cluster size of every inner level, keeping its depth, loop orders
    and the other tiles, and set the tiles the new structure depends on so that it is used:

    * every level's tile of its new parallel dim is 1 (one element per sub-cluster or PE), and
    * level ``l >= 1`` gets a cluster size drawn uniformly from the divisors of the PEs the levels
      above leave (``num_pes`` over their cluster sizes; S1: the fixed cluster), so every PE of
      the array belongs to a cluster, and the tile of its parallel dim one level up becomes that
      cluster size (at most the dim, or the tile above it), so the cluster has one element per
      PE to work on.

    This is not a reference-code operator. It moves between spatial structures in one step,
    which GAMMA's mutation cannot: a mutated parallel gene keeps the level's tiles, and the
    cluster size is not a gene (it is set to its bound when an inner parallel gene mutates and
    only ever lowered by repair), so leaving a converged structure takes several coordinated
    changes that are each worse on their own. Measured on ResNet-18 layer 17 (S2 edge, 10,000
    samples): without it seeds 0 and 2 stall at 1.18x the compute bound (Y' or X' parallel at the
    top over 5 clusters of 29 PEs), where no single move of the other operators gains more than
    4 cycles; with it every seed 0-4 ends within 0.004 % of the proven optimum
    (docs/gamma-algorithm.md, 2.8)."""

    name: ClassVar[str] = "structure"
    rate: float = 0.1

    def __call__(self, pop: Genome, space: MapSpace, rng: np.random.Generator) -> None:
        who = np.flatnonzero(rng.random(len(pop)) < self.rate)
        if len(who) == 0:
            return
        L = pop.par.shape[1]
        par = space.par_choices[rng.integers(0, len(space.par_choices), (len(who), L))]
        pop.par[who] = par
        for l in range(L):
            pop.tile[who, l, par[:, l]] = 1
        free = np.full(len(who), space.num_pes, np.int64)  # PEs per cluster of the level above
        for l in range(1, L):
            used = pop.nlev[who] > l
            i, p = who[used], par[used, l]
            if space.fixed_inner_cluster is not None and l == 1:
                c = np.full(len(i), space.fixed_inner_cluster, np.int64)
            else:
                c = _random_divisor(free[used], rng)
            pop.cluster[i, l] = c
            pop.tile[i, l - 1, p] = np.minimum(c, pop.tile[i, l - 2, p] if l >= 2 else space.dims[p])
            free[used] = np.maximum(free[used] // c, 1)


def _random_divisor(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Elementwise a uniformly drawn divisor of ``values`` (>= 1)."""
    out = np.empty(len(values), np.int64)
    for v in np.unique(values):
        at = np.flatnonzero(values == v)
        ds = divisors_of(int(v))
        out[at] = ds[rng.integers(0, len(ds), len(at))]
    return out


#: Operators by their key in ``optimizer.operators``.
OPERATORS: dict[str, type[Operator]] = {"crossover": Crossover, "mutation": Mutation,
                                        "reorder": Reorder, "growth": Growth, "aging": Aging,
                                        "structure": Structure}
#: The order in which the variations run on the children after crossover: the reference code's,
#: with the structure mutation (ours) right after mutation.
VARIATION_ORDER = ("mutation", "structure", "reorder", "growth", "aging")


def build_operators(settings: dict[str, Any] | None) -> tuple[dict[str, Operator], dict[str, bool]]:
    """Every operator of :data:`OPERATORS` built from ``optimizer.operators`` (per operator:
    ``enabled`` plus its settings; a missing operator or setting takes the class default), and
    whether each is enabled. A switched-off operator is still built, so its settings are
    checked and kept, but the GA never applies it."""
    if settings is not None and not isinstance(settings, dict):
        raise SettingError("operators", settings, "must be a mapping of operator names to settings")
    settings = dict(settings or {})
    check_keys("operators", settings, list(OPERATORS))
    built: dict[str, Operator] = {}
    enabled: dict[str, bool] = {}
    for name, cls in OPERATORS.items():
        given = settings.get(name)
        given = {} if given is None else given
        if not isinstance(given, dict):
            raise SettingError(f"operators.{name}", given, "must be a mapping of settings, e.g. "
                               f"optimizer.operators.{name}.enabled=false to switch it off")
        params = dict(given)
        enabled[name] = check_bool(f"operators.{name}.enabled", params.pop("enabled", True))
        check_keys(f"operators.{name}", params, ["enabled"] + [f.name for f in fields(cls)])
        built[name] = cls(**params)
    return built, enabled
