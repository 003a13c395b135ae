"""Sample efficiency: how an optimizer's end-to-end cost falls with the samples it may spend.

The command line of :mod:`gamma.analysis.sample_efficiency` (the logic lives there)."""

import sys

from gamma.analysis.sample_efficiency import main

if __name__ == "__main__":
    sys.exit(main())
