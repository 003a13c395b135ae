"""The job's side of the tracking server (gamma/tracking/server.py): a helper forked by the server
for this job, driven like a helper the job started itself."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

#: The environment variable that names the server's socket.
ENV = "GAMMA_TRACKING_SERVER"
#: Seconds a job waits for the server's answer (the fork) before it starts its own helper.
ANSWER_TIMEOUT_S = 10.0
#: Seconds a new server may take to import mlflow and listen.
START_TIMEOUT_S = 60.0


class ForkedHelper:
    """A helper forked by the server, driven like the ``subprocess.Popen`` of a helper the job
    started (stdin, stdout, poll, kill, wait). Its exit code is not known to the job (it is the
    server's child): ``returncode`` is 0 once it has ended."""

    def __init__(self, pid: int, stdin: IO[str], stdout: IO[str]) -> None:
        self.pid, self.stdin, self.stdout = pid, stdin, stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not _alive(self.pid):
            self.returncode = 0
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"helper {self.pid} still running")
            time.sleep(0.01)
        return self.returncode  # type: ignore[return-value]


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def forked_helper(path: str) -> ForkedHelper | None:
    """A helper forked by the server at ``path``, or None where it does not answer."""
    to_read, to_write = os.pipe()  # the job writes commands, the helper reads them (its stdin)
    from_read, from_write = os.pipe()  # the helper writes replies (its stdout), the job reads
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(ANSWER_TIMEOUT_S)
            conn.connect(path)
            request = json.dumps({"env": dict(os.environ), "cwd": os.getcwd()}).encode()
            socket.send_fds(conn, [request], [to_read, from_write, 2])
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = conn.recv(64)
                if not chunk:
                    break
                answer += chunk
        pid = int(answer)
    except (OSError, ValueError):
        for fd in (to_read, to_write, from_read, from_write):
            os.close(fd)
        return None
    os.close(to_read)  # the helper's ends are the helper's alone: its input ends with the job
    os.close(from_write)
    return ForkedHelper(pid, open(to_write, "w", encoding="utf-8"),
                        open(from_read, "r", encoding="utf-8"))


class LocalServer:
    """A tracking server started by this process (:func:`start_server`); it ends when this
    process ends, or with :meth:`stop`."""

    def __init__(self, proc: subprocess.Popen, folder: Path) -> None:
        self.proc, self.folder = proc, folder

    @property
    def path(self) -> str:
        """Its socket, the value of ``$GAMMA_TRACKING_SERVER`` for the jobs."""
        return str(self.folder / "socket")

    def stop(self) -> None:
        """End the server (the helpers it forked go on with their jobs) and remove its folder."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_server(timeout: float = START_TIMEOUT_S) -> LocalServer | None:
    """A tracking server (``python -m gamma.tracking.server``) in a new folder under /tmp (a
    socket path has fewer than 108 bytes), once it is ready (mlflow imported, listening); None
    where it is not ready within ``timeout`` seconds (the jobs then start their own helpers)."""
    folder = Path(tempfile.mkdtemp(prefix="gts", dir="/tmp" if os.path.isdir("/tmp") else None))
    proc = subprocess.Popen([sys.executable, "-m", "gamma.tracking.server", str(folder / "socket")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    server = LocalServer(proc, folder)
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = bool(sel.select(timeout)) and proc.stdout.readline().strip() == "ready"
    if not ready:
        server.stop()
        return None
    return server
