"""A job's signal handling: SIGTERM raised like Ctrl-C while it searches, noted (not raised)
while it writes its final results, and the exit codes of an interrupted job."""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any

#: Exit codes of an interrupted job: 128 + the signal number, as a shell reports them.
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM (what a cluster scheduler or ``kill`` sends), raised in the job like Ctrl-C."""


#: Set once this process got SIGTERM: a sweep's worker then skips the jobs it has not started.
TERMINATED = threading.Event()
#: Set once this process got SIGINT outside a job (a sweep's launcher or worker between jobs,
#: run.py while Hydra starts): the jobs not started are skipped, the process exits 130.
INTERRUPTED = threading.Event()
#: Seconds after a job was stopped in which the same signal again is taken as the same stop
#: (Ctrl-C reaches a sweep's workers both from the terminal and from the launcher).
DUPLICATE_S = 1.0


def _raise_terminated(signum: int, frame: Any) -> None:
    TERMINATED.set()
    raise Terminated()


def was_terminated() -> bool:
    """Whether this process got SIGTERM (see :data:`TERMINATED`)."""
    return TERMINATED.is_set()


def note_terminated(signum: int, frame: Any) -> None:
    """SIGTERM handler between the jobs of a sweep's process: only note it (:data:`TERMINATED`)."""
    TERMINATED.set()


def note_interrupted(signum: int, frame: Any) -> None:
    """SIGINT handler outside a job: only note it (:data:`INTERRUPTED`)."""
    INTERRUPTED.set()


def mark_interrupted() -> None:
    """Note a Ctrl-C that stopped a job of this process (a sweep's worker skips the rest)."""
    INTERRUPTED.set()


def pending_exit() -> int | None:
    """The exit code of a SIGTERM (143) or SIGINT (130) noted before a job started, else None."""
    if TERMINATED.is_set():
        return EXIT_SIGTERM
    if INTERRUPTED.is_set():
        return EXIT_SIGINT
    return None


class Signals:
    """The job's signal handling: while it searches, SIGTERM raises :class:`Terminated` (SIGINT
    raises KeyboardInterrupt as always); once it shuts down (final results.json, table, plot,
    MLflow run), further SIGINT/SIGTERM are only noted, so a second Ctrl-C cannot cut the final
    writes short. The previous handlers come back at the end. Signal handlers belong to the main
    thread: elsewhere (a job in a thread) nothing changes."""

    def __init__(self) -> None:
        self.saved: dict[int, Any] = {}
        self.late: int | None = None  # a signal that arrived during the shutdown
        self.stopped_at = -float("inf")  # when the shutdown began (time.monotonic())

    def __enter__(self) -> "Signals":
        if threading.current_thread() is threading.main_thread():
            self.saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, _raise_terminated)
        return self

    def shutting_down(self, stopped: bool = False) -> None:
        """From now on note SIGINT/SIGTERM instead of raising; ``stopped``: the job was stopped
        by a signal just now (the same signal again within :data:`DUPLICATE_S` is ignored)."""
        if stopped:
            self.stopped_at = time.monotonic()
        for s in self.saved:
            signal.signal(s, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM:
            TERMINATED.set()
        if time.monotonic() - self.stopped_at < DUPLICATE_S:
            return  # the same stop delivered twice (terminal and launcher)
        if self.late is None:
            self.late = signum
            print("interrupted again: still writing results.json and the MLflow run (a few "
                  "seconds)", file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self.saved.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def interrupted_code(e: BaseException | int) -> int:
    """The exit code of a job stopped by ``e`` (an exception or a signal number)."""
    if isinstance(e, Terminated) or e == signal.SIGTERM:
        return EXIT_SIGTERM
    return EXIT_SIGINT
