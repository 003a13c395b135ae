"""The co-design table of docs/codesign.md ("Measured") from the folders of finished sweeps.

    python run.py -m experiment=codesign hydra.sweep.dir=outputs/codesign/co
    python run.py -m experiment=codesign codesign=off optimizer=gamma hydra.sweep.dir=outputs/codesign/fixed
    python scripts/codesign_table.py outputs/codesign/co outputs/codesign/fixed

Reads every ``results.json`` under the given folders. Rows: per model and platform, the fixed
platform's GAMMA (``codesign=off``), then each co-search optimizer. Per row: the model's latency
per seed (cycles, millions; "none": no design fits with every layer feasible), the median over
the seeds (a seed without a design counts as +inf), the fixed platform's median over the row's
(> 1: the row is faster; "fixed: none" where the fixed platform has a layer without a feasible
mapping), and the designs (PEs, area in mm^2) against the area budget. ``--metric energy`` or
``edp`` compares the model's energy (10^3 nJ) or EDP (latency total x energy total, 10^12 nJ x
cycles) instead, e.g. of

    python run.py -m objective=edp codesign=off,digamma seed=0,1,2 hydra.sweep.dir=outputs/codesign/edp
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from gamma.results.area import design_area_mm2, is_codesign
from gamma.results.layout import read_results

FIXED = "fixed GAMMA"


def arm_of(res: dict[str, Any]) -> str:
    """The row a job belongs to: the fixed platform's GAMMA, or the co-search optimizer."""
    return f"co-search {res['optimizer']}" if is_codesign(res) else FIXED


def latency_of(res: dict[str, Any]) -> float:
    """The model's latency (cycles); +inf without a design (or an infeasible layer)."""
    latency = (res.get("totals") or {}).get("latency_cycles")
    return float(latency) if latency is not None and res.get("hardware") else math.inf


def edp_of(res: dict[str, Any]) -> float:
    """The model's EDP (nJ x cycles): its latency total x its energy total; +inf as
    :func:`latency_of`."""
    energy = (res.get("totals") or {}).get("energy_nJ")
    return latency_of(res) * float(energy) if energy is not None else math.inf


def energy_of(res: dict[str, Any]) -> float:
    """The model's energy (nJ); +inf as :func:`latency_of`."""
    energy = (res.get("totals") or {}).get("energy_nJ")
    return float(energy) if energy is not None and math.isfinite(latency_of(res)) else math.inf


#: --metric: how a job's value is read, the table's unit and its scale.
VALUES = {"latency": (latency_of, "Latency in million cycles.", 1e6),
          "energy": (energy_of, "Energy in 10^3 nJ.", 1e3),
          "edp": (edp_of, "EDP (latency total x energy total) in 10^12 nJ x cycles.", 1e12)}


def design_of(res: dict[str, Any]) -> str:
    """``PEs @ area`` of a co-designed job; the PEs of a fixed platform."""
    hw = res.get("hardware") or {}
    if not hw:
        return "-"
    area = design_area_mm2(res) if is_codesign(res) else None
    return f"{hw['num_pes']:,}" + (f" @ {area:.4g}" if area else "")


def millions(v: float, scale: float = 1e6) -> str:
    """``v`` / ``scale`` (cycles in millions), 4 significant digits ("none": +inf)."""
    return f"{v / scale:.4g}" if math.isfinite(v) else "none"


def ratio_text(fixed: float, median: float) -> str:
    """The fixed platform's median over the arm's ("-": the arm has no design; "fixed: none":
    the fixed platform has no feasible mapping for some layer; blank: no fixed arm)."""
    if math.isnan(fixed):
        return ""
    if not math.isfinite(median):
        return "-"
    return f"{fixed / median:.2f}x" if math.isfinite(fixed) else "fixed: none"


def load(folders: list[Path]) -> dict[tuple[str, str], dict[str, dict[int, dict[str, Any]]]]:
    """(model, platform) -> arm -> seed -> results.json of every finished job."""
    table: dict[tuple[str, str], dict[str, dict[int, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for folder in folders:
        for path in sorted(folder.rglob("results.json")):
            res = read_results(path)
            if res.get("status") == "finished":
                table[(res["model"], res["platform"])][arm_of(res)][int(res["seed"])] = res
    return table


def rows(table: dict[tuple[str, str], dict[str, dict[int, dict[str, Any]]]],
         metric: str = "latency") -> list[str]:
    value_of, _, scale = VALUES[metric]
    seeds = sorted({s for arms in table.values() for jobs in arms.values() for s in jobs})
    head = ["model", "platform", "arm", *[f"seed {s}" for s in seeds], "median", "fixed / arm",
            "designs (PEs @ mm^2)", "budget mm^2"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (model, platform), arms in sorted(table.items()):
        fixed = arms.get(FIXED, {})
        fixed_median = statistics.median([value_of(r) for r in fixed.values()]) if fixed else math.nan
        for arm in [FIXED, *sorted(a for a in arms if a != FIXED)]:
            jobs = arms.get(arm)
            if not jobs:
                continue
            lat = [value_of(jobs[s]) if s in jobs else math.nan for s in seeds]
            med = statistics.median([v for v in lat if not math.isnan(v)])
            ratio = ratio_text(fixed_median, med)
            budget = next((r["codesign"]["area_budget_mm2"] for r in jobs.values() if is_codesign(r)),
                          None)
            out.append("| " + " | ".join([
                model, platform, arm, *[millions(v, scale) if not math.isnan(v) else "" for v in lat],
                f"**{millions(med, scale)}**", ratio,
                ", ".join(design_of(jobs[s]) for s in seeds if s in jobs),
                f"{budget:.4g}" if budget else ""]) + " |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="sweep folders (their jobs' results.json)")
    ap.add_argument("--metric", choices=sorted(VALUES), default="latency",
                    help="the model's value compared (edp: latency total x energy total)")
    a = ap.parse_args(argv)
    missing = [str(f) for f in a.folders if not f.is_dir()]
    if missing:
        print(f"error: {', '.join(missing)}: not a folder", file=sys.stderr)
        return 1
    table = load(a.folders)
    if not table:
        print(f"error: no finished results.json under {', '.join(map(str, a.folders))}", file=sys.stderr)
        return 1
    print(VALUES[a.metric][1] + "\n")
    print("\n".join(rows(table, a.metric)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
