"""The search rules of a job, decided once from its config and passed on: the map space's inner
tiles, the guard, paper mode, the objective's kind and metrics, and the cost model.

``paper_mode=true`` is the paper's original setting on the same cost model, whatever
``mapspace.inner_tiles`` and ``guard`` say: inner tiles ``any`` (anything up to the parent
tile), no guard (mappings below the compute bound or with a wrong MAC count count as feasible),
and each optimizer with the paper's settings only (:meth:`Optimizer.adapt_settings`: GAMMA
without its structure mutation, which is not the paper's). This module is the one place it is
decided; the map space, the objective, the optimizer, results.json and the optima cache all read
the same :class:`SearchRules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gamma.errors import GammaError
from gamma.objectives.metrics import METRICS
from gamma.optimizers import factory_of

#: The objective's kinds: one cost per mapping, a cost vector (``objective=pareto``), or the
#: two passes of ``objective=two_stage``.
SCALAR, PARETO, TWO_STAGE = "scalar", "pareto", "two_stage"


@dataclass(frozen=True)
class SearchRules:
    """How a job searches (see the module docstring)."""

    inner_tiles: str  # "divisors" or "any"
    guard: bool
    paper_mode: bool
    kind: str  # SCALAR, PARETO or TWO_STAGE
    metrics: tuple[str, ...]  # the metrics a cost holds (scalar: one; pareto: 2 or 3)
    costmodel: str  # the registered cost model's name

    @property
    def num_metrics(self) -> int:
        """How many metrics a cost holds: 1, or at least 2 with a cost vector."""
        return max(len(self.metrics), 2 if self.kind == PARETO else 1)


def objective_kind(cfg: dict[str, Any]) -> str:
    """SCALAR, PARETO or TWO_STAGE from ``objective.name``."""
    name = (cfg.get("objective") or {}).get("name")
    return name if name in (PARETO, TWO_STAGE) else SCALAR


def search_rules(cfg: dict[str, Any]) -> SearchRules:
    """The rules of the job ``cfg`` (a plain config as run.py composes it); a
    :class:`GammaError` naming the setting for a bad ``paper_mode``."""
    paper = cfg.get("paper_mode", False)
    if not isinstance(paper, bool):
        raise GammaError(f"paper_mode must be true or false, got {paper!r}")
    obj = cfg.get("objective") or {}
    kind = objective_kind(cfg)
    if kind == PARETO:
        metrics = tuple(str(m) for m in (obj.get("metrics") or ()))
    elif kind == TWO_STAGE:
        metrics = ("latency",)
    else:
        metrics = (str(obj.get("name")),) if obj.get("name") in METRICS else ()
    costmodel = str((cfg.get("costmodel") or {}).get("name", "maestro"))
    if paper:
        return SearchRules("any", False, True, kind, metrics, costmodel)
    return SearchRules(str((cfg.get("mapspace") or {}).get("inner_tiles", "divisors")),
                       bool(cfg.get("guard", True)), False, kind, metrics, costmodel)


def optimizer_spec(cfg: dict[str, Any], rules: SearchRules | None = None) -> tuple[str, dict[str, Any]]:
    """(registered name, constructor params) from ``cfg['optimizer']``, adapted to the rules by
    the optimizer itself (:meth:`~gamma.optimizers.base.Optimizer.adapt_settings`: paper mode,
    a cost vector)."""
    rules = rules or search_rules(cfg)
    opt = dict(cfg["optimizer"])
    name = str(opt.pop("name"))
    params, _ = factory_of(name).adapt_settings(opt, paper_mode=rules.paper_mode,
                                                num_metrics=rules.num_metrics)
    return name, params


def adapt_config(cfg: dict[str, Any]) -> str | None:
    """Record in ``cfg`` itself (so config.yaml and MLflow show what ran) how the optimizer
    adapts its settings to a cost vector (``objective=pareto``: GAMMA's truncation selection
    becomes ``nsga2``). Returns the optimizer's note saying so, else None. Paper mode's
    adaptations are applied when the optimizer is built (:func:`optimizer_spec`), not recorded."""
    rules = search_rules(cfg)
    opt = cfg.get("optimizer") or {}
    codesign = (cfg.get("codesign") or {}).get("name") == "digamma"  # it refuses pareto itself
    if rules.kind != PARETO or "name" not in opt or codesign:
        return None
    try:
        factory = factory_of(str(opt["name"]))
    except GammaError:
        return None  # an unknown optimizer is reported when the job is set up
    params = {k: v for k, v in opt.items() if k != "name"}
    new, note = factory.adapt_settings(params, paper_mode=False, num_metrics=rules.num_metrics)
    cfg["optimizer"] = {"name": opt["name"], **new}
    return note
