"""Pareto arithmetic for minimized cost vectors: dominance, non-dominated sorting
and crowding distance (NSGA-II, Deb et al. 2002), exact hypervolume in 2-D and 3-D, and the
end-to-end front of a network combined from per-layer fronts.

A cost matrix ``F`` has one row per point and one column per metric, every entry minimized;
a row with a non-finite entry (an infeasible mapping) is dominated by every finite row.
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np

from gamma.objectives.metrics import METRICS, QUANTITIES, network_values


#: Rows compared at once by :func:`nondominated_mask` with three or more metrics.
BLOCK = 256


def dominance(F: np.ndarray) -> np.ndarray:
    """``D[i, j]``: row i dominates row j (no worse in every metric, better in one)."""
    F = np.asarray(F, np.float64)
    le = (F[:, None, :] <= F[None, :, :]).all(axis=2)
    lt = (F[:, None, :] < F[None, :, :]).any(axis=2)
    return le & lt


def nondominated_mask(F: np.ndarray) -> np.ndarray:
    """Rows of ``F`` that no row dominates and that repeat no earlier row, finite rows only."""
    F = np.asarray(F, np.float64)
    if len(F) == 0:
        return np.zeros(0, bool)
    finite = np.isfinite(F).all(axis=1)
    if F.shape[1] == 2:  # sweep by the first metric: kept iff below every earlier second metric
        order = np.lexsort((np.arange(len(F)), F[:, 1], F[:, 0]))
        y = F[order, 1]
        best_before = np.concatenate([[np.inf], np.minimum.accumulate(y)[:-1]])
        keep = np.zeros(len(F), bool)
        keep[order] = y < best_before
        return keep & finite
    # In lexicographic order only an earlier row can dominate (or repeat) a later one: a row is
    # kept iff no earlier row is at most it in every metric; by transitivity it suffices to
    # compare with the rows kept so far and the earlier rows of its own block.
    order = np.lexsort((np.arange(len(F)), *F.T[::-1]))
    G, ok_all = F[order], finite[order]
    kept = np.zeros((0, F.shape[1]))
    keep_sorted = np.zeros(len(F), bool)
    for s in range(0, len(G), BLOCK):
        C = G[s: s + BLOCK]
        ok = ok_all[s: s + BLOCK].copy()
        if len(kept):
            ok &= ~(kept[None, :, :] <= C[:, None, :]).all(axis=2).any(axis=1)
        ok &= ~np.tril((C[None, :, :] <= C[:, None, :]).all(axis=2), -1).any(axis=1)
        keep_sorted[s: s + BLOCK] = ok
        kept = np.vstack([kept, C[ok]])
    keep = np.zeros(len(F), bool)
    keep[order] = keep_sorted
    return keep


def nondominated_ranks(F: np.ndarray) -> np.ndarray:
    """Front number of each row (0: non-dominated; then the front of what is left, ...);
    rows with a non-finite entry get the last rank plus one."""
    F = np.asarray(F, np.float64)
    n = len(F)
    rank = np.full(n, -1, np.int64)
    finite = np.isfinite(F).all(axis=1)
    idx = np.flatnonzero(finite)
    D = dominance(F[idx])
    dominated_by = D.sum(axis=0)
    left = np.ones(len(idx), bool)
    r = 0
    while left.any():
        front = left & (dominated_by == 0)
        rank[idx[front]] = r
        dominated_by -= D[front].sum(axis=0)
        left &= ~front
        r += 1
    rank[~finite] = r
    return rank


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row within ``F`` (one front): per metric, the gap
    between the two neighbours in that metric over the metric's range, summed; the extreme
    rows of each metric get +inf (so they are always preferred)."""
    F = np.asarray(F, np.float64)
    n, m = F.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(F[:, k], kind="stable")
        f = F[order, k]
        dist[order[0]] = dist[order[-1]] = np.inf
        span = f[-1] - f[0]
        if span > 0:
            dist[order[1:-1]] += (f[2:] - f[:-2]) / span
    return dist


def nsga2_order(F: np.ndarray) -> np.ndarray:
    """Indices of the rows with finite costs, best first: by front, then by decreasing crowding
    distance within the front (ties by index)."""
    F = np.asarray(F, np.float64)
    if F.ndim == 1:
        F = F[:, None]
    rank = nondominated_ranks(F)
    crowd = np.zeros(len(F))
    finite = np.isfinite(F).all(axis=1)
    for r in np.unique(rank[finite]):
        at = np.flatnonzero(rank == r)
        crowd[at] = crowding_distance(F[at])
    order = np.lexsort((np.arange(len(F)), -crowd, rank))
    return order[finite[order]]


def hypervolume(F: np.ndarray, ref: Sequence[float]) -> float:
    """The volume dominated by the rows of ``F`` and bounded by the reference point ``ref``
    (every metric minimized; rows not strictly below ``ref`` in every metric add nothing).
    Exact for 1, 2 and 3 metrics."""
    F = np.asarray(F, np.float64)
    ref = np.asarray(ref, np.float64)
    if F.ndim != 2 or F.shape[1] != len(ref):
        raise ValueError(f"expected points of shape (n, {len(ref)}), got {F.shape}")
    F = F[np.isfinite(F).all(axis=1) & (F < ref).all(axis=1)]
    if len(F) == 0:
        return 0.0
    m = F.shape[1]
    if m == 1:
        return float(ref[0] - F[:, 0].min())
    if m == 2:
        return _hv2(F, ref)
    if m == 3:
        return _hv3(F, ref)
    raise ValueError(f"hypervolume is implemented for 1 to 3 metrics, got {m}")


def _hv2(F: np.ndarray, ref: np.ndarray) -> float:
    """2-D: sweep by the first metric; each point adds the strip down to the best second metric
    seen so far."""
    F = F[np.lexsort((F[:, 1], F[:, 0]))]
    volume, best_y = 0.0, ref[1]
    for x, y in F:
        if y < best_y:
            volume += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(volume)


def _hv3(F: np.ndarray, ref: np.ndarray) -> float:
    """3-D: slabs between consecutive third-metric values, each the 2-D volume of the points at
    or below it."""
    F = F[np.argsort(F[:, 2], kind="stable")]
    z = np.append(F[:, 2], ref[2])
    volume = 0.0
    for i in range(len(F)):
        if z[i + 1] > z[i]:
            volume += _hv2(F[: i + 1, :2], ref[:2]) * (z[i + 1] - z[i])
    return float(volume)


def network_costs(outputs: Sequence[dict[str, Any]], metrics: Sequence[str]) -> list[float]:
    """The network's value of each metric from one chosen point per layer (cost-model outputs
    with ``runtime_cycles``, ``energy_nJ``, ``power``, ``area``), as the metric registry
    (:mod:`gamma.objectives.metrics`) combines layers."""
    return network_values(outputs, metrics)


def combine_fronts(layer_outputs: Sequence[Sequence[dict[str, Any]]], metrics: Sequence[str],
                   cap: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """The network's non-dominated combinations of one point per layer: ``layer_outputs[j]`` are
    layer j's front points (cost-model outputs). Layer by layer, every kept partial combination is
    extended by every point of the next layer and only the non-dominated partial states are kept
    (latency and energy add up, power and area take the maximum; all monotone, so a dominated
    partial combination never completes to a non-dominated one); beyond ``cap`` states, the
    ``cap`` with the largest crowding distance (extremes first) are kept. Returns (costs (p, metrics),
    choices (p, layers): each layer's point index), sorted by the first metric."""
    quantities = sorted({q for m in metrics for q in METRICS[m].state})
    S = np.zeros((1, len(quantities)))
    choice = np.zeros((1, 0), np.int64)
    for outs in layer_outputs:
        Q = np.array([[float(o[QUANTITIES[q].output]) for q in quantities] for o in outs],
                     np.float64)
        parts = [QUANTITIES[q].combine(np.repeat(S[:, k], len(Q)), np.tile(Q[:, k], len(S)))
                 for k, q in enumerate(quantities)]
        S = np.stack(parts, axis=1)
        choice = np.hstack([np.repeat(choice, len(Q), axis=0), np.tile(np.arange(len(Q)), len(choice))[:, None]])
        keep = np.flatnonzero(nondominated_mask(S))
        if len(keep) > cap:  # one front: the most spread out by crowding distance
            keep = keep[np.argsort(-crowding_distance(S[keep]), kind="stable")[:cap]]
        S, choice = S[keep], choice[keep]
    F = np.array([[METRICS[m].of_quantities(dict(zip(quantities, row))) for m in metrics]
                  for row in S], np.float64)
    keep = np.flatnonzero(nondominated_mask(F))
    keep = keep[np.lexsort(F[keep].T[::-1])]
    return F[keep], choice[keep]


def weight_grid(metrics: int, steps: int) -> np.ndarray:
    """Weight vectors on the simplex (non-negative, summing to 1) in steps of ``1/steps``."""
    combos = [c for c in itertools.product(range(steps + 1), repeat=metrics) if sum(c) == steps]
    return np.array(combos, np.float64) / steps


def weighted_fronts(layer_outputs: Sequence[Sequence[dict[str, Any]]], metrics: Sequence[str],
                    steps: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """An inner approximation of :func:`combine_fronts` for when exact combination is too
    costly (more than two per-layer quantities): for each weighting ``w`` of
    :func:`weight_grid`, each layer takes its point minimizing ``w`` . (its costs normalized to
    [0, 1] over its own front; ties: the smaller sum of normalized costs, then the first point);
    the non-dominated network totals are kept. Returns (costs, choices) as ``combine_fronts``."""
    W = weight_grid(len(metrics), steps)
    choice = np.zeros((len(W), len(layer_outputs)), np.int64)
    for j, outs in enumerate(layer_outputs):
        C = np.array([network_costs([o], metrics) for o in outs], np.float64)
        lo, hi = C.min(axis=0), C.max(axis=0)
        N = (C - lo) / np.where(hi > lo, hi - lo, 1.0)
        choice[:, j] = np.argmin(W @ N.T + 1e-9 * N.sum(axis=1)[None, :], axis=1)
    choice = np.unique(choice, axis=0)
    F = np.array([network_costs([layer_outputs[j][c] for j, c in enumerate(row)], metrics)
                  for row in choice], np.float64)
    keep = np.flatnonzero(nondominated_mask(F))
    keep = keep[np.lexsort(F[keep].T[::-1])]
    return F[keep], choice[keep]


__all__ = ["dominance", "nondominated_mask", "nondominated_ranks",
           "crowding_distance", "nsga2_order", "hypervolume", "network_costs", "combine_fronts",
           "weight_grid", "weighted_fronts"]
