"""Prove the latency optimum of every selected layer of a model (optimizer=exhaustive) and cache
it in outputs/optima.json, where every later latency job and scripts/compare.py find it.

The command line of :mod:`gamma.analysis.optima` (the logic lives there)."""

import sys

from gamma.analysis.optima import main

if __name__ == "__main__":
    sys.exit(main())
