"""Baseline optimizers under GAMMA's budget and objective, registered as ``optimizer=<name>``:
``stdga``, ``pso``, ``cma``, ``de``, ``tbpsa`` (nevergrad) and ``bo`` (scikit-optimize).

All search the unit box of :class:`baselines.codec.Codec`, which decodes to GAMMA's genome, and
are scored by the same :class:`gamma.objectives.scalar.Objective`. They are registered by name
through the ``gamma.optimizers`` entry-point group in pyproject.toml, so ``run.py`` and the
library API find them without importing this package; a baseline's module, and nevergrad or
scikit-optimize with it, is imported when that baseline is built. The ``gamma`` package never
imports this one.
"""
