"""gamma's entry point (Hydra): search mappings for every layer of a model and record them.

    python run.py [model=resnet18] [system=s2] [platform=edge] [optimizer=gamma] [budget=10000] ...

Configuration: conf/config.yaml. Output: the Hydra run folder (outputs/<date>/<time>/) with
results.json, mappings/layer_XX.m, convergence.png, and an MLflow run (gamma/tracking.py).
Exit codes: 0 done, 1 bad input (``error: ...`` on stderr), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

try:  # more optimizers (baselines register themselves); optional
    import baselines  # noqa: F401
except ImportError:
    pass

from gamma.search import execute

OUTPUTS = Path(__file__).resolve().parent / "outputs"


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    code = execute(cfg, HydraConfig.get().runtime.output_dir, OUTPUTS)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
