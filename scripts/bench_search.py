"""Time a whole search job as a user runs it: ``python run.py`` in a subprocess (start-up,
imports, MLflow against a temporary SQLite store included), then split the wall time with the
job's results.json into cost model, optimizer and start-up/other.

    python scripts/bench_search.py [--optimizer gamma] [--system s2] [--model resnet18]
        [--budget 10000] [--workers 1,2] [--json OUT] [override ...]

Defaults: every ResNet-18 layer, S2, edge, gamma, 10,000 samples per unique layer, one worker.
``--workers 1,2`` runs the job once per worker count (``parallel.workers``), prints each and the
speed-up over the serial one (else the first), and checks that the results are identical apart
from timings. Extra arguments are Hydra overrides passed to run.py (e.g. ``platform=cloud``).
The load average is printed before and after: other processes on the machine slow the parallel
run first.
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

from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]


#: results.json fields that differ between identical searches (timings, the MLflow run).
RUN_SPECIFIC = {"wall_s", "costmodel_s", "search_s", "mlflow"}


def without_timings(results: dict[str, Any]) -> dict[str, Any]:
    """results.json without :data:`RUN_SPECIFIC` fields, at the top and in every layer."""
    out = {k: v for k, v in results.items() if k not in RUN_SPECIFIC}
    out["layers"] = [{k: v for k, v in r.items() if k not in RUN_SPECIFIC} for r in results["layers"]]
    return out


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
    return wall, proc.returncode, read_results(path) if path.exists() else None


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


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(f: dict[str, Any]) -> None:
    c = f["config"]
    print(f"{c['model']} {c['system']} {c['platform']} {c['optimizer']} {c['objective']}: "
          f"{f['unique_layers']} unique of {f['layers']} layers, {f['samples']:,} samples")
    print(f"wall {f['wall_s']:.2f} s (job {f['job_wall_s']:.2f} s)")
    if f.get("workers", 1) > 1:  # the layers' searches overlap: no split of the wall time
        print(f"  {f['workers']} workers: layer searches add up to {f['search_s']:.2f} s "
              f"(cost model {f['costmodel_s']:.2f} s), {f['search_s'] / f['wall_s']:.2f}x the wall time")
    else:
        for name, key in (("cost model", "costmodel"), ("optimizer", "optimizer"),
                          ("start-up/other", "startup_other")):
            print(f"  {name:<15} {f[key + '_s']:7.2f} s  {100 * f['share_' + key]:5.1f} %")
    print(f"search (cost model + optimizer, summed over layers) {f['search_s']:.2f} s, "
          f"{f['samples'] / max(f['search_s'], 1e-9):,.0f} samples/s")
    ratio = f["ratio_to_compute_bound"]
    latency = f["latency_cycles"]
    print(f"latency {latency:,.0f} cycles, {ratio:.4f}x the compute bound "
          f"({f['compute_bound_cycles']:,} cycles)" if latency is not None else
          "latency: some layer has no feasible mapping")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--optimizer", default="gamma")
    ap.add_argument("--system", default="s2")
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--budget", type=int, default=10000, help="samples per unique layer")
    ap.add_argument("--workers", default="1", help="comma-separated worker counts, e.g. 1,2")
    ap.add_argument("--json", metavar="OUT", help="write the figures to this JSON file")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. platform=cloud")
    a = ap.parse_args(argv)
    counts = [int(w) for w in a.workers.split(",")]
    base = [f"optimizer={a.optimizer}", f"system={a.system}", f"model={a.model}",
            f"budget={a.budget}", *a.overrides]
    runs: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for workers in counts:
        before = load()
        with tempfile.TemporaryDirectory(prefix="bench_search_") as tmp:
            wall, code, results = run_job([*base, f"parallel.workers={workers}"], Path(tmp))
        if code != 0 or results is None or results.get("status") != "finished":
            print(f"run.py failed (exit code {code})", file=sys.stderr)
            return 1
        f = figures(wall, results)
        f.update(workers=workers, load_before=before, load_after=load())
        print(f"--- {workers} worker{'s' if workers > 1 else ''} (load average before "
              f"{before}, after {f['load_after']})")
        report(f)
        runs.append((workers, f, results))
    if len(runs) > 1:  # against the serial run (else the first), whatever the order
        w0, f0, r0 = min(runs, key=lambda run: (run[0] != 1, counts.index(run[0])))
        for w, f, r in (run for run in runs if run[0] != w0):
            same = without_timings(r) == without_timings(r0)
            print(f"{w} workers vs {w0}: {f0['wall_s'] / f['wall_s']:.2f}x faster "
                  f"({f0['wall_s']:.1f} s -> {f['wall_s']:.1f} s); results "
                  f"{'identical' if same else 'DIFFER'} apart from timings")
            f["speedup"], f["identical"] = round(f0["wall_s"] / f["wall_s"], 3), same
    if a.json:
        Path(a.json).write_text(json.dumps([f for _, f, _ in runs], indent=1) + "\n")
    return 0 if all(f.get("identical", True) for _, f, _ in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
