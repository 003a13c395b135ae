"""Divisor lookups for tile sizes: a dense table for ordinary layers, found lazily for layers
whose largest dimension is too large for one."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def divisor_table(max_value: int) -> tuple[np.ndarray, np.ndarray]:
    """``divs[v, :ndiv[v]]`` are the divisors of v (ascending), for 1 <= v <= max_value (row 0:
    ``[1]``). Built from the pairs (d, multiple of d), about max_value * ln(max_value) of them,
    so K = 30,000 takes milliseconds; memory is max_value x (most divisors of any value)."""
    n = int(max_value)
    d = np.arange(1, n + 1, dtype=np.int64)
    per_d = n // d  # multiples of d up to n
    dd = np.repeat(d, per_d)
    first = np.repeat(np.cumsum(per_d) - per_d, per_d)
    m = dd * (np.arange(len(dd), dtype=np.int64) - first + 1)
    order = np.argsort(m, kind="stable")  # by value; each value's divisors stay ascending
    m, dd = m[order], dd[order]
    ndiv = np.bincount(m, minlength=n + 1).astype(np.int64)
    col = np.arange(len(m), dtype=np.int64) - (np.cumsum(ndiv) - ndiv)[m]
    divs = np.ones((n + 1, max(int(ndiv.max()), 1)), np.int64)
    divs[m, col] = dd
    ndiv[0] = 1
    return divs, ndiv


def divisors_of(v: int) -> np.ndarray:
    """The divisors of ``v`` >= 1, ascending (trial division up to sqrt(v))."""
    r = np.arange(1, math.isqrt(v) + 1, dtype=np.int64)
    small = r[v % r == 0]
    return np.union1d(small, v // small)


class DenseDivisors:
    """Divisors of every value up to ``max_value`` in one table (:func:`divisor_table`): the
    fast path for ordinary layers."""

    def __init__(self, max_value: int) -> None:
        self.divs, self.ndiv = divisor_table(max_value)

    def count(self, v: np.ndarray) -> np.ndarray:
        """Elementwise the number of divisors of ``v``."""
        return self.ndiv[v]

    def kth(self, v: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Elementwise the ``k``-th (0-based, ascending) divisor of ``v``."""
        return self.divs[v, k]

    def largest_at_most(self, v: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Elementwise the largest divisor of ``v`` that is <= ``t`` (t >= 1)."""
        divs, ndiv = self.divs[v], self.ndiv[v]
        ok = (divs <= t[..., None]) & (np.arange(divs.shape[-1]) < ndiv[..., None])
        k = ok.sum(axis=-1) - 1
        return np.take_along_axis(divs, k[..., None], axis=-1)[..., 0]


class LazyDivisors:
    """Divisors of the values the search actually meets, found when first needed (trial division,
    cached): for layers whose largest dimension is too large for a dense table. Same results as
    :class:`DenseDivisors`, slower per call."""

    def __init__(self) -> None:
        self.cache: dict[int, np.ndarray] = {}

    def _of(self, v: int) -> np.ndarray:
        ds = self.cache.get(v)
        if ds is None:
            ds = self.cache[v] = divisors_of(v) if v >= 1 else np.ones(1, np.int64)
        return ds

    def _each(self, v: np.ndarray, fn: Any, *others: np.ndarray) -> np.ndarray:
        """``fn(divisors of u, others at those positions)`` for each distinct value u of ``v``."""
        v = np.asarray(v, np.int64)
        out = np.empty(v.shape, np.int64)
        others = tuple(np.broadcast_to(np.asarray(o, np.int64), v.shape) for o in others)
        for u in np.unique(v):
            at = v == u
            out[at] = fn(self._of(int(u)), *(o[at] for o in others))
        return out

    def count(self, v: np.ndarray) -> np.ndarray:
        return self._each(v, len)

    def kth(self, v: np.ndarray, k: np.ndarray) -> np.ndarray:
        return self._each(v, lambda ds, k: ds[k], k)

    def largest_at_most(self, v: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self._each(v, lambda ds, t: ds[np.searchsorted(ds, t, side="right") - 1], t)


#: Largest layer dimension with a dense divisor table (63 MB at this size); above it (up to
#: gamma.limits.MAX_SIZE) the map space finds divisors lazily (:class:`LazyDivisors`).
DENSE_DIVISORS_MAX = 1 << 16


def make_divisors(max_value: int) -> DenseDivisors | LazyDivisors:
    """The divisor lookup for a layer whose largest dimension is ``max_value``."""
    return DenseDivisors(max_value) if max_value <= DENSE_DIVISORS_MAX else LazyDivisors()
