"""Random search: uniform random genomes of the same map space, in batches."""

from __future__ import annotations

import numpy as np

from gamma.objectives.scalar import Objective
from gamma.optimizers.base import Optimizer, ProgressCallback
from gamma.optimizers.settings import check_int


class RandomSearch(Optimizer):
    """Draws ``batch`` uniform random genomes at a time until the budget is spent."""

    name = "random"
    multi_objective = True  # the objective's archive keeps the front of what it draws

    def __init__(self, batch: int = 1000) -> None:
        self.batch = check_int("batch", batch, 1)

    def optimize(self, objective: Objective, rng: np.random.Generator,
                 on_progress: ProgressCallback | None = None) -> None:
        while objective.remaining > 0:
            n = min(self.batch, objective.remaining)
            objective.evaluate(objective.space.random(n, rng))
            if on_progress:
                on_progress(objective.used, objective.best_cost)
