"""The library API: search one layer or a whole model in memory (no files, no printing, no MLflow).

    from gamma.search.api import search_model
    res = search_model("resnet18", "edge", system="s2", budget=2000, seed=0, layers=[2, 7])
    res.total_cost                      # cycles (the objective's unit); inf if a layer is infeasible
    res.layers[2].mapping, res.layers[2].outputs["energy_nJ"], res.layers[2].history

Settings not given come from ``conf/`` as ``python run.py`` composes them (Hydra's compose API),
so ``search_model(..., seed=s)`` finds the same mappings as ``python run.py ... seed=s``: every
unique layer shape is searched once with its own generator ``np.random.default_rng([seed,
unique_index])``. :class:`gamma.search.job.Job` is the shell that adds results.json, mapping files,
progress bars and MLflow around :func:`search_unique`. Units: cycles, nJ, elements, seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.optimizers import ProgressCallback
from gamma.search import twostage
from gamma.search.parallel import search_parallel
from gamma.search.rules import TWO_STAGE, adapt_config, search_rules
from gamma.search.setup import (LayerResult, Setup, build_setup, check_seed_budget, run_layer,
                                search_unique, total_cost, workers_of)
from gamma.workloads.layer import Layer, Model

__all__ = ["search_layer", "search_model", "settings", "compose", "LayerResult", "ModelResult",
           "Setup", "build_setup", "search_unique", "total_cost"]

#: The project's Hydra configuration (conf/config.yaml and its groups).
CONF = Path(__file__).resolve().parents[2] / "conf"
GROUPS = ("model", "platform", "system", "optimizer", "objective")

Choice = str | dict[str, Any] | None


@dataclass
class ModelResult:
    """The search of a model's selected layers; layers of the same shape share one result."""

    model: Model
    hardware: Hardware
    config: dict[str, Any]  # the settings used, as run.py's composed config
    layers: dict[int, LayerResult]  # 1-based model layer index -> its shape's result
    #: objective=two_stage: both stages and the bottleneck (gamma.search.twostage.TwoStage); layers
    #: then hold the final (stage-2) results.
    two_stage: Any = None

    @property
    def total_cost(self) -> float:
        """Sum over the selected layers of the best cost (objective's unit); inf if any layer
        is infeasible."""
        return total_cost([r.cost for r in self.layers.values()])

    @property
    def feasible(self) -> bool:
        return all(r.feasible for r in self.layers.values())


# --- the settings -------------------------------------------------------------------------------
def compose(overrides: Sequence[str] = ()) -> Any:
    """conf/config.yaml composed with Hydra ``overrides`` (an unresolved OmegaConf config)."""
    from hydra import compose as hydra_compose, initialize_config_dir

    from gamma.search.strict_numbers import check_overrides

    check_overrides(overrides)  # budget=1_0: Hydra's grammar reads 10
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return hydra_compose("config", overrides=list(overrides))


def settings(*, model: Choice = None, platform: Hardware | Choice = None,
             system: Choice = None, optimizer: Choice = None, objective: Choice = None,
             overrides: Sequence[str] = (), **keys: Any) -> dict[str, Any]:
    """A job's plain config as run.py composes it. Each group is a name from ``conf/<group>/``,
    a dict (its ``name`` picks the file, the other entries replace the file's), or None (the
    default); ``platform`` may be a :class:`Hardware`. ``keys`` are
    top-level keys (``budget``, ``seed``, ``layers``, ``guard``, ...); ``overrides`` are Hydra
    overrides as on the command line."""
    from omegaconf import OmegaConf

    choices = {"model": model, "platform": platform, "system": system, "optimizer": optimizer,
               "objective": objective}
    names, merges = [], {}
    for group, value in choices.items():
        if isinstance(value, Hardware):
            value = value.to_dict()
        if isinstance(value, str):
            names.append(f"{group}={value}")
        elif isinstance(value, dict):
            if (CONF / group / f"{value.get('name')}.yaml").is_file():
                names.append(f"{group}={value['name']}")
            merges[group] = value
        elif value is not None:
            raise GammaError(f"{group}: expected a name from conf/{group}/ or a dict, got {value!r}")
    cfg = compose([*names, *overrides])
    OmegaConf.set_struct(cfg, False)
    for group, value in merges.items():
        cfg[group] = OmegaConf.merge(cfg[group], value)
    for key, value in keys.items():
        cfg[key] = value
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:  # noqa: BLE001 - omegaconf: an interpolation that does not resolve
        raise GammaError(f"config: {e}") from None
    adapt_config(plain)  # type: ignore[arg-type]
    return plain  # type: ignore[return-value]


def search_layer(layer: Layer, hardware: Hardware | Choice = None, *, optimizer: Choice = None,
                 budget: int | None = None, seed: int | Sequence[int] | None = None,
                 rng: np.random.Generator | None = None, system: Choice = None,
                 objective: Choice = None, overrides: Sequence[str] = (),
                 on_progress: ProgressCallback | None = None) -> LayerResult:
    """Search the mappings of one layer. ``hardware``: a :class:`Hardware`, a platform name
    (``edge``, ``cloud``) or None (the default platform); ``optimizer``, ``system``,
    ``objective``: names from ``conf/`` or dicts (see :func:`settings`); ``budget``:
    cost-model evaluations (default from conf/config.yaml). The generator is ``rng``, else
    ``np.random.default_rng(seed)``; a model job searches its unique layer ``u`` with
    ``seed=[seed, u]``."""
    keys = {k: v for k, v in (("budget", budget),) if v is not None}
    cfg = settings(platform=hardware, optimizer=optimizer, system=system, objective=objective,
                   overrides=overrides, **keys)
    check_seed_budget(cfg)
    hw = hardware if isinstance(hardware, Hardware) else Hardware.from_dict(cfg["platform"])
    if rng is None:
        rng = np.random.default_rng(cfg["seed"] if seed is None else seed)
    return run_layer(cfg, layer, hw, rng, on_progress)


def search_model(model: Model | str | None = None, hardware: Hardware | Choice = None, *,
                 layers: Sequence[int] | None = None, optimizer: Choice = None,
                 budget: int | None = None, seed: int | None = None, system: Choice = None,
                 objective: Choice = None, overrides: Sequence[str] = (),
                 workers: int | None = None) -> ModelResult:
    """Search every selected layer (1-based ``layers``, None = all) of ``model`` (a
    :class:`Model`, a name from conf/model/, or None for the default) on ``hardware`` (see
    :func:`search_layer`); each unique shape once, with ``default_rng([seed, unique_index])``,
    exactly as ``python run.py``. ``workers`` > 1 searches that many unique layers at once in
    worker processes (same results; default ``parallel.workers`` of conf/config.yaml)."""
    keys: dict[str, Any] = {k: v for k, v in (("budget", budget), ("seed", seed)) if v is not None}
    if layers is not None:
        keys["layers"] = list(layers)
    cfg = settings(model=None if isinstance(model, Model) else model, platform=hardware, optimizer=optimizer, system=system,
                   objective=objective, overrides=overrides, **keys)
    if workers is not None:
        cfg["parallel"] = {**(cfg.get("parallel") or {}), "workers": workers}
    setup = build_setup(cfg, model if isinstance(model, Model) else None)
    if search_rules(cfg).kind == TWO_STAGE:
        found2, ts = twostage.search_model(cfg, setup)
        return ModelResult(setup.model, setup.hw, cfg, found2, ts)
    n = workers_of(cfg)
    found = (dict(search_parallel(cfg, setup, setup.todo, n)) if n > 1 and len(setup.todo) > 1
             else {u: search_unique(cfg, setup, u) for u in setup.todo})
    return ModelResult(setup.model, setup.hw, cfg,
                       {i: found[setup.which[i - 1]] for i in setup.selected})
