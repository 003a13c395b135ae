#!/usr/bin/env python
"""How long optimizer=exhaustive takes to prove each layer's latency optimum, per system.

    python scripts/bench_exhaustive.py [--model resnet18] [--systems s1,s2,s3] [--platform edge]
        [--layers 2,7] [--time-limit 600] [--json OUT] [override ...]

Searches every selected unique layer with optimizer=exhaustive and a time limit per layer
(default 10 minutes), cached optima ignored, and prints per layer and system: the optimum and its
ratio to the compute bound, the evaluations, the seconds, and for a layer it did not prove in
time the best found and the lowest bound still open (the gap). Proven optima also go to the
cache (outputs/optima.json, ``--optima``). The load average is printed: other processes on the
machine slow it. Units: cycles, evaluations, seconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("optima_script", ROOT / "scripts" / "optima.py")
optima_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(optima_script)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--systems", default="s1,s2,s3")
    ap.add_argument("--platform", default="edge")
    ap.add_argument("--layers", help="1-based model layers (default: all)")
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds per unique layer")
    ap.add_argument("--optima", help="cache file (default outputs/optima.json)")
    ap.add_argument("--json", metavar="OUT", help="write the rows to this JSON file")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides")
    a = ap.parse_args(argv)
    layers = [int(x) for x in a.layers.split(",")] if a.layers else None
    out = []
    for system in a.systems.split(","):
        print(f"--- {a.model} {system} {a.platform}, time limit {a.time_limit:g} s per layer "
              f"(load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})", flush=True)
        rows = optima_script.prove(a.model, system, a.platform, layers, a.time_limit, None,
                                   Path(a.optima) if a.optima else None, a.overrides, force=True,
                                   say=lambda text: print(text, flush=True))
        done = [r for r in rows if r["proven"]]
        secs = [r["seconds"] for r in rows]
        print(f"{system}: {len(done)} of {len(rows)} unique layers proven; "
              f"{sum(secs):.1f} s in all, longest {max(secs):.1f} s", flush=True)
        out += [{"system": system, **r} for r in rows]
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
