#!/usr/bin/env python
"""Compare optimizers from the runs of one MLflow experiment (the paper's Figure 6).

Usage: python scripts/compare.py --experiment NAME [--out DIR] [--uri TRACKING_URI]

Writes to DIR (default reports/compare/NAME/) and as artifacts of a summary MLflow run:
- table.md / table.csv: end-to-end latency (cycles) and energy (nJ) per optimizer x system x
  platform, median over seeds ("infeasible" where the median run had a layer without a feasible
  mapping within the budget), with the ratio to GAMMA's median and the seeds counted; and, so
  that a platform where some layer has no feasible mapping at all still compares, the median
  number of infeasible layers and the latency summed over the feasible layers (its ratio to
  GAMMA only where both miss the same number of layers);
- convergence_<system>_<platform>.png: end-to-end best-so-far latency against samples per unique
  layer (median over seeds; log scales); an optimizer with a layer that never got a feasible
  mapping is drawn dashed over its feasible layers, with the number left out in the legend;
- bars_<system>_<platform>.png: median latency per optimizer.
Failed jobs are listed with their error. A job run again (the same config) counts once, by its
newest run. Exit 1 if the experiment has no runs.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gamma import tracking  # noqa: E402
from gamma.errors import GammaError  # noqa: E402

Key = tuple[str, str, str]  # optimizer, system, platform


def run_key(results: dict[str, Any]) -> Key:
    return results["optimizer"], results["system"], results["platform"]


def job_key(run: dict[str, Any]) -> tuple:
    """What a job computes: its whole flattened config (the run's params); a run without
    params is a job of its own."""
    return tuple(sorted(run["params"].items())) if run["params"] else (run["run_id"],)


def latest_runs(runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The newest run of each job (a job run again supersedes its older runs), and how many
    runs that left out."""
    newest: dict[tuple, dict[str, Any]] = {}
    for r in runs:
        k = job_key(r)
        if k not in newest or (r["start_time"] or 0) > (newest[k]["start_time"] or 0):
            newest[k] = r
    return list(newest.values()), len(runs) - len(newest)


def end_to_end(results: dict[str, Any], field: str) -> float:
    """Total latency or energy of a run; inf if some layer had no feasible mapping."""
    t = results.get("totals") or {}
    v = t.get(field)
    return math.inf if v is None or not t.get("feasible", False) else float(v)


def feasible_part(results: dict[str, Any], field: str) -> tuple[float, int]:
    """(sum of ``field`` over the layers with a feasible mapping, number of infeasible layers)."""
    key = {"latency_cycles": "runtime_cycles", "energy_nJ": "energy_nJ"}[field]
    total, bad = 0.0, 0
    for layer in results["layers"]:
        if layer.get("feasible") and layer.get("best"):
            total += float(layer["best"][key])
        else:
            bad += 1
    return total, bad


def curve(results: dict[str, Any], grid: np.ndarray, feasible_only: bool = False) -> np.ndarray:
    """End-to-end best-so-far latency on ``grid`` (samples per unique layer): every layer takes
    its unique shape's best so far; inf until every layer has a feasible mapping. With
    ``feasible_only``, the layers that never got one are left out."""
    total = np.zeros(len(grid))
    for layer in results["layers"]:
        if feasible_only and not (layer.get("feasible") and layer.get("best")):
            continue
        hist = [(s, c) for s, c in layer.get("history", []) if c is not None]
        best = np.full(len(grid), np.inf)
        for s, c in hist:
            best[grid >= s] = np.minimum(best[grid >= s], c)
        total += best
    return total


def ratio_to(value: float, gamma: float) -> float:
    """``value / gamma``; NaN (no ratio) unless GAMMA's value is finite and positive."""
    return value / gamma if math.isfinite(gamma) and gamma > 0 else math.nan


def median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def fmt(v: float) -> str:
    return "infeasible" if math.isinf(v) else ("-" if math.isnan(v) else f"{v:,.0f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--out", help="output folder (default reports/compare/<experiment>/)")
    ap.add_argument("--uri", help="MLflow tracking URI (default: as run.py)")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else ROOT / "reports" / "compare" / args.experiment
    out.mkdir(parents=True, exist_ok=True)
    try:
        runs = tracking.experiment_runs(args.experiment, args.uri)
    except GammaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    runs, superseded = latest_runs(runs)
    done = [r for r in runs if r["results"] and r["results"].get("status") == "finished"]
    failed = [r for r in runs if r not in done]
    if not done:
        print(f"error: no finished runs in experiment {args.experiment!r}", file=sys.stderr)
        return 1
    groups: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for r in done:
        groups[run_key(r["results"])].append(r["results"])

    rows = []
    for (opt, system, platform), res in sorted(groups.items()):
        lat = median([end_to_end(x, "latency_cycles") for x in res])
        en = median([end_to_end(x, "energy_nJ") for x in res])
        bound = res[0]["totals"]["compute_bound_cycles"]
        part = [feasible_part(x, "latency_cycles") for x in res]
        rows.append({"optimizer": opt, "system": system, "platform": platform, "seeds": len(res),
                     "latency_cycles": lat, "energy_nJ": en, "ratio_to_bound": lat / bound,
                     "infeasible_layers": median([b for _, b in part]),
                     "latency_feasible_layers": median([t for t, _ in part])})
    gamma = {(r["system"], r["platform"]): r for r in rows if r["optimizer"] == "gamma"}
    for r in rows:
        g = gamma.get((r["system"], r["platform"]))
        r["latency_vs_gamma"] = ratio_to(r["latency_cycles"], g["latency_cycles"] if g else math.nan)
        r["energy_vs_gamma"] = ratio_to(r["energy_nJ"], g["energy_nJ"] if g else math.nan)
        same = g and g["infeasible_layers"] == r["infeasible_layers"]
        r["feasible_layers_vs_gamma"] = (r["latency_feasible_layers"] / g["latency_feasible_layers"]
                                         if same and g["latency_feasible_layers"] else math.nan)

    files = write_tables(rows, failed, out)
    files += plot(groups, out)
    run_id = tracking.log_summary(args.experiment, files, f"compare {args.experiment}", args.uri)
    print((out / "table.md").read_text(encoding="utf-8"))
    if superseded:
        print(f"left out {superseded} older runs of jobs that were run again")
    print(f"wrote {len(files)} files to {out}; summary run {run_id}")
    return 0


def write_tables(rows: list[dict[str, Any]], failed: list[dict[str, Any]], out: Path) -> list[Path]:
    cols = ["optimizer", "system", "platform", "seeds", "latency_cycles", "ratio_to_bound",
            "latency_vs_gamma", "energy_nJ", "energy_vs_gamma", "infeasible_layers",
            "latency_feasible_layers", "feasible_layers_vs_gamma"]
    with open(out / "table.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r[c] for c in cols})
    lines = ["| optimizer | system | platform | seeds | latency (cycles) | x bound | x GAMMA | "
             "energy (nJ) | x GAMMA | infeasible layers | latency of feasible layers | x GAMMA |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["platform"], r["system"], r["latency_cycles"])):
        ratio = lambda v: "-" if math.isnan(v) or math.isinf(v) else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {r['optimizer']} | {r['system']} | {r['platform']} | {r['seeds']} | "
                     f"{fmt(r['latency_cycles'])} | {ratio(r['ratio_to_bound'])} | "
                     f"{ratio(r['latency_vs_gamma'])} | {fmt(r['energy_nJ'])} | "
                     f"{ratio(r['energy_vs_gamma'])} | {r['infeasible_layers']:g} | "
                     f"{fmt(r['latency_feasible_layers'])} | {ratio(r['feasible_layers_vs_gamma'])} |")
    if failed:
        lines += ["", "Failed or unfinished jobs:"]
        for r in failed:
            res = r["results"] or {}
            what = f"{res.get('optimizer', r['params'].get('optimizer.name'))} " \
                   f"{res.get('system', r['params'].get('system.name'))} " \
                   f"{res.get('platform', r['params'].get('platform.name'))} seed " \
                   f"{res.get('seed', r['params'].get('seed'))}"
            lines.append(f"- {what}: {r['status']}: {r['error'] or 'no results.json'}")
    (out / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [out / "table.md", out / "table.csv"]


def plot(groups: dict[Key, list[dict[str, Any]]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    pairs = sorted({(s, p) for _, s, p in groups})
    for system, platform in pairs:
        mine = {o: res for (o, s, p), res in groups.items() if (s, p) == (system, platform)}
        budget = max(x["budget"] for res in mine.values() for x in res)
        grid = np.unique(np.geomspace(1, budget, 200).astype(int))
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for opt, res in sorted(mine.items()):
            med = np.median(np.stack([curve(x, grid) for x in res]), axis=0)
            style, label = "-", opt
            if not np.isfinite(med[-1]):  # some layer never feasible: the feasible layers, dashed
                med = np.median(np.stack([curve(x, grid, feasible_only=True) for x in res]), axis=0)
                missing = median([feasible_part(x, "latency_cycles")[1] for x in res])
                style, label = "--", f"{opt} ({missing:g} layers infeasible, left out)"
            ok = np.isfinite(med)
            if ok.any():
                ax.step(grid[ok], med[ok], style, where="post", label=label)
        ax.set(xscale="log", yscale="log", xlabel="samples per unique layer",
               ylabel="end-to-end best latency (cycles)", title=f"{system}, {platform}: median over seeds")
        if ax.get_legend_handles_labels()[0]:  # every run may be infeasible end to end
            ax.legend(fontsize=8)
        fig.tight_layout()
        f = out / f"convergence_{system}_{platform}.png"
        fig.savefig(f, dpi=110)
        plt.close(fig)
        files.append(f)
        fig, ax = plt.subplots(figsize=(7, 4))
        latency = {o: median([end_to_end(x, "latency_cycles") for x in res]) for o, res in mine.items()}
        names = sorted(latency, key=latency.get)
        vals = [latency[o] for o in names]
        finite = [v for v in vals if math.isfinite(v)]
        top = max(finite) * 2 if finite else 1.0
        bars = ax.bar(names, [v if math.isfinite(v) else top for v in vals],
                      color=["C0" if math.isfinite(v) else "lightgrey" for v in vals])
        for b, v in zip(bars, vals):
            ax.annotate("infeasible" if not math.isfinite(v) else f"{v:.3g}",
                        (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=7)
        ax.set(yscale="log", ylabel="end-to-end latency (cycles)", title=f"{system}, {platform}: median over seeds")
        fig.tight_layout()
        f = out / f"bars_{system}_{platform}.png"
        fig.savefig(f, dpi=110)
        plt.close(fig)
        files.append(f)
    return files


if __name__ == "__main__":
    sys.exit(main())
