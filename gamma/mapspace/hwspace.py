"""The hardware genes of a co-design search (``codesign=digamma``, docs/codesign.md).

A population of ``n`` hardware designs is a :class:`HwGenes`: per design the PE array (``rows``
x ``cols``; on S2, where the array has no fixed shape, ``rows`` is 1 and ``cols`` is the PE
count). L1 per PE and L2 are not genes: a design gets the buffers its mappings need (the largest
requirement of any layer), as DiGamma's reference code sizes them, and its area counts those
(docs/codesign.md). :class:`HwSpace` holds the genes' bounds and the area budget: it draws
random PE arrays whose MACs alone fit the budget, mutates genes within their bounds, gives the
area of a design with given buffers, and builds the :class:`~gamma.hardware.Hardware` a design's
mappings are evaluated on (buffer capacities: the largest the budget could hold; bandwidths and
NoC from the platform). Units: PEs, elements, um^2.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from gamma.hardware import AreaModel, Hardware, area_um2

#: Gene names, in the order of :meth:`HwGenes.matrix`.
HW_GENES = ("rows", "cols")


@dataclass
class HwGenes:
    """A population of hardware designs (one int64 value per design and gene)."""

    rows: np.ndarray  # (n,) array rows (S2: 1)
    cols: np.ndarray  # (n,) array columns (S2: the PE count)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @property
    def pes(self) -> np.ndarray:
        """PEs per design (rows x cols)."""
        return self.rows * self.cols

    def matrix(self) -> np.ndarray:
        """(n, 2) genes in :data:`HW_GENES` order (a copy)."""
        return np.stack([self.rows, self.cols], axis=1)

    @classmethod
    def from_matrix(cls, m: np.ndarray) -> "HwGenes":
        m = np.asarray(m, np.int64)
        return cls(m[:, 0].copy(), m[:, 1].copy())

    def take(self, idx: np.ndarray) -> "HwGenes":
        return HwGenes.from_matrix(self.matrix()[idx])

    @staticmethod
    def concat(parts: list["HwGenes"]) -> "HwGenes":
        return HwGenes.from_matrix(np.concatenate([p.matrix() for p in parts]))


@dataclass
class HwSpace:
    """Bounds of the hardware genes and the area budget. ``grid``: the array is rows x cols
    (S1, S3) rather than a PE count (S2, ``max_rows`` 1). ``max_l1``/``max_l2``: the largest
    buffers the budget could hold (elements), the capacities mappings are evaluated against."""

    grid: bool
    max_rows: int
    max_cols: int
    max_l1: int
    max_l2: int
    area: AreaModel
    budget_um2: float
    #: The design a search starts from (a population of one): the platform's array, scaled
    #: into the budget.
    start: HwGenes = field(default_factory=lambda: HwGenes(np.ones(1, np.int64), np.ones(1, np.int64)))

    @property
    def genes(self) -> tuple[int, ...]:
        """Indices (into :data:`HW_GENES`) of the genes searched: rows only on a grid."""
        return (0, 1) if self.grid else (1,)

    @property
    def upper(self) -> np.ndarray:
        """Upper bound of each gene, in :data:`HW_GENES` order."""
        return np.array([self.max_rows if self.grid else 1, self.max_cols], np.int64)

    def area_um2(self, g: HwGenes, l1: np.ndarray | int = 1, l2: np.ndarray | int = 1) -> np.ndarray:
        """Area of every design with ``l1`` elements of L1 per PE and ``l2`` of L2 (um^2)."""
        return area_um2(g.pes.astype(np.float64), np.asarray(l1, np.float64),
                        np.asarray(l2, np.float64), self.area)

    def fits(self, g: HwGenes, l1: np.ndarray | int = 1, l2: np.ndarray | int = 1) -> np.ndarray:
        """Whether each design with these buffers is within the budget (default: the smallest
        buffers, one element each, i.e. whether its PE array can fit at all)."""
        return self.area_um2(g, l1, l2) <= self.budget_um2

    def random(self, n: int, rng: np.random.Generator, tries: int = 100) -> HwGenes:
        """``n`` PE arrays that fit the budget with the smallest buffers: each searched gene
        uniform in [1, its bound], arrays over the budget drawn again (after ``tries`` rounds,
        a single PE, which fits)."""
        m = np.ones((n, 2), np.int64)
        todo = np.arange(n)
        for _ in range(tries):
            for j in self.genes:
                m[todo, j] = rng.integers(1, self.upper[j] + 1, len(todo))
            todo = todo[~self.fits(HwGenes.from_matrix(m[todo]))]
            if len(todo) == 0:
                break
        m[todo] = 1
        return HwGenes.from_matrix(m)

    def mutate(self, g: HwGenes, who: np.ndarray, rng: np.random.Generator, step: float) -> None:
        """Designs ``who`` each get one searched gene multiplied by 2^N(0, ``step``), rounded and
        kept within [1, its bound] (moved by one when the factor rounds back to the same
        value), in place."""
        if len(who) == 0:
            return
        m = g.matrix()
        genes = np.array(self.genes)[rng.integers(0, len(self.genes), len(who))]
        old = m[who, genes]
        factor = np.exp2(rng.normal(0.0, step, len(who)))
        new = np.rint(old * factor).astype(np.int64)
        same = new == old
        new[same] += np.where(factor[same] >= 1, 1, -1)
        m[who, genes] = np.clip(new, 1, self.upper[genes])
        g.rows[:], g.cols[:] = m[:, 0], m[:, 1]

    def resize(self, g: HwGenes, who: np.ndarray, pes: np.ndarray) -> None:
        """Designs ``who`` get at most ``pes`` PEs (at least 1): the PE count on S2, the columns
        (rows kept) on a grid; in place."""
        if self.grid:
            g.cols[who] = np.clip(pes // g.rows[who], 1, self.max_cols)
        else:
            g.cols[who] = np.clip(pes, 1, self.max_cols)

    def hardware(self, g: HwGenes, i: int, base: Hardware) -> Hardware:
        """Design ``i`` as the :class:`Hardware` its mappings are evaluated on: its PEs, buffers
        as large as the budget could hold (the buffers its mappings need are sized after), the
        rest from ``base``."""
        return replace(base, num_pes=int(g.pes[i]), l1_size=self.max_l1, l2_size=self.max_l2)
