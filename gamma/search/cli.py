"""The command line around run.py (gamma's Hydra entry point): what happens before Hydra starts
(overrides with numbers Hydra reads otherwise than written, a run folder that cannot be
written), a job or a sweep's job, signals and exit codes. run.py itself stays small: Python
compiles the whole main script before its first line runs, and until that line installs its
signal handlers a Ctrl-C is a KeyboardInterrupt traceback; this module's bytecode is cached.

Exit codes: 0 done, 1 bad input (``error: ...`` on stderr; a sweep: after its other jobs, when
one failed), 130 interrupted (Ctrl-C, SIGINT), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gamma.errors import GammaError
from gamma.results.console import last_error, say, sweep_console
from gamma.search.job import run_job
from gamma.search.labels import job_label
from gamma.search.signals import (EXIT_SIGINT, EXIT_SIGTERM, INTERRUPTED, TERMINATED,
                                  mark_interrupted, note_interrupted, note_terminated,
                                  pending_exit, was_terminated)
from gamma.search.strict_numbers import check_hydra_job, check_overrides
from gamma.search.sweep import FAILED_JOBS, job_ended, job_failed, job_started, register_resolvers

register_resolvers()

#: The exit code run.py ends with (see :func:`exit_last`).
EXIT_CODE = [0]


def exit_last() -> None:
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
        code = pending_exit() or (143 if signal.SIGTERM in late else 130 if signal.SIGINT in late else 0)
    os._exit(code)


def set_label(cfg: DictConfig, overrides: list[str], root: Path) -> None:
    """Fill ``cfg.label`` (unless the user set one) from the optimizer settings that differ from
    its config file (under ``root``) and the other overrides (see :mod:`gamma.search.labels`)."""
    if cfg.get("label") is not None:
        return
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - a bad interpolation is reported by execute()
        return
    name = str(plain["optimizer"].get("name"))
    path = root / "conf" / "optimizer" / f"{name}.yaml"
    defaults = OmegaConf.to_container(OmegaConf.load(path)) if path.is_file() else {}
    cfg.label = job_label(plain["optimizer"], defaults, overrides, plain)


def job(cfg: DictConfig, root: Path) -> float:
    """run.py's task function: one job, or one job of a sweep (:func:`sweep_job`), with the
    project in ``root`` (its conf/ and outputs/). Returns its objective (the sum over layers of
    the best cost, in the objective's unit; inf if a layer is infeasible or the job failed),
    which Hydra's sweepers minimize; a single job exits with its exit code."""
    hc = HydraConfig.get()
    if hc.mode == RunMode.MULTIRUN:
        return sweep_job(cfg, hc, root)
    try:  # numbers in the config files written as YAML 1.1 reads them but gamma does not (K: 1_0)
        check_hydra_job(hc, root)
    except GammaError as e:
        say(f"error: {e}", error=True)
        sys.exit(1)
    set_label(cfg, list(hc.overrides.task), root)
    if pending_exit():  # SIGINT/SIGTERM while Hydra started
        say("terminated (SIGTERM)" if was_terminated() else "interrupted", error=True)
        sys.exit(pending_exit())
    outcome = run_job(cfg, hc.runtime.output_dir, root / "outputs")
    if outcome.code:
        sys.exit(outcome.code)
    return outcome.cost


def sweep_job(cfg: DictConfig, hc: Any, root: Path) -> float:
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
        check_hydra_job(hc, root)  # numbers in its config files (the sweep checked the grid's)
        set_label(cfg, overrides, root)
        outcome = run_job(cfg, hc.runtime.output_dir, root / "outputs")
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


def writable_output(argv: list[str], outputs: Path) -> str | None:
    """Why the run folder (``hydra.run.dir=``, ``hydra.sweep.dir=``, else ``outputs``) cannot be
    written, or None: checked before Hydra, which would fail with a traceback on its log file."""
    import tempfile

    given = [a.split("=", 1)[1] for a in argv if a.startswith(("hydra.run.dir=", "hydra.sweep.dir="))]
    folder = Path(given[-1]) if given and "${" not in given[-1] else outputs
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return f"cannot write {folder}: {e.strerror or e}"
    return None


def start(main: Callable[[], Any], root: Path) -> None:
    """run.py as a command: the checks before Hydra, then ``main`` (run.py's ``@hydra.main``);
    the exit code in :data:`EXIT_CODE` (see :func:`exit_last`)."""
    signal.signal(signal.SIGTERM, stop_sweep)
    signal.signal(signal.SIGINT, stop_sweep)
    if not any(a in ("--help", "-h", "--hydra-help", "--info", "--cfg", "-c") for a in sys.argv[1:]):
        problem = override_error(sys.argv[1:]) or writable_output(sys.argv[1:], root / "outputs")
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
