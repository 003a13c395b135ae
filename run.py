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
sweeper (Optuna) can minimize it.
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


if __name__ == "__main__":  # not in a worker process that imports this file as __mp_main__
    _signal.signal(_signal.SIGINT, _exit_at_once)  # first: before any other import
    _signal.signal(_signal.SIGTERM, _exit_at_once)

import atexit  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

#: The exit code run.py ends with (see _exit_last).
EXIT_CODE = [0]


def _exit_last() -> None:
    """The last exit handler (registered first): Python's finalization after it would restore
    the default action of SIGINT/SIGTERM, so that a late Ctrl-C killed the process (or was
    lost); instead the signals are blocked and one that came late still sets 130/143."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    late = signal.sigpending()
    code = EXIT_CODE[0]
    if code == 0:
        from gamma.search.signals import pending_exit

        code = pending_exit() or (143 if signal.SIGTERM in late else 130 if signal.SIGINT in late else 0)
    os._exit(code)


if __name__ == "__main__":
    atexit.register(_exit_last)  # the first registered runs last, after every other exit handler

import math  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from gamma.errors import GammaError  # noqa: E402
from gamma.search.labels import job_label  # noqa: E402
from gamma.results.console import last_error, say, sweep_console  # noqa: E402
from gamma.search.job import run_job  # noqa: E402
from gamma.search.sweep import (FAILED_JOBS, job_ended, job_failed, job_started,  # noqa: E402
                                register_resolvers)
from gamma.search.signals import (EXIT_SIGINT, EXIT_SIGTERM, INTERRUPTED, TERMINATED,  # noqa: E402
                                  mark_interrupted, note_interrupted, note_terminated,
                                  pending_exit, was_terminated)
from gamma.search.strict_numbers import check_hydra_job, check_overrides  # noqa: E402

register_resolvers()
ROOT = Path(__file__).resolve().parent
OUTPUTS = ROOT / "outputs"
OPTIMIZER_CONFIGS = ROOT / "conf" / "optimizer"


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
    if hc.mode == RunMode.MULTIRUN:
        return sweep_job(cfg, hc)
    try:  # numbers in the config files written as YAML 1.1 reads them but gamma does not (K: 1_0)
        check_hydra_job(hc, ROOT)
    except GammaError as e:
        say(f"error: {e}", error=True)
        sys.exit(1)
    set_label(cfg, list(hc.overrides.task))
    if pending_exit():  # SIGINT/SIGTERM while Hydra started
        say("terminated (SIGTERM)" if was_terminated() else "interrupted", error=True)
        sys.exit(pending_exit())
    outcome = run_job(cfg, hc.runtime.output_dir, OUTPUTS)
    if outcome.code:
        sys.exit(outcome.code)
    return outcome.cost


def sweep_job(cfg: DictConfig, hc: Any) -> float:
    """One job of a sweep (``run.py -m``); its objective (inf unless it finished).

    A failed job (its config files, bad settings, an exception inside an optimizer library) is
    recorded as failed, with its error, in results.json and MLflow where it got that far, and
    noted in the sweep folder; the sweep goes on and, once every job has ended, names the
    failed jobs and exits 1 (gamma.search.sweep.SweepSummary). After a SIGTERM or Ctrl-C
    (reaching the workers from the terminal or forwarded by the launching process, see
    stop_sweep) the running job ends as killed and the jobs not started yet are skipped; the
    sweep then exits 143 or 130."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, note_terminated)
        signal.signal(signal.SIGINT, note_interrupted)
    k = hc.job.num + 1
    if pending_exit():
        what = "terminated (SIGTERM)" if was_terminated() else "interrupted (Ctrl-C)"
        say(f"job {k} skipped: the sweep was {what}", error=True)
        return math.inf
    overrides, sweep_dir = list(hc.overrides.task), Path(hc.sweep.dir)
    job_started(overrides, sweep_dir)
    error: str | None = None
    cost = math.inf
    try:
        check_hydra_job(hc, ROOT)  # numbers in its config files (the sweep checked the grid's)
        set_label(cfg, overrides)
        outcome = run_job(cfg, hc.runtime.output_dir, OUTPUTS)
        cost = outcome.cost
        if outcome.code == EXIT_SIGINT:
            mark_interrupted()  # the jobs not started are skipped; the sweep exits 130
        elif outcome.code not in (0, EXIT_SIGTERM):  # SIGTERM: the sweep exits 143
            error = last_error() or f"exit code {outcome.code}"
            say(f"job {k} failed (exit code {outcome.code})", error=True)
    except GammaError as e:
        error = str(e)
        say(f"error: {e}", error=True)
    except Exception as e:  # noqa: BLE001 - already marked failed by run_job
        error = f"{type(e).__name__}: {e}"
        say(f"job {k} failed: {error}", error=True)
    finally:
        if error is not None:
            job_failed(overrides, sweep_dir, Path(hc.runtime.output_dir), k, error)
        job_ended(Path(hc.runtime.output_dir), sweep_dir, k)
        sweep_console(None)
    return cost if error is None else math.inf


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


def stop_sweep(signum: int, frame: object) -> None:
    """SIGTERM or SIGINT in the launching process (a single run's too, until its job starts):
    note it and pass it on to the sweep's worker processes, whose running jobs end as killed
    (results.json, MLflow) while the jobs not started are skipped; the launcher then exits 143
    or 130. (A job handles both itself while it runs, in gamma.search.job.run_job.)"""
    (TERMINATED if signum == signal.SIGTERM else INTERRUPTED).set()
    for pid in sweep_workers():
        try:
            os.kill(pid, signum)
        except OSError:
            pass


def override_error(argv: list[str]) -> str | None:
    """Why an override of the command line holds a number Hydra reads otherwise than written
    (``budget=1_0`` is 10 in its grammar), or None. Checked here, before Hydra: a sweep's jobs
    see only the values its sweeper wrote back (``budget=10``). Overrides are the arguments with
    ``=`` that are not options."""
    try:
        check_overrides([a for a in argv if "=" in a and not a.startswith("-")])
    except GammaError as e:
        return str(e)
    return None


def writable_output(argv: list[str]) -> str | None:
    """Why the run folder (``hydra.run.dir=``, ``hydra.sweep.dir=``, else outputs/) cannot be
    written, or None: checked before Hydra, which would fail with a traceback on its log file."""
    import tempfile

    given = [a.split("=", 1)[1] for a in argv if a.startswith(("hydra.run.dir=", "hydra.sweep.dir="))]
    folder = Path(given[-1]) if given and "${" not in given[-1] else OUTPUTS
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return f"cannot write {folder}: {e.strerror or e}"
    return None


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop_sweep)
    signal.signal(signal.SIGINT, stop_sweep)
    if not any(a in ("--help", "-h", "--hydra-help", "--info", "--cfg", "-c") for a in sys.argv[1:]):
        problem = override_error(sys.argv[1:]) or writable_output(sys.argv[1:])
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            EXIT_CODE[0] = 1
            sys.exit(1)
    try:
        main()
        if FAILED_JOBS and not pending_exit():  # a sweep with failed jobs (named at its end)
            EXIT_CODE[0] = 1
            sys.exit(1)
    except SystemExit as e:  # a job's exit code (run_job), or Hydra's
        EXIT_CODE[0] = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        raise
    except BaseException:  # a bug: its traceback, exit 1
        EXIT_CODE[0] = 1
        raise
