"""Nevergrad baselines: one flat bounded ``ng.p.Array(shape=(d,), lower=0, upper=1)`` over the
codec's box (a tuple of ``Choice`` nodes costs ~10 ms per sample), asked and told in batches.

Each round asks ``batch`` candidates (the last round fewer, so the budget is spent exactly),
evaluates them in one objective call, tells nevergrad their losses (:mod:`baselines.loss`) and
reports progress. With ``objective=pareto`` each candidate is told its loss vector (one loss
per metric) and nevergrad's multi-objective mode ranks candidates by their hypervolume gain
(reference point ``PENALTY - 1`` per metric, so every feasible point counts and every
infeasible one is outside); the objective's archive keeps the front. The optimizer is built with ``budget = objective.remaining`` and
``num_workers = batch``: nevergrad sizes its populations to at least the number of workers, so
each baseline's batch is chosen at or below its default population (see conf/optimizer/).
The parametrization's random state is seeded from the generator passed to ``optimize``: the same
seed gives the same search. Errors raised by nevergrad propagate.

Under ``codesign=digamma`` (:meth:`NevergradOptimizer.co_optimize`) the box is the joint one of
:class:`~baselines.cocodec.CoCodec` (hardware coordinates, then every unique layer's), with the
same settings and batches, and each individual is told the loss of the penalized cost GAMMA's
co-search ranks designs by.

Baselines (config name: nevergrad optimizer):

* ``stdga``: ``RecombiningGA``, a standard GA (mutation and crossover). The paper's code ran
  the compact GA ``cGA`` (``pureGA``), still available as ``optimizer.optimizer=cGA``; it
  samples each coordinate from ``arity`` (500) levels through nevergrad's normal-quantile
  discretization, so its draws are bell-shaped around 0.5 (std 1/6, folded at the bounds)
  rather than uniform, where mappings are infeasible, and it is 5x slower;
* ``pso``: ``RealSpacePSO`` (``PSO`` moves particles in an arctan-squashed copy of the already
  bounded box and did worse here and on nevergrad's own bounded tests);
* ``cma``: ``ParametrizedCMA(scale=3, random_init=True)``, standard full-covariance CMA-ES
  (nevergrad's ``LargeCMA`` step) from a random mean: nevergrad's ``CMA`` picks ``CMAbounded``
  on a bounded box, which starts at the box centre (an infeasible mapping on the edge platform)
  with a small step and found no feasible mapping in 10,000 samples of ResNet-18 layer 2 on S2;
* ``de``: ``DE``, nevergrad's standard differential evolution;
* ``tbpsa``: ``NaiveTBPSA`` (the paper's mapping of TBPSA; the objective is deterministic, so
  TBPSA's noise handling has nothing to do).

Speed, with the samples of nevergrad's own ask and tell (the tests compare every cost):

* :class:`~baselines.unitbox.UnitBox`, nevergrad's ``Array`` box whose per-candidate
  bookkeeping (copy, freeze, constraint check, value) skips the walks over the parameter tree
  (2-4x less time outside the cost model);
* :class:`CMAPopulations`: CMA-ES asks pycma for whole populations as arrays and tells it the
  same arrays nevergrad would, with no ``Parameter`` per candidate; :class:`CachedCMA` returns
  the existing strategy instead of rebuilding a ``Normalizer`` of the parametrization on every
  access to ``es`` and asks pycma's ``stop()`` once per iteration;
* PSO and TBPSA tells skip nevergrad's archive, which their search never reads
  (:data:`ARCHIVE_FREE`).

What remains is the optimizers' own per-candidate Python (PSO's particle update, DE's
crossover, RecombiningGA's roulette over its archive) and pycma's own per-generation update.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import numbers
import warnings
from typing import Any

import nevergrad as ng
import numpy as np
from nevergrad.optimization import optimizerlib
from nevergrad.optimization.base import ConfiguredOptimizer

from baselines.cocodec import CoCodec
from baselines.codec import Codec
from baselines.loss import PENALTY, to_loss
from baselines.unitbox import UnitBox
from gamma.mapspace.cospace import CoSpace
from gamma.objectives.codesign import CoDesignObjective
from gamma.objectives.scalar import Objective
from gamma.optimizers.base import Optimizer, ProgressCallback
from gamma.optimizers.settings import SettingError, check_int, platform_start



#: (optimizer, options) that ran a trial ask/tell in this process (:meth:`try_options`).
_TRIED: set[str] = set()


class CachedCMA(optimizerlib._CMA):
    """Nevergrad's CMA-ES without the per-access ``Normalizer`` (see the module doc): the same
    strategy object, created and restarted by nevergrad's own ``es``. pycma's ``stop()``
    re-evaluates its conditions only when the iteration count changed (``tell``); so is it
    asked here: once per strategy and iteration."""

    _live: tuple[Any, int] | None = None  # (strategy, iteration) whose stop() was empty

    @property
    def es(self) -> Any:
        es = self._es
        if es is not None and self._config.fcmaes:
            return es
        live = self._live
        if es is not None and live is not None and live[0] is es and live[1] == es.countiter:
            return es
        if es is not None and not es.stop():
            self._live = (es, es.countiter)
            return es
        return optimizerlib._CMA.es.fget(self)


def with_cached_cma(factory: Any) -> Any:
    """``factory`` itself, or for a configured CMA-ES (``ParametrizedCMA(...)``, ``DiagonalCMA``, ...)
    a copy that builds :class:`CachedCMA` (the ``CMA`` chooser builds its own, uncached)."""
    if isinstance(factory, ConfiguredOptimizer) and factory._OptimizerClass is optimizerlib._CMA:
        factory = copy.copy(factory)
        factory._OptimizerClass = CachedCMA
    return factory


class NevergradOptimizer(Optimizer):
    """Nevergrad's ``optimizer``, ``batch`` candidates per ask/tell round. ``optimizer`` is a
    registry name (``ng.optimizers.registry``); with ``options``, a configurable family of
    ``ng.families`` built as ``family(**options)`` or a registry class given ``options`` as
    keyword arguments (e.g. ``cGA`` with ``arity``)."""

    name = "nevergrad"
    multi_objective = True
    co_search = True

    def __init__(self, optimizer: str, batch: int, options: dict[str, Any] | None = None) -> None:
        self.batch = check_int("batch", batch, 1)
        self.factory = with_cached_cma(self.make_factory(optimizer, options))
        self.optimizer, self.options = optimizer, options
        if options:
            tried = repr((optimizer, sorted(options.items())))
            if tried not in _TRIED:
                self.try_options()
                _TRIED.add(tried)

    def try_options(self) -> None:
        """Ask and tell a few candidates on a small box, so that options nevergrad accepts but
        cannot run with (e.g. CMA-ES at ``scale=0``) fail before the search, as a
        :class:`SettingError`."""
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._trial()
        except Exception as e:  # noqa: BLE001 - any failure of the library is the options' fault
            raise SettingError("options", self.options, f"nevergrad's {self.optimizer} cannot run "
                               f"with them ({type(e).__name__}: {e})") from None

    def _trial(self) -> None:
        """Three rounds of ``batch`` candidates on [0, 1]^8 with random losses."""
        opt = self.build(8, 3 * self.batch, 0)
        losses = np.random.default_rng(0).random(3 * self.batch)
        for r in range(3):  # three rounds: a full generation at least
            cands = [opt.ask() for _ in range(self.batch)]
            for c, loss in zip(cands, losses[r * self.batch:]):
                opt.tell(c, float(loss))

    @staticmethod
    def make_factory(optimizer: str, options: dict[str, Any] | None) -> Any:
        """Nevergrad's factory for ``optimizer`` with ``options``, checked against nevergrad's
        registry and families (a bad name or option raises :class:`SettingError`)."""
        if options is not None and not isinstance(options, dict):
            raise SettingError("options", options, "must be a mapping of keyword arguments or null")
        entry = ng.optimizers.registry.get(optimizer) if isinstance(optimizer, str) else None
        family = getattr(ng.families, optimizer, None) if isinstance(optimizer, str) else None
        if entry is None and (options is None or family is None):
            raise SettingError("optimizer", optimizer, "nevergrad has no optimizer of that name "
                               "(see nevergrad.optimizers.registry)" + (
                                   "" if options is None else " nor a family of that name"))
        if options is None:
            return entry
        check_option_values(family if family is not None else entry, options)
        try:
            if family is not None:
                return family(**dict(options))
            if isinstance(entry, type):  # an optimizer class, e.g. cGA
                inspect.signature(entry).bind_partial(parametrization=None, **dict(options))
                return functools.partial(entry, **dict(options))
        except TypeError as e:
            raise SettingError("options", options, f"not accepted by nevergrad's {optimizer}: {e}") from None
        raise SettingError("options", options, f"nevergrad's {optimizer!r} takes no options "
                           f"(not a family nor a class)")

    def build(self, dim: int, budget: int, seed: int) -> Any:
        """The nevergrad optimizer over [0, 1]^dim, its random state seeded with ``seed``."""
        param = UnitBox(dim)
        param.random_state = np.random.RandomState(seed)
        return self.factory(parametrization=param, budget=budget, num_workers=self.batch)

    def optimize(self, objective: Objective, rng: np.random.Generator,
                 on_progress: ProgressCallback | None = None) -> None:
        codec = Codec(objective.space)
        opt = self.build(codec.dim, objective.remaining, int(rng.integers(2**32)))
        vector = objective.num_metrics > 1
        if vector:  # the hypervolume's reference: above every feasible loss, below PENALTY
            opt.tell(ng.p.MultiobjectiveReference(), [PENALTY - 1.0] * len(objective.metrics))
        steps: CandidateSteps | CMAPopulations = (
            CMAPopulations(opt) if not vector and CMAPopulations.fits(opt) else CandidateSteps(opt, vector))
        while objective.remaining > 0:
            x = steps.ask(min(self.batch, objective.remaining))
            genomes = codec.decode(x)
            steps.tell(objective.evaluate_vector(genomes) if vector else objective.evaluate(genomes))
            if on_progress:
                on_progress(objective.used, objective.best_cost)

    def co_optimize(self, objective: CoDesignObjective, space: CoSpace,
                    rng: np.random.Generator, on_progress: ProgressCallback | None = None,
                    operators: dict[str, Any] | None = None) -> None:
        """The co-search over the joint box (:class:`~baselines.cocodec.CoCodec`: hardware
        coordinates, then every unique layer's), ``batch`` individuals per round, each told the
        loss of the penalized cost GAMMA's co-search ranks by (:meth:`CoDesignObjective.evaluate`;
        +inf, a PE array over the budget: :data:`~baselines.loss.PENALTY`; a front: the loss
        vector, one per metric). ``operators``
        (GAMMA's hardware operators): only ``platform_start`` applies, the share of the budget
        whose individuals are held at the start design (their hardware coordinates ignored)."""
        codec = CoCodec(space)
        opt = self.build(codec.dim, objective.remaining, int(rng.integers(2**32)))
        vector = objective.pareto
        if vector:  # the hypervolume's reference: above every feasible loss, below PENALTY
            opt.tell(ng.p.MultiobjectiveReference(), [PENALTY - 1.0] * len(objective.metrics))
        steps: CandidateSteps | CMAPopulations = (
            CMAPopulations(opt) if not vector and CMAPopulations.fits(opt)
            else CandidateSteps(opt, vector))
        held = math.ceil(platform_start(operators or {}) * objective.budget)
        while objective.remaining > 0:
            pop = codec.decode(steps.ask(min(self.batch, objective.remaining)))
            if objective.used < held:  # as GAMMA's co-search starts: on the platform's array
                space.hold_at_start(pop)
            cost = objective.costs(objective.evaluate(pop.hw, pop.layers))
            steps.tell(cost)
            if on_progress:
                on_progress(objective.used, objective.best_cost)


def check_option_values(target: Any, options: dict[str, Any]) -> None:
    """Each option of ``target`` (a nevergrad family or optimizer class) has its default's kind:
    a finite number where the default is a number, true/false where it is a bool (nevergrad
    takes anything and fails later, e.g. ``scale=nan`` at the first ask). A
    :class:`SettingError` names ``optimizer.options.<name>``."""
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):  # no signature to compare with
        params = {}
    for key, value in options.items():
        default = params[key].default if key in params else inspect.Parameter.empty
        field = f"options.{key}"
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingError(field, value, "must be a finite number")
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise SettingError(field, value, "must be true or false")
        elif isinstance(default, numbers.Real) and (isinstance(value, bool)
                                                    or not isinstance(value, numbers.Real)):
            raise SettingError(field, value, "must be a number")
#: Nevergrad optimizers whose search never reads the archive of told points nor the best
#: records built from it (only their recommendation does, which the objective replaces):
#: particle swarm and TBPSA. Their tells skip filing each point there (a quarter of their time
#: outside the cost model); the tests check that their samples do not change.
ARCHIVE_FREE = (optimizerlib._PSO, optimizerlib._TBPSA)


def skip_archive(candidate: Any, loss: float) -> None:
    """Stands in for ``Optimizer._update_archive_and_bests`` (see :data:`ARCHIVE_FREE`)."""


class CandidateSteps:
    """Nevergrad's own ask and tell, one candidate (a ``Parameter``) at a time."""

    def __init__(self, opt: Any, vector: bool) -> None:
        self.opt, self.vector = opt, vector
        self.cands: list[Any] = []
        if type(opt) in ARCHIVE_FREE and not vector:
            opt._update_archive_and_bests = skip_archive

    def ask(self, n: int) -> np.ndarray:
        """``n`` points of the box, shape (n, dim)."""
        self.cands = [self.opt.ask() for _ in range(n)]
        return np.stack([c.value for c in self.cands])

    def tell(self, cost: np.ndarray) -> None:
        """The costs of the points last asked (rows of cost vectors with ``vector``)."""
        # TBPSA's population-size test divides by the spread of its losses, 0/0 while every
        # sample is infeasible; numpy would warn (z is NaN and TBPSA shrinks its population).
        with np.errstate(divide="ignore", invalid="ignore"):
            for cand, loss in zip(self.cands, to_loss(cost)):
                self.opt.tell(cand, loss.tolist() if self.vector else float(loss))


class CMAPopulations:
    """Nevergrad's CMA-ES driven with arrays: the same pycma strategy, created and restarted by
    nevergrad (``CachedCMA.es``), asked for whole populations and told them, without a
    nevergrad ``Parameter`` per candidate (which cost several times pycma's own time).

    It does what nevergrad's ``_CMA`` does per candidate, on rows: it takes the points from
    pycma's population in order (asking for a new population when none is left), maps them to
    the box as the parametrization does (``sigma * (data + centre / sigma)``, then the bouncing
    bound on rows with a coordinate outside [0, 1]), tells pycma the standardized data of the
    bounced point (``(value - centre) / sigma``) with its loss once ``es.popsize`` are told
    (ignoring pycma's ``RuntimeError``/``AssertionError`` as nevergrad does), and reads
    ``opt.es`` where nevergrad does (every told point), so restarts happen at the same points.
    The same seed gives the same samples as nevergrad's ask and tell (tested)."""

    def __init__(self, opt: CachedCMA) -> None:
        ref = opt.parametrization
        self.opt = opt
        self.sigma, self.centre = ref._box_sigma, ref._value
        self.offset = (ref._value / ref._box_sigma).ravel()
        self.lower, self.upper = ref._box_bound.a_min, ref._box_bound.a_max
        self.queue: list[np.ndarray] = []  # points of pycma's current population not yet asked
        self.pending = np.zeros((0, len(self.offset)))  # standardized data of the points asked
        self.told_x: list[np.ndarray] = []
        self.told_y: list[float] = []

    @staticmethod
    def fits(opt: Any) -> bool:
        """Whether ``opt`` is the pycma CMA-ES on a :class:`UnitBox` that this class drives."""
        return (isinstance(opt, CachedCMA) and not opt._config.fcmaes
                and isinstance(opt.parametrization, UnitBox) and opt.parametrization._box_ready)

    def ask(self, n: int) -> np.ndarray:
        """The next ``n`` points of pycma's populations, mapped to the box, shape (n, dim)."""
        rows: list[np.ndarray] = []
        while len(rows) < n:
            if not self.queue:
                self.queue = list(self.opt.es.ask())
            take = min(n - len(rows), len(self.queue))
            rows += self.queue[:take]
            del self.queue[:take]
        deep = self.sigma * (np.asarray(rows) + self.offset)
        out = (deep < self.lower).any(axis=1) | (deep > self.upper).any(axis=1)
        value = deep.copy()
        if out.any():
            d = deep[out]
            value[out] = np.clip(2 * np.clip(d, self.lower, self.upper) - d, self.lower, self.upper)
        self.pending = (value - self.centre) / self.sigma
        self.opt._num_ask += n
        return value

    def tell(self, cost: np.ndarray) -> None:
        """The costs of the points last asked."""
        loss = to_loss(cost)
        loss = np.where(loss < 5.0e20, loss, 5.0e20).tolist()  # nevergrad's clipping of a loss
        for x, y in zip(self.pending, loss):
            self.told_x.append(x)
            self.told_y.append(y)
            if len(self.told_x) >= self.opt.es.popsize:
                try:
                    self.opt.es.tell(self.told_x, self.told_y)
                except (RuntimeError, AssertionError):
                    pass
                self.told_x, self.told_y = [], []
        self.opt._num_tell += len(loss)


class StdGA(NevergradOptimizer):
    """A standard GA baseline: nevergrad's ``RecombiningGA`` (``optimizer="cGA"`` gives the
    paper's compact GA; see conf/optimizer/stdga.yaml for why it is not the default)."""

    name = "stdga"

    def __init__(self, optimizer: str = "RecombiningGA", batch: int = 40,
                 options: dict[str, Any] | None = None) -> None:
        super().__init__(optimizer, batch, options)


class PSO(NevergradOptimizer):
    """Particle swarm: nevergrad's ``RealSpacePSO`` (population max(40, batch)).

    Where it finds nothing feasible, the method stalls. Its first ``population`` particles are
    uniform points of the box (``UnitBox.sample``); if none of them is feasible, every loss is
    the same penalty, the global best stays the first particle told (it is replaced only by a
    strictly lower loss) and each particle's own best is its latest position (``<=``), so
    every velocity update only pulls towards that first, infeasible point: the swarm contracts
    onto it (coordinate spread 0.29 at the start, 0.03 after 50 rounds) and samples nothing
    else. With 100 particles this happens with probability (1 - p)^100 for a layer where a
    fraction p of the box is feasible: ResNet-18 layer 17 on S2 (p = 0.9 %) with seed 0, for
    instance. The search is nevergrad's; the baseline does not change it. (Until the box
    sampled uniformly, its initial particles were drawn around the box centre, where feasible
    mappings are 10-40x rarer, and it stalled on layers 1 and 16 of every system, and 6 and 11
    on S2.)"""

    name = "pso"

    def __init__(self, optimizer: str = "RealSpacePSO", batch: int = 100,
                 options: dict[str, Any] | None = None) -> None:
        super().__init__(optimizer, batch, options)


class CMA(NevergradOptimizer):
    """CMA-ES: ``ParametrizedCMA(scale=3, random_init=True)`` (population max(batch, 4 + 3 ln d))."""

    name = "cma"

    def __init__(self, optimizer: str = "ParametrizedCMA", batch: int = 13,
                 options: dict[str, Any] | None = None) -> None:
        if options is None and optimizer == "ParametrizedCMA":
            options = {"scale": 3.0, "random_init": True}
        super().__init__(optimizer, batch, options)


class DE(NevergradOptimizer):
    """Differential evolution: nevergrad's ``DE`` (population max(30, batch))."""

    name = "de"

    def __init__(self, optimizer: str = "DE", batch: int = 30, options: dict[str, Any] | None = None) -> None:
        super().__init__(optimizer, batch, options)


class TBPSA(NevergradOptimizer):
    """Test-based population-size adaptation: nevergrad's ``NaiveTBPSA`` (population 4 d)."""

    name = "tbpsa"

    def __init__(self, optimizer: str = "NaiveTBPSA", batch: int = 50,
                 options: dict[str, Any] | None = None) -> None:
        super().__init__(optimizer, batch, options)
