"""A warm start for the tracking helpers of many job processes on one machine.

Each job process starts one MLflow helper (gamma/tracking/writer.py), and ~2 s of the helper's
2.3 s of CPU go to importing mlflow. Where many short job processes run (the test suite, a
sweep of separate processes), ``python -m gamma.tracking.server SOCKET`` imports mlflow once and
forks a ready helper for each job that asks: a job whose environment has
``GAMMA_TRACKING_SERVER=SOCKET`` sends the server its ends of two pipes and its stderr
(SCM_RIGHTS over the Unix socket), with its environment and working folder; the forked child
takes them as stdin, stdout, stderr, environment and folder, in its own process group, and runs
the helper's loop exactly as a helper started by the job would. A job that cannot reach the
server starts its own helper: the server only saves time. The server ends when the process that
started it ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from gamma.tracking import writer
from gamma.tracking.forked import ANSWER_TIMEOUT_S


def serve(path: Path, parent: int) -> None:
    """Import what a helper needs, listen on ``path``, fork a helper for each request; end when
    process ``parent`` (the one that started the server) is no longer its parent."""
    import mlflow  # noqa: F401 - the point of the server: imported once
    import mlflow.data.pandas_dataset  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    import mlflow.tracking  # noqa: F401

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C at the terminal: the helpers go on
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the helpers are reaped at once
    path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
        sock.listen(16)
        sock.settimeout(1.0)
        print("ready", flush=True)
        while os.getppid() == parent:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                _answer(sock, conn)
    path.unlink(missing_ok=True)


def _answer(sock: socket.socket, conn: socket.socket) -> None:
    """Fork a helper for the request on ``conn`` and send back its pid."""
    try:
        conn.settimeout(ANSWER_TIMEOUT_S)
        data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        request = json.loads(data)
    except (OSError, ValueError):
        return
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return
    pid = os.fork()
    if pid == 0:
        sock.close()
        conn.close()
        _become_helper(fds, request)
    for fd in fds:
        os.close(fd)
    try:
        conn.sendall(f"{pid}\n".encode())
    except OSError:
        pass


def _become_helper(fds: list[int], request: dict[str, Any]) -> None:
    """In the forked child: the job's pipes, stderr, environment and folder; the helper's loop."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request.get("env") or {})
    try:
        os.chdir(request.get("cwd") or "/")
    except OSError:
        pass
    try:
        writer.helper([])
    finally:
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    parent = os.getppid()  # before the imports: the server must not outlive its starter
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gamma.tracking.server SOCKET", file=sys.stderr)
        return 2
    serve(Path(args[0]), parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
