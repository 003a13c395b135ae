"""Fronts in results.json and on paper: the end-to-end front of a network, the fronts file and
plot of a run, hypervolumes (``objective=pareto``; see :mod:`gamma.objectives.pareto`).

Everything here reads results.json records (plain dicts): a layer's ``pareto`` is
``{"metrics", "units", "offered", "evicted", "points": [{<cost-model outputs>, "cost",
"samples", "mapping"}]}`` (:func:`gamma.results.records.pareto_record`). Units: cycles, nJ, mW, um^2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gamma.objectives.metrics import METRICS, UNITS
from gamma.objectives.nondominated import (combine_fronts, crowding_distance, hypervolume,
                                           network_costs, weighted_fronts)

#: Partial combinations kept per layer while the end-to-end front is built (extremes first).
CAP = 2000
#: Weight steps of the weighted end-to-end front (three metrics: 231 weightings).
WEIGHT_STEPS = 20
#: End-to-end points listed in results.json at most.
REPORTED = 200
#: The hypervolume's reference point: this factor times the worst value of each metric among the
#: points compared (the ideal point is the best value of each).
REFERENCE_FACTOR = 1.1


def has_fronts(records: Sequence[dict[str, Any]]) -> bool:
    """Whether some layer record carries a ``pareto`` front."""
    return any(r.get("pareto") for r in records)


def end_to_end_front(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The network's front from its layers' fronts (every record, duplicates included): the
    non-dominated combinations of one front point per layer (:func:`gamma.objectives.nondominated.combine_fronts`,
    exact up to :data:`CAP` partial combinations, when the metrics need at most two per-layer
    quantities, e.g. latency and energy or EDP; else the weighted-sum choices of
    :func:`gamma.objectives.nondominated.weighted_fronts`, ``method`` says which; network metrics as
    ``Metric.network`` in :mod:`gamma.objectives.metrics`), sorted by the first metric, each
    with its totals and its choice (layer index -> point index in that layer's ``points``);
    ``found`` counts them, and beyond :data:`REPORTED` only that many are listed, the most
    spread out by crowding distance (both extremes included). None unless every layer has a
    non-empty front."""
    if not records or not all((r.get("pareto") or {}).get("points") for r in records):
        return None
    metrics = list(records[0]["pareto"]["metrics"])
    points = [r["pareto"]["points"] for r in records]
    exact = len({q for m in metrics for q in METRICS[m].state}) <= 2
    F, choice = (combine_fronts(points, metrics, CAP) if exact
                 else weighted_fronts(points, metrics, WEIGHT_STEPS))
    found = len(F)
    if found > REPORTED:  # the most spread-out points (crowding distance), extremes included
        keep = np.sort(np.argsort(-crowding_distance(F), kind="stable")[:REPORTED])
        F, choice = F[keep], choice[keep]
    out = []
    for cost, row in zip(F, choice):
        chosen = [points[j][c] for j, c in enumerate(row)]
        out.append({"cost": [float(x) for x in cost],
                    "latency_cycles": float(sum(p["runtime_cycles"] for p in chosen)),
                    "energy_nJ": float(sum(p["energy_nJ"] for p in chosen)),
                    "choice": {str(r["index"]): int(c) for r, c in zip(records, row)}})
    return {"metrics": metrics, "units": [UNITS[m] for m in metrics],
            "aggregate": {m: METRICS[m].network for m in metrics},
            "method": "combined" if exact else "weighted", "found": found, "points": out}


def fronts_file(results: dict[str, Any]) -> dict[str, Any]:
    """pareto.json of a run: each layer's front (index, shape, unique index) and the
    end-to-end front."""
    return {"objective_metrics": results.get("objective_metrics"),
            "layers": [{"index": r["index"], "shape": r["shape"], "unique_index": r["unique_index"],
                        "pareto": r.get("pareto")} for r in results["layers"]],
            "totals": (results.get("totals") or {}).get("pareto")}


def write_artifacts(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """pareto.json and pareto.png of a run folder (nothing without fronts); the paths written."""
    if not has_fronts(results["layers"]):
        return []
    path = out_dir / "pareto.json"
    path.write_text(json.dumps(fronts_file(results), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    written = [path]
    png = plot_fronts(results, out_dir / "pareto.png")
    if png is not None:
        written.append(png)
    return written


# --- hypervolume ---------------------------------------------------------------------------------
def reference_point(*fronts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ideal, reference) over the points of ``fronts``: per metric the best value, and
    :data:`REFERENCE_FACTOR` times the worst."""
    allpts = np.vstack([f for f in fronts if len(f)])
    return allpts.min(axis=0), REFERENCE_FACTOR * allpts.max(axis=0)


def normalized_hypervolume(F: np.ndarray, ideal: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of ``F`` against ``ref`` as a share of the box from ``ideal`` to ``ref``
    (1 = a single point at the ideal)."""
    box = float(np.prod(ref - ideal))
    return hypervolume(F, ref) / box if box > 0 else 0.0


def layer_costs(record: dict[str, Any]) -> np.ndarray:
    """The front's cost matrix of a layer record (rows: points, columns: metrics)."""
    pts = (record.get("pareto") or {}).get("points") or []
    return np.array([p["cost"] for p in pts], np.float64).reshape(len(pts), -1)


def single_point(record: dict[str, Any], metrics: Sequence[str]) -> np.ndarray | None:
    """A single-objective run's best mapping of a layer in ``metrics`` (None if infeasible)."""
    best = record.get("best")
    if not best:
        return None
    return np.array([METRICS[m].of_outputs(best) for m in metrics])


# --- plot ------------------------------------------------------------------------------------------
def _pyplot():
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fronts(results: dict[str, Any], path: str | Path,
                singles: Sequence[dict[str, Any]] = ()) -> Path | None:
    """PNG: each unique layer's front (first two metrics; log axes where they span a decade) with the best points of the
    single-objective runs ``singles`` (results.json dicts of the same model), and the end-to-end
    front; None if there is nothing to plot."""
    firsts: dict[int, dict[str, Any]] = {}
    for r in results["layers"]:
        if r.get("pareto") and r["pareto"]["points"] and r["unique_index"] not in firsts:
            firsts[r["unique_index"]] = r
    if not firsts:
        return None
    plt = _pyplot()
    metrics = list(next(iter(firsts.values()))["pareto"]["metrics"])
    total = (results.get("totals") or {}).get("pareto")
    panels = len(firsts) + (1 if total else 0)
    cols = min(4, panels)
    rows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    markers = ["s", "^", "D", "v", "P"]
    for ax, r in zip(axes.flat, firsts.values()):
        F = layer_costs(r)
        ax.plot(F[:, 0], F[:, 1], "o-", ms=4, lw=1, drawstyle="steps-post", color="C0",
                label="pareto front")
        for n, s in enumerate(singles):
            rec = next((x for x in s.get("layers", []) if x["index"] == r["index"]), None)
            pt = single_point(rec, metrics) if rec else None
            if pt is not None:
                ax.plot(pt[0], pt[1], markers[n % len(markers)], ms=8, mfc="none", mew=1.5,
                        color=f"C{n + 1}", label=f"{s.get('objective')} run")
        _axes(ax, metrics, f"layer {r['index']} {r['shape']}")
    if total:
        ax = axes.flat[len(firsts)]
        T = np.array([p["cost"] for p in total["points"]])
        ax.plot(T[:, 0], T[:, 1], "o-", ms=4, lw=1, drawstyle="steps-post", color="C3",
                label="end-to-end front")
        for n, s in enumerate(singles):
            layer_outputs = [x.get("best") for x in s.get("layers", [])]
            if layer_outputs and all(layer_outputs):
                pt = network_costs(layer_outputs, metrics)
                ax.plot(pt[0], pt[1], markers[n % len(markers)], ms=8, mfc="none", mew=1.5,
                        color=f"C{n + 1}", label=f"{s.get('objective')} run")
        _axes(ax, metrics, f"{results.get('model')}: {len(results['layers'])} layers end to end")
    for ax in list(axes.flat)[panels:]:
        ax.set_visible(False)
    fig.suptitle(f"{results.get('model')} on {results.get('platform')} ({results.get('system')}), "
                 f"{results.get('optimizer')}, seed {results.get('seed')}, "
                 f"{results.get('budget'):,} samples per layer", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_design_front(results: dict[str, Any], path: str | Path) -> Path | None:
    """PNG of a co-design front (results.json ``codesign.front``): each metric other than the
    design's area against the area (mm^2; a staircase for a two-metric front, points for a
    projection of a larger one), with the area budget and the platform's own area marked;
    None without points."""
    front = (results.get("codesign") or {}).get("front") or {}
    pts = front.get("points") or []
    if not pts:
        return None
    plt = _pyplot()
    metrics = [m for m in front["metrics"] if m != "area"]
    area = np.array([p["hardware"]["area_mm2"] for p in pts])
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4.0), squeeze=False)
    at = front["metrics"].index
    for ax, m in zip(axes.flat, metrics):
        y = np.array([p["values"][at(m)] for p in pts])
        if len(metrics) == 1:  # the front itself: the best latency within each area
            ax.plot(area, y, "o-", ms=4, lw=1, drawstyle="steps-post", color="C0",
                    label=f"front ({len(pts)} designs)")
        else:  # a projection of a front over more metrics: points, no staircase
            ax.plot(area, y, "o", ms=4, color="C0",
                    label=f"front over {', '.join(front['metrics'])} ({len(pts)} designs)")
        ax.axvline(results["codesign"]["area_budget_mm2"], color="C3", ls="--", lw=1,
                   label="area budget")
        platform = (results.get("platform_hardware") or {}).get("area_mm2")
        if platform is not None:
            ax.axvline(platform, color="C2", ls=":", lw=1.5,
                       label=f"platform {results.get('platform')}'s area")
        if y.min() > 0 and y.max() > 10 * y.min():
            ax.set_yscale("log")
        ax.set_xlabel("design area (mm^2)")
        ax.set_ylabel(f"{m} ({UNITS[m]})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{results.get('model')}: hardware and mappings co-designed\n"
                 f"({results.get('system')}, {results.get('optimizer')}, seed "
                 f"{results.get('seed')}, {results.get('budget'):,} samples per unique layer)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _axes(ax: Any, metrics: Sequence[str], title: str) -> None:
    from matplotlib.ticker import NullFormatter

    for lims, set_scale, axis in ((ax.dataLim.intervalx, ax.set_xscale, ax.xaxis),
                                  (ax.dataLim.intervaly, ax.set_yscale, ax.yaxis)):
        if lims[0] > 0 and lims[1] > 10 * lims[0]:  # log where the values span a decade
            set_scale("log")
            axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"{metrics[0]} ({UNITS[metrics[0]]})")
    ax.set_ylabel(f"{metrics[1]} ({UNITS[metrics[1]]})")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


__all__ = ["end_to_end_front", "fronts_file", "write_artifacts", "reference_point",
           "normalized_hypervolume", "layer_costs", "single_point", "plot_fronts", "has_fronts",
           "REFERENCE_FACTOR", "CAP", "WEIGHT_STEPS", "REPORTED"]
