"""Baseline optimizers under GAMMA's budget and objective, registered as ``optimizer=<name>``:
``stdga``, ``pso``, ``cma``, ``de``, ``tbpsa`` (nevergrad) and ``bo`` (scikit-optimize).

All search the unit box of :class:`baselines.codec.Codec`, which decodes to GAMMA's genome, and
are scored by the same :class:`gamma.objective.Objective`. Importing this package only registers
their names (cheap): a baseline's module, and nevergrad or scikit-optimize with it, is imported
when that baseline is built. The ``gamma`` package never imports this one.
"""

from gamma.optimizers import register_lazy

#: Config name -> "module:class" of each baseline.
BASELINES = {
    "stdga": "baselines.nevergrad_opt:StdGA",
    "pso": "baselines.nevergrad_opt:PSO",
    "cma": "baselines.nevergrad_opt:CMA",
    "de": "baselines.nevergrad_opt:DE",
    "tbpsa": "baselines.nevergrad_opt:TBPSA",
    "bo": "baselines.bayesopt:BayesOpt",
}

for _name, _target in BASELINES.items():
    register_lazy(_name, _target)
