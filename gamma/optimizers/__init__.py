"""Optimizers by config name: ``gamma`` (the paper's GA), ``random`` and ``fixed`` (a fixed
dataflow), registered lazily (their modules are imported when chosen). Baselines register themselves from the top-level
``baselines`` package; ``gamma`` never imports it."""

from gamma.optimizers.base import (Optimizer, ProgressCallback, available, make_optimizer, register,
                                   register_lazy)

register_lazy("gamma", "gamma.optimizers.gamma:Gamma")
register_lazy("random", "gamma.optimizers.random_search:RandomSearch")
register_lazy("fixed", "gamma.optimizers.fixed:FixedDataflow")
register_lazy("exhaustive", "gamma.optimizers.exhaustive:Exhaustive")

__all__ = ["Optimizer", "ProgressCallback", "available", "make_optimizer", "register",
           "register_lazy"]
