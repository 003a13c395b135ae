"""The fronts table of docs/codesign.md ("Fronts") from the folders of finished sweeps.

    python run.py -m experiment=codesign_front hydra.sweep.dir=outputs/codesign/front
    python run.py -m experiment=codesign model=resnet18 platform=edge optimizer=gamma \
        codesign.area_mm2=0.045214752,0.090429504,0.135644256,0.180859008 \
        hydra.sweep.dir=outputs/codesign/budgets
    python scripts/codesign_front.py outputs/codesign/front outputs/codesign/budgets

Reads every ``results.json`` under the folders. A co-design front (``objective=pareto``) gives,
per share of its area budget (a quarter, half, three quarters, all), the lowest latency of its
designs within that area; a latency co-search under a budget gives its own design's latency at
the share its budget is of the largest budget seen. Rows: each front's optimizer, then the
latency co-search with one job per budget. Per cell: the median over seeds (cycles, millions)
and the seeds' range; "none": no design within that area.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from gamma.results.area import is_codesign
from gamma.results.layout import read_results

#: Shares of the area budget the table reports.
SHARES = (0.25, 0.5, 0.75, 1.0)


def front_latencies(res: dict[str, Any]) -> dict[float, float]:
    """Per share of the budget, the lowest latency (cycles) of the front's designs whose area
    is within it (+inf: none)."""
    budget = res["codesign"]["area_budget_mm2"]
    points = res["codesign"]["front"]["points"]
    return {s: min((p["latency_cycles"] for p in points
                    if p["hardware"]["area_mm2"] <= s * budget * (1 + 1e-9)), default=math.inf)
            for s in SHARES}


def cell(values: list[float]) -> str:
    """Median (millions of cycles) [min-max] over seeds; "none" where a seed has no design."""
    if not values:
        return ""
    def m(v: float) -> str:
        return f"{v / 1e6:.4g}" if math.isfinite(v) else "none"

    text = m(statistics.median(values))
    return text + (f" [{m(min(values))}-{m(max(values))}]" if len(values) > 1 else "")


def table(jobs: list[dict[str, Any]]) -> list[str]:
    """The Markdown table of the fronts and the per-budget latency co-searches of ``jobs``."""
    rows: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    sizes: dict[str, list[int]] = defaultdict(list)
    budgets = [r["codesign"]["area_budget_mm2"] for r in jobs if not r["codesign"].get("front")]
    largest = max(budgets, default=math.nan)
    for r in jobs:
        if r["codesign"].get("front"):
            arm = f"front, {r['optimizer']}"
            sizes[arm].append(len(r["codesign"]["front"]["points"]))
            for s, v in front_latencies(r).items():
                rows[arm][s].append(v)
        else:
            arm = f"one search per budget, {r['optimizer']}"
            s = round(r["codesign"]["area_budget_mm2"] / largest, 2)
            latency = (r.get("totals") or {}).get("latency_cycles")
            rows[arm][s].append(float(latency) if latency is not None and r.get("hardware")
                                else math.inf)
    head = "| search | designs | " + " | ".join(f"{s:g} x budget" for s in SHARES) + " |"
    out = [head, "|" + "---|" * (len(SHARES) + 2)]
    for arm in sorted(rows, key=lambda a: (not a.startswith("front"), a)):
        n = sizes.get(arm)
        designs = (f"{statistics.median(n):g}" + (f" [{min(n)}-{max(n)}]" if len(n) > 1 else "")
                   if n else "1 per job")
        out.append(f"| {arm} | {designs} | "
                   + " | ".join(cell(rows[arm].get(s, [])) for s in SHARES) + " |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="sweep folders (results.json below them)")
    args = ap.parse_args(argv)
    jobs = []
    for d in args.dirs:
        if not d.is_dir():
            print(f"error: {d}: not a folder", file=sys.stderr)
            return 1
        for path in sorted(d.rglob("results.json")):
            res = read_results(path)
            if is_codesign(res) and res.get("status") == "finished":
                jobs.append(res)
    if not jobs:
        print(f"error: no finished co-design job under {', '.join(map(str, args.dirs))}",
              file=sys.stderr)
        return 1
    print("\n".join(table(jobs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
