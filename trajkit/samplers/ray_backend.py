"""The Ray backend: sampling workers as Ray actors, on a local Ray or an existing cluster.

Each actor holds the same worker state and runs the same message handler
(:func:`trajkit.samplers._worker.serve_one`) as a worker process, so a Ray sampler and
a process sampler with the same seed and number of workers return the same episodes.
Ray is imported only when this backend is used.
"""

from __future__ import annotations

import os
import pickle
import time
import warnings
from collections.abc import Mapping
from typing import Any

from trajkit.samplers._timeout import SamplerTimeout, StallWatchdog, silence_limit
from trajkit.samplers._worker import serve_one
from trajkit.samplers.process_backend import WorkerError, unpickle_reply

INSTALL_HINT = "the ray backend needs Ray: pip install 'trajkit[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return ray


class _SamplerActor:
    """A Ray actor holding one worker's state (its envs and policy copy)."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.watchdog = StallWatchdog()

    def handle(self, data: bytes, limit: float | None = None) -> bytes:
        """Answer one pickled request exactly like a worker process does.

        ``limit``: seconds without a heartbeat after which the actor's process exits
        (None: no limit); heartbeats come between env calls while sampling.
        """
        self.watchdog.start(limit)
        try:
            out = serve_one(self.state, data, self.watchdog.beat)
        finally:
            self.watchdog.stop()
        return pickle.dumps(("ok", None)) if out is None else out

    def pid(self) -> int:
        """The actor's process id."""
        return os.getpid()


class RayPool:
    """``n`` Ray actors answering pickled request tuples, with the interface of :class:`ProcessPool`.

    Args:
        n: number of actors (each reserves ``num_cpus`` CPUs).
        address: passed to ``ray.init`` when Ray is not initialized yet (None: start a
            local Ray; ``"auto"`` or ``"ray://host:port"``: join a cluster). If Ray is
            already initialized it is used as it is.
        max_restarts: how many times in total a dead actor is replaced by a new one
            (re-initialized with the same seeds and the latest policy) and its request
            retried; 0 reports the death as :class:`WorkerError`. A replaced worker's
            random streams start over, so episodes after a restart differ from an
            uninterrupted run.
        num_cpus: CPUs each actor reserves.

    Actors send no heartbeats: a ``request`` limit is a deadline for the whole request.
    """

    heartbeats = False

    def __init__(self, n: int, address: str | None = None, max_restarts: int = 0, num_cpus: float = 1.0) -> None:
        ray = import_ray()
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
        self._ray = ray
        self._cls = ray.remote(num_cpus=num_cpus, max_restarts=0)(_SamplerActor)
        self._actors = [self._cls.remote() for _ in range(n)]
        self._replay: list[dict[str, tuple]] = [{} for _ in range(n)]
        self._restarts_left = max_restarts
        self._closed = False

    @property
    def pids(self) -> list[int]:
        """Process ids of the actors (on the machines they run on)."""
        return list(self._ray.get([a.pid.remote() for a in self._actors]))

    def request(self, msgs: Mapping[int, tuple], timeout: float | None, what: str) -> dict[int, Any]:
        """Send ``msgs[i]`` to actor ``i`` and wait for every reply; fail fast on any error or death.

        ``timeout``: seconds to wait for all replies (None: no limit); past it
        :class:`SamplerTimeout` is raised and every actor is killed.
        """
        try:
            pickled = {id(m): pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL) for m in msgs.values()}
            for i, msg in msgs.items():
                if msg[0] in ("init", "set_pol"):
                    self._replay[i][msg[0]] = msg
            pending = {self._actors[i].handle.remote(pickled[id(m)], _stall_limit(m)): i for i, m in msgs.items()}
            return self._gather(pending, {i: pickled[id(m)] for i, m in msgs.items()}, timeout, what)
        except BaseException:
            self.abort()
            raise

    def _gather(
        self, pending: dict[Any, int], data: dict[int, bytes], timeout: float | None, what: str
    ) -> dict[int, Any]:
        ray = self._ray
        results: dict[int, Any] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        while pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=left)
            if not ready:
                raise SamplerTimeout(
                    f"ray sampler worker(s) {sorted(pending.values())} did not answer within {timeout}s while {what}; "
                    "all workers were killed and the sampler is closed"
                )
            ref = ready[0]
            i = pending.pop(ref)
            try:
                reply = ray.get(ref)
            except ray.exceptions.RayActorError as e:
                if self._restarts_left <= 0:
                    raise WorkerError(f"ray sampler worker {i} died while {what}: {e}") from None
                pending[self._restart(i, what, e).handle.remote(data[i], _stall_limit(pickle.loads(data[i])))] = i
                continue
            results[i] = unpickle_reply(reply, i, what)
        return results

    def _restart(self, i: int, what: str, error: BaseException) -> Any:
        """Replace dead actor ``i`` by a new one brought to the same setup (init, latest policy)."""
        self._restarts_left -= 1
        warnings.warn(f"ray sampler worker {i} died while {what} ({type(error).__name__}); restarting it", stacklevel=4)
        self._ray.kill(self._actors[i], no_restart=True)
        actor = self._cls.remote()
        self._actors[i] = actor
        for kind in ("init", "set_pol"):
            if kind in self._replay[i]:
                msg = self._replay[i][kind]
                unpickle_reply(self._ray.get(actor.handle.remote(pickle.dumps(msg))), i, f"restarting ({kind})")
        return actor

    def abort(self) -> None:
        """Kill every actor at once."""
        self.close()

    def close(self) -> None:
        """Kill the actors. Idempotent. A Ray this pool started keeps running until the interpreter exits."""
        if self._closed:
            return
        self._closed = True
        for actor in self._actors:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - an already dead actor is fine
                pass


def _stall_limit(msg: tuple) -> float | None:
    """The actor's own silence limit for request ``msg``: for a sample with a timeout, :func:`silence_limit`."""
    return silence_limit(msg[5]) if msg[0] == "sample" else None
