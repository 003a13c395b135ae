"""What the baselines tell their libraries: a finite loss per cost (the objective gives +inf for
an infeasible mapping, which the libraries cannot use).

``log10(cost)`` for a feasible mapping and :data:`PENALTY` for an infeasible one. The log is
monotone, so every rank- or comparison-based optimizer (CMA-ES, DE, PSO, the GAs, TBPSA)
behaves exactly as on the raw cost, and the values stay small: nevergrad clips losses above
5e20 (with a warning) and a tree surrogate averages them. Every feasible cost is below
1e308, hence every feasible loss below 309 < :data:`PENALTY`.
"""

from __future__ import annotations

import numpy as np

#: Loss of an infeasible mapping (above log10 of any finite float).
PENALTY = 1000.0


def to_loss(cost: np.ndarray) -> np.ndarray:
    """``log10(cost)`` where finite, :data:`PENALTY` where +inf (costs are positive)."""
    cost = np.asarray(cost, np.float64)
    ok = np.isfinite(cost)
    out = np.full(cost.shape, PENALTY)
    out[ok] = np.log10(np.maximum(cost[ok], np.finfo(np.float64).tiny))
    return out
