#!/usr/bin/env python
"""Log a finished run folder into MLflow afterwards: a job whose tracking failed (unreachable
server, refused URI) or that ran with ``tracking.enabled=false``.

Usage: python scripts/mlflow_import.py RUN_DIR [--uri URI] [--experiment NAME]

RUN_DIR is a job's folder (config.yaml, results.json, mappings/, convergence.png). The run gets
what the job's tracking helper would have logged (gamma/tracking/writer.py, the same code): params,
tags, the layer dataset, per-layer and total metrics, the artifacts, and the status of
results.json. ``--uri`` / ``--experiment`` default to the folder's config.yaml (then
``$MLFLOW_TRACKING_URI``, then the project's store). results.json's ``mlflow`` then names the
new run. Exit 0 done, 1 with ``error: ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gamma.tracking import writer as tracking  # noqa: E402
from gamma.errors import GammaError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="the job's folder (config.yaml, results.json)")
    ap.add_argument("--uri", help="MLflow tracking URI (default: the job's tracking.uri)")
    ap.add_argument("--experiment", help="MLflow experiment (default: the job's)")
    args = ap.parse_args(argv)
    try:
        from gamma.search.job import run_name

        config = args.run_dir / "config.yaml"
        cfg = yaml.safe_load(config.read_text(encoding="utf-8")) if config.is_file() else None
        name = run_name(cfg) if isinstance(cfg, dict) else args.run_dir.name
        run_id, uri = tracking.import_run(args.run_dir, name, args.uri, args.experiment)
    except GammaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, yaml.YAMLError) as e:
        print(f"error: {args.run_dir}: config.yaml is not a job's config ({type(e).__name__}: {e})",
              file=sys.stderr)
        return 1
    print(f"MLflow run {run_id} at {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
