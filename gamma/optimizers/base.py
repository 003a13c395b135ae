"""The optimizer contract and the registry of optimizers by config name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np

from gamma.errors import GammaError
from gamma.objective import Objective

#: Called after every evaluated batch with (evaluations used, best cost so far).
ProgressCallback = Callable[[int, float], None]


class Optimizer(ABC):
    """Searches one layer's map space through an :class:`Objective` until its budget is spent.

    Every optimizer reaches the cost model only through the objective, which counts the budget
    and keeps the best feasible mapping; ``optimize`` returns nothing.
    """

    name: str = "optimizer"

    @abstractmethod
    def optimize(self, objective: Objective, rng: np.random.Generator,
                 on_progress: ProgressCallback | None = None) -> None:
        """Spend ``objective.remaining`` evaluations (never more)."""


_REGISTRY: dict[str, Callable[..., Optimizer]] = {}


def register(name: str) -> Callable[[Callable[..., Optimizer]], Callable[..., Optimizer]]:
    """Class decorator: make an optimizer available as ``optimizer=<name>``."""

    def deco(factory: Callable[..., Optimizer]) -> Callable[..., Optimizer]:
        _REGISTRY[name] = factory
        return factory

    return deco


def available() -> list[str]:
    return sorted(_REGISTRY)


def make_optimizer(name: str, **params: Any) -> Optimizer:
    """The optimizer registered as ``name``, built with its config ``params``."""
    if name not in _REGISTRY:
        raise GammaError(f"unknown optimizer {name!r}; available: {', '.join(available())}")
    try:
        return _REGISTRY[name](**params)
    except TypeError as e:
        raise GammaError(f"optimizer {name!r}: bad settings {sorted(params)}: {e}") from None
