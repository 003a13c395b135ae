#!/usr/bin/env python
"""Compare the arms of one sweep or one MLflow experiment: optimizers (the paper's Figure 6) or
ablation arms.

Usage: python scripts/compare.py [--sweep latest|RUN_ID|DIR] [--experiment NAME] [--baseline LABEL]
                                 [--ablation] [--no-plots] [--out DIR] [--uri TRACKING_URI]
                                 [--optima FILE]

What is compared: without ``--sweep`` and ``--experiment``, the jobs of the latest sweep in the
store (the parent run tagged ``gamma.kind=sweep`` started last; its jobs are its child runs);
``--sweep RUN_ID`` a given sweep's jobs; ``--sweep DIR`` the jobs of a sweep folder read from
their results.json and config.yaml (no MLflow needed: also for sweeps run with
``tracking.enabled=false``); ``--experiment NAME`` alone every job run of the experiment (several
sweeps, e.g. seeds run one after another), with ``--sweep latest`` the experiment's latest sweep.

An arm is a job label (``gamma``, ``gamma mutation=off``, ``random batch=50``: the MLflow tag
``label``, else the config's ``label``, else results.json's, else the optimizer's name). Runs are
grouped by arm, model, system, platform, objective, budget and layer selection; runs of one group
that still differ in some setting other than the seed (an old run without labels, a label set by
hand) are split, the differing settings appended to the arm's name, so different values of a
swept parameter are never merged. The end-to-end cost of a run is the sum over its layers of each
layer's best cost in the run's objective (latency in cycles, energy in nJ, ...: results.json's
``objective`` and ``objective_unit``); "infeasible" where some layer had no feasible mapping.

Writes to DIR (default reports/compare/<experiment or sweep folder>/; compare.py's files of an
earlier call there are removed first: :data:`OWN_FILES`) and as artifacts of a summary MLflow run
(a child of the sweep's parent run):
- table.md / table.csv: what was selected, warnings where arms differ in seeds or have one seed,
  then per arm the median end-to-end cost over seeds with its spread over seeds (min-max), the
  ratio of medians to the baseline arm (``--baseline``, default ``gamma``) in the same
  model/system/platform/objective/budget/layers, the seeds counted; latency (cycles, x the
  compute bound) and energy (nJ) medians; and, so that a platform where some layer has no
  feasible mapping at all still compares, the median number of infeasible layers and the cost
  summed over the feasible layers (its ratio to the baseline only where both miss the same number
  of layers); where an arm is co-design (``codesign=digamma``), the area in mm^2
  (:func:`run_area`): a co-design arm's median design area with its range and budget, a
  fixed-platform arm's platform area under the co-design area model where a co-design run
  recorded it for the same platform, else blank;
- ablation.md / ablation.csv (when the experiment holds several arms of one optimizer, or with
  ``--ablation``): per model/system/platform/objective/budget/layers, each arm's rank (of its
  median; 1 = best) with its best and worst rank over the seeds, its median end-to-end cost
  relative to the baseline arm's median, with the spread of the arm's seeds (its min and max over
  the baseline's median), sorted by the median ratio;
- ratio_<system>_<platform>[...].png: each arm's median end-to-end cost and its seeds' min-max as
  a ratio to the proven optimum (where known for every arm) or to the best arm, on a linear axis
  zoomed to the values; an infeasible arm is marked "infeasible" with its missing layers, never
  drawn as a value; the seeds of each arm under its name;
- convergence_<system>_<platform>[...].png: end-to-end best-so-far cost against samples per unique
  layer (median over seeds; log scales), as the same ratio, zoomed from a tenth of the samples
  on; an arm with a layer that never got a feasible mapping is not drawn (summed over fewer
  layers it would look better) but named under the axes with its missing layers;
- "latency x optimum" (table) and layers.md / layers.csv (per arm and layer): the latency over
  the proven optimum where the cache of optima (``--optima``, default outputs/optima.json,
  filled by ``optimizer=exhaustive`` and scripts/optima.py) knows the layers' optima.
The table comes from one MLflow query (params, metrics, tags; older runs' metric names are read
too: :func:`gamma.tracking.reader.current_metrics`); results.json is downloaded only for the
convergence curves (not with ``--no-plots``), for runs logged without totals and when the optima
cache has entries. Failed jobs are listed with their error. A job run again (the same config)
counts once, by its newest run. Exit 1 if nothing is selected.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

from gamma.search import optima
from gamma.tracking import reader, writer as tracking
from gamma.tracking.writer import LAYER_PREFIX
from gamma.tracking.store import failure_reason
from gamma.errors import GammaError
from gamma.results import area as A
from gamma.results.curves import end_to_end_best
from gamma.search.labels import NO_EFFECT, short_setting
from gamma.objectives.metrics import UNITS

#: What separates two groups besides the arm: (model, system, platform, objective, budget, layers).
CONTEXT = ("model", "system", "platform", "objective", "budget", "layers")
#: Params that never make two runs different arms: the seed, the settings that cannot change a
#: result (:data:`gamma.search.labels.NO_EFFECT`: resume, parallel, tracking, ...) and the
#: params that are results (a co-design run's design: :data:`gamma.tracking.writer.RESULT_PARAMS`).
NOT_A_SETTING = ("seed", *NO_EFFECT, *tracking.RESULT_PARAMS)

Context = tuple[str, ...]
Key = tuple[str, Context]  # label, context


# --- one run ------------------------------------------------------------------------------------
def job_key(run: dict[str, Any]) -> tuple:
    """What a job computes: its flattened config (the run's params) without the settings that
    cannot change its result (:data:`gamma.search.labels.NO_EFFECT`, the label apart); a run
    without params is a job of its own."""
    if not run["params"]:
        return (run["run_id"],)
    ignored = [n for n in (*NO_EFFECT, *tracking.RESULT_PARAMS)
               if n != "label"]  # a label set by hand names another arm
    return tuple(sorted((k, v) for k, v in run["params"].items()
                        if not any(k == n or k.startswith(n + ".") for n in ignored)))


def latest_runs(runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The newest run of each job (a job run again supersedes its older runs), and how many
    runs that left out."""
    newest: dict[tuple, dict[str, Any]] = {}
    for r in runs:
        k = job_key(r)
        if k not in newest or (r["start_time"] or 0) > (newest[k]["start_time"] or 0):
            newest[k] = r
    return list(newest.values()), len(runs) - len(newest)


def _given(value: Any) -> str | None:
    """A tag or param value, None where the config had none."""
    return None if value is None or str(value) in ("", "None", "null") else str(value)


def describe(run: dict[str, Any]) -> dict[str, Any]:
    """The run's arm and context: tags first, then the config (params), then results.json."""
    t, p, res = run.get("tags", {}), run["params"], run.get("results") or {}

    def pick(tag: str, param: str, default: str = "?", in_results: bool = True) -> str:
        for v in (t.get(tag), p.get(param), res.get(tag) if in_results else None):
            if _given(v) is not None:
                return str(v)
        return default

    optimizer = pick("optimizer", "optimizer.name")
    objective = pick("objective", "objective.name", "latency")
    return {"label": pick("label", "label", optimizer), "optimizer": optimizer,
            "model": pick("model", "model.name"), "system": pick("system", "system.name"),
            "platform": pick("platform", "platform.name"), "objective": objective,
            "unit": (res.get("objective_unit") or UNITS.get(objective)  # two_stage: stage 2's
                     or UNITS.get(str(p.get("objective.stage2")), "")),
            "budget": pick("budget", "budget"), "layers": pick("layers", "layers", "all", in_results=False),
            "seed": pick("seed", "seed")}


def run_area(run: dict[str, Any]) -> dict[str, Any]:
    """A run's area figures as :func:`gamma.results.area.job_area` gives them, from its
    params and metrics (``codesign.name``, ``platform.*``, ``codesign.area_budget_mm2``,
    ``area_mm2``, ``platform_area_mm2``), else from its results.json."""
    p, m, res = run["params"], run.get("metrics") or {}, run.get("results") or {}
    known = A.job_area(res)
    codesign = _given(p.get("codesign.name")) not in (None, "off", "False") or known["codesign"]
    budget = _given(p.get("codesign.area_budget_mm2"))
    return {"codesign": codesign,
            "area_mm2": m.get("area_mm2", known["area_mm2"]) if codesign else None,
            "budget_mm2": float(budget) if codesign and budget is not None else known["budget_mm2"],
            "platform": A.platform_key(*(p.get(f"platform.{k}")
                                         for k in ("name", "num_pes", "l1_size", "l2_size"))),
            "platform_area_mm2": (m.get("platform_area_mm2", known["platform_area_mm2"])
                                  if codesign else None)}


def totals_from_metrics(metrics: dict[str, float]) -> dict[str, float] | None:
    """End-to-end figures of a run from its MLflow metrics under the current names (the reader
    renames an older run's: :func:`gamma.tracking.reader.current_metrics`; None if it logged no
    totals): ``cost`` (sum of the layers' best cost, inf if a layer is infeasible),
    ``cost_feasible`` (summed over the feasible layers), ``infeasible`` (layers), ``latency``
    (cycles), ``latency_feasible``, ``energy`` (nJ), ``bound`` (compute bound, cycles)."""
    if "infeasible_layers" not in metrics or "compute_bound_cycles" not in metrics:
        return None
    bad = int(metrics["infeasible_layers"])

    def layer_sum(name: str) -> float:
        return float(sum(v for k, v in metrics.items() if k.startswith(f"{LAYER_PREFIX}/{name}_")))

    cost_ok = metrics.get("feasible_best_cost", layer_sum("best_cost"))
    lat_ok = metrics.get("feasible_latency_cycles", layer_sum("latency_cycles"))
    return {"cost": math.inf if bad else cost_ok, "cost_feasible": cost_ok, "infeasible": bad,
            "latency": metrics.get("latency_cycles", math.inf) if not bad else math.inf,
            "latency_feasible": lat_ok,
            "energy": metrics.get("energy_nJ", math.inf) if not bad else math.inf,
            "bound": float(metrics["compute_bound_cycles"])}


def totals_from_results(results: dict[str, Any]) -> dict[str, float]:
    """The figures of :func:`totals_from_metrics` from a results.json."""
    ok = [r for r in results["layers"] if r.get("feasible") and r.get("best")]
    bad = len(results["layers"]) - len(ok)
    t = results.get("totals") or {}
    cost_ok = float(sum(r["best_cost"] for r in ok))
    return {"cost": math.inf if bad else cost_ok, "cost_feasible": cost_ok, "infeasible": bad,
            "latency": end_to_end(results, "latency_cycles"),
            "latency_feasible": feasible_part(results, "latency_cycles")[0],
            "energy": end_to_end(results, "energy_nJ"),
            "bound": float(t.get("compute_bound_cycles") or math.nan)}


def end_to_end(results: dict[str, Any], field: str) -> float:
    """Total latency or energy of a run; inf if some layer had no feasible mapping."""
    t = results.get("totals") or {}
    v = t.get(field)
    return math.inf if v is None or not t.get("feasible", False) else float(v)


def feasible_part(results: dict[str, Any], field: str) -> tuple[float, int]:
    """(sum of ``field`` over the layers with a feasible mapping, number of infeasible layers);
    ``field`` is ``latency_cycles``, ``energy_nJ`` or ``best_cost`` (the run's objective)."""
    total, bad = 0.0, 0
    for layer in results["layers"]:
        if layer.get("feasible") and layer.get("best"):
            total += float(layer["best_cost"] if field == "best_cost" else
                           layer["best"][{"latency_cycles": "runtime_cycles"}.get(field, field)])
        else:
            bad += 1
    return total, bad


def curve(results: dict[str, Any], grid: np.ndarray, feasible_only: bool = False) -> np.ndarray:
    """End-to-end best-so-far cost (the run's objective) on ``grid`` (samples per unique layer):
    every layer takes its unique shape's best so far; inf until every layer has a feasible
    mapping. With ``feasible_only``, the layers that never got one are left out."""
    layers = [layer for layer in results["layers"]
              if not feasible_only or (layer.get("feasible") and layer.get("best"))]
    return end_to_end_best(layers, grid)


# --- arms ---------------------------------------------------------------------------------------
def _setting(key: str) -> bool:
    return not any(key == k or key.startswith(k + ".") for k in NOT_A_SETTING)


def split_arms(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs of one label and context by arm: one arm, unless the runs still differ in some
    setting (params other than the seed and tracking): then each setting's value is appended
    to the label (``optimizer.`` dropped), so no two values of a swept parameter share an arm."""
    keys = sorted({k for r in runs for k in r["params"] if _setting(k)})
    differ = [k for k in keys if len({r["params"].get(k) for r in runs}) > 1]
    arms: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        extra = [short_setting(k.removeprefix("optimizer."), r["params"].get(k)) for k in differ]
        arms[" ".join([r["arm"]["label"], *extra])].append(r)
    return arms


def group_runs(done: list[dict[str, Any]]) -> dict[Key, list[dict[str, Any]]]:
    """Finished runs (with ``arm``) by (label, context)."""
    first: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for r in done:
        a = r["arm"]
        first[a["label"], tuple(a[c] for c in CONTEXT)].append(r)
    groups: dict[Key, list[dict[str, Any]]] = {}
    for (_, ctx), runs in first.items():
        for label, mine in split_arms(runs).items():
            groups[label, ctx] = mine
    return groups


def ratio_to(value: float, base: float) -> float:
    """``value / base``; NaN (no ratio) unless the baseline's value is finite and positive."""
    return value / base if math.isfinite(base) and base > 0 else math.nan


def median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def fmt(v: float) -> str:
    return "infeasible" if math.isinf(v) else ("-" if math.isnan(v) else f"{v:,.0f}")


def fmt_ratio(v: float) -> str:
    return "-" if math.isnan(v) or math.isinf(v) else f"{v:.3f}"


def fmt_spread(lo: float, hi: float) -> str:
    """A min-max range of ratios; an infeasible seed reads "infeasible"."""
    def one(v: float) -> str:
        return "infeasible" if math.isinf(v) else fmt_ratio(v)

    return f"{one(lo)} - {one(hi)}"


def summarize(groups: dict[Key, list[dict[str, Any]]], baseline: str) -> list[dict[str, Any]]:
    """One row per arm: medians and min-max over seeds, ratios to the baseline arm, the area
    (:func:`gamma.results.area.arm_area`)."""
    rows = []
    for r in (r for runs in groups.values() for r in runs):
        r.setdefault("area", run_area(r))
    platforms = A.platform_areas([r["area"] for runs in groups.values() for r in runs])
    for (label, ctx), runs in groups.items():
        tot = [r["totals"] for r in runs]
        cost = [t["cost"] for t in tot]
        lat = median([t["latency"] for t in tot])
        rows.append({"label": label, "optimizer": runs[0]["arm"]["optimizer"],
                     **dict(zip(CONTEXT, ctx)), "unit": runs[0]["arm"]["unit"], "seeds": len(runs),
                     "cost": median(cost), "cost_min": min(cost), "cost_max": max(cost),
                     "latency_cycles": lat,
                     # per run: a co-design run's bound is on its own design's PEs
                     "ratio_to_bound": median([t["latency"] / t["bound"] for t in tot]),
                     **against_optimum(runs, lat),
                     "energy_nJ": median([t["energy"] for t in tot]),
                     "infeasible_layers": median([t["infeasible"] for t in tot]),
                     "cost_feasible_layers": median([t["cost_feasible"] for t in tot]),
                     **A.arm_area([r["area"] for r in runs], platforms), "_ctx": ctx,
                     "_seeds": {r["arm"]["seed"]: t["cost"] for r, t in zip(runs, tot)}})
    base = {r["_ctx"]: r for r in rows if r["label"] == baseline}
    for r in rows:
        b = base.get(r["_ctx"])
        r["cost_vs_baseline"] = ratio_to(r["cost"], b["cost"] if b else math.nan)
        r["energy_vs_baseline"] = ratio_to(r["energy_nJ"], b["energy_nJ"] if b else math.nan)
        same = b and b["infeasible_layers"] == r["infeasible_layers"]
        r["feasible_layers_vs_baseline"] = (ratio_to(r["cost_feasible_layers"], b["cost_feasible_layers"])
                                            if same else math.nan)
        r["ratio_min"] = ratio_to(r["cost_min"], b["cost"] if b else math.nan)
        r["ratio_max"] = ratio_to(r["cost_max"], b["cost"] if b else math.nan)
    return sorted(rows, key=lambda r: (r["_ctx"], r["cost"], r["label"]))


def run_optimum(run: dict[str, Any], cache: dict[str, dict[str, Any]]) -> float | None:
    """The sum of the proven latency optima (cycles) of a run's layers, if every one is known
    (recorded in its results.json or in the optima cache), else None."""
    res = run.get("results")
    if not res or not res.get("layers"):
        return None
    per_layer = layer_optima(res, cache, run.get("params"))
    return float(sum(per_layer)) if all(o is not None for o in per_layer) else None


def layer_optima(results: dict[str, Any], cache: dict[str, dict[str, Any]],
                 params: dict[str, Any] | None) -> list[int | None]:
    """Per layer of a results.json, its proven optimum (cycles) where known; none for a
    co-design run (its hardware is its own design, not the platform the cache is keyed on)."""
    if A.is_codesign(results):
        return [None] * len(results.get("layers") or [])
    return optima.optima_of_results(results, cache, params)


def against_optimum(runs: list[dict[str, Any]], latency: float) -> dict[str, float]:
    """``optimum_cycles`` (the runs' summed layer optima, when known for every run) and the
    median latency over it (``ratio_to_optimum``); NaN where unknown."""
    known = {r.get("optimum") for r in runs}
    if len(known) != 1 or None in known:
        return {"optimum_cycles": math.nan, "ratio_to_optimum": math.nan}
    opt = float(known.pop())
    return {"optimum_cycles": opt, "ratio_to_optimum": latency / opt if opt > 0 else math.nan}


# --- files --------------------------------------------------------------------------------------
TABLE_COLUMNS = ["label", "optimizer", *CONTEXT, "unit", "seeds", "cost", "cost_min", "cost_max",
                 "cost_vs_baseline", "latency_cycles", "ratio_to_bound", "optimum_cycles",
                 "ratio_to_optimum", "energy_nJ",
                 "energy_vs_baseline", "infeasible_layers", "cost_feasible_layers",
                 "feasible_layers_vs_baseline", "area_mm2", "area_min", "area_max",
                 "area_budget_mm2"]
ABLATION_COLUMNS = [*CONTEXT, "unit", "rank", "rank_min", "rank_max", "label", "seeds", "cost",
                    "cost_vs_baseline", "ratio_min", "ratio_max"]


def write_csv(path: Path, rows: list[dict[str, Any]], cols: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r[c] for c in cols})


def varying(rows: list[dict[str, Any]]) -> list[str]:
    """The context columns whose value differs between rows (always system and platform)."""
    return [c for c in CONTEXT if c in ("system", "platform") or len({r[c] for r in rows}) > 1]


def write_tables(rows: list[dict[str, Any]], failed: list[dict[str, Any]], baseline: str,
                 out: Path, header: list[str] | None = None) -> list[Path]:
    """table.md and table.csv (one markdown table per objective), after ``header`` (what was
    selected) and the seed warnings (:func:`seed_warnings`)."""
    write_csv(out / "table.csv", rows, TABLE_COLUMNS)
    ctx_cols = [c for c in varying(rows) if c != "objective"]  # one table per objective
    warnings = seed_warnings(rows)
    lines: list[str] = [*(header or []), *[f"warning: {w}" for w in warnings]]
    lines += [""] if lines else []
    for objective, unit in sorted({(r["objective"], r["unit"]) for r in rows}):  # two_stage: per unit
        mine = [r for r in rows if (r["objective"], r["unit"]) == (objective, unit)]
        extra = [("latency (cycles)", "latency_cycles")] if objective != "latency" else []
        extra += [("energy (nJ)", "energy_nJ")] if objective != "energy" else []
        with_area = any(r["codesign"] for r in mine)
        head = ["arm", *ctx_cols, "seeds", f"{objective} ({unit}), median", "min-max over seeds",
                f"x {baseline}", *(["area (mm^2)"] if with_area else []),
                "latency x bound", "latency x optimum", *[h for h, _ in extra],
                "infeasible layers",
                f"{objective} of feasible layers", f"x {baseline}"]
        lines += [f"End-to-end {objective} ({unit}); ratios are medians over the median of "
                  f"arm {baseline!r} in the same {', '.join(ctx_cols)}.", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in mine:
            cells = [r["label"], *[str(r[c]) for c in ctx_cols], str(r["seeds"]), fmt(r["cost"]),
                     f"{fmt(r['cost_min'])} - {fmt(r['cost_max'])}", fmt_ratio(r["cost_vs_baseline"]),
                     *([A.area_cell(r["area_mm2"], r["area_budget_mm2"],
                                    (r["area_min"], r["area_max"]))] if with_area else []),
                     fmt_ratio(r["ratio_to_bound"]), fmt_ratio(r["ratio_to_optimum"]),
                     *[fmt(r[k]) for _, k in extra],
                     f"{r['infeasible_layers']:g}", fmt(r["cost_feasible_layers"]),
                     fmt_ratio(r["feasible_layers_vs_baseline"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if failed:
        lines += ["Failed or unfinished jobs:"]
        for r in failed:
            a = r["arm"]
            what = f"{a['label']} {a['model']} {a['system']} {a['platform']} seed {a['seed']}"
            lines.append(f"- {what}: {r['status']}: {r['error'] or 'no results.json'}")
    (out / "table.md").write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return [out / "table.md", out / "table.csv"]


def layer_rows(groups: dict[Key, list[dict[str, Any]]],
               cache: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per arm and layer with a known optimum: the median over seeds of the layer's best latency
    (cycles) and its ratio to the proven optimum."""
    rows = []
    for (label, ctx), runs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        per: dict[int, dict[str, Any]] = {}
        for r in runs:
            res = r.get("results") or {}
            layers = res.get("layers") or []
            for layer, opt in zip(layers, layer_optima(res, cache, r.get("params"))):
                if opt is None or not layer.get("best"):
                    continue
                e = per.setdefault(layer["index"], {"shape": layer["shape"], "optimum": opt, "lat": []})
                e["lat"].append(float(layer["best"]["runtime_cycles"]))
        for index, e in sorted(per.items()):
            lat = median(e["lat"])
            rows.append({"label": label, **dict(zip(CONTEXT, ctx)), "layer": index,
                         "shape": e["shape"], "seeds": len(e["lat"]), "latency_cycles": lat,
                         "optimum_cycles": e["optimum"], "ratio_to_optimum": lat / e["optimum"]})
    return rows


LAYER_COLUMNS = ["label", *CONTEXT, "layer", "shape", "seeds", "latency_cycles", "optimum_cycles",
                 "ratio_to_optimum"]


def write_layers(rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """layers.md and layers.csv: each arm's per-layer median latency against the optimum."""
    write_csv(out / "layers.csv", rows, LAYER_COLUMNS)
    ctx_cols = varying(rows)
    head = ["arm", *ctx_cols, "layer", "shape", "seeds", "latency (cycles), median",
            "optimum (cycles)", "x optimum"]
    lines = ["Per layer: median best latency over seeds against the proven optimum "
             "(optimizer=exhaustive, outputs/optima.json).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["label"], *[str(r[c]) for c in ctx_cols], str(r["layer"]), r["shape"],
                 str(r["seeds"]), fmt(r["latency_cycles"]), fmt(r["optimum_cycles"]),
                 fmt_ratio(r["ratio_to_optimum"])]
        lines.append("| " + " | ".join(cells) + " |")
    (out / "layers.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [out / "layers.md", out / "layers.csv"]


def wants_ablation(rows: list[dict[str, Any]]) -> bool:
    """Several arms of one optimizer in one context."""
    seen: dict[tuple, set[str]] = defaultdict(set)
    for r in rows:
        seen[r["_ctx"], r["optimizer"]].add(r["label"])
    return any(len(v) > 1 for v in seen.values())


def ablation_rows(rows: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """The rows of every context that has the baseline arm, by median ratio to it, each with
    its rank (:func:`add_ranks`)."""
    with_base = {r["_ctx"] for r in rows if r["label"] == baseline}
    mine = [r for r in rows if r["_ctx"] in with_base]
    mine = sorted(mine, key=lambda r: (r["_ctx"], r["cost_vs_baseline"], r["label"]))
    for ctx in dict.fromkeys(r["_ctx"] for r in mine):
        add_ranks([r for r in mine if r["_ctx"] == ctx])
    return mine


def add_ranks(rows: list[dict[str, Any]]) -> None:
    """``rank`` (1 = lowest median cost; ties share the rank) and ``rank_min``/``rank_max``:
    the arm's best and worst rank over the seeds, each seed ranking the arms that ran it by
    that seed's cost (an infeasible seed ranks last). One seed per arm: the spread is that one
    ranking, which says nothing about another seed."""
    medians = [r["cost"] for r in rows]
    for r in rows:
        r["rank"] = 1 + sum(m < r["cost"] for m in medians)
        r["rank_min"] = r["rank_max"] = None
    seeds = sorted({s for r in rows for s in r["_seeds"]})
    for seed in seeds:
        ran = [r for r in rows if seed in r["_seeds"]]
        for r in ran:
            mine = r["_seeds"][seed]
            k = 1 + sum(o["_seeds"][seed] < mine for o in ran)
            r["rank_min"] = k if r["rank_min"] is None else min(r["rank_min"], k)
            r["rank_max"] = k if r["rank_max"] is None else max(r["rank_max"], k)


def seed_warnings(rows: list[dict[str, Any]]) -> list[str]:
    """Per context: a warning where arms ran different numbers of seeds (a median of 3 against
    one seed) or some arm ran only one seed (no spread)."""
    out = []
    for ctx in dict.fromkeys(r["_ctx"] for r in rows):
        mine = [r for r in rows if r["_ctx"] == ctx]
        where = ", ".join(str(c) for c in ctx)
        counts = {r["label"]: r["seeds"] for r in mine}
        if len(set(counts.values())) > 1:
            out.append(f"arms differ in seeds ({where}): "
                       + ", ".join(f"{k} {v}" for k, v in counts.items())
                       + "; their medians are over different numbers of runs")
        single = [k for k, v in counts.items() if v == 1]
        if single:
            out.append(f"one seed only ({where}): {', '.join(single)}; no spread, a ranking "
                       "of one seed may not hold on another")
    return out


def write_ablation(rows: list[dict[str, Any]], baseline: str, out: Path) -> list[Path]:
    """ablation.md and ablation.csv."""
    abl = ablation_rows(rows, baseline)
    write_csv(out / "ablation.csv", abl, ABLATION_COLUMNS)
    lines = [f"Ablation: each arm's median end-to-end cost over the median of arm {baseline!r}; "
             "spread = the arm's min and max over seeds, each over the baseline's median; rank of "
             "the median (1 = best) and the arm's best-worst rank over the seeds (each seed "
             "ranks the arms that ran it).", ""]
    lines += [f"warning: {w}" for w in seed_warnings(abl)] + ([""] if seed_warnings(abl) else [])
    for ctx in dict.fromkeys(r["_ctx"] for r in abl):
        mine = [r for r in abl if r["_ctx"] == ctx]
        where = ", ".join(f"{c} {mine[0][c]}" for c in CONTEXT)
        lines += [f"### {where} ({mine[0]['objective']} in {mine[0]['unit']})", "",
                  f"| rank | rank over seeds | arm | seeds | median {mine[0]['objective']} | "
                  f"x {baseline} | min-max x {baseline} |",
                  "|---|---|---|---|---|---|---|"]
        for r in mine:
            spread = ("-" if r["rank_min"] is None else f"{r['rank_min']}-{r['rank_max']}"
                      + (" (1 seed)" if r["seeds"] == 1 else ""))
            lines.append(f"| {r['rank']} | {spread} | {r['label']} | {r['seeds']} | "
                         f"{fmt(r['cost'])} | {fmt_ratio(r['cost_vs_baseline'])} | "
                         f"{fmt_spread(r['ratio_min'], r['ratio_max'])} |")
        lines.append("")
    if not abl:
        lines.append(f"(no context has the baseline arm {baseline!r})")
    (out / "ablation.md").write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return [out / "ablation.md", out / "ablation.csv"]


def bar_chart(ax: Any, names: list[str], medians: list[float], lows: list[float],
              highs: list[float], ylabel: str) -> None:
    """Median per arm on a linear axis from zero, the seeds' min-max as error bars; an
    infeasible median gets no bar, only the word; an infeasible max gets no upper bar."""
    x = np.arange(len(names))
    heights = [m if math.isfinite(m) else 0.0 for m in medians]
    err = np.array([[m - lo if math.isfinite(m) else 0.0 for m, lo in zip(medians, lows)],
                    [h - m if math.isfinite(h) and math.isfinite(m) else 0.0
                     for m, h in zip(medians, highs)]])
    ax.bar(x, heights, yerr=err, capsize=4, color="C0", ecolor="black")
    top = max([h for h in highs if math.isfinite(h)] + heights) or 1.0
    for i, (m, h) in enumerate(zip(medians, highs)):
        if math.isfinite(m):
            text = (f"{m:,.0f}" if m >= 100 else f"{m:.3g}") + ("" if math.isfinite(h) else
                                                              "\n(max infeasible)")
        else:
            text = "infeasible"
        ax.annotate(text, (i, (m if math.isfinite(m) else 0.0) + 0.01 * top), ha="center",
                    va="bottom", fontsize=7)
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_yscale("linear")
    ax.set_ylim(0, top * 1.12)
    ax.set_ylabel(ylabel)


def plot(groups: dict[Key, list[dict[str, Any]]], rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """Per context (system, platform and what else differs): convergence_<slug>.png
    (:func:`convergence_chart`) and ratio_<slug>.png (:func:`ratio_chart`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    ctx_cols = varying(rows)
    for ctx in dict.fromkeys(r["_ctx"] for r in rows):
        c = dict(zip(CONTEXT, ctx))
        mine = {label: runs for (label, k), runs in groups.items() if k == ctx}
        arm = next(iter(mine.values()))[0]["arm"]
        what = f"{arm['objective']} ({arm['unit']})"
        title = ", ".join(str(c[k]) for k in ctx_cols)
        slug = "_".join(str(c[k]) for k in ctx_cols).replace(" ", "").replace("/", "-")
        arms = sorted((r for r in rows if r["_ctx"] == ctx), key=lambda r: (r["cost"], r["label"]))
        ref, ref_name = reference(arms)
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        convergence_chart(ax, {label: [r["results"] for r in runs if r["results"]]
                               for label, runs in mine.items()}, ref, ref_name, what)
        ax.set_title(f"{title}: best so far, median over seeds", fontsize=10)
        fig.tight_layout()
        files.append(out / f"convergence_{slug}.png")
        fig.savefig(files[-1], dpi=110)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(max(6.5, 1.5 + 1.0 * len(arms)), 4.8))
        ratio_chart(ax, arms, ref, ref_name, what)
        ax.set_title(f"{title}: median (dot) and min-max (line) over seeds", fontsize=10)
        fig.tight_layout()
        files.append(out / f"ratio_{slug}.png")
        fig.savefig(files[-1], dpi=110)
        plt.close(fig)
    return files


def reference(arms: list[dict[str, Any]]) -> tuple[float, str]:
    """What a context's charts divide by: the summed proven optimum where every arm has the
    same known one (latency only), else the best (lowest) finite median of an arm; (NaN, "")
    where every arm is infeasible."""
    optima_known = {r["optimum_cycles"] for r in arms}
    if (len(optima_known) == 1 and arms[0]["objective"] == "latency"
            and math.isfinite(next(iter(optima_known)))):
        return float(next(iter(optima_known))), "the proven optimum"
    finite = [r for r in arms if math.isfinite(r["cost"])]
    if not finite:
        return math.nan, ""
    best = min(finite, key=lambda r: (r["cost"], r["label"]))
    return float(best["cost"]), f"the best arm ({best['label']})"


def ratio_chart(ax: Any, arms: list[dict[str, Any]], ref: float, ref_name: str, what: str) -> None:
    """Each arm's median end-to-end cost over ``ref`` (a dot) with its seeds' min-max (a line),
    on a linear axis zoomed to the values (not from zero), arms from best to worst; an arm that
    is infeasible (its median) gets no dot but the word "infeasible" and its missing layers at
    the top, right of the feasible arms; a seed that is infeasible, an arrow up. Each arm's
    name says its seeds."""
    arms = sorted(arms, key=lambda r: (not math.isfinite(r["cost"]), r["cost"], r["label"]))
    x = np.arange(len(arms))
    med = np.array([r["cost"] / ref if math.isfinite(ref) else math.nan for r in arms])
    lo = np.array([r["cost_min"] / ref if math.isfinite(ref) else math.nan for r in arms])
    hi = np.array([r["cost_max"] / ref if math.isfinite(ref) else math.nan for r in arms])
    shown = np.concatenate([v[np.isfinite(v)] for v in (med, lo, hi)] + [np.array([1.0])])
    bottom, top = float(shown.min()), float(shown.max())
    pad = max(0.005, 0.08 * (top - bottom))
    ax.set_ylim(bottom - pad, top + 3 * pad)
    for i, r in enumerate(arms):
        if math.isfinite(med[i]):
            ax.plot([i, i], [lo[i], hi[i] if math.isfinite(hi[i]) else top + 2 * pad], color="C0",
                    lw=2, alpha=0.5)
            ax.plot(i, med[i], "o", color="C0")
            text = f"{med[i]:.3f}x" + ("" if math.isfinite(hi[i]) else "\n(a seed infeasible)")
            ax.annotate(text, (i, med[i]), xytext=(6, 0), textcoords="offset points",
                        va="center", fontsize=8)
            if not math.isfinite(hi[i]):
                ax.annotate("", (i, top + 3 * pad), (i, top + 2 * pad),
                            arrowprops={"arrowstyle": "->", "color": "C0"})
        else:
            ax.annotate(f"infeasible\n{r['infeasible_layers']:g} layers\nwithout mapping",
                        (i, top + 1.5 * pad), ha="center", va="center", fontsize=8, color="C3")
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xticks(x, [f"{r['label']}\n{r['seeds']} seed{'s' if r['seeds'] != 1 else ''}"
                      for r in arms], fontsize=8)
    ax.set_xlim(-0.6, len(arms) - 0.4)
    ax.set_ylabel(f"end-to-end {what}\nx {ref_name}" if ref_name else f"end-to-end {what}")
    ax.yaxis.set_major_formatter(ratio_formatter(digits=3 if top - bottom < 0.5 else 2))
    ax.grid(axis="y", alpha=0.3)


def ratio_formatter(minor: bool = False, digits: int | None = None) -> Any:
    """Tick labels of a ratio axis: ``1.05x`` (no powers of ten on a log axis); ``digits``
    decimals where given, else three significant digits."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: "" if minor else
                         (f"{v:.{digits}f}x" if digits is not None else f"{v:.3g}x"))


def convergence_chart(ax: Any, results: dict[str, list[dict[str, Any]]], ref: float,
                      ref_name: str, what: str) -> None:
    """End-to-end best so far (median over seeds) against samples per unique layer (log), as a
    ratio to ``ref`` on a log axis zoomed to the last nine tenths of the samples. Only arms
    whose median has a mapping for every layer are drawn: an arm with a layer that never got
    one would be summed over fewer layers and look better, so it is named below the axes with
    its missing layers instead."""
    steps = sorted({s for res in results.values() for x in res for layer in x["layers"]
                    for s, _ in layer.get("history", [])})
    grid = np.array(steps)
    left_out, shown = [], []
    for label, res in sorted(results.items()):
        if not res or not steps:
            continue
        med = np.median(np.stack([curve(x, grid) for x in res]), axis=0)
        seeds = f"{len(res)} seed{'s' if len(res) != 1 else ''}"
        if not np.isfinite(med[-1]):
            missing = median([feasible_part(x, "best_cost")[1] for x in res])
            left_out.append(f"{label} ({seeds}): {missing:g} layers infeasible")
            continue
        ok = np.isfinite(med)
        y = med / ref if math.isfinite(ref) else med
        ax.step(grid[ok], y[ok], "-", where="post", label=f"{label} ({seeds})")
        shown.append(y[ok & (grid >= grid[-1] / 10)])
    ax.set_xscale("log")
    if shown:
        values = np.concatenate(shown)
        if values.max() > 3 * values.min():
            ax.set_yscale("log")
        ax.set_ylim(float(values.min()) * 0.995, float(values.max()) * 1.02)
        ax.yaxis.set_major_formatter(ratio_formatter())
        ax.yaxis.set_minor_formatter(ratio_formatter(minor=True))
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.legend(fontsize=8)
    ax.set_xlabel("samples per unique layer")
    ax.set_ylabel(f"end-to-end best {what}" + (f"\nx {ref_name}" if ref_name else ""))
    ax.grid(which="both", alpha=0.3)
    if left_out:
        ax.text(0.0, -0.2, "not drawn (summed over fewer layers): " + "; ".join(left_out),
                transform=ax.transAxes, fontsize=8, color="C3", va="top", wrap=True)


def sweep_parent(runs: list[dict[str, Any]]) -> str | None:
    """The parent run shared by every run (``mlflow.parentRunId``), else None."""
    parents = {r.get("tags", {}).get("mlflow.parentRunId") for r in runs}
    return parents.pop() if len(parents) == 1 else None


def log_summary(experiment: str, files: list[Path], run_name: str, uri: str | None,
                parent: str | None) -> str:
    """The summary run, a child of ``parent`` where tracking.log_summary takes one."""
    if parent and "parent_run_id" in inspect.signature(tracking.log_summary).parameters:
        return tracking.log_summary(experiment, files, run_name, uri, parent_run_id=parent)
    return tracking.log_summary(experiment, files, run_name, uri)


#: The files compare.py writes into its output folder: removed there before each call, so that
#: the folder holds only this call's files.
OWN_FILES = ("table.md", "table.csv", "ablation.md", "ablation.csv", "layers.md", "layers.csv",
             "convergence_*.png", "bars_*.png", "ratio_*.png")


def clean_out(out: Path) -> int:
    """Remove from ``out`` the files an earlier call wrote (:data:`OWN_FILES`); how many."""
    gone = 0
    for pattern in OWN_FILES:
        for f in out.glob(pattern):
            if f.is_file():
                f.unlink()
                gone += 1
    return gone


@dataclass
class Selection:
    """The runs a call compares and where they came from."""

    runs: list[dict[str, Any]]
    name: str  # the default output folder's name (the experiment, or the sweep folder's)
    experiment: str | None  # where the summary run goes (None: not logged)
    parent: str | None  # the sweep's parent run
    header: list[str]  # what was selected, for table.md
    from_files: bool = False  # read from a sweep folder's results.json, not MLflow


def select(args: argparse.Namespace) -> Selection:
    """The runs of ``--sweep`` (latest, a parent run id, a sweep folder) or of the whole
    ``--experiment``; a :class:`GammaError` where there are none."""
    if args.sweep and ("/" in args.sweep or Path(args.sweep).exists()):
        folder = Path(args.sweep).resolve()
        parent = reader.sweep_parent_file(folder)
        runs = reader.folder_runs(folder)
        args.uri = args.uri or (parent or {}).get("uri")  # the summary run goes to the sweep's store
        return Selection(runs, folder.name, parent and parent.get("experiment"),
                         parent and parent.get("run_id"),
                         [f"Sweep folder {folder} ({len(runs)} jobs, read from their results.json)."],
                         from_files=True)
    if args.sweep or not args.experiment:
        sweep, runs = reader.sweep_runs(args.sweep or "latest", args.uri, args.experiment)
        return Selection(runs, sweep["experiment"], sweep["experiment"], sweep["run_id"],
                         [f"Sweep {sweep['name']!r} (parent run {sweep['run_id']}, experiment "
                          f"{sweep['experiment']!r}, {len(runs)} jobs)."])
    runs = reader.experiment_runs(args.experiment, args.uri)
    return Selection(runs, args.experiment, args.experiment, None,
                     [f"Experiment {args.experiment!r}: every job run ({len(runs)} runs)."])


def gather(sel: Selection, args: argparse.Namespace,
           cache: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(finished runs with totals, failed or unfinished runs, runs superseded by a newer run of
    the same job); each run gets ``arm``, ``totals`` and ``optimum``."""
    runs, superseded = latest_runs(sel.runs)
    done, failed = [], []
    for r in runs:
        if r["status"] == "FINISHED":
            r["totals"] = None if sel.from_files else totals_from_metrics(r["metrics"])
            if not sel.from_files and (r["totals"] is None or not args.no_plots or cache):
                r["results"] = reader.run_results(r["run_id"], args.uri)  # curves / optima
            if r["totals"] is None and r["results"] and r["results"].get("status") == "finished":
                r["totals"] = totals_from_results(r["results"])
        r["arm"] = describe(r)
        r["area"] = run_area(r)
        r["optimum"] = run_optimum(r, cache)
        (done if r.get("totals") is not None else failed).append(r)
    return done, failed, superseded


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", help="latest (the default without --experiment), a sweep's parent "
                    "run id, or a sweep folder (read from its jobs' results.json, no MLflow)")
    ap.add_argument("--experiment", help="alone: every job run of the experiment; with --sweep "
                    "latest: the experiment's latest sweep")
    ap.add_argument("--baseline", default="gamma", help="the arm the ratios are taken to (default gamma)")
    ap.add_argument("--ablation", action="store_true",
                    help="write the ablation table (default: when one optimizer has several arms)")
    ap.add_argument("--no-plots", action="store_true", help="tables only (no results.json downloads)")
    ap.add_argument("--out", help="output folder (default reports/compare/<experiment or sweep "
                    "folder>/); compare.py's files of an earlier call there are removed")
    ap.add_argument("--uri", help="MLflow tracking URI (default: as run.py)")
    ap.add_argument("--optima", default=str(ROOT / "outputs" / optima.FILE_NAME),
                    help="cache of proven optima for the 'x optimum' column (default outputs/optima.json)")
    args = ap.parse_args(argv)
    cache = optima.load(Path(args.optima))
    try:
        sel = select(args)
    except GammaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    done, failed, superseded = gather(sel, args, cache)
    if not done:
        print(f"error: no finished runs in {sel.header[0].rstrip('.')}", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else ROOT / "reports" / "compare" / sel.name
    out.mkdir(parents=True, exist_ok=True)
    removed = clean_out(out)
    groups = group_runs(done)
    rows = summarize(groups, args.baseline)
    if args.baseline not in {r["label"] for r in rows}:
        print(f"warning: no arm {args.baseline!r} (arms: {', '.join(sorted({r['label'] for r in rows}))}); "
              "no ratios", file=sys.stderr)
    for w in seed_warnings(rows):
        print(f"warning: {w}", file=sys.stderr)
    files = write_tables(rows, failed, args.baseline, out, sel.header)
    per_layer = layer_rows(groups, cache)
    if per_layer:
        files += write_layers(per_layer, out)
    if args.ablation or wants_ablation(rows):
        files += write_ablation(rows, args.baseline, out)
    if not args.no_plots:
        files += plot(groups, rows, out)
    run_id = "not logged (no MLflow parent: the sweep was not tracked)"
    if sel.experiment:
        try:
            run_id = log_summary(sel.experiment, files, f"compare {sel.name}", args.uri,
                                 sel.parent or sweep_parent(done + failed))
        except Exception as e:  # noqa: BLE001 - the tables are written; only the summary run is missing
            print(f"warning: MLflow: no summary run: {e if isinstance(e, GammaError) else failure_reason(e)}",
                  file=sys.stderr)
            run_id = "not logged"
    print((out / "table.md").read_text(encoding="utf-8"))
    if (out / "ablation.md") in files:
        print((out / "ablation.md").read_text(encoding="utf-8"))
    if superseded:
        print(f"left out {superseded} older runs of jobs that were run again")
    print(f"wrote {len(files)} files to {out}" + (f" (removed {removed} of an earlier call)" if removed
                                                  else "") + f"; summary run {run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
