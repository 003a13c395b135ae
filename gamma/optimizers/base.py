"""The optimizer contract and the registry of optimizers by config name.

The registry maps a name (``optimizer=<name>``) to a factory, or lazily to a ``"module:attr"``
string that is imported only when that optimizer is built: a GAMMA job never imports nevergrad
or scikit-optimize (together about 2 s of a one-layer job).
"""

from __future__ import annotations

import importlib
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
    and keeps the best feasible mapping; ``optimize`` returns nothing. Constructors check their
    settings and raise :class:`~gamma.optimizers.settings.SettingError` on a bad one.
    """

    name: str = "optimizer"
    #: Whether it can search ``objective=pareto`` (uses the objective's cost vectors, or, as
    #: random search, needs no costs to steer); the others are refused with an ``error:``.
    multi_objective: bool = False

    @abstractmethod
    def optimize(self, objective: Objective, rng: np.random.Generator,
                 on_progress: ProgressCallback | None = None) -> None:
        """Spend ``objective.remaining`` evaluations (never more)."""

    def check_search_rules(self, rules: dict[str, Any]) -> None:
        """Raise a :class:`GammaError` naming the setting if the optimizer cannot search under
        ``rules`` (``gamma.api.search_rules``: inner tiles, guard); by default it can."""

    def evaluation_budget(self, budget: int) -> int:
        """The objective's evaluation cap given the job's ``budget`` (evaluations per unique
        layer): the budget itself, except for optimizers that set their own (exhaustive)."""
        return budget


Factory = Callable[..., Optimizer]
_REGISTRY: dict[str, Factory | str] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    """Class decorator: make an optimizer available as ``optimizer=<name>``."""

    def deco(factory: Factory) -> Factory:
        _REGISTRY[name] = factory
        return factory

    return deco


def register_lazy(name: str, target: str) -> None:
    """Make ``optimizer=<name>`` build ``target`` (``"package.module:Class"``), importing its
    module only when that optimizer is built."""
    if ":" not in target:
        raise ValueError(f"lazy optimizer target must be 'module:attr', got {target!r}")
    _REGISTRY[name] = target


def available() -> list[str]:
    return sorted(_REGISTRY)


def factory_of(name: str) -> Factory:
    """The factory registered as ``name``, importing its module if it was registered lazily."""
    if name not in _REGISTRY:
        raise GammaError(f"unknown optimizer {name!r}; available: {', '.join(available())}")
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        module, attr = entry.split(":", 1)
        try:
            entry = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            raise GammaError(f"optimizer {name!r} needs the package {e.name!r}, which is not "
                             f"installed") from None
        _REGISTRY[name] = entry
    return entry


def make_optimizer(name: str, **params: Any) -> Optimizer:
    """The optimizer registered as ``name``, built with its config ``params``. A bad setting
    raises a :class:`GammaError` naming it (``optimizer.<field>``)."""
    factory = factory_of(name)
    try:
        return factory(**params)
    except GammaError:
        raise
    except (TypeError, ValueError) as e:
        raise GammaError(f"optimizer {name!r}: bad settings {sorted(params)}: {e}") from None
