"""Hydra callbacks (registered in conf/config.yaml under ``hydra.callbacks``).

Hydra turns an exception in a callback into a warning, so nothing essential happens here: the
jobs still create their MLflow runs themselves (the store under a file lock, see
gamma.tracking.writer.open_client), and a job whose sweep has no parent run is simply a top-level run.
"""

from __future__ import annotations

import atexit
import copy
import os
import sys
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


def tracking_config(config: DictConfig) -> dict[str, Any]:
    """The ``tracking`` settings (``enabled``, ``uri``, ``experiment``) of a sweep's config as
    plain values."""
    if not HydraConfig.initialized():  # for ${hydra:...} interpolations, e.g. the experiment
        HydraConfig.instance().set_config(copy.deepcopy(config))  # set_config locks its node
    select = lambda key, default=None: OmegaConf.select(config, key, default=default)  # noqa: E731
    return {"tracking": {"enabled": select("tracking.enabled", True), "uri": select("tracking.uri"),
                         "experiment": select("tracking.experiment")}}


def sweep_params(config: DictConfig) -> dict[str, Any]:
    """The sweeper's ``params`` (a grid given in a config file, e.g. an experiment config)."""
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
    return dict(OmegaConf.to_container(params, resolve=False)) if params else {}


def local_workers(config: DictConfig) -> bool:
    """Whether the sweep's jobs run in worker processes of this machine (the joblib launcher,
    the default ``local``)."""
    target = str(OmegaConf.select(config, "hydra.launcher._target_", default="") or "")
    return target.endswith("JoblibLauncher")


def serve_helpers() -> None:
    """A tracking server for the sweep's worker processes (gamma/tracking/server.py): each
    worker's MLflow helper is forked from it instead of importing mlflow (about 2 s of CPU each),
    and so is this process's helper. Not where ``$GAMMA_TRACKING_SERVER`` names one already; the
    server ends with this process. Where it does not start, the helpers start as usual."""
    from gamma.tracking import forked

    if os.environ.get(forked.ENV):
        return
    server = forked.start_server()
    if server is None:
        return
    os.environ[forked.ENV] = server.path  # the workers, started after this, inherit it

    def stop() -> None:
        if os.environ.get(forked.ENV) == server.path:
            del os.environ[forked.ENV]
        server.stop()

    atexit.register(stop)


class PrepareTracking(Callback):
    """Before a sweep's jobs start, create the MLflow store and the experiment once for the
    launching process (under the store's file lock, like every job), and the sweep's parent
    run, which the jobs join as children; end the parent after the jobs: FINISHED, or FAILED /
    KILLED when the sweep ends with an error / Ctrl-C. The MLflow work runs in the process's
    tracking helper (gamma.tracking.writer.ask_helper), which the jobs of a sequential sweep
    reuse."""

    def __init__(self) -> None:
        self.sweep: Any = None  # gamma.tracking.writer.SweepRun while the sweep runs
        self.exit_status = "failed"  # used when the process ends before on_multirun_end

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from gamma.tracking import writer as tracking

        overrides = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
        sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        settings = tracking_config(config)
        if settings["tracking"]["enabled"] and local_workers(config):
            serve_helpers()
        self.sweep = tracking.start_sweep(settings, sweep_dir, overrides, sweep_params(config))
        if self.sweep is not None:
            atexit.register(self._at_exit)
            previous = sys.excepthook

            def hook(kind: type[BaseException], value: BaseException,
                     tb: TracebackType | None) -> None:
                self.exit_status = "killed" if issubclass(kind, KeyboardInterrupt) else "failed"
                previous(kind, value, tb)

            sys.excepthook = hook

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from gamma.search.signals import pending_exit

        self._end("killed" if pending_exit() else "finished")  # Ctrl-C or SIGTERM: jobs killed

    def _at_exit(self) -> None:
        """The sweep stopped before its end (an exception, Ctrl-C): end the parent run too."""
        try:
            self._end(self.exit_status)
        except Exception as e:  # noqa: BLE001 - at exit: report, never raise
            warnings.warn(f"MLflow: could not end the sweep's parent run: {e}", stacklevel=1)

    def _end(self, status: str) -> None:
        from gamma.tracking import writer as tracking

        sweep, self.sweep = self.sweep, None
        if sweep is not None:
            tracking.end_sweep(sweep, status)
