"""gamma's entry point (Hydra): search mappings for every layer of a model and record them.

    python run.py [model=resnet18] [system=s2] [platform=edge] [optimizer=gamma] [budget=10000] ...
    python run.py -m experiment=NAME [overrides]      (a sweep, conf/experiment/NAME.yaml)
    python run.py -m hparams_search=gamma_rates      (tune GAMMA's rates, conf/hparams_search/)

Configuration: conf/config.yaml. Output: the Hydra run folder (outputs/<date>/<time>/) with
results.json, mappings/layer_XX.m, convergence.png, and an MLflow run (gamma/tracking/writer.py).
Exit codes: 0 done, 1 bad input (``error: ...`` on stderr), 130 interrupted (Ctrl-C, SIGINT),
143 terminated (SIGTERM, what a cluster scheduler sends), from the first instruction on; both
leave results.json and the MLflow run ``killed`` with the finished layers (a sweep: every
running job, and the parent run KILLED). ``main`` returns the job's objective value, so a Hydra
sweeper (Optuna) can minimize it. The command line's code is gamma/search/cli.py: this file
stays small, as Python compiles all of it before the first line installs the signal handlers.
"""

from __future__ import annotations

import os
# signal's C module: `import signal` first builds its enums (imports enum, 1-3 ms of start-up
# during which a Ctrl-C is still Python's KeyboardInterrupt).
import _signal


def _exit_at_once(signum: int, frame: object) -> None:
    """SIGINT/SIGTERM while Python imports gamma, Hydra and their libraries (about a second):
    nothing exists yet, so exit at once with 130/143, without a KeyboardInterrupt traceback."""
    try:
        os.write(2, b"terminated (SIGTERM)\n" if signum == _signal.SIGTERM else b"interrupted\n")
    except OSError:
        pass
    os._exit(128 + signum)


def _exit_last() -> None:
    """The last exit handler (gamma.search.cli.exit_last: the exit code, late signals)."""
    try:
        from gamma.search.cli import exit_last
    except BaseException:  # noqa: BLE001 - it could not be imported: run.py failed before
        os._exit(1)
    exit_last()


if __name__ == "__main__":  # not in a worker process that imports this file as __mp_main__
    _signal.signal(_signal.SIGINT, _exit_at_once)  # first: before any other import
    _signal.signal(_signal.SIGTERM, _exit_at_once)
    import atexit

    atexit.register(_exit_last)  # the first registered runs last, after every other exit handler

from pathlib import Path  # noqa: E402

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from gamma.search import cli  # noqa: E402

ROOT = Path(__file__).resolve().parent


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """One job (or one job of a sweep); returns its objective (the sum over layers of the best
    cost, in the objective's unit; inf if a layer is infeasible or the job failed), which Hydra's
    sweepers minimize."""
    return cli.job(cfg, ROOT)


if __name__ == "__main__":
    cli.start(main, ROOT)
