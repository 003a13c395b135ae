#!/usr/bin/env python
"""Time the optimizer sweep: every optimizer x system x platform, one seed, with the joblib
launcher on both cores, then print the time per optimizer and the share of optimizer overhead
versus cost-model time (from each job's results.json).

Usage: python scripts/bench_sweep.py [--optimizers gamma,stdga,...] [--systems s1,s2,s3]
                                     [--platforms edge,cloud] [--seeds 0] [--experiment NAME]
                                     [--json OUT] [extra Hydra overrides ...]
The runs land in the MLflow experiment (default ``sweep-bench``), so that
``scripts/compare.py --experiment NAME`` can report them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]
ALL = "gamma,stdga,pso,cma,de,tbpsa,bo,random"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--optimizers", default=ALL)
    ap.add_argument("--systems", default="s1,s2,s3")
    ap.add_argument("--platforms", default="edge,cloud")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--experiment", default="sweep-bench")
    ap.add_argument("--sweep-dir", help="Hydra sweep folder (default: a temporary one)")
    ap.add_argument("--json", help="write the figures here")
    args, overrides = ap.parse_known_args(argv)
    sweep_dir = Path(args.sweep_dir or tempfile.mkdtemp(prefix="gamma-sweep-"))
    cmd = [sys.executable, str(ROOT / "run.py"), "-m", f"optimizer={args.optimizers}",
           f"system={args.systems}", f"platform={args.platforms}", f"seed={args.seeds}",
           f"tracking.experiment={args.experiment}", "hydra/launcher=joblib",
           f"hydra.sweep.dir={sweep_dir}", *overrides]
    print(" ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
        print(f"error: the sweep exited with code {proc.returncode}", file=sys.stderr)
        return 1
    per_opt: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    failed = []
    jobs = sorted(sweep_dir.glob("*/results.json"))
    for f in jobs:
        r = read_results(f)
        agg = per_opt[r["optimizer"]]
        agg["jobs"] += 1
        agg["wall_s"] += r.get("wall_s") or 0.0
        agg["search_s"] += r.get("search_s") or 0.0
        agg["costmodel_s"] += r.get("costmodel_s") or 0.0
        if r.get("status") != "finished":
            failed.append(f"{r['optimizer']} {r['system']} {r['platform']}: {r.get('error')}")
    print(f"sweep: {len(jobs)} jobs in {wall:.1f} s wall ({wall / 60:.1f} min), 2 joblib workers")
    print(f"{'optimizer':<10} {'jobs':>4} {'job wall s':>11} {'search s':>9} {'cost model':>11} "
          f"{'optimizer':>10}")
    figures = {"wall_s": round(wall, 1), "jobs": len(jobs), "failed": failed, "optimizers": {}}
    for opt, a in sorted(per_opt.items(), key=lambda kv: -kv[1]["wall_s"]):
        cm = a["costmodel_s"] / a["search_s"] if a["search_s"] else 0.0
        print(f"{opt:<10} {a['jobs']:>4.0f} {a['wall_s']:>11.1f} {a['search_s']:>9.1f} "
              f"{cm:>10.1%} {1 - cm:>10.1%}")
        figures["optimizers"][opt] = {k: round(v, 2) for k, v in a.items()} | {
            "costmodel_share": round(cm, 3), "optimizer_share": round(1 - cm, 3)}
    for line in failed:
        print(f"failed: {line}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
