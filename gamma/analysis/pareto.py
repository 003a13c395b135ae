#!/usr/bin/env python
"""Report the fronts of an ``objective=pareto`` run: plot and hypervolume.

Usage: python scripts/pareto.py RUN_DIR|results.json [--out DIR] [--single RUN_DIR ...]

Writes to DIR (default RUN_DIR/pareto_report/):
- pareto.png: each unique layer's front (first two metrics, log axes) and the end-to-end front,
  with the best mapping of each single-objective run given by ``--single`` (e.g. the latency and
  the energy run of the same model, budget and seed) drawn as a marker;
- hypervolume.md / hypervolume.csv: per unique layer and end to end, the front's size, its
  best value of each metric, its hypervolume against the reference point (raw, in the product
  of the metrics' units, and as a share of the box from the ideal point to the reference), the
  ideal and reference points, and per single-objective run the gap of the front's best value
  in that run's metric to the run's optimum (percent; negative: the front is better).
Reference point: 1.1 x the worst value of each metric among the front's points and the
single-objective optima shown (ideal point: the best value of each). Exact in 2-D and 3-D.
Exit 1 with ``error: ...`` if the run has no fronts (not an objective=pareto run).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

from gamma.errors import GammaError
from gamma.results.layout import read_results
from gamma.objectives.nondominated import hypervolume, network_costs
from gamma.results.pareto import (REFERENCE_FACTOR, layer_costs, normalized_hypervolume,
                                 plot_fronts, reference_point, single_point)


def load(path: str | Path) -> dict[str, Any]:
    """results.json of a run folder (or the file itself)."""
    return read_results(path)


def rows_of(results: dict[str, Any], singles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per unique layer with a front, then one for the end-to-end front."""
    metrics = list(results["objective_metrics"])
    rows, seen = [], set()
    for r in results["layers"]:
        if r["unique_index"] in seen or not (r.get("pareto") or {}).get("points"):
            continue
        seen.add(r["unique_index"])
        opt = {}
        for s in singles:
            rec = next((x for x in s.get("layers", []) if x["index"] == r["index"]), None)
            pt = single_point(rec, metrics) if rec else None
            if pt is not None:
                opt[s.get("objective")] = pt
        rows.append(row(f"layer {r['index']} {r['shape']}", metrics, layer_costs(r), opt))
    total = (results.get("totals") or {}).get("pareto")
    if total:
        opt = {}
        for s in singles:
            outs = [x.get("best") for x in s.get("layers", [])]
            if outs and all(outs):
                opt[s.get("objective")] = np.array(network_costs(outs, metrics))
        T = np.array([p["cost"] for p in total["points"]], np.float64)
        rows.append(row(f"end to end ({len(results['layers'])} layers)", metrics, T, opt))
    return rows


def row(name: str, metrics: list[str], F: np.ndarray, optima: dict[str, np.ndarray]) -> dict[str, Any]:
    """The report of one front ``F`` against the single-objective ``optima`` (by objective)."""
    ideal, ref = reference_point(F, *[o[None, :] for o in optima.values()])
    out: dict[str, Any] = {"front": name, "points": len(F)}
    for k, m in enumerate(metrics):
        out[f"best_{m}"] = float(F[:, k].min())
    out["hypervolume"] = hypervolume(F, ref)
    out["hypervolume_share"] = normalized_hypervolume(F, ideal, ref)
    out["ideal"] = [float(x) for x in ideal]
    out["reference"] = [float(x) for x in ref]
    for objective, pt in optima.items():
        if objective in metrics:
            k = metrics.index(objective)
            out[f"gap_to_{objective}_run_pct"] = 100.0 * (F[:, k].min() / pt[k] - 1.0)
    return out


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 or abs(v) >= 1e12 else f"{v:,.0f}"
    if isinstance(v, list):
        return "(" + ", ".join(fmt(float(x)) for x in v) + ")"
    return str(v)


def write_tables(rows: list[dict[str, Any]], out: Path, metrics: list[str]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with (out / "hypervolume.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in r.items()} for r in rows)
    lines = [f"Metrics: {', '.join(metrics)}. Reference point: {REFERENCE_FACTOR} x the worst value "
             "of each metric among the front and the single-objective optima shown; ideal point: "
             "the best of each. Hypervolume raw (product of the metrics' units) and as a share of "
             "the ideal-to-reference box. Gap: the front's best in a run's metric over that run's "
             "optimum, minus 1 (percent).", "",
             "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    (out / "hypervolume.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="an objective=pareto run folder or its results.json")
    ap.add_argument("--out", help="output folder (default RUN_DIR/pareto_report)")
    ap.add_argument("--single", nargs="*", default=[],
                    help="single-objective run folders (or results.json) of the same model to compare")
    args = ap.parse_args(argv)
    try:
        results = load(args.run)
        if not results.get("objective_metrics") or not any(r.get("pareto") for r in results["layers"]):
            raise GammaError(f"{args.run}: no Pareto fronts (not an objective=pareto run)")
        singles = [load(s) for s in args.single]
    except GammaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    run_dir = Path(args.run) if Path(args.run).is_dir() else Path(args.run).parent
    out = Path(args.out) if args.out else run_dir / "pareto_report"
    out.mkdir(parents=True, exist_ok=True)
    metrics = list(results["objective_metrics"])
    rows = rows_of(results, singles)
    write_tables(rows, out, metrics)
    plot_fronts(results, out / "pareto.png", singles)
    for r in rows:
        gaps = "; ".join(f"{k[7:-8]} run gap {v:+.3f} %" for k, v in r.items() if k.startswith("gap_to_"))
        print(f"{r['front']}: {r['points']} points, hypervolume {r['hypervolume']:.4g} "
              f"({100 * r['hypervolume_share']:.1f} % of the box to {fmt(r['reference'])})"
              + (f"; {gaps}" if gaps else ""))
    print(f"wrote {out / 'pareto.png'}, {out / 'hypervolume.md'}, {out / 'hypervolume.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
