"""Exhaustive search: the proven latency optimum of a layer's map space (``optimizer=exhaustive``).

Same map space, objective, guard and feasibility rule as every optimizer: candidate genomes are
built here and scored by the objective in large batches. What makes it finish:

0. **A warm start.** A short GAMMA run on the same objective (``optimizer.warm_start``
   evaluations, 2,000 by default) gives a feasible best before the enumeration starts, so a time
   limit or an evaluation cap leaves one, and its latency prunes from the first candidate.
1. **Spatial structures first.** Every structure (levels, parallel dim and cluster size per level,
   :class:`~gamma.optimizers.bounds.Structure`) gets a lower bound on the latency of every mapping
   under it that the guard accepts, whatever its tiles and loop orders: the larger of the latency
   bound of :mod:`gamma.optimizers.bounds` and the busiest-PE bound of
   :mod:`gamma.objectives.pe_bound` (which the guard enforces, and which is never below the compute
   bound ceil(MACs / PEs)).
2. **Loop orders do not change the latency** when the NoC never limits a step
   (:func:`~gamma.optimizers.bounds.proof_obstacles` is empty: head latency <= 1 cycle, NoC
   bandwidth >= L2 size, one SIMD lane): every step's delay is then its compute delay, which no
   order changes. Each level keeps one order (K C Y' X' R S); ``tests/test_exhaustive.py``
   checks the claim against the cost model on random genomes. This and the latency bound need
   inner tiles that divide their parent: ``mapspace.inner_tiles=any`` (and ``paper_mode``) is
   refused with an ``error:`` before the job searches.
3. **Tiles are enumerated dim by dim** with both bounds (each factorizes over the dims): partial
   tile choices whose bound, completed with the smallest factors of the dims left, reaches the
   threshold are dropped, and so are tiles over the L1 size (exact requirement) or the L2 size (a
   lower bound on it).
4. **Best first, deepening threshold.** Round k evaluates every candidate whose bound lies in
   ``[theta_{k-1}, min(theta_k, best))``, lowest bound first, with ``theta`` growing from the
   smallest structure bound. Once the best feasible latency is at or below ``theta_k``, every
   mapping that could beat it has been evaluated: the optimum is proven.

``optimizer.max_evaluations`` / ``optimizer.time_limit_s`` stop it early (best effort), also in
the set-up, which builds the structures and evaluates nothing: the time limit is checked there,
and an evaluation cap allows it :data:`SETUP_CHAINS_PER_EVALUATION` tile chains per evaluation
(it stops before it would build more, ``stopped`` says so). It then reports the best found
and the lowest bound still open (results.json: ``proven_optimal`` false,
``optimum_lower_bound_cycles``, never below the smallest structure bound, ``optimality_gap``).
A layer with no feasible mapping is infeasible only when the search proved it
(``infeasible_proven``); stopped before finding one, results.json says ``feasible: null``.
Evaluation cap (warm start included): ``max_evaluations`` if set, else none for a latency proof,
else the job's ``budget`` (other objectives, ``guard=false``, or a platform where the bounds do
not hold: it then evaluates the same candidate stream until the cap and says it is not proven).
Units: cycles, evaluations, seconds.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from gamma.errors import GammaError
from gamma.objectives.pe_bound import pe0_shares
from gamma.objectives.scalar import Objective
from gamma.optimizers.base import Optimizer, ProgressCallback
from gamma.optimizers.bounds import (Structure, combine, dim_profile, l1_bound, l2_bound,
                                     proof_obstacles, sliding)
from gamma.optimizers.settings import check_int, check_real
from gamma.mapspace.space import G_R, G_S, Genome, MapSpace

#: Rows of a partial cross product built at once (memory: ~30 int64 per row).
CHUNK = 1 << 20
#: First threshold: the smallest structure bound times (1 + FIRST_STEP); each round doubles the step.
FIRST_STEP = 1e-4
#: Genomes in a round's first batch; the batches double up to ``optimizer.batch``.
FIRST_BATCH = 1000
#: Parent tiles whose inner tiles are listed at once while the set-up builds the tile chains
#: (the time limit is checked between such chunks).
SETUP_CHUNK = 4096
#: An evaluation cap standing for "none" (the objective needs a number).
UNLIMITED = 10 ** 15
#: Tile chains (partial ones included) the set-up may build and bound per evaluation of the cap:
#: the set-up evaluates nothing, so the cap bounds it through this count (a cap of 2,100: 4.2 M
#: chains). Measured here: a chain costs 0.1-0.8 us (ResNet-18 layers) to 1.8 us (K = 10^6, whose
#: divisors are found lazily), an evaluation about 10 us, so the set-up takes at most about
#: 20-400 times the cap's evaluation time. A ResNet-18 layer's set-up bounds 0.18-2.74 M chains,
#: within any cap above the warm start's 2,000 evaluations; one with K = 10^6 needs billions.
SETUP_CHAINS_PER_EVALUATION = 2_000


@dataclass
class DimTable:
    """The tile chains of one dim under one role, by ascending work: tiles (N, L), work (N,),
    steps (N, L), share (N,): PE 0's share of the dim (its factor of the busiest-PE bound,
    :mod:`gamma.objectives.pe_bound`); the extremes of work, steps (per level) and share for the
    structure bounds."""

    tiles: np.ndarray
    work: np.ndarray
    steps: np.ndarray
    share: np.ndarray

    def __post_init__(self) -> None:
        order = np.argsort(self.work, kind="stable")
        self.tiles, self.work, self.steps = self.tiles[order], self.work[order], self.steps[order]
        self.share = self.share[order]
        L = self.steps.shape[1]
        if len(self.work) == 0:
            self.min_work = self.max_work = self.min_share = self.max_share = 0
            self.min_steps, self.max_steps = [0] * L, [0] * L
        else:
            self.min_work, self.max_work = int(self.work[0]), int(self.work[-1])
            self.min_share, self.max_share = int(self.share.min()), int(self.share.max())
            self.min_steps = [int(x) for x in self.steps.min(axis=0)]
            self.max_steps = [int(x) for x in self.steps.max(axis=0)]

    def __len__(self) -> int:
        return len(self.work)


class Stopped(Exception):
    """The evaluation cap or the time limit was reached."""


class Exhaustive(Optimizer):
    """Best-first enumeration of the map space with proven latency bounds (see the module doc)."""

    name = "exhaustive"

    def __init__(self, max_evaluations: int | None = None, time_limit_s: float | None = None,
                 batch: int = 20000, warm_start: int = 2000) -> None:
        self.max_evaluations = (None if max_evaluations is None
                                else check_int("max_evaluations", max_evaluations, 1))
        self.time_limit_s = (None if time_limit_s is None
                             else check_real("time_limit_s", time_limit_s, 0.0, low_open=True))
        self.batch = check_int("batch", batch, 1)
        self.warm_start = check_int("warm_start", warm_start, 0)

    def check_search_rules(self, rules: Any) -> None:
        """Refuse a map space whose inner tiles need not divide their parent: the latency bounds
        and the loop-order equivalence the proofs rest on hold only where they do."""
        check_space(str(rules.inner_tiles))

    def evaluation_budget(self, budget: int) -> int:
        """The objective's evaluation cap: ``max_evaluations`` if set, else unlimited (a latency
        proof stops by itself; :meth:`optimize` falls back to ``budget`` where it cannot prove)."""
        self.job_budget = budget
        return self.max_evaluations if self.max_evaluations is not None else UNLIMITED

    def optimize(self, objective: Objective, rng: np.random.Generator,
                 on_progress: ProgressCallback | None = None) -> None:
        search = Search(objective, self, on_progress)
        search.warm_start(rng)
        search.run()
        objective.report.update(search.record())


def check_space(inner_tiles: str) -> None:
    """A :class:`GammaError` unless the map space's inner tiles divide their parent."""
    if inner_tiles != "divisors":
        raise GammaError(f"mapspace.inner_tiles={inner_tiles}: optimizer=exhaustive proves optima "
                         "only in the map space whose inner tiles divide their parent tile "
                         "(mapspace.inner_tiles=divisors; paper_mode=true also sets any): there "
                         "MAESTRO's edge-tile rules A and C cannot occur, which its latency bounds "
                         "and its one-loop-order-per-level search rely on")


class Search:
    """One layer's exhaustive search (state shared by its rounds)."""

    def __init__(self, objective: Objective, opt: Exhaustive,
                 on_progress: ProgressCallback | None) -> None:
        self.obj, self.opt, self.on_progress = objective, opt, on_progress
        self.space: MapSpace = objective.space
        check_space(self.space.inner_tiles)
        self.hw = objective.hw
        self.P = self.hw.num_pes
        self.dims = [int(x) for x in self.space.dims]
        self.obstacles = proof_obstacles(self.hw, self.space)
        if objective.metric != "latency":
            self.obstacles.insert(0, f"objective {objective.metric} (the bounds are latency bounds)")
        if not objective.guard:
            self.obstacles.append("guard=false (the bounds hold for the mappings the guard accepts)")
        self.proving = not self.obstacles
        cap = objective.budget if opt.max_evaluations is not None else (
            UNLIMITED if self.proving else int(getattr(opt, "job_budget", objective.budget)))
        self.cap = min(cap, objective.budget)
        # tile chains the set-up may build and bound (None: no evaluation cap, no such limit)
        self.setup_allowance = (None if self.cap >= UNLIMITED
                                else self.cap * SETUP_CHAINS_PER_EVALUATION)
        self.setup_chains = 0  # built and bounded so far
        self.t0 = time.perf_counter()
        self.tables: dict[tuple, DimTable] = {}
        self.structures: list[tuple[float, float, Structure]] = []  # built by run()
        # every mapping with a bound below this has been evaluated (none is below the compute bound)
        self.open_bound = float(objective.compute_bound)
        self.warm: dict[str, Any] | None = None
        self.warm_rejections: Counter = Counter()
        self.proven = False
        self.stop_reason: str | None = None
        self.rounds = 0
        self.candidates = 0  # enumerated (passed the bound and capacity filters)
        self.skipped = 0  # enumerated but dropped later (bound reached the best found)

    # --- structures and per-dim tables -------------------------------------------------------
    def _structures(self) -> list[tuple[float, float, Structure]]:
        """(bound, largest bound, structure) of every spatial structure, by bound."""
        sp, out = self.space, []
        fixed = sp.fixed_inner_cluster
        for L in range(sp.min_levels, sp.max_levels + 1):
            for pars in itertools.product(*[list(map(int, sp.par_choices))] * L):
                for cl in self._clusters(pars, fixed):
                    self._limit()
                    s = Structure(pars, (0, *cl))
                    if s.units(self.P)[0] < 1:
                        continue
                    tabs = [self.table(d, s) for d in range(6)]
                    if any(len(t) == 0 for t in tabs):
                        continue
                    lo = max(math.prod(t.min_work for t in tabs) + 1 + (L - 1),
                             math.prod(t.min_share for t in tabs))
                    hi = max(math.prod(t.max_work for t in tabs) + 1 + sum(
                        math.prod(t.max_steps[l] for t in tabs) for l in range(L - 1)),
                        math.prod(t.max_share for t in tabs))
                    out.append((lo, hi, s))
        out.sort(key=lambda x: (x[0], x[2]))
        return out

    def _clusters(self, pars: tuple[int, ...], fixed: int | None) -> Iterator[tuple[int, ...]]:
        """Cluster sizes of levels 1.. (product at most num_pes; at most the dim's size)."""
        def rec(l: int, prod: int) -> Iterator[tuple[int, ...]]:
            if l == len(pars):
                yield ()
                return
            if l == 1 and fixed is not None:
                choices = [fixed] if fixed * prod <= self.P else []
            else:
                choices = range(1, min(self.P // prod, self.dims[pars[l]]) + 1)
            for c in choices:
                for rest in rec(l + 1, prod * c):
                    yield (c, *rest)
        return rec(1, 1)

    def table(self, d: int, s: Structure) -> DimTable:
        """Tile chains of dim ``d`` under structure ``s`` (cached by the dim's role)."""
        role = s.role(d, self.P)
        fixed = self.space.fixed_inner_cluster
        need = tuple(s.clusters[l + 1] if (l + 1 < s.nlev and s.pars[l + 1] == d
                                           and not (l == 0 and fixed is not None)) else 1
                     for l in range(s.nlev))
        key = (d, role, need)
        tab = self.tables.get(key)
        if tab is None:
            tiles = self._chains(d, s.nlev)
            inner = np.ones((len(tiles), 6), np.int64)  # the other dims' innermost tiles at 1
            inner[:, d] = tiles[:, -1]
            inner[:, [G_R, G_S]] = self.dims[G_R], self.dims[G_S]
            ok = np.all(tiles >= np.array(need), axis=1)
            ok &= l1_bound(self.space, inner) <= self.hw.l1_size  # fits L1 on its own
            tiles = tiles[ok]
            work, steps = dim_profile(self.dims[d], tiles, role, sliding(self.space, d))
            share = pe0_shares(self.dims[d], tiles, role)
            tab = self.tables[key] = DimTable(tiles, work, steps, share)
        return tab

    def _chains(self, d: int, L: int) -> np.ndarray:
        """Every tile chain of dim ``d`` over ``L`` levels: top tile in [1, dim] (R, S full),
        each inner tile a divisor of the one above."""
        D = self.dims[d]
        if d in (G_R, G_S):
            self._setup_work(1)
            return np.full((1, L), D, np.int64)
        self._setup_work(D)
        chains = np.arange(1, D + 1, dtype=np.int64)[:, None]
        for _ in range(1, L):
            parts = []
            for a in range(0, len(chains), SETUP_CHUNK):  # the time limit is checked per chunk
                self._limit()
                part = chains[a:a + SETUP_CHUNK]
                parent = part[:, -1]
                n = self.space.inner_tile_count(parent)
                self._setup_work(int(n.sum()))
                rep = np.repeat(np.arange(len(part)), n)
                k = np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
                child = self.space.inner_tile(parent[rep], k)
                parts.append(np.concatenate([part[rep], child[:, None]], axis=1))
            chains = np.concatenate(parts)
        return chains

    # --- the search --------------------------------------------------------------------------
    def warm_start(self, rng: np.random.Generator) -> None:
        """A short GAMMA run on the same objective (``optimizer.warm_start`` evaluations, within
        the evaluation cap): a feasible best before the enumeration starts, so that a time limit
        or a cap leaves one, and a threshold that prunes from the first candidate."""
        n = min(self.opt.warm_start, self.cap - self.obj.used)
        if n <= 0:
            return
        from gamma.optimizers.gamma import Gamma

        budget = self.obj.budget
        self.obj.budget = self.obj.used + n
        try:
            Gamma().optimize(self.obj, rng, self.on_progress)
        finally:
            self.obj.budget = budget
        best = self.obj.best_cost
        self.warm = {"evaluations": n, "best": float(best) if math.isfinite(best) else None,
                     "time_s": round(time.perf_counter() - self.t0, 3)}
        self.warm_rejections = Counter(self.obj.rejections)

    def run(self) -> None:
        """Build the structures (the set-up, under the time limit too), then the rounds."""
        try:
            self.structures = self._structures()
        except Stopped as e:
            self.stop_reason = f"{e} while building the structures (set-up)"
            return
        # none is below the lowest structure bound
        if self.structures:
            self.open_bound = max(self.open_bound, float(self.structures[0][0]))
        if not self.structures:  # every tile chain overflows L1 on its own: nothing fits
            self.stop_reason = "no spatial structure fits"
            self.proven = self.proving
            return
        theta_prev = 0.0
        step = FIRST_STEP
        top = max(hi for _, hi, _ in self.structures)
        try:
            while True:
                theta = self.structures[0][0] * (1 + step)
                self.rounds += 1
                self._round(theta_prev, theta)
                best = self.obj.best_cost
                self.open_bound = min(theta, best)
                if self.proving and best <= theta:
                    self.proven = True
                    return
                if theta > top:  # every mapping's bound is below theta: all evaluated
                    self.open_bound = best
                    self.proven = self.proving
                    return
                theta_prev, step = theta, step * 2
        except Stopped as e:
            self.stop_reason = str(e)

    def _limit(self) -> None:
        if self.obj.used >= self.cap:
            raise Stopped(f"evaluation cap {self.cap:,} reached")
        lim = self.opt.time_limit_s
        if lim is not None and time.perf_counter() - self.t0 > lim:
            raise Stopped(f"time limit {lim:g} s reached")

    def _setup_work(self, chains: int) -> None:
        """Count ``chains`` tile chains (partial ones included) the set-up is about to build and
        bound; :class:`Stopped` before it would exceed what the evaluation cap allows."""
        self.setup_chains += chains
        if self.setup_allowance is not None and self.setup_chains > self.setup_allowance:
            raise Stopped(f"set-up beyond the evaluation cap {self.cap:,}: more than "
                          f"{self.setup_allowance:,} tile chains to bound "
                          f"({SETUP_CHAINS_PER_EVALUATION:,} per evaluation)")

    def _hi(self, theta: float) -> float:
        return min(theta, self.obj.best_cost) if self.proving else theta

    def _round(self, lo: float, theta: float) -> None:
        """Evaluate every candidate with bound in [lo, min(theta, best)), lowest first."""
        pool: list[tuple[np.ndarray, Genome]] = []
        for sb, _, s in self.structures:
            if sb >= self._hi(theta):
                break
            self._limit()
            for bound, genome in self._candidates(s, lo, self._hi(theta)):
                self.candidates += len(bound)
                pool.append((bound, genome))
        if not pool:
            return
        bounds = np.concatenate([b for b, _ in pool])
        genomes = Genome.concat([g for _, g in pool])
        order = np.argsort(bounds, kind="stable")
        pos = 0
        while pos < len(order):
            hi = self._hi(theta)
            if bounds[order[pos]] >= hi:
                self.skipped += len(order) - pos
                return
            self._limit()
            self.open_bound = max(self.open_bound, float(bounds[order[pos]]))
            # small batches first: the best found so far may soon prune the rest
            n = min(self.opt.batch, max(FIRST_BATCH, pos), len(order) - pos,
                    self.cap - self.obj.used)
            idx = order[pos:pos + n]
            idx = idx[bounds[idx] < hi]
            self.skipped += n - len(idx)
            self.obj.evaluate(genomes.take(idx))
            pos += n
            if self.on_progress:
                self.on_progress(self.obj.used, self.obj.best_cost)

    def _candidates(self, s: Structure, lo: float, hi: float) -> Iterator[tuple[np.ndarray, Genome]]:
        """Genomes of structure ``s`` whose bound lies in [lo, hi) and that fit L1 and L2."""
        L = s.nlev
        tabs = [self.table(d, s) for d in range(6)]
        minw = [t.min_work for t in tabs]
        mins = [t.min_steps for t in tabs]
        minpe = [t.min_share for t in tabs]
        p0 = s.pars[0]
        # R, S first (one chain each), then the top parallel dim (the L2 bound needs its tile),
        # then the others, larger tables last.
        rest = sorted((d for d in range(6) if d not in (G_R, G_S, p0)), key=lambda d: len(tabs[d]))
        seq = [G_R, G_S] + ([p0] if p0 not in (G_R, G_S) else []) + rest
        units0 = s.units(self.P)[0]
        part = {"w": np.ones(1, np.int64), "st": np.ones((1, L), np.int64), "pe": np.ones(1, np.int64),
                "rows": np.zeros((1, 6), np.int64), "top": np.ones((1, 6), np.int64),
                "inner": np.ones((1, 6), np.int64)}
        have_p0 = False
        for i, d in enumerate(seq):
            left = seq[i + 1:]
            rw = math.prod(minw[e] for e in left)
            rs = [math.prod(mins[e][l] for e in left) for l in range(L)]
            rpe = math.prod(minpe[e] for e in left)
            have_p0 = have_p0 or d == p0
            part = self._extend(part, d, tabs[d], rw, rs, rpe, hi, L, p0, units0, have_p0)
            if len(part["w"]) == 0:
                return
        bound = np.maximum(combine(part["w"][:, None], part["st"][:, None, :]), part["pe"])
        keep = bound >= lo
        if not keep.any():
            return
        part = {k: v[keep] for k, v in part.items()}
        bound = bound[keep]
        for a in range(0, len(bound), CHUNK):
            sl = slice(a, a + CHUNK)
            yield bound[sl], self._genomes(s, tabs, part["rows"][sl])

    def _extend(self, part: dict[str, np.ndarray], d: int, tab: DimTable, rw: int,
                rs: list[int], rpe: int, hi: float, L: int, p0: int, units0: int,
                have_p0: bool) -> dict[str, np.ndarray]:
        """Cross ``part`` with dim ``d``'s chains; keep the rows whose completed bounds (the
        latency bound and the busiest-PE bound, each with the smallest factors of the dims
        left: ``rw``, ``rs``, ``rpe``) stay below ``hi`` and whose buffers (other dims at tile
        1) fit."""
        out: list[dict[str, np.ndarray]] = []
        # the chains each partial row may take: work below (hi - 1) / (its work x the rest's)
        limit = (hi - 1) / (part["w"].astype(np.float64) * rw)
        take = np.searchsorted(tab.work, limit, side="left")
        ends = np.cumsum(take)
        a = 0
        while a < len(take):
            b = int(np.searchsorted(ends, (ends[a - 1] if a else 0) + CHUNK, side="right"))
            b = max(b, a + 1)
            p = {k: v[a:b] for k, v in part.items()}
            cnt = take[a:b]
            a = b
            total = int(cnt.sum())
            if total == 0:
                continue
            pi = np.repeat(np.arange(len(cnt)), cnt)
            ti = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            w = p["w"][pi] * tab.work[ti]
            st = p["st"][pi] * tab.steps[ti]
            pe = p["pe"][pi] * tab.share[ti]
            lb = w * rw + 1 + sum(st[:, l] * rs[l] for l in range(L - 1))
            ok = (lb < hi) & (pe * rpe < hi)
            pi, ti, w, st, pe = pi[ok], ti[ok], w[ok], st[ok], pe[ok]
            top = p["top"][pi]
            inner = p["inner"][pi]
            top[:, d] = tab.tiles[ti, 0]
            inner[:, d] = tab.tiles[ti, L - 1]
            fit = l1_bound(self.space, inner) <= self.hw.l1_size
            if have_p0:
                fit &= l2_bound(self.space, top, p0, units0) <= self.hw.l2_size
            rows = p["rows"][pi]
            rows[:, d] = ti
            out.append({"w": w[fit], "st": st[fit], "pe": pe[fit], "rows": rows[fit],
                        "top": top[fit], "inner": inner[fit]})
        if not out:
            return {key: v[:0] for key, v in part.items()}
        return {key: np.concatenate([o[key] for o in out]) for key in part}

    def _genomes(self, s: Structure, tabs: list[DimTable], rows: np.ndarray) -> Genome:
        """Genomes of structure ``s`` with the tile chains ``rows`` (one row index per dim)."""
        n, L, Lmax = len(rows), s.nlev, self.space.max_levels
        tile = np.ones((n, Lmax, 6), np.int64)
        for d in range(6):
            tile[:, :L, d] = tabs[d].tiles[rows[:, d]]
        par = np.zeros((n, Lmax), np.int64)
        par[:, :L] = s.pars
        cluster = np.zeros((n, Lmax), np.int64)
        cluster[:, :L] = s.clusters
        order = np.broadcast_to(np.arange(6), (n, Lmax, 6)).copy()
        g = Genome(np.full(n, L, np.int64), par, order, tile, cluster)
        self.space.clear_unused(g)
        return g

    # --- the record --------------------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        """What results.json records of the search (see the module doc)."""
        best = self.obj.best_cost
        lb = best if self.proven else min(self.open_bound, best)
        gap = (best / lb - 1) if (math.isfinite(best) and lb > 0) else None
        return {
            "proven_optimal": bool(self.proven),
            # no feasible mapping found: proven (the whole space evaluated or bounded) or not
            **({"infeasible_proven": bool(self.proven)} if not math.isfinite(best) else {}),
            "optimum_lower_bound_cycles": (float(lb) if self.proving and math.isfinite(lb) else None),
            "optimality_gap": (round(gap, 6) if self.proving and gap is not None else None),
            "exhaustive": {
                "evaluations": int(self.obj.used),
                "time_s": round(time.perf_counter() - self.t0, 3),
                "structures": len(self.structures),
                "setup_chains": int(self.setup_chains),
                "rounds": self.rounds,
                "candidates": int(self.candidates),
                "skipped_by_bound": int(self.skipped),
                "stopped": self.stop_reason,
                "not_proven_because": self.obstacles or None,
                "warm_start": self.warm,
                # infeasible candidates of the enumeration itself, by the objective's reason
                "rejections": {k: v - self.warm_rejections[k] for k, v in self.obj.rejections.items()
                               if v - self.warm_rejections[k]},
            },
        }


__all__ = ["Exhaustive"]
