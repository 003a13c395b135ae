"""Proven mappings in a co-design (``codesign=digamma``, docs/codesign.md, "Proven mappings").

The latency optimum of a unique layer's mapping on one hardware is proven by
``optimizer=exhaustive`` (:mod:`gamma.optimizers.exhaustive`, settings ``codesign.exhaustive``)
and cached by layer, hardware and map space (:mod:`gamma.search.optima`). Two uses:

- ``codesign.check=exhaustive``: after the GA's co-search, every unique layer is searched on the
  chosen design (its PEs, L1 and L2 as the design reports them, the platform's bandwidths), and
  results.json ``codesign.check`` gets the proven optima and the gap of the GA's mappings
  (:func:`check_design`);
- ``codesign.inner=exhaustive``: no GA; every hardware candidate of ``codesign.grid`` (PE counts,
  on S1/S3 array rows x columns, x L1 per PE, L2 the rest of the area budget; S1's inner cluster
  pinned to the columns) is scored by the sum of its proven per-layer
  optima; the best candidate, sized to its optimal mappings' buffers, is the design
  (:func:`search_grid`). Candidates are visited by ascending compute bound, and a candidate stops
  as soon as a lower bound on its latency (proven optima of its layers so far, compute bounds of
  the rest) reaches the best found, which keeps the result certified over the grid.

Latency only (the bounds of the exhaustive search are latency bounds). Units: cycles,
elements, PEs, um^2 (mm^2 where the name says so), evaluations, seconds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gamma.errors import GammaError
from gamma.hardware import Hardware, area_um2
from gamma.limits import MAX_HARDWARE
from gamma.mapping import Mapping
from gamma.objectives.metrics import output_key
from gamma.optimizers import make_optimizer
from gamma.optimizers.exhaustive import Exhaustive, check_space
from gamma.optimizers.settings import SettingError
from gamma.results import records as R
from gamma.search import optima
from gamma.search.codesign import (UM2_PER_MM2, CoDesignSearch, area_model, area_record,
                                   budget_um2)
from gamma.search.rules import SearchRules, search_rules
from gamma.search.setup import Setup, make_objective
from gamma.workloads.layer import Layer

#: ``codesign.inner`` values: mappings bred by the GA with the design, or proven per candidate.
INNER = ("gamma", "exhaustive")
#: ``codesign.check`` values.
CHECKS = ("off", "exhaustive")
#: The latency output of the cost model.
CYCLES = output_key("latency")

Say = Callable[[str], None]


def _choice(cfg: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    """``codesign.<key>`` among ``choices`` (a bare YAML off/false reads as ``off``)."""
    v = (cfg.get("codesign") or {}).get(key, choices[0])
    v = "off" if v is False or v is None else v
    if v not in choices:
        raise GammaError(f"codesign.{key} = {v!r}: choose from {', '.join(choices)}")
    return str(v)


def inner_mode(cfg: dict[str, Any]) -> str:
    """``codesign.inner``: ``gamma`` (default) or ``exhaustive``."""
    return _choice(cfg, "inner", INNER)


def check_mode(cfg: dict[str, Any]) -> str:
    """``codesign.check``: ``off`` (default) or ``exhaustive``."""
    return _choice(cfg, "check", CHECKS)


def is_grid(cfg: dict[str, Any]) -> bool:
    return inner_mode(cfg) == "exhaustive"


def exhaustive_optimizer(cfg: dict[str, Any]) -> Exhaustive:
    """A fresh exhaustive optimizer with ``codesign.exhaustive``'s settings; a bad one is an
    error naming ``codesign.exhaustive.<setting>``."""
    params = dict((cfg.get("codesign") or {}).get("exhaustive") or {})
    try:
        opt = make_optimizer("exhaustive", **params)
    except SettingError as e:
        raise GammaError(f"codesign.exhaustive.{e.field} = {e.value!r}: {e.reason}") from None
    except GammaError as e:
        raise GammaError(f"codesign.exhaustive: {e}") from None
    assert isinstance(opt, Exhaustive)
    return opt


def _int_list(cfg: dict[str, Any], key: str) -> list[int]:
    """``codesign.grid.<key>``: a non-empty list of positive integers."""
    v = ((cfg.get("codesign") or {}).get("grid") or {}).get(key)
    if (not isinstance(v, (list, tuple)) or not v
            or any(isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= MAX_HARDWARE
                   for x in v)):
        raise GammaError(f"codesign.grid.{key} = {v!r}: must be a non-empty list of positive "
                         f"integers")
    return sorted(set(int(x) for x in v))


def check(cfg: dict[str, Any]) -> None:
    """What ``codesign.check`` and ``codesign.inner`` cannot do, as an ``error:`` naming the
    setting (called after :func:`gamma.search.codesign.check`)."""
    inner, chk = inner_mode(cfg), check_mode(cfg)
    if inner == "gamma" and chk == "off":
        return
    what = f"codesign.inner={inner}" if inner == "exhaustive" else f"codesign.check={chk}"
    if cfg["objective"]["name"] != "latency":
        raise GammaError(f"{what}: proves latency optima; use objective=latency, not "
                         f"objective={cfg['objective']['name']}")
    rules = search_rules(cfg)
    try:
        check_space(rules.inner_tiles)
    except GammaError as e:
        raise GammaError(f"{what}: {e}") from None
    exhaustive_optimizer(cfg)
    if inner != "exhaustive":
        return
    if chk != "off":
        raise GammaError("codesign.check=exhaustive: with codesign.inner=exhaustive every mapping "
                         "is already a proven optimum; use codesign.check=off")
    if not any(c.fits for c in candidates(cfg)):
        raise GammaError(f"codesign.grid: no candidate fits codesign.area_mm2 = "
                         f"{budget_um2(cfg) / UM2_PER_MM2:.6g} (each needs at least one element "
                         f"of L2 beside its PEs and L1)")


# --- one layer's proven optimum --------------------------------------------------------------

@dataclass
class Exact:
    """One unique layer's exhaustive search on one hardware (or its cached optimum)."""

    layer: Layer
    hw: Hardware
    cycles: float  # best latency found (inf: none feasible)
    proven: bool  # the search finished: ``cycles`` is the optimum
    lower_bound: float  # no mapping is faster (the optimum when proven; cycles)
    mapping: Mapping | None
    outputs: dict[str, float] | None  # the cost model's outputs of ``mapping``
    summary: dict[str, Any]  # the objective's summary (results.json layer fields)
    evaluations: int  # cost-model evaluations spent here
    time_s: float
    cached: bool  # taken from the optima cache (one evaluation to re-check it)

    def record(self) -> dict[str, Any]:
        """What results.json records of it."""
        return {"optimum_cycles": R.finite_or_none(self.cycles) if self.proven else None,
                "best_cycles": R.finite_or_none(self.cycles), "proven_optimal": self.proven,
                "lower_bound_cycles": R.finite_or_none(self.lower_bound),
                "evaluations": self.evaluations, "time_s": round(self.time_s, 3),
                "cached": self.cached}


def pinned_config(cfg: dict[str, Any], cols: int | None) -> dict[str, Any]:
    """``cfg`` with the system's pinned inner cluster at ``cols`` (S1: it follows the design's
    columns); unchanged where nothing is pinned."""
    if cfg["system"].get("fixed_inner_cluster") is None or cols is None:
        return cfg
    return {**cfg, "system": {**cfg["system"], "fixed_inner_cluster": int(cols)}}


def _from_cache(cfg: dict[str, Any], layer: Layer, hw: Hardware, rules: SearchRules,
                entry: dict[str, Any]) -> Exact | None:
    """The cached optimum ``entry`` re-evaluated (one evaluation: its mapping's outputs); None
    if it holds no mapping or the mapping no longer gives the cached latency."""
    if not entry.get("mapping"):
        return None
    t0 = time.perf_counter()
    obj = make_objective(cfg, layer, hw, 1, rules)
    try:
        mapping = Mapping.from_dict(entry["mapping"])
        cost, _ = obj.evaluate_mappings([mapping])
    except (GammaError, KeyError, TypeError, ValueError):
        return None
    if obj.best is None or cost[0] != int(entry["optimum_cycles"]):
        return None
    return Exact(layer, hw, float(cost[0]), True, float(cost[0]), mapping, obj.best.outputs,
                 obj.summary(), 1, time.perf_counter() - t0, True)


def prove_layer(cfg: dict[str, Any], layer: Layer, hw: Hardware, rng: np.random.Generator,
                cache: Path | None, say: Say | None = None) -> Exact:
    """The latency optimum of ``layer``'s mapping on ``hw``: from the cache ``cache`` (None: no
    cache) when it holds one for this layer, hardware and map space, else by the exhaustive
    search with ``codesign.exhaustive``'s settings and generator ``rng`` (warm start); a proven
    optimum is then cached."""
    rules = search_rules(cfg)
    k = optima.key(layer.shape, hw.to_dict(), optima.space_context(cfg, rules))
    if cache is not None:
        entry = optima.load(cache).get(k)
        hit = _from_cache(cfg, layer, hw, rules, entry) if entry else None
        if hit is not None:
            return hit
    opt = exhaustive_optimizer(cfg)
    obj = make_objective(cfg, layer, hw, opt.evaluation_budget(int(cfg["budget"])), rules)
    t0 = time.perf_counter()
    opt.optimize(obj, rng)
    elapsed = time.perf_counter() - t0
    rep = obj.report
    best = obj.best
    proven = bool(rep.get("proven_optimal")) and best is not None
    lb = rep.get("optimum_lower_bound_cycles")
    if best is None and rep.get("infeasible_proven"):
        lower = math.inf  # no mapping fits: proven
    else:
        # not proving: the compute bound holds for what the guard accepts, nothing without it
        fallback = obj.compute_bound if rules.guard else 0
        lower = best.cost if proven else float(lb if lb is not None else fallback)
    if proven and cache is not None:
        entry = {"optimum_cycles": int(best.cost), "shape": layer.shape,
                 "platform": cfg["platform"].get("name"), "system": cfg["system"]["name"],
                 "mapping": best.mapping.to_dict(), "evaluations": int(obj.used),
                 "time_s": round(elapsed, 3), "source": "codesign"}
        try:
            optima.store(cache, k, entry)
        except (OSError, ValueError) as e:
            if say:
                say(f"warning: optima cache: {e}")
    return Exact(layer, hw, best.cost if best else math.inf, proven, lower,
                 best.mapping if best else None, best.outputs if best else None,
                 obj.summary(), int(obj.used), elapsed, False)


def _rng(cfg: dict[str, Any], u: int) -> np.random.Generator:
    """Unique layer ``u``'s generator (the warm start's), as a fixed-platform job's."""
    return np.random.default_rng([int(cfg["seed"]), u])


# --- codesign.check=exhaustive ---------------------------------------------------------------

def check_design(cfg: dict[str, Any], setup: Setup, found: CoDesignSearch,
                 cache: Path | None, say: Say | None = None) -> dict[str, Any] | None:
    """results.json ``codesign.check`` (``codesign.check=exhaustive``; None when off or no
    design was found): per unique layer the proven optimum on the chosen design and the GA
    mapping's latency over it; for the model the same sums (each unique layer x its count)."""
    d = found.design
    if check_mode(cfg) != "exhaustive" or d is None:
        return None
    cols = int(d.genes.cols[0]) if found.hwspace.grid else None
    lcfg = pinned_config(cfg, cols)
    t0 = time.perf_counter()
    layers, ga_total, opt_total, lower_total = [], 0.0, 0.0, 0.0
    for k, u in enumerate(setup.todo):
        ex = prove_layer(lcfg, setup.unique[u], d.hw, _rng(cfg, u), cache, say)
        ga = float(d.outputs[k][CYCLES])
        n = len(setup.layers_of(u))
        ga_total += n * ga
        opt_total += n * ex.cycles
        lower_total += n * ex.lower_bound
        layers.append({"unique_index": u, "layers": setup.layers_of(u), "shape": ex.layer.shape,
                       "ga_cycles": ga, **ex.record(),
                       "ga_over_optimum": _ratio(ga, ex.cycles) if ex.proven else None,
                       "ga_over_best": _ratio(ga, ex.cycles)})
        if say:
            say(f"check layer {setup.layers_of(u)[0]:>3} {ex.layer.shape}: GA {ga:,.0f} cycles, "
                + ("optimum" if ex.proven else "best found (not proven)")
                + f" {ex.cycles:,.0f} ({_ratio(ga, ex.cycles):.4f}x; "
                + ("cached" if ex.cached else f"{ex.evaluations:,} evaluations, {ex.time_s:.1f} s")
                + ")")
    proven = all(r["proven_optimal"] for r in layers)
    return {"name": "exhaustive",
            "hardware": {"num_pes": d.hw.num_pes, "l1_size": d.hw.l1_size, "l2_size": d.hw.l2_size},
            "proven_optimal": proven,
            "ga_cycles": ga_total,
            "optimum_cycles": R.finite_or_none(opt_total) if proven else None,
            "best_cycles": R.finite_or_none(opt_total),
            "lower_bound_cycles": R.finite_or_none(lower_total),
            "ga_over_optimum": _ratio(ga_total, opt_total) if proven else None,
            "ga_over_best": _ratio(ga_total, opt_total),
            "evaluations": sum(r["evaluations"] for r in layers),
            "cached_layers": sum(r["cached"] for r in layers),
            "time_s": round(time.perf_counter() - t0, 3),
            "layers": layers}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if math.isfinite(a) and math.isfinite(b) and b > 0 else None


def layer_optimum(check: dict[str, Any] | None, u: int) -> dict[str, Any]:
    """Fields for unique layer ``u``'s results.json records from ``codesign.check``: its proven
    optimum on the design (``optimum_cycles``) and the GA's latency over it
    (``ratio_to_optimum``), as a fixed-platform job records them; empty if not proven."""
    for r in (check or {}).get("layers") or []:
        if r["unique_index"] == u and r["proven_optimal"]:
            return {"optimum_cycles": r["optimum_cycles"], "ratio_to_optimum": r["ga_over_optimum"]}
    return {}


# --- codesign.inner=exhaustive ---------------------------------------------------------------

@dataclass
class Candidate:
    """A hardware of the grid: PEs (S1/S3: array rows x columns) and L1 per PE from
    ``codesign.grid``, L2 the rest of the area budget (elements); ``fits``: at least one element
    of L2 is left."""

    pes: int
    l1: int
    l2: int
    rows: int | None = None  # S1/S3: the array's shape (pes = rows x cols)
    cols: int | None = None

    def shape(self) -> dict[str, int]:
        """``array_rows`` and ``array_cols`` where the candidate is an array (S1/S3)."""
        return {} if self.cols is None else {"array_rows": int(self.rows or 1),
                                             "array_cols": int(self.cols)}

    @property
    def fits(self) -> bool:
        return self.l2 >= 1


def is_array(cfg: dict[str, Any]) -> bool:
    """Whether the system's hardware genes are array rows x columns (S1/S3), not a PE count."""
    return cfg["system"].get("name") != "s2"


def arrays(cfg: dict[str, Any]) -> list[tuple[int, int | None, int | None]]:
    """(PEs, rows, cols) of ``codesign.grid``: its ``pes`` on S2, every ``rows`` x ``cols`` on
    S1/S3 (rows and cols None on S2)."""
    if not is_array(cfg):
        return [(p, None, None) for p in _int_list(cfg, "pes")]
    return [(r * c, r, c) for r in _int_list(cfg, "rows") for c in _int_list(cfg, "cols")]


def candidates(cfg: dict[str, Any]) -> list[Candidate]:
    """Every array (:func:`arrays`) x L1 of ``codesign.grid`` with L2 the area the PEs and their
    L1 leave in the budget (0 where none is left), by descending PEs then L1."""
    model, budget = area_model(cfg), budget_um2(cfg)
    out = []
    for p, rows, cols in sorted(arrays(cfg), key=lambda a: (-a[0], -(a[2] or 0))):
        for l1 in reversed(_int_list(cfg, "l1")):
            left = budget - area_um2(p, l1, 0, model)
            l2 = int(min(MAX_HARDWARE, max(0, math.floor(left / model.sram_um2(1) + 1e-9))))
            while l2 >= 1 and area_um2(p, l1, l2, model) > budget:  # rounding
                l2 -= 1
            out.append(Candidate(p, l1, l2, rows, cols))
    return out


@dataclass
class Scored:
    """A candidate after its exhaustive searches: per unique layer its :class:`Exact` (the
    layers searched before it stopped), its latency (sum, each unique layer x its count) and a
    lower bound of it."""

    candidate: Candidate
    hw: Hardware  # the candidate's capacities
    exact: list[Exact] = field(default_factory=list)
    cycles: float = math.inf  # inf unless every layer was searched and is feasible
    lower_bound: float = 0.0
    stopped: str | None = None  # why it was not searched to the end
    infeasible: bool = False  # stopped at a layer without a feasible mapping
    time_s: float = 0.0

    @property
    def proven(self) -> bool:
        return bool(self.exact) and self.stopped is None and all(e.proven for e in self.exact)


@dataclass
class GridSearch:
    """``codesign.inner=exhaustive``: every candidate scored, the best one and its design."""

    scored: list[Scored]
    over_budget: list[Candidate]
    best: Scored | None
    design: Hardware | None  # the best candidate sized to its optimal mappings' buffers
    budget_um2: float
    search_s: float


def _compute_bounds(setup: Setup, pes: int) -> list[float]:
    """Per unique layer (in ``setup.todo`` order) x its count: ceil(MACs / PEs) (cycles)."""
    return [len(setup.layers_of(u)) * math.ceil(setup.unique[u].macs / pes) for u in setup.todo]


def score(cfg: dict[str, Any], setup: Setup, c: Candidate, best: float, cache: Path | None,
          say: Say | None = None) -> Scored:
    """Candidate ``c``'s proven per-layer optima, stopping once a lower bound of its latency
    (the layers' optima so far, or lower bounds where not proven, plus the compute bounds of
    the others) reaches ``best`` (cycles), or a layer has no feasible mapping."""
    hw = replace(setup.hw, num_pes=c.pes, l1_size=c.l1, l2_size=c.l2)
    s = Scored(c, hw)
    rest = _compute_bounds(setup, c.pes)
    t0 = time.perf_counter()
    done = 0.0
    for k, u in enumerate(setup.todo):
        s.lower_bound = done + sum(rest[k:])
        if s.lower_bound >= best:
            s.stopped = f"lower bound {s.lower_bound:,.0f} cycles >= best {best:,.0f}"
            break
        ex = prove_layer(pinned_config(cfg, c.cols), setup.unique[u], hw, _rng(cfg, u), cache, say)
        s.exact.append(ex)
        done += len(setup.layers_of(u)) * ex.lower_bound
        if ex.mapping is None:
            s.infeasible = True
            s.lower_bound = max(s.lower_bound, done)  # inf when proven infeasible
            s.stopped = (f"layer {setup.layers_of(u)[0]}: no feasible mapping"
                         + ("" if math.isinf(ex.lower_bound) else " found (not proven)"))
            break
    else:
        s.lower_bound = done
        s.cycles = sum(len(setup.layers_of(u)) * e.cycles for u, e in zip(setup.todo, s.exact))
    s.time_s = time.perf_counter() - t0
    return s


def search_grid(cfg: dict[str, Any], setup: Setup, cache: Path | None,
                say: Say | None = None) -> GridSearch:
    """``codesign.inner=exhaustive``: the candidates that fit, by ascending compute bound, each
    scored by :func:`score` against the best so far; the best candidate (lowest latency; on a
    tie the first, i.e. more PEs) sized to its mappings' buffers."""
    check(cfg)
    t0 = time.perf_counter()
    every = candidates(cfg)
    fit = [c for c in every if c.fits]
    scored: list[Scored] = []
    best: Scored | None = None
    for c in fit:
        s = score(cfg, setup, c, best.cycles if best else math.inf, cache, say)
        scored.append(s)
        if say:
            shape = f" ({c.rows} x {c.cols})" if c.cols is not None else ""
            say(f"candidate {c.pes} PEs{shape}, L1 {c.l1:,}, L2 {c.l2:,}: "
                + (f"{s.cycles:,.0f} cycles" + ("" if s.proven else " (not proven)")
                   if s.stopped is None else f"stopped: {s.stopped}")
                + f" ({s.time_s:.1f} s)")
        if s.stopped is None and (best is None or s.cycles < best.cycles):
            best = s
    design = sized(best) if best else None
    return GridSearch(scored, [c for c in every if not c.fits], best, design,
                      budget_um2(cfg), time.perf_counter() - t0)


def sized(s: Scored) -> Hardware:
    """Candidate ``s``'s hardware with L1 and L2 as its mappings need them (the largest
    requirement of any layer, at least 1 element): within its capacities, so within the
    budget, and with the same latencies (buffer sizes only bound requirements)."""
    l1 = max([1, *(math.ceil(e.outputs["l1_size_req"]) for e in s.exact if e.outputs)])
    l2 = max([1, *(math.ceil(e.outputs["l2_size_req"]) for e in s.exact if e.outputs)])
    return replace(s.hw, l1_size=l1, l2_size=l2)


def hardware_record(cfg: dict[str, Any], found: GridSearch) -> dict[str, Any] | None:
    """results.json ``hardware``: the sized design, its area and breakdown."""
    if found.design is None or found.best is None:
        return None
    return {**found.design.to_dict(), **found.best.candidate.shape(),
            **area_record(found.design, area_model(cfg))}


def codesign_record(cfg: dict[str, Any], found: GridSearch) -> dict[str, Any]:
    """results.json ``codesign`` of ``codesign.inner=exhaustive``: the grid, every candidate's
    outcome, the best and whether it is certified over the grid, and what was evaluated
    (candidates and exhaustive searches; not a GA sample budget)."""
    best = found.best
    certified = best is not None and best.proven and all(
        s is best or s.lower_bound >= best.cycles for s in found.scored)
    exact = [e for s in found.scored for e in s.exact]
    return {"name": "digamma", "inner": "exhaustive",
            "area_budget_mm2": found.budget_um2 / UM2_PER_MM2,
            "grid": {**({"rows": _int_list(cfg, "rows"), "cols": _int_list(cfg, "cols")}
                        if is_array(cfg) else {"pes": _int_list(cfg, "pes")}),
                     "l1": _int_list(cfg, "l1"), "l2": "the rest of the area budget"},
            "best_cost": R.finite_or_none(best.cycles) if best else None,
            "certified": certified,
            "best_candidate": {"num_pes": best.candidate.pes, **best.candidate.shape(),
                               "l1_capacity": best.candidate.l1,
                               "l2_capacity": best.candidate.l2} if best else None,
            "evaluated": {"candidates": len(found.scored) + len(found.over_budget),
                          "over_budget": len(found.over_budget),
                          "searched_to_the_end": sum(s.stopped is None for s in found.scored),
                          "stopped_by_bound": sum(s.stopped is not None and not s.infeasible
                                                  for s in found.scored),
                          "infeasible": sum(s.infeasible for s in found.scored),
                          "exhaustive_searches": sum(not e.cached for e in exact),
                          "cached": sum(e.cached for e in exact),
                          "costmodel_evaluations": sum(e.evaluations for e in exact)},
            "candidates": [
                {"num_pes": s.candidate.pes, **s.candidate.shape(), "l1_capacity": s.candidate.l1,
                 "l2_capacity": s.candidate.l2, "cycles": R.finite_or_none(s.cycles),
                 "proven_optimal": s.proven, "lower_bound_cycles": R.finite_or_none(s.lower_bound),
                 "stopped": s.stopped,
                 **({"infeasible_proven": math.isinf(s.lower_bound)} if s.infeasible else {}),
                 "time_s": round(s.time_s, 3),
                 "layers": [e.record() for e in s.exact]} for s in found.scored]
            + [{"num_pes": c.pes, **c.shape(), "l1_capacity": c.l1, "l2_capacity": 0,
                "stopped": "over codesign.area_mm2"} for c in found.over_budget],
            "search_s": round(found.search_s, 4)}


def unique_results(setup: Setup, found: GridSearch) -> list[R.UniqueResult]:
    """Per unique layer what results.json records: the best candidate's proven mapping and
    outputs, its exhaustive search's summary (proof included)."""
    best = found.best
    if best is None:
        return []
    out = []
    for u, ex in zip(setup.todo, best.exact):
        summary = {**ex.summary, "feasible": ex.mapping is not None,
                   "optimizer_report": {"proven_optimal": ex.proven,
                                        "optimum_lower_bound_cycles": R.finite_or_none(ex.lower_bound),
                                        "exhaustive": {"evaluations": ex.evaluations,
                                                       "time_s": round(ex.time_s, 3),
                                                       "cached": ex.cached}}}
        out.append(R.UniqueResult(u, ex.layer, summary, R.finite_or_none(ex.cycles), ex.outputs,
                                  ex.mapping, [], ex.time_s))
    return out
