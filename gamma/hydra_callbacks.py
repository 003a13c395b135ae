"""Hydra callbacks (registered in conf/config.yaml under ``hydra.callbacks``).

Hydra turns an exception in a callback into a warning, so nothing essential happens here: the
jobs still create their MLflow runs themselves, with retries.
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


class PrepareTracking(Callback):
    """Before a sweep's jobs start, create the MLflow store and the experiment once in the
    launching process (jobs on parallel workers creating a new SQLite store collide)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from gamma import tracking

        cfg = {"experiment": OmegaConf.select(config, "experiment", default="gamma"),
               "tracking": {"enabled": OmegaConf.select(config, "tracking.enabled", default=True),
                            "uri": OmegaConf.select(config, "tracking.uri", default=None)}}
        tracking.prepare_store(cfg)
