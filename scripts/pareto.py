"""Report the fronts of an ``objective=pareto`` run: plot and hypervolume.

The command line of :mod:`gamma.analysis.pareto` (the logic lives there)."""

import sys

from gamma.analysis.pareto import main

if __name__ == "__main__":
    sys.exit(main())
