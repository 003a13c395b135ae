"""GAMMA's genetic operators as objects, built from ``optimizer.operators`` (one entry per
operator: ``enabled`` and its settings; see :func:`build_operators`).

Crossover acts on mating pairs (drawn by the selection, :meth:`Selection.mate`) and swaps genes
between the two members of each pair in place. The other operators (mutation, reorder, growth,
aging) are called as ``op(pop, space, rng)`` and change ``pop`` in place. After the operators,
the map space restores its invariants (:meth:`~gamma.mapspace.MapSpace.repair`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from gamma.mapspace import G_R, G_S, GDIMS, Genome, MapSpace
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


#: Operators by their key in ``optimizer.operators``.
OPERATORS: dict[str, type[Operator]] = {"crossover": Crossover, "mutation": Mutation,
                                        "reorder": Reorder, "growth": Growth, "aging": Aging}
#: The order in which the variations run on the children after crossover (the reference code's).
VARIATION_ORDER = ("mutation", "reorder", "growth", "aging")


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
