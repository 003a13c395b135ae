"""The joint codec of a co-design search (``codesign=digamma``, docs/codesign.md): a point of
the unit box [0, 1)^d to an individual of a :class:`~gamma.mapspace.cospace.CoSpace` (a
hardware design and a genome per unique layer), for the black-box baselines.

Layout: the hardware coordinates first, then each unique layer's coordinates in
:class:`~baselines.codec.Codec`'s layout (its ``dim`` each)::

    S2:      PEs                                     (1 coordinate)
    S1, S3:  rows, columns                           (2 coordinates)
    layer u: Codec(layer u's map space).dim          (S2 14, S1 13, S3 21 coordinates)

Hardware genes are decoded **uniformly** in [1, bound] (item ``floor(u * m)`` of ``m``), not
log-uniformly: :meth:`~gamma.mapspace.hwspace.HwSpace.random`, from which random co-search and
GAMMA's first generation draw, is uniform too, so a uniform point of the box is distributed as
the other optimizers' random individuals and every optimizer starts from the same designs. On
S2 the bound is ``max_pes``. On a grid the rows are uniform in [1, ``max_rows``] and the columns
relative to them, uniform in [1, the most columns whose array (with one element of L1 and of L2)
fits the budget] (at least 1), as :meth:`HwSpace.random` redraws arrays over the budget: no
coordinate names an array that cannot fit. The columns coordinate, like the codec's inner tiles,
is relative (the same value means a different column count when the rows change).

Each layer's coordinates are decoded by :class:`~baselines.codec.Codec` on that layer's map
space on the design's own PE array (:meth:`CoSpace.space_of`, S1: the inner cluster pinned to
the design's columns), designs grouped by map space; the codec keeps every invariant that
repair restores, so a decoded individual needs no repair (the tests check it).
"""

from __future__ import annotations

import numpy as np

from baselines.codec import Codec, checked_points, pick_clipped
from gamma.hardware import pes_within_um2
from gamma.mapspace.cospace import CoSpace, Population
from gamma.mapspace.hwspace import HwGenes
from gamma.mapspace.space import Genome


class CoCodec:
    """Decodes points of [0, 1)^``dim`` to individuals of ``space`` (see the module docstring)."""

    def __init__(self, space: CoSpace) -> None:
        self.space = space
        self.hw_dim = 2 if space.hw.grid else 1
        dims = [Codec(b).dim for b in space.bases]
        self.start = self.hw_dim + np.concatenate([[0], np.cumsum(dims)[:-1]]).astype(np.int64)
        self.layer_dims = dims
        self.dim = self.hw_dim + int(sum(dims))
        self._codecs: dict[tuple[int, int, int], Codec] = {}
        self.grid_pes = self.max_pes() if space.hw.grid else 0

    def decode(self, x: np.ndarray) -> Population:
        """The individuals of a batch ``x`` of shape (n, dim)."""
        x = checked_points(x, self.dim)
        hw = self.decode_hw(x[:, : self.hw_dim])
        groups = self.space.groups(hw)
        at = np.concatenate([idx for _, _, idx in groups])
        back = np.argsort(at, kind="stable")
        layers = []
        for u, (s, d) in enumerate(zip(self.start, self.layer_dims)):
            parts = [self.codec(u, pes, cols).decode(x[idx, s: s + d]) for pes, cols, idx in groups]
            layers.append(Genome.concat(parts).take(back))
        return Population(hw, layers)

    def decode_hw(self, h: np.ndarray) -> HwGenes:
        """Designs of hardware coordinates ``h`` (n, ``hw_dim``) in [0, 1]."""
        hs = self.space.hw
        n = h.shape[0]
        if not hs.grid:
            return HwGenes(np.ones(n, np.int64), 1 + pick_clipped(h[:, 0], hs.max_cols))
        rows = 1 + pick_clipped(h[:, 0], hs.max_rows)
        cols_bound = np.clip(self.grid_pes // rows, 1, hs.max_cols)
        return HwGenes(rows, 1 + pick_clipped(h[:, 1], cols_bound))

    def max_pes(self) -> int:
        """The most PEs whose array, with one element of L1 and of L2, fits the budget (0: none)."""
        hs = self.space.hw
        p = max(0, int(pes_within_um2(hs.budget_um2, 1, 1, hs.area)))
        fits = lambda k: bool(hs.fits(HwGenes(np.ones(1, np.int64), np.array([k], np.int64)))[0])  # noqa: E731
        while p > 0 and not fits(p):
            p -= 1
        while fits(p + 1):
            p += 1
        return p

    def codec(self, u: int, pes: int, cols: int) -> Codec:
        """The codec of unique layer ``u`` on ``pes`` PEs (S1: ``cols`` columns), cached."""
        key = (u, pes, cols)
        c = self._codecs.get(key)
        if c is None:
            c = self._codecs[key] = Codec(self.space.space_of(u, pes, cols))
        return c
