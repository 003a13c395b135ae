#!/usr/bin/env python
"""Time an optimizer sweep and print, per optimizer, the time per sample outside the cost model
beside GAMMA's: (search_s - costmodel_s) / samples, summed over each optimizer's jobs, from
every job's results.json (a unique layer's samples and times count once).

By default every optimizer x system x platform, one seed; ``--user`` runs the user's command
instead, ``run.py -m optimizer=gamma,cma,pso system=s1,s2,s3``, exactly as typed. Both use
run.py's default launcher (conf/hydra/launcher/local.yaml: jobs on every core) unless
``--launcher basic`` (one job after another in one process) or another is given, and print the
sweep's wall time.

Usage: python scripts/bench_sweep.py [--user] [--optimizers gamma,stdga,...] [--systems s1,s2,s3]
                                     [--platforms edge,cloud] [--seeds 0] [--launcher basic|joblib|...]
                                     [--experiment NAME] [--json OUT] [extra Hydra overrides ...]
The runs land in the MLflow experiment (default ``sweep-bench``), so that
``scripts/compare.py --experiment NAME`` can report them. Timings depend on the machine's load.
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
from typing import Any

from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]
ALL = "gamma,stdga,pso,cma,de,tbpsa,bo,random"
#: The user's command: ``python run.py -m optimizer=gamma,cma,pso system=s1,s2,s3``.
USER = {"optimizers": "gamma,cma,pso", "systems": "s1,s2,s3", "platforms": None}


def sweep_command(args: argparse.Namespace, sweep_dir: Path, overrides: list[str]) -> list[str]:
    """The run.py multirun command of the sweep (``platform`` and the launcher only if set)."""
    cmd = [sys.executable, str(ROOT / "run.py"), "-m", f"optimizer={args.optimizers}",
           f"system={args.systems}"]
    if args.platforms:
        cmd.append(f"platform={args.platforms}")
    cmd += [f"seed={args.seeds}", f"tracking.experiment={args.experiment}"]
    if args.launcher:
        cmd.append(f"hydra/launcher={args.launcher}")
    return cmd + [f"hydra.sweep.dir={sweep_dir}", *overrides]


def job_samples(r: dict[str, Any]) -> int:
    """Samples the job evaluated: ``samples_used`` per unique layer (layers of one shape share
    one search)."""
    unique = {layer["unique_index"]: layer["samples_used"] for layer in r.get("layers", [])}
    return sum(unique.values())


def per_optimizer(jobs: list[dict[str, Any]]) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Sums per optimizer (jobs, samples, wall_s, search_s, costmodel_s) and the failed jobs."""
    per_opt: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    failed = []
    for r in jobs:
        agg = per_opt[r["optimizer"]]
        agg["jobs"] += 1
        agg["samples"] += job_samples(r)
        for key in ("wall_s", "search_s", "costmodel_s"):
            agg[key] += r.get(key) or 0.0
        if r.get("status") != "finished":
            failed.append(f"{r['optimizer']} {r['system']} {r['platform']}: {r.get('error')}")
    return per_opt, failed


def outside_us(a: dict[str, float]) -> float | None:
    """Microseconds per sample outside the cost model: (search_s - costmodel_s) / samples."""
    return 1e6 * (a["search_s"] - a["costmodel_s"]) / a["samples"] if a["samples"] else None


def table(per_opt: dict[str, dict[str, float]]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The printed lines and the figures per optimizer, slowest first; ``x gamma`` is the time
    per sample outside the cost model over GAMMA's (when GAMMA ran)."""
    ref = outside_us(per_opt["gamma"]) if "gamma" in per_opt else None
    lines = [f"{'optimizer':<10} {'jobs':>4} {'samples':>9} {'job wall s':>10} {'search s':>9} "
             f"{'cost model s':>12} {'outside s':>9} {'us/sample outside':>17} {'x gamma':>8}"]
    figures: dict[str, dict[str, Any]] = {}
    for opt, a in sorted(per_opt.items(), key=lambda kv: -kv[1]["wall_s"]):
        us = outside_us(a)
        ratio = us / ref if us is not None and ref else None
        lines.append(f"{opt:<10} {a['jobs']:>4.0f} {a['samples']:>9.0f} {a['wall_s']:>10.1f} "
                     f"{a['search_s']:>9.1f} {a['costmodel_s']:>12.1f} "
                     f"{a['search_s'] - a['costmodel_s']:>9.1f} "
                     f"{'-' if us is None else f'{us:.1f}':>17} {'-' if ratio is None else f'{ratio:.1f}':>8}")
        figures[opt] = {k: round(v, 2) for k, v in a.items()} | {
            "outside_us_per_sample": None if us is None else round(us, 2),
            "outside_x_gamma": None if ratio is None else round(ratio, 2)}
    return lines, figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--user", action="store_true",
                    help="the user's command: optimizer=gamma,cma,pso system=s1,s2,s3")
    ap.add_argument("--optimizers", default=ALL)
    ap.add_argument("--systems", default="s1,s2,s3")
    ap.add_argument("--platforms", default="edge,cloud")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--launcher", help="Hydra launcher (default: run.py's, jobs on every core; "
                                       "basic: one job after another)")
    ap.add_argument("--experiment", default="sweep-bench")
    ap.add_argument("--sweep-dir", help="Hydra sweep folder (default: a temporary one)")
    ap.add_argument("--json", help="write the figures here")
    args, overrides = ap.parse_known_args(argv)
    if args.user:
        vars(args).update(USER)
    sweep_dir = Path(args.sweep_dir or tempfile.mkdtemp(prefix="gamma-sweep-"))
    cmd = sweep_command(args, sweep_dir, overrides)
    print(" ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
        print(f"error: the sweep exited with code {proc.returncode}", file=sys.stderr)
        return 1
    jobs = [read_results(f) for f in sorted(sweep_dir.glob("*/results.json"))]
    per_opt, failed = per_optimizer(jobs)
    print(f"sweep: {len(jobs)} jobs in {wall:.1f} s wall ({wall / 60:.1f} min), launcher {args.launcher or 'local (default)'}")
    lines, figures = table(per_opt)
    print("\n".join(lines))
    for line in failed:
        print(f"failed: {line}")
    if args.json:
        out = {"command": " ".join(cmd[1:]), "wall_s": round(wall, 1), "jobs": len(jobs),
               "failed": failed, "optimizers": figures}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
