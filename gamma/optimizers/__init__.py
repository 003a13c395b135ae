"""Optimizers by config name: ``gamma`` (the paper's GA) and ``random``. Baselines register
themselves from the top-level ``baselines`` package."""

from gamma.optimizers.base import Optimizer, ProgressCallback, available, make_optimizer, register
from gamma.optimizers import random_search  # noqa: F401  (registers "random")

__all__ = ["Optimizer", "ProgressCallback", "available", "make_optimizer", "register"]
from gamma.optimizers import gamma  # noqa: E402,F401  (registers "gamma")
