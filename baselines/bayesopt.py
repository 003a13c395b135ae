"""Bayesian optimization with scikit-optimize's tree surrogate, batched for a 10,000-sample budget.

skopt's own ``Optimizer.ask(n_points=k)`` proposes a batch by the constant-liar strategy: it
copies the optimizer (one refit on the whole history) and refits once per proposed point, i.e.
about one surrogate fit per sample; a Gaussian process is cubic in the history on top of that.
Neither finishes 10,000 samples in bounded time (see docs/dependencies.md). This
baseline keeps skopt's model and acquisition and changes how a batch is chosen:

1. ``initial`` uniform random points of the codec's box (skopt's random initial design);
2. then per batch: fit skopt's extra-trees (``"ET"``) or random-forest (``"RF"``) surrogate,
   with skopt's defaults (100 trees, min_samples_leaf 3), once, on a bounded history: the best
   ``history // 2`` points so far and the most recent others up to ``history``;
3. score ``candidates`` points by skopt's expected improvement (``gaussian_ei``, xi 0.01):
   uniform random points plus, for a ``local_fraction`` of them, Gaussian perturbations
   (``local_scale``, box units) of the ten best points so far (a SMAC-style local search of
   the acquisition);
4. evaluate the ``batch`` best-scoring candidates whose genomes are new (not yet evaluated and
   not twice in the batch), in one objective call, and add them to the history.

Targets: ``log10(cost)``; an infeasible mapping gets the worst feasible target seen plus 1 (one
decade worse), recomputed at every fit, so the surrogate's scale stays that of the feasible
costs. Before any feasible point every target is equal, EI is zero everywhere and the batch is
the first candidates, i.e. uniform random points. Errors raised by skopt/scikit-learn propagate.

Speed: skopt's ``predict(X, return_std=True)`` walks every tree three times per candidate (the
forest mean, then each tree's ``apply`` and ``predict``, each validating X again); that was
half of this baseline's time. :class:`OnePassForest` walks each tree once and computes the
same mean and standard deviation (skopt's ``_return_std`` formula, bit-identical, tested).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skopt.acquisition import gaussian_ei
from skopt.utils import cook_estimator

from baselines.codec import Codec
from gamma.objectives.scalar import Objective
from gamma.optimizers.base import Optimizer, ProgressCallback
from gamma.optimizers.settings import SettingError, check_choice, check_int, check_real


class OnePassForest:
    """A fitted skopt tree ensemble whose ``predict(X, return_std=True)`` walks each tree once.

    Mean: the average of the trees' leaf values (scikit-learn's forest mean). Std: skopt's
    ``sqrt(mean over trees of (leaf variance, at least min_variance, + leaf value^2) - mean^2)``,
    clipped at 0 (arXiv:1211.0906, section 4.3.2), summed in the same order as skopt's."""

    def __init__(self, forest: Any) -> None:
        self.forest = forest

    def predict(self, X: np.ndarray, return_std: bool = False):
        trees = self.forest.estimators_
        X32 = np.ascontiguousarray(X, dtype=np.float32)  # scikit-learn trees split on float32
        mean, second = np.zeros(len(X)), np.zeros(len(X))
        for tree in trees:
            leaf = tree.tree_.apply(X32)
            value = tree.tree_.value[leaf, 0, 0]
            var = tree.tree_.impurity[leaf]
            var[var < self.forest.min_variance] = self.forest.min_variance
            mean += value
            second += var + value**2
        mean /= len(trees)
        if not return_std:
            return mean
        second /= len(trees)
        second -= mean**2.0
        second[second < 0.0] = 0.0
        return mean, second**0.5


def surrogate_targets(cost: np.ndarray) -> np.ndarray:
    """``log10(cost)``; infeasible (+inf) costs get the worst finite target plus 1 (0 if none)."""
    ok = np.isfinite(cost)
    y = np.zeros(cost.shape)
    y[ok] = np.log10(np.maximum(cost[ok], np.finfo(np.float64).tiny))
    y[~ok] = y[ok].max() + 1.0 if ok.any() else 0.0
    return y


class BayesOpt(Optimizer):
    """Batched BO with a skopt tree surrogate and expected improvement (see the module doc)."""

    name = "bo"

    def __init__(self, batch: int = 500, initial: int = 200, surrogate: str = "ET",
                 history: int = 1000, candidates: int = 10000, local_fraction: float = 0.5,
                 local_scale: float = 0.1, xi: float = 0.01) -> None:
        self.surrogate = check_choice("surrogate", surrogate, ("ET", "RF"))  # a GP cannot take 10,000 samples
        self.batch = check_int("batch", batch, 1)
        self.initial = check_int("initial", initial, 1)
        self.history = check_int("history", history, 1)
        self.candidates = check_int("candidates", candidates, 1)
        if self.candidates < self.batch:
            raise SettingError("candidates", candidates, f"must be at least optimizer.batch ({batch})")
        self.local_fraction = check_real("local_fraction", local_fraction, 0.0, 1.0)
        self.local_scale = check_real("local_scale", local_scale, 0.0, low_open=True)
        self.xi = check_real("xi", xi, 0.0)

    def optimize(self, objective: Objective, rng: np.random.Generator,
                 on_progress: ProgressCallback | None = None) -> None:
        codec = Codec(objective.space)
        X = np.zeros((0, codec.dim))
        cost = np.zeros(0)
        seen: set[bytes] = set()
        while objective.remaining > 0:
            if len(X) < self.initial:
                n = min(self.batch, self.initial - len(X), objective.remaining)
                x = rng.random((n, codec.dim))
                g = codec.decode(x)
            else:
                n = min(self.batch, objective.remaining)
                x, g = self._propose(codec, X, cost, seen, n, rng)
            c = objective.evaluate(g)
            seen.update(g.key(i) for i in range(len(g)))
            X, cost = np.vstack([X, x]), np.concatenate([cost, c])
            if on_progress:
                on_progress(objective.used, objective.best_cost)

    def _propose(self, codec: Codec, X: np.ndarray, cost: np.ndarray, seen: set[bytes], n: int,
                 rng: np.random.Generator):
        """The ``n`` new candidates with the highest expected improvement, and their genomes."""
        y = surrogate_targets(cost)
        keep = self._window(y)
        model = cook_estimator(self.surrogate, random_state=int(rng.integers(2**31)))
        model.fit(X[keep], y[keep])
        cand = self._candidates(X, y, codec.dim, rng)
        ei = gaussian_ei(cand, OnePassForest(model), y_opt=float(y.min()), xi=self.xi)
        genomes = codec.decode(cand)
        chosen: list[int] = []
        keys = set(seen)
        for i in np.argsort(-ei, kind="stable"):
            k = genomes.key(int(i))
            if k not in keys:
                keys.add(k)
                chosen.append(int(i))
                if len(chosen) == n:
                    break
        if len(chosen) < n:  # every candidate was seen before: fill with fresh random points
            extra = rng.random((n - len(chosen), codec.dim))
            cand, chosen = np.vstack([cand, extra]), chosen + list(range(len(cand), len(cand) + len(extra)))
            genomes = codec.decode(cand)
        idx = np.array(chosen)
        return cand[idx], genomes.take(idx)

    def _window(self, y: np.ndarray) -> np.ndarray:
        """Indices of the bounded history: the best half, then the most recent others."""
        if len(y) <= self.history:
            return np.arange(len(y))
        best = np.argsort(y, kind="stable")[: self.history // 2]
        rest = np.setdiff1d(np.arange(len(y)), best)[-(self.history - len(best)):]
        return np.concatenate([best, rest])

    def _candidates(self, X: np.ndarray, y: np.ndarray, dim: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform points, then Gaussian perturbations of the ten best points (clipped)."""
        n_local = int(self.local_fraction * self.candidates)
        uniform = rng.random((self.candidates - n_local, dim))
        top = X[np.argsort(y, kind="stable")[:10]]
        centre = top[rng.integers(0, len(top), n_local)]
        local = np.clip(centre + rng.normal(0.0, self.local_scale, (n_local, dim)), 0.0, 1.0)
        return np.vstack([uniform, local])
