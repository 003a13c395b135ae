#!/usr/bin/env python
"""A model of many identical layers: how long a job takes to write its results, and how large
results.json gets (each unique layer is written once: gamma/results/layout.py).

Usage: python scripts/bench_large_model.py [--rows 100000] [--budget 500] [--tracking]
                                           [--out DIR]

Writes a GAMMA CSV of ``--rows`` copies of ResNet-18's layer 2 (K64 C64 Y56 X56 R3 S3), runs
``python run.py model=file`` on it (tracking off unless ``--tracking``: then into a SQLite store in
DIR), and prints the job's wall time, the seconds after the search (results.json, table, plot,
MLflow), the size of results.json and the number of mapping files. Exit code: the job's.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--budget", type=int, default=500)
    ap.add_argument("--tracking", action="store_true", help="log the job to MLflow (SQLite in --out)")
    ap.add_argument("--out", type=Path, help="working folder (default: a temporary one)")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="gamma_large_"))
    out.mkdir(parents=True, exist_ok=True)
    model = out / "model.csv"
    model.write_text("K,C,Y,X,R,S,T\n" + "64,64,56,56,3,3,1\n" * args.rows, encoding="utf-8")
    run_dir = out / "run"
    cmd = [sys.executable, str(ROOT / "run.py"), "model=file", f"model.path={model}",
           f"budget={args.budget}", f"hydra.run.dir={run_dir}",
           (f"tracking.uri=sqlite:///{out / 'mlflow.db'}" if args.tracking else "tracking.enabled=false")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
        return proc.returncode
    found = re.search(r": [\d,]+ cycles, .* \(([\d,]+) samples, ([\d.]+) s\)", proc.stdout)
    search_s = float(found.group(2)) if found else float("nan")
    size = (run_dir / "results.json").stat().st_size
    files = len(list((run_dir / "mappings").glob("*.m")))
    print(f"{args.rows:,} layers (1 unique shape), budget {args.budget:,}, tracking "
          f"{'on' if args.tracking else 'off'}: job {wall:.1f} s wall (search {search_s:.1f} s, "
          f"Python start and model file included); results.json {size / 1e6:.2f} MB; "
          f"{files} mapping file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
