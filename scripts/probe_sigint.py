#!/usr/bin/env python
"""SIGINT at random moments of a job's start: the exit status of each try and whether stderr
had a traceback (timing-dependent, so a script that prints figures, not a test).

Usage: python scripts/probe_sigint.py [--tries 20] [--within 2.0] [--from 0.0] [--seed 0]
                                      [--out DIR] [-- RUN.PY OVERRIDES...]

Each try starts ``python run.py tracking.enabled=false hydra.run.dir=DIR/tN [overrides]`` (the
default job runs far longer than 2 s), sends it SIGINT after a delay drawn uniformly from
[--from, --within) seconds, and waits for it. A try is clean when the process exited 130 (or
was killed by SIGINT before Python could handle it: the shell shows 130 too) and stderr has no
traceback. Prints one line per try (delay in seconds, status, traceback yes/no, stderr's last
line) and the totals. Exit code: 0 if every try was clean, else 1. Units: seconds.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_try(delay: float, out: Path, extra: list[str]) -> tuple[int, str, float]:
    """(return code, stderr, seconds until exit) of run.py interrupted ``delay`` seconds after
    it was started (a negative code: killed by that signal)."""
    cmd = [sys.executable, str(ROOT / "run.py"), "tracking.enabled=false", f"hydra.run.dir={out}", *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(max(0.0, delay - (time.perf_counter() - t0)))
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return proc.returncode, err.decode(errors="replace") + "\n(hung: killed after 120 s)", 120.0
    return proc.returncode, err.decode(errors="replace"), time.perf_counter() - t0


def status(code: int) -> str:
    """How the shell would see ``code``: ``exit N`` or ``SIGNAME (shell: 128+N)``."""
    if code < 0:
        return f"{signal.Signals(-code).name} (shell: {128 - code})"
    return f"exit {code}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tries", type=int, default=20)
    ap.add_argument("--within", type=float, default=2.0, help="latest delay (s)")
    ap.add_argument("--from", dest="start", type=float, default=0.0, help="earliest delay (s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="run folders (default: a temporary one)")
    a = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    rng = random.Random(a.seed)
    clean = tracebacks = 0
    codes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = a.out or Path(tmp)
        for n in range(a.tries):
            delay = rng.uniform(a.start, a.within)
            code, err, took = one_try(delay, base / f"t{n}", extra)
            tb = "Traceback" in err
            ok = code in (130, -signal.SIGINT) and not tb
            clean += ok
            tracebacks += tb
            codes[status(code)] = codes.get(status(code), 0) + 1
            last = (err.strip().splitlines() or [""])[-1][:70]
            print(f"try {n + 1:2d}: SIGINT at {delay:5.3f} s  {status(code):18s} traceback "
                  f"{'yes' if tb else 'no ':3s} ended {took:5.2f} s  {'ok  ' if ok else 'MISS'} {last}",
                  flush=True)
    print(f"clean {clean} of {a.tries} (exit 130 or killed by SIGINT, no traceback); "
          f"tracebacks {tracebacks}; statuses {codes}; python {sys.executable} pid {os.getpid()}")
    return 0 if clean == a.tries else 1


if __name__ == "__main__":
    sys.exit(main())
