"""Entry point of a sampler worker process: ``python -m trajkit.samplers._worker FD``.

The worker is a fresh interpreter (not ``multiprocessing`` spawn/forkserver), so it
never imports the user's ``__main__`` module: envs and policies defined in a script
or notebook arrive pickled by value with cloudpickle. It talks to the parent over the
socket ``FD`` with ``multiprocessing.connection`` framing and plain pickle (not
multiprocessing's pickler, which torch hooks to pass tensors through shared memory). It exits when the parent
closes the socket, and on Linux a watcher thread also ends it the moment the
parent's end of the socket closes (the parent process died) even in the middle of
an episode, so no worker outlives its sampler. (Not ``PR_SET_PDEATHSIG``: that
fires when the parent *thread* exits, killing the workers of a sampler built in a
short-lived thread.)

Messages (parent -> worker), pickled tuples:
    ("init", payload, sys_path) payload: cloudpickled dict(env, num_envs, pol, env_seeds, torch_seed,
                                threads, continuing, env_offset); sys_path: the parent's, applied
                                before unpickling the payload
    ("set_pol", payload)        payload: cloudpickled policy
    ("sample", weights, max_epis, max_steps, deterministic, timeout)
    ("get_state",) / ("set_state", state)   RNG state for exact resume
    ("close",)
Replies: ("ok", value), ("error", traceback_text) or ("timeout", traceback_text) (a call ran
past ``timeout``: :class:`~trajkit.samplers.SamplerTimeout`). While sampling with a timeout
a process worker also sends heartbeats, :data:`BEAT`, between calls (see
:mod:`trajkit.samplers._timeout`), so the parent can tell a slow worker from a stuck one.
"""

from __future__ import annotations

import os
import pickle
import select
import sys
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from trajkit.samplers._timeout import BEAT, SamplerTimeout


def _die_with_parent(fd: int) -> None:
    """Exit at once when the parent's end of socket ``fd`` closes or the parent process is gone.

    A daemon thread blocks in ``poll`` for the peer hang-up (no data is consumed, so the
    main loop's reads are untouched); a 1 s timeout also checks for re-parenting, in case
    a forked copy of the parent still holds the socket open.
    """
    if not hasattr(select, "POLLRDHUP"):  # Linux only
        return
    parent = os.getppid()
    hangup = select.POLLRDHUP | select.POLLHUP | select.POLLERR | select.POLLNVAL

    def watch() -> None:
        poller = select.poll()
        poller.register(fd, select.POLLRDHUP)
        while True:
            events = poller.poll(1000)
            if any(ev & hangup for _, ev in events) or os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="trajkit-parent-watch", daemon=True).start()


def _handle(state: dict[str, Any], msg: tuple, beat: Callable[[], None] | None) -> Any:
    import cloudpickle
    import torch

    from trajkit.samplers.rollout import Rollout, build_envs

    kind = msg[0]
    if kind == "init":
        for p in reversed(msg[2]):
            if p not in sys.path:
                sys.path.insert(0, p)
        cfg = cloudpickle.loads(msg[1])
        torch.set_num_threads(cfg["threads"])
        envs = build_envs(cfg["env"], cfg["num_envs"])
        state["rollout"] = Rollout(
            envs,
            cfg["pol"],
            cfg["env_seeds"],
            cfg["torch_seed"],
            continuing=cfg["continuing"],
            env_offset=cfg["env_offset"],
        )
        return os.getpid()
    if kind == "set_pol":
        state["rollout"].pol = cloudpickle.loads(msg[1])
        return None
    if kind == "sample":
        _, weights, max_epis, max_steps, deterministic, timeout = msg
        rollout = state["rollout"]
        if weights is not None:
            rollout.pol.load_state_dict(weights)
        return rollout.sample(max_epis, max_steps, deterministic, timeout, None if timeout is None else beat)
    if kind == "get_state":
        return state["rollout"].get_state()
    if kind == "set_state":
        state["rollout"].set_state(msg[1])
        return None
    raise ValueError(f"unknown message {kind!r}")


def serve_one(state: dict[str, Any], data: bytes, beat: Callable[[], None] | None = None) -> bytes | None:
    """Handle one pickled message; the pickled ``("ok" | "error" | "timeout", value)`` reply.

    ``None`` for ``("close",)``. ``beat`` sends a heartbeat (process workers only).
    Shared by the process worker and the Ray actor, so both backends run exactly the
    same code.
    """
    try:
        msg = pickle.loads(data)
        if msg[0] == "close":
            return None
        return pickle.dumps(("ok", _handle(state, msg, beat)), protocol=pickle.HIGHEST_PROTOCOL)
    except SamplerTimeout:
        return pickle.dumps(("timeout", traceback.format_exc()))
    except BaseException:  # noqa: B036 - every failure must reach the parent
        return pickle.dumps(("error", traceback.format_exc()))


def main(fd: int) -> None:
    _die_with_parent(fd)
    conn = Connection(fd)
    state: dict[str, Any] = {}
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        out = serve_one(state, data, lambda: conn.send_bytes(BEAT))
        if out is None:
            return
        try:
            conn.send_bytes(out)
        except OSError:
            return


if __name__ == "__main__":
    main(int(sys.argv[1]))
