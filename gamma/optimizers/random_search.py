"""Random search: uniform random genomes of the same map space, in batches; under
``codesign=digamma``, random designs each with random genomes repaired on its PE array."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from gamma.objectives.scalar import Objective
from gamma.optimizers.base import Optimizer, ProgressCallback
from gamma.optimizers.settings import check_int, platform_start

if TYPE_CHECKING:
    from gamma.mapspace.cospace import CoSpace
    from gamma.objectives.codesign import CoDesignObjective


class RandomSearch(Optimizer):
    """Draws ``batch`` uniform random genomes at a time until the budget is spent."""

    name = "random"
    multi_objective = True  # the objective's archive keeps the front of what it draws
    co_search = True

    def __init__(self, batch: int = 1000) -> None:
        self.batch = check_int("batch", batch, 1)

    def optimize(self, objective: Objective, rng: np.random.Generator,
                 on_progress: ProgressCallback | None = None) -> None:
        while objective.remaining > 0:
            n = min(self.batch, objective.remaining)
            objective.evaluate(objective.space.random(n, rng))
            if on_progress:
                on_progress(objective.used, objective.best_cost)

    def co_optimize(self, objective: "CoDesignObjective", space: "CoSpace",
                    rng: np.random.Generator, on_progress: ProgressCallback | None = None,
                    operators: dict[str, Any] | None = None) -> None:
        """``batch`` random individuals at a time (:meth:`CoSpace.random`: PE arrays uniform
        within the budget, genomes uniform and repaired on them) until the budget is spent; the
        first ``platform_start`` share of the budget (``codesign.operators``, as GAMMA's
        co-search starts) on the start design, the platform's array."""
        start = platform_start(operators or {})
        while objective.remaining > 0:
            n = min(self.batch, objective.remaining)
            held = math.ceil(start * objective.budget) - objective.used
            pop = space.random(min(n, held) if held > 0 else n, rng)
            if held > 0:
                space.hold_at_start(pop)
            objective.evaluate(pop.hw, pop.layers)
            if on_progress:
                on_progress(objective.used, objective.best_cost)
