"""The optimizer contract and the registry of optimizers by config name.

The registry maps a name (``optimizer=<name>``) to a factory, or lazily to a ``"module:attr"``
string that is imported only when that optimizer is built: a GAMMA job never imports nevergrad
or scikit-optimize (together about 2 s of a one-layer job). Besides the optimizers registered
in :mod:`gamma.optimizers`, every installed package may add optimizers through the entry-point
group ``gamma.optimizers`` (``name = "module:Class"``; the project's ``baselines`` do so in
pyproject.toml): they are found by name without importing the package, so the library API sees
them as ``run.py`` does. A name registered twice is an error.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from gamma.errors import GammaError
from gamma.objectives.scalar import Objective

if TYPE_CHECKING:
    from gamma.mapspace.cospace import CoSpace
    from gamma.objectives.codesign import CoDesignObjective

#: The entry-point group where installed packages register optimizers.
ENTRY_POINT_GROUP = "gamma.optimizers"
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

    #: Whether it can co-search hardware and mappings (``codesign=digamma``, :meth:`co_optimize`).
    co_search: bool = False

    def co_optimize(self, objective: "CoDesignObjective", space: "CoSpace",
                    rng: np.random.Generator, on_progress: ProgressCallback | None = None,
                    operators: dict[str, Any] | None = None) -> None:
        """Spend ``objective.remaining`` individuals (a design and a genome per unique layer of
        ``space``; each costs one sample on every unique layer), never more. ``operators``:
        ``codesign.operators`` (GAMMA's hardware operators; the others take none). Optimizers
        that set :attr:`co_search` implement it; by default it raises a :class:`GammaError`."""
        raise cannot_co_search(self.name)

    def check_search_rules(self, rules: Any) -> None:
        """Raise a :class:`GammaError` naming the setting if the optimizer cannot search under
        the job's ``rules`` (:class:`gamma.search.rules.SearchRules`: inner tiles, guard, paper
        mode); by default it can."""

    def evaluation_budget(self, budget: int) -> int:
        """The objective's evaluation cap given the job's ``budget`` (evaluations per unique
        layer): the budget itself, except for optimizers that set their own (exhaustive)."""
        return budget

    @classmethod
    def adapt_settings(cls, params: dict[str, Any], *, paper_mode: bool,
                       num_metrics: int) -> tuple[dict[str, Any], str | None]:
        """The constructor ``params`` this optimizer runs with under the job's rules (paper
        mode: only the paper's own settings; ``num_metrics`` > 1: a cost vector per mapping),
        and a note for the user when they changed (None). Default: unchanged. Never modifies
        ``params``."""
        return params, None


Factory = Callable[..., Optimizer]
_REGISTRY: dict[str, Factory | str] = {}
_entry_points_loaded = False


def _add(name: str, entry: Factory | str) -> None:
    """Register ``entry`` as ``name``. Registering a name twice is an error, unless both name the
    same target (a lazy ``"module:Class"`` and that class itself). The entry points are read
    first, so a clash with an installed package's name is found here, not later."""
    load_entry_points()
    old = _REGISTRY.get(name)
    if old is not None and _describe(old) != _describe(entry):
        raise GammaError(f"optimizer {name!r} is registered twice ({_describe(old)} and "
                         f"{_describe(entry)})")
    _REGISTRY[name] = entry


def _target_of(factory: Factory) -> str:
    return f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', '?')}"


def _describe(entry: Factory | str) -> str:
    return entry if isinstance(entry, str) else _target_of(entry)


def register(name: str) -> Callable[[Factory], Factory]:
    """Class decorator: make an optimizer available as ``optimizer=<name>``."""

    def deco(factory: Factory) -> Factory:
        _add(name, factory)
        return factory

    return deco


def register_lazy(name: str, target: str) -> None:
    """Make ``optimizer=<name>`` build ``target`` (``"package.module:Class"``), importing its
    module only when that optimizer is built."""
    if ":" not in target:
        raise ValueError(f"lazy optimizer target must be 'module:attr', got {target!r}")
    _add(name, target)


def load_entry_points() -> None:
    """Register (lazily, by name) the optimizers of the ``gamma.optimizers`` entry-point group;
    once per process. Imports none of their modules."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        register_lazy(ep.name, ep.value)


def available() -> list[str]:
    load_entry_points()
    return sorted(_REGISTRY)


def factory_of(name: str) -> Factory:
    """The factory registered as ``name``, importing its module if it was registered lazily."""
    load_entry_points()
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


def co_searchers() -> list[str]:
    """Names of the registered optimizers that can co-search (:attr:`Optimizer.co_search`),
    importing their modules; those whose package is not installed are left out."""
    names = []
    for name in available():
        try:
            factory = factory_of(name)
        except GammaError:
            continue
        if getattr(factory, "co_search", False):
            names.append(name)
    return names


def cannot_co_search(name: str) -> GammaError:
    """The error of optimizer ``name`` asked to co-search, naming those that can."""
    return GammaError(f"optimizer={name}: cannot co-search hardware and mappings; "
                      f"codesign=digamma co-searches with {', '.join(co_searchers())}")


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


def adapt_settings(name: str, params: dict[str, Any], *, paper_mode: bool,
                   num_metrics: int) -> tuple[dict[str, Any], str | None]:
    """:meth:`Optimizer.adapt_settings` of the optimizer registered as ``name`` (a factory that
    is not an :class:`Optimizer` class keeps its params)."""
    hook = getattr(factory_of(name), "adapt_settings", None)
    if hook is None:
        return params, None
    return hook(params, paper_mode=paper_mode, num_metrics=num_metrics)
