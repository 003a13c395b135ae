"""Optimizers by config name: ``gamma`` (the paper's GA), ``random``, ``fixed`` (a fixed
dataflow) and ``exhaustive`` (proven latency optima), registered lazily (their modules are
imported when chosen). Other packages register theirs through the ``gamma.optimizers``
entry-point group (the project's baselines: see pyproject.toml); ``gamma`` never imports them."""

from gamma.optimizers.base import (Optimizer, ProgressCallback, adapt_settings, available,
                                   cannot_co_search, co_searchers, factory_of, make_optimizer,
                                   register, register_lazy)

register_lazy("gamma", "gamma.optimizers.gamma:Gamma")
register_lazy("random", "gamma.optimizers.random_search:RandomSearch")
register_lazy("fixed", "gamma.optimizers.fixed:FixedDataflow")
register_lazy("exhaustive", "gamma.optimizers.exhaustive:Exhaustive")

__all__ = ["Optimizer", "ProgressCallback", "adapt_settings", "available", "cannot_co_search",
           "co_searchers", "factory_of", "make_optimizer", "register", "register_lazy"]
