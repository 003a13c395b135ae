"""gamma's entry point (Hydra): search mappings for every layer of a model and record them.

    python run.py [model=resnet18] [system=s2] [platform=edge] [optimizer=gamma] [budget=10000] ...
    python run.py -m experiment=NAME [overrides]      (a sweep, conf/experiment/NAME.yaml)
    python run.py -m hparams_search=gamma_rates      (tune GAMMA's rates, conf/hparams_search/)

Configuration: conf/config.yaml. Output: the Hydra run folder (outputs/<date>/<time>/) with
results.json, mappings/layer_XX.m, convergence.png, and an MLflow run (gamma/tracking/writer.py).
Exit codes: 0 done, 1 bad input (``error: ...`` on stderr), 130 interrupted (Ctrl-C, SIGINT),
143 terminated (SIGTERM, what a cluster scheduler sends); both leave results.json and the MLflow
run ``killed`` with the finished layers. ``main`` returns the job's objective value, so a Hydra
sweeper (Optuna) can minimize it.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gamma.search.labels import job_label
from gamma.results.console import say
from gamma.search.job import run_job
from gamma.search.signals import (EXIT_SIGINT, EXIT_SIGTERM, TERMINATED, note_terminated,
                                  was_terminated)

OUTPUTS = Path(__file__).resolve().parent / "outputs"
OPTIMIZER_CONFIGS = Path(__file__).resolve().parent / "conf" / "optimizer"


def set_label(cfg: DictConfig, overrides: list[str]) -> None:
    """Fill ``cfg.label`` (unless the user set one) from the optimizer settings that differ from
    its config file and the other overrides (see :mod:`gamma.search.labels`)."""
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
def main(cfg: DictConfig) -> float:
    """One job; returns its objective (the sum over layers of the best cost, in the objective's
    unit; inf if a layer is infeasible or the job failed), which Hydra's sweepers minimize."""
    hc = HydraConfig.get()
    set_label(cfg, list(hc.overrides.task))
    if hc.mode != RunMode.MULTIRUN:
        if was_terminated():  # SIGTERM during the start-up
            sys.exit(EXIT_SIGTERM)
        outcome = run_job(cfg, hc.runtime.output_dir, OUTPUTS)
        if outcome.code:
            sys.exit(outcome.code)
        return outcome.cost
    # In a sweep a failed job (bad settings, an exception inside an optimizer library) is
    # recorded as failed, with its error, in results.json and MLflow; the sweep goes on.
    # After a SIGTERM (forwarded by the launching process, see terminate_sweep) the running
    # job ends as killed and the jobs not started yet are skipped; a Ctrl-C stops the sweep.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, note_terminated)
    if was_terminated():
        say(f"job {hc.job.num} skipped: the sweep was terminated (SIGTERM)", error=True)
        return math.inf
    try:
        outcome = run_job(cfg, hc.runtime.output_dir, OUTPUTS)
    except Exception as e:  # noqa: BLE001 - already marked failed by run_job
        say(f"job {hc.job.num} failed: {type(e).__name__}: {e}", error=True)
        return math.inf
    if outcome.code == EXIT_SIGTERM:
        return math.inf  # the other workers' jobs still end as killed; the sweep exits 143
    if outcome.code == EXIT_SIGINT:
        raise KeyboardInterrupt
    if outcome.code:
        say(f"job {hc.job.num} failed (exit code {outcome.code})", error=True)
    return outcome.cost


def sweep_workers() -> list[int]:
    """Process ids of this process's joblib (loky) workers (Linux /proc; [] elsewhere)."""
    me, pids = os.getpid(), []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            if ppid != me:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if b"loky" in cmd and b"resource_tracker" not in cmd:
            pids.append(int(entry))
    return pids


def terminate_sweep(signum: int, frame: object) -> None:
    """SIGTERM in the launching process: note it and pass it on to the sweep's worker
    processes, whose running jobs end as killed (results.json, MLflow) while the jobs not
    started are skipped; the launcher then exits 143. (A single run handles SIGTERM itself,
    in gamma.search.job.run_job.)"""
    TERMINATED.set()
    for pid in sweep_workers():
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, terminate_sweep)
    main()
    if was_terminated():
        sys.exit(EXIT_SIGTERM)
