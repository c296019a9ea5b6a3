"""The process backend: persistent worker processes, each a fresh interpreter.

Each worker runs ``python -m trajkit.samplers._worker FD`` and talks to the parent
over a socketpair with ``multiprocessing.connection`` framing and plain pickle.
Waiting for replies blocks in ``multiprocessing.connection.wait`` (no polling); a
sampling worker's heartbeats (see :mod:`trajkit.samplers._timeout`) restart its clock.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection, wait
from typing import Any, cast

from trajkit.samplers._timeout import BEAT, SamplerTimeout


class WorkerError(RuntimeError):
    """A sampler worker raised or died; the message carries the worker's traceback."""


def unpickle_reply(data: bytes, i: int, what: str) -> Any:
    """The value of a worker's pickled ``("ok", value)`` reply.

    Raises :class:`WorkerError` for an error reply and :class:`SamplerTimeout` for a
    timeout reply, both with the worker's traceback.
    """
    status, value = pickle.loads(data)
    if status == "error":
        raise WorkerError(f"sampler worker {i} raised while {what}:\n{value}")
    if status == "timeout":
        raise SamplerTimeout(
            f"sampler worker {i} timed out while {what}; all workers were killed and the sampler is closed. "
            f"The worker's traceback:\n{value}"
        )
    return value


class ProcessPool:
    """``n`` worker processes answering pickled request tuples (see :mod:`trajkit.samplers._worker`)."""

    #: sampling workers send heartbeats, so ``request``'s limit is a silence limit, not a deadline
    heartbeats = True

    def __init__(self, n: int) -> None:
        self._procs: list[subprocess.Popen] = []
        self._conns: list[Connection] = []
        self._closed = False
        pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env_vars = dict(os.environ)
        env_vars["PYTHONPATH"] = os.pathsep.join([pkg_root, env_vars.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        try:
            for _ in range(n):
                self._start_one(env_vars)
        except BaseException:
            self.abort()
            raise

    def _start_one(self, env_vars: dict[str, str]) -> None:
        parent_sock, child_sock = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "trajkit.samplers._worker", str(child_sock.fileno())],
                pass_fds=(child_sock.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env_vars,
            )
        except BaseException:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        self._procs.append(proc)
        self._conns.append(Connection(parent_sock.detach()))

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers."""
        return [p.pid for p in self._procs]

    def request(self, msgs: Mapping[int, tuple], limit: float | None, what: str) -> dict[int, Any]:
        """Send ``msgs[i]`` to worker ``i`` and wait (blocking) for every reply; fail fast on any error.

        ``limit``: seconds a worker may stay silent (no reply and no heartbeat; None: no
        limit). On an error, a death or a timeout every worker is killed (the others'
        replies are useless) and :class:`WorkerError` or :class:`SamplerTimeout` is raised.
        """
        try:
            pickled: dict[int, bytes] = {}  # identical messages are pickled once
            for i, msg in msgs.items():
                if id(msg) not in pickled:
                    pickled[id(msg)] = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
                self._send(i, pickled[id(msg)], what)
            return self._gather(list(msgs), limit, what)
        except BaseException:
            self.abort()
            raise

    def _send(self, i: int, data: bytes, what: str) -> None:
        try:
            self._conns[i].send_bytes(data)
        except OSError:  # the worker is gone (killed from outside, out of memory, ...)
            code = self._procs[i].poll()
            raise WorkerError(f"sampler worker {i} died before {what} (exit code {code})") from None

    def _gather(self, workers: list[int], limit: float | None, what: str) -> dict[int, Any]:
        results: dict[int, Any] = {}
        pending = {self._conns[i]: i for i in workers}
        heard = dict.fromkeys(workers, time.monotonic())  # when each worker last sent anything
        while pending:
            left = None
            if limit is not None:
                left = max(0.0, min(heard[i] for i in pending.values()) + limit - time.monotonic())
            ready = wait(list(pending), left)
            if not ready:
                now = time.monotonic()
                silent = sorted(i for i in pending.values() if now - heard[i] >= limit)  # type: ignore[operator]
                stuck = (
                    " (no reply, no heartbeat): stuck where their own timeout cannot interrupt them, "
                    "e.g. native code ignoring signals"
                    if what == "sampling"
                    else ""
                )
                raise SamplerTimeout(
                    f"sampler worker(s) {silent} sent nothing for {limit:.3g}s while {what}{stuck}; "
                    "all workers were killed and the sampler is closed"
                )
            for ready_conn in ready:
                conn = cast(Connection, ready_conn)
                i = pending[conn]
                data = self._recv(i, conn, what)
                heard[i] = time.monotonic()
                if data != BEAT:
                    del pending[conn]
                    results[i] = unpickle_reply(data, i, what)
        return results

    def _recv(self, i: int, conn: Connection, what: str) -> bytes:
        try:
            return conn.recv_bytes()
        except (EOFError, OSError):
            code = self._procs[i].wait(timeout=5)
            raise WorkerError(f"sampler worker {i} died while {what} (exit code {code})") from None

    def abort(self) -> None:
        """Kill every worker at once."""
        for proc in self._procs:
            proc.kill()
        self.close()

    def close(self) -> None:
        """Stop the workers (politely, then by force). Idempotent."""
        if self._closed:
            return
        self._closed = True
        close_msg = pickle.dumps(("close",))
        for conn in self._conns:
            try:
                conn.send_bytes(close_msg)
            except (OSError, ValueError):
                pass
        for proc in self._procs:
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for conn in self._conns:
            conn.close()
