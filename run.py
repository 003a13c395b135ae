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
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gamma.labels import job_label
from gamma.search import execute

OUTPUTS = Path(__file__).resolve().parent / "outputs"
OPTIMIZER_CONFIGS = Path(__file__).resolve().parent / "conf" / "optimizer"


def register_baselines() -> None:
    """Import the ``baselines`` package, which registers more optimizers by name only (cheap:
    nevergrad and scikit-optimize are imported when a baseline is chosen). Done inside the job:
    a launcher's worker process (joblib) runs ``main`` without this module's top level."""
    try:
        import baselines  # noqa: F401
    except ModuleNotFoundError as e:
        if e.name != "baselines":
            raise


def set_label(cfg: DictConfig, overrides: list[str]) -> None:
    """Fill ``cfg.label`` (unless the user set one) from the optimizer settings that differ from
    its config file and the other overrides (see :mod:`gamma.labels`)."""
    if cfg.get("label") is not None:
        return
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - a bad interpolation is reported by execute()
        return
    name = str(plain["optimizer"].get("name"))
    path = OPTIMIZER_CONFIGS / f"{name}.yaml"
    defaults = OmegaConf.to_container(OmegaConf.load(path)) if path.is_file() else {}
    cfg.label = job_label(plain["optimizer"], defaults, overrides, plain)


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    register_baselines()
    hc = HydraConfig.get()
    set_label(cfg, list(hc.overrides.task))
    if hc.mode != RunMode.MULTIRUN:
        code = execute(cfg, hc.runtime.output_dir, OUTPUTS)
        if code:
            sys.exit(code)
        return
    # In a sweep a failed job (bad settings, an exception inside an optimizer library) is
    # recorded as failed, with its error, in results.json and MLflow; the sweep goes on.
    try:
        code = execute(cfg, hc.runtime.output_dir, OUTPUTS)
    except Exception as e:  # noqa: BLE001 - already marked failed by execute
        print(f"job {hc.job.num} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return
    if code == 130:
        raise KeyboardInterrupt
    if code:
        print(f"job {hc.job.num} failed (exit code {code})", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
