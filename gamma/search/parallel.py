"""Searching a job's unique layers in worker processes (``parallel.workers`` > 1), with the
same results as a serial search."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Iterator, Sequence

from gamma.errors import GammaError
from gamma.search.setup import LayerResult, Setup, search_unique


def _worker_init() -> None:
    """A pool worker leaves Ctrl-C and SIGTERM (sent to the whole process group by a terminal or
    a scheduler) to the job, which stops the pool (see :func:`search_parallel`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_job, daemon=True).start()


def _exit_with_job() -> None:
    """End this worker as soon as the job that started it ends (its sentinel pipe closes; with
    ``forkserver`` the worker's parent is the server, which lives as long as its workers): a job
    killed outright leaves no worker searching on."""
    job = multiprocessing.parent_process()
    if job is not None:
        job.join()
        os._exit(1)


def _search_in_worker(cfg: dict[str, Any], setup: Setup, u: int) -> tuple[int, LayerResult]:
    return u, search_unique(cfg, setup, u)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel the pending searches and end the running ones at once (kill the workers, which
    ignore SIGTERM)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.kill()
    for p in procs:
        p.join(timeout=10)


def search_parallel(cfg: dict[str, Any], setup: Setup, todo: Sequence[int],
                    workers: int) -> Iterator[tuple[int, LayerResult]]:
    """Search the unique layers ``todo`` in ``workers`` processes; yields ``(u, result)`` as each
    finishes. Each layer has its own generator (:func:`search_unique`), so the results equal a
    serial search's. Processes start with ``parallel.start_method`` (``forkserver``: a clean
    server process with gamma and the cost model imported once; ``fork`` would copy the job's
    threads and its MLflow helper's pipes). On any exception (Ctrl-C, SIGTERM turned into one,
    a failed search) the pool is stopped: pending layers cancelled, workers terminated."""
    method = str((cfg.get("parallel") or {}).get("start_method", "forkserver"))
    try:
        ctx = multiprocessing.get_context(method)
    except ValueError:
        raise GammaError(f"parallel.start_method: unknown start method {method!r}; available: "
                         f"{', '.join(multiprocessing.get_all_start_methods())}") from None
    if method == "forkserver":  # in a sweep's joblib (loky) worker, the workers must know
        loky = [m for m in ("joblib.externals.loky",) if m in sys.modules]  # loky's start method
        ctx.set_forkserver_preload(["gamma.search.parallel", "gamma.costmodel", *loky])
    pool = ProcessPoolExecutor(max_workers=max(1, min(workers, len(todo))), mp_context=ctx,
                               initializer=_worker_init)
    try:
        pending: set[Future] = {pool.submit(_search_in_worker, cfg, setup, u) for u in todo}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in sorted(done, key=lambda f: f.result()[0]):
                yield f.result()
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
