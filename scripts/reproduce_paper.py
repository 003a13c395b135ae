"""Reproduce the paper's experiments and write them beside the paper's own numbers.

The command line of :mod:`gamma.analysis.paper` (the logic lives there)."""

import sys

from gamma.analysis.paper import main

if __name__ == "__main__":
    sys.exit(main())
