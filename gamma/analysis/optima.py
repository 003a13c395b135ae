#!/usr/bin/env python
"""Prove the latency optimum of every selected layer of a model (optimizer=exhaustive) and cache
it in outputs/optima.json, where every later latency job and scripts/compare.py find it.

    python scripts/optima.py MODEL SYSTEM PLATFORM [--layers 2,7,12] [--time-limit 600]
        [--max-evaluations N] [--optima FILE] [--json OUT] [override ...]

Each unique layer shape is searched once (as run.py does); a layer whose optimum is already
cached is not searched again (``--force`` searches it anyway and checks the cached value). Prints
per layer: the optimum (or the best found and the lowest bound still open when the time limit or
the evaluation cap stopped it), its ratio to the compute bound, evaluations and seconds. Extra
arguments are Hydra overrides (e.g. ``guard=false``, ``mapspace.inner_tiles=divisors``).
Exit 1 on bad input. Units: cycles, evaluations, seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

from gamma.search import optima
from gamma.search.api import build_setup, search_unique, settings
from gamma.errors import GammaError
from gamma.results.console import compact_mapping


def prove(model: str, system: str, platform: str, layers: list[int] | None = None,
          time_limit_s: float | None = None, max_evaluations: int | None = None,
          cache: Path | None = None, overrides: list[str] | None = None, force: bool = False,
          say: Any = print) -> list[dict[str, Any]]:
    """Search (or look up) the optimum of each selected unique layer; proven ones go to the cache.
    One dict per unique layer: layer (first model index), shape, proven, optimum/best cycles,
    lower bound, gap, x bound, evaluations, seconds, cached (found in the cache)."""
    opt = {"name": "exhaustive", "time_limit_s": time_limit_s, "max_evaluations": max_evaluations}
    keys: dict[str, Any] = {"layers": layers} if layers else {}
    cfg = settings(model=model, system=system, platform=platform, optimizer=opt,
                   overrides=list(overrides or []), **keys)
    if cfg["objective"]["name"] != "latency":
        raise GammaError("objective: optima are latency optima; use objective=latency")
    setup = build_setup(cfg)
    path = Path(cache) if cache else optima.cache_file(cfg, ROOT / "outputs")
    context = optima.space_context(cfg)
    hw = setup.hw.to_dict()
    rows = []
    for u in setup.todo:
        layer = setup.unique[u]
        index = setup.layers_of(u)[0]
        k = optima.key(layer.shape, hw, context)
        known = optima.lookup(path, k)
        bound = math.ceil(layer.macs / setup.hw.num_pes)
        if known is not None and not force:
            rows.append({"layer": index, "shape": layer.shape, "proven": True, "best_cycles": known,
                         "lower_bound_cycles": known, "gap": 0.0, "x_bound": known / bound,
                         "evaluations": None, "seconds": None, "cached": True})
            say(f"layer {index:>3} {layer.shape}: {known:,} cycles (cached), {known / bound:.4f}x the bound")
            continue
        t0 = time.perf_counter()
        res = search_unique(cfg, setup, u)
        secs = time.perf_counter() - t0
        rep = res.summary.get("optimizer_report", {})
        proven = bool(rep.get("proven_optimal"))
        best = res.cost if res.feasible else None
        row = {"layer": index, "shape": layer.shape, "proven": proven, "best_cycles": best,
               "lower_bound_cycles": rep.get("optimum_lower_bound_cycles"),
               "gap": rep.get("optimality_gap"), "x_bound": best / bound if best else None,
               "evaluations": res.summary["samples_used"], "seconds": round(secs, 2),
               "cached": False, "mapping": compact_mapping(res.mapping)}
        rows.append(row)
        if proven and best is not None:
            optima.store(path, k, {"optimum_cycles": int(best), "shape": layer.shape,
                                   "platform": cfg["platform"]["name"], "system": cfg["system"]["name"],
                                   "mapping": res.mapping.to_dict(), "evaluations": row["evaluations"],
                                   "time_s": row["seconds"]})
        say(line(row))
    return rows


def line(row: dict[str, Any]) -> str:
    """One printed line per layer."""
    head = f"layer {row['layer']:>3} {row['shape']}: "
    if row["best_cycles"] is None:
        return head + f"no feasible mapping ({row['evaluations']:,} evaluations, {row['seconds']:.1f} s)"
    what = (f"optimum {row['best_cycles']:,.0f} cycles" if row["proven"] else
            f"best {row['best_cycles']:,.0f} cycles, NOT proven: lowest open bound "
            f"{row['lower_bound_cycles'] or 0:,.0f} (gap {100 * (row['gap'] or 0):.3f} %)")
    return head + (f"{what}, {row['x_bound']:.4f}x the compute bound "
                   f"({row['evaluations']:,} evaluations, {row['seconds']:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("system")
    ap.add_argument("platform")
    ap.add_argument("--layers", help="1-based model layers, e.g. 2,7,12 (default: all)")
    ap.add_argument("--time-limit", type=float, help="seconds per unique layer (default: none)")
    ap.add_argument("--max-evaluations", type=int, help="evaluations per unique layer (default: none)")
    ap.add_argument("--optima", help="cache file (default outputs/optima.json)")
    ap.add_argument("--force", action="store_true", help="search cached layers again")
    ap.add_argument("--json", metavar="OUT", help="write the rows to this JSON file")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. guard=false")
    a = ap.parse_args(argv)
    try:
        layers = [int(x) for x in a.layers.split(",")] if a.layers else None
        rows = prove(a.model, a.system, a.platform, layers, a.time_limit, a.max_evaluations,
                     Path(a.optima) if a.optima else None, a.overrides, a.force)
    except (GammaError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
