"""Time a whole search job as a user runs it: ``python run.py`` in a subprocess (start-up,
imports, MLflow against a temporary SQLite store included), then split the wall time with the
job's results.json into cost model, optimizer and start-up/other.

    python scripts/bench_search.py [--optimizer gamma] [--system s2] [--json OUT] [override ...]

Defaults: every ResNet-18 layer, S2, edge, gamma, 10,000 samples per unique layer. Extra
arguments are Hydra overrides passed to run.py (e.g. ``budget=2000 platform=cloud``).
Units: seconds; latency in cycles.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_job(overrides: list[str], workdir: Path) -> tuple[float, int, dict[str, Any] | None]:
    """Run run.py once; (wall seconds, exit code, results.json or None)."""
    run_dir = workdir / "run"
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{workdir / 'mlflow.db'}")
    cmd = [sys.executable, str(ROOT / "run.py"), f"hydra.run.dir={run_dir}",
           "tracking.enabled=true", *overrides]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    path = run_dir / "results.json"
    return wall, proc.returncode, json.loads(path.read_text()) if path.exists() else None


def figures(wall: float, results: dict[str, Any]) -> dict[str, Any]:
    """Time split (each unique layer counted once) and totals."""
    per_unique = {r["unique_index"]: r for r in results["layers"]}.values()
    costmodel, search = results["costmodel_s"], results["search_s"]  # per unique layer, summed
    other = wall - search
    t = results["totals"]
    return {
        "wall_s": round(wall, 3), "job_wall_s": results["wall_s"],
        "costmodel_s": round(costmodel, 3), "search_s": round(search, 3),
        "optimizer_s": round(search - costmodel, 3), "startup_other_s": round(other, 3),
        "share_costmodel": round(costmodel / wall, 4),
        "share_optimizer": round((search - costmodel) / wall, 4),
        "share_startup_other": round(other / wall, 4),
        "layers": t["layers"], "unique_layers": len(per_unique),
        "samples": sum(r["samples_used"] for r in per_unique),
        "latency_cycles": t["latency_cycles"], "compute_bound_cycles": t["compute_bound_cycles"],
        "ratio_to_compute_bound": t["ratio_to_compute_bound"], "feasible": t["feasible"],
        "config": {k: results[k] for k in ("model", "system", "platform", "optimizer",
                                           "objective", "seed", "budget")},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--optimizer", default="gamma")
    ap.add_argument("--system", default="s2")
    ap.add_argument("--json", metavar="OUT", help="write the figures to this JSON file")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. budget=2000")
    a = ap.parse_args(argv)
    overrides = [f"optimizer={a.optimizer}", f"system={a.system}", *a.overrides]
    with tempfile.TemporaryDirectory(prefix="bench_search_") as tmp:
        wall, code, results = run_job(overrides, Path(tmp))
    if code != 0 or results is None or results.get("status") != "finished":
        print(f"run.py failed (exit code {code})", file=sys.stderr)
        return 1
    f = figures(wall, results)
    c = f["config"]
    print(f"{c['model']} {c['system']} {c['platform']} {c['optimizer']} {c['objective']}: "
          f"{f['unique_layers']} unique of {f['layers']} layers, {f['samples']:,} samples")
    print(f"wall {f['wall_s']:.2f} s (job {f['job_wall_s']:.2f} s)")
    for name, key in (("cost model", "costmodel"), ("optimizer", "optimizer"),
                      ("start-up/other", "startup_other")):
        print(f"  {name:<15} {f[key + '_s']:7.2f} s  {100 * f['share_' + key]:5.1f} %")
    print(f"search (cost model + optimizer) {f['search_s']:.2f} s, "
          f"{f['samples'] / max(f['search_s'], 1e-9):,.0f} samples/s")
    ratio = f["ratio_to_compute_bound"]
    latency = f["latency_cycles"]
    print(f"latency {latency:,.0f} cycles, {ratio:.4f}x the compute bound "
          f"({f['compute_bound_cycles']:,} cycles)" if latency is not None else
          "latency: some layer has no feasible mapping")
    if a.json:
        Path(a.json).write_text(json.dumps(f, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
