#!/usr/bin/env python
"""Cost-model throughput: random GAMMA-style 1- and 2-level mappings of the ResNet-18 layers on
the edge platform (168 PEs), evaluated in batches in one process.

Usage: python scripts/bench_costmodel.py [--mappings 100000] [--batch 1000] [--repeats 5] [--seed 0]
                                        [--json OUT]
Evaluates the same mappings ``--repeats`` times (this VM's speed varies by tens of percent from
run to run) and prints the median evaluations per second with the range, and peak resident
memory; --json writes {"evals_per_s" (median), "evals_per_s_runs", "peak_rss_mb", ...}.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mappings", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--inner-tiles", choices=("divisors", "any"), default="divisors")
    ap.add_argument("--json", help="write the figures to this JSON file")
    args = ap.parse_args(argv)

    from gamma.costmodel import evaluate
    from gamma.costmodel.warmup import warm_up
    from gamma.hardware import Hardware
    from gamma.mapspace.space import MapSpace
    from gamma.workloads.files import model_from_config

    compile_s = warm_up()
    model = model_from_config(yaml.safe_load((ROOT / "conf/model/resnet18.yaml").read_text()))
    hw = Hardware.from_dict(yaml.safe_load((ROOT / "conf/platform/edge.yaml").read_text()))
    rng = np.random.default_rng(args.seed)
    spaces = [MapSpace(layer, hw.num_pes, 1, 2, inner_tiles=args.inner_tiles) for layer in model.layers]
    # Draw every batch first so that only the cost model is timed.
    batches = []
    n_total = 0
    i = 0
    while n_total < args.mappings:
        space = spaces[i % len(spaces)]
        n = min(args.batch, args.mappings - n_total)
        g = space.random(n, rng)
        batches.append((space, space.decode(g), int((g.nlev == 2).sum())))
        n_total += n
        i += 1
    walls = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        valid = 0
        rejected = 0
        for space, packed, _ in batches:
            res = evaluate(space.layer, hw, packed)
            valid += int(res.valid.sum())
            rejected += int(res.rejected.sum())
        walls.append(time.perf_counter() - t0)
    wall = float(np.median(walls))
    two_level = sum(b[2] for b in batches)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    figures = {
        "mappings": n_total,
        "two_level_share": round(two_level / n_total, 3),
        "batch": args.batch,
        "wall_s": round(wall, 3),
        "evals_per_s": round(n_total / wall, 1),
        "evals_per_s_runs": [round(n_total / w) for w in walls],
        "us_per_eval": round(wall / n_total * 1e6, 2),
        "valid_share": round(valid / n_total, 3),
        "rejected_share": round(rejected / n_total, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "kernel_load_s": round(compile_s, 2),
    }
    for k, v in figures.items():
        print(f"{k:>16}: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
