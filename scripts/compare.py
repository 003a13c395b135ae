"""Compare the arms of one MLflow experiment: optimizers (the paper's Figure 6) or ablation arms.

The command line of :mod:`gamma.analysis.compare` (the logic lives there)."""

import sys

from gamma.analysis.compare import main

if __name__ == "__main__":
    sys.exit(main())
