"""Co-search baselines: ``python run.py codesign=digamma optimizer=X seed=S`` for every optimizer
and seed, one job at a time, and a markdown table of what each found (docs/codesign.md,
"Co-search baselines").

    python scripts/codesign_baselines.py [--optimizers gamma,random,pso,cma] [--seeds 0,1,2]
        [--out DIR] [override ...]

Each job runs in a subprocess with MLflow off (``tracking.enabled=false``) and its folder under
``--out`` (default: a temporary folder); extra arguments are Hydra overrides for every job (e.g.
``budget=2000``). Per job: the model's latency (cycles; "none" when no design fits with every
layer feasible), the design (PEs, area mm^2) and the job's wall time (seconds, start-up
included, on whatever else runs on the machine). Then per optimizer the median latency over the
seeds (a job without a design counts as +inf).
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gamma.results.layout import read_results

ROOT = Path(__file__).resolve().parents[1]


def run_job(overrides: list[str], folder: Path) -> tuple[float, dict[str, Any] | None]:
    """(wall seconds, results.json or None) of one ``run.py`` job writing to ``folder``."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "run.py"), *overrides, "tracking.enabled=false",
                    f"hydra.run.dir={folder}"], cwd=ROOT, capture_output=True, text=True)
    path = folder / "results.json"
    return time.perf_counter() - t0, read_results(path) if path.is_file() else None


def row(optimizer: str, seed: int, wall: float, res: dict[str, Any] | None) -> tuple[str, float]:
    """A table row of one job and its latency (+inf: no design, or the job failed)."""
    if res is None:
        return f"| {optimizer} | {seed} | job failed | | | {wall:.0f} |", math.inf
    hw, latency = res.get("hardware"), res["totals"].get("latency_cycles")
    if hw is None or latency is None:
        return f"| {optimizer} | {seed} | none | | | {wall:.0f} |", math.inf
    return (f"| {optimizer} | {seed} | {latency:,.0f} | {hw['num_pes']} | {hw['area_mm2']:.4f} "
            f"| {wall:.0f} |", float(latency))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--optimizers", default="gamma,random,pso,cma")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", type=Path, help="folder of the jobs' folders (default: temporary)")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every job")
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    out = a.out or Path(tempfile.mkdtemp(prefix="codesign_baselines_"))
    print("| optimizer | seed | latency (cycles) | PEs | area mm^2 | wall s |")
    print("|---|---|---|---|---|---|")
    medians = {}
    for opt in a.optimizers.split(","):
        latencies = []
        for seed in seeds:
            wall, res = run_job(["codesign=digamma", f"optimizer={opt}", f"seed={seed}",
                                 *a.overrides], out / f"{opt}_{seed}")
            line, latency = row(opt, seed, wall, res)
            print(line, flush=True)
            latencies.append(latency)
        medians[opt] = statistics.median(latencies)
    print()
    for opt, m in medians.items():
        print(f"{opt}: median latency {m:,.0f} cycles" if math.isfinite(m) else
              f"{opt}: median latency: no design")
    return 0


if __name__ == "__main__":
    sys.exit(main())
