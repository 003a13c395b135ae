"""Best-so-far curves of a results.json's layers (no cost model, no plotting): what compare.py
draws and what the job's MLflow run logs as its end-to-end ``best_cost``."""

from __future__ import annotations

from typing import Any

import numpy as np


def end_to_end_best(layers: list[dict[str, Any]], grid: np.ndarray) -> np.ndarray:
    """The end-to-end best-so-far cost (the objective's unit, summed over ``layers``) at each of
    ``grid``'s steps (samples per unique layer): each layer's best cost among its ``history``
    entries at or before the step; inf until every layer has a feasible one."""
    total = np.zeros(len(grid))
    for layer in layers:
        best = np.full(len(grid), np.inf)
        for s, c in layer.get("history", []):
            if c is not None:
                best[grid >= s] = np.minimum(best[grid >= s], c)
        total += best
    return total
