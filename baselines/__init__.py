"""Baseline optimizers under GAMMA's budget and objective, registered as ``optimizer=<name>``:
``stdga``, ``pso``, ``cma``, ``de``, ``tbpsa`` (nevergrad) and ``bo`` (scikit-optimize).

All search the unit box of :class:`baselines.codec.Codec`, which decodes to GAMMA's genome, and
are scored by the same :class:`gamma.objective.Objective`. Importing this package registers
them; the ``gamma`` package never imports it.
"""

from baselines import bayesopt, nevergrad_opt  # noqa: F401  (register the baselines)
from baselines.codec import Codec

__all__ = ["Codec"]
