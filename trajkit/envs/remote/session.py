"""One logged-in client of an :class:`~trajkit.envs.remote.EnvServer`: requests in, replies out.

Rules a session keeps:

* **Reset first.** A session starts without an episode, even on an env that served an
  earlier client: ``step`` before ``reset`` is refused (``code: "needs_reset"``), and so
  is a step after the episode terminated, was truncated, or the env raised.
* **Actions are checked** against the action space before they reach the env (see
  :mod:`trajkit.envs.remote.actions`); a refused action gets ``code: "bad_action"``.
* **Errors carry a type and a message, never a traceback.** The traceback of an
  exception in the env goes to the server's log; the client gets ``code: "env_error"``,
  the exception's type name and its message.
* **Deadlines, not per-read timeouts.** The next request must be complete within
  ``idle_timeout`` seconds, and within ``frame_timeout`` seconds of its first byte;
  a reply must be sent within ``frame_timeout``. A malformed frame gets
  ``code: "protocol"`` and ends the session.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from trajkit.envs.remote.actions import check_action
from trajkit.envs.remote.errors import RemoteActionError, RemoteProtocolError
from trajkit.envs.remote.login import error_reply
from trajkit.envs.remote.wire import recv_msg, send_msg

_MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class SessionLimits:
    """What a session allows: deadlines (seconds), request size, and the action bounds mode."""

    idle_timeout: float
    frame_timeout: float
    max_array_bytes: int
    out_of_bounds: str


class _BadRequest(Exception):
    """A request the protocol does not allow (unknown op, bad argument, step without an episode)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def run_session(conn: socket.socket, peer: Any, env: gym.Env, limits: SessionLimits, log: logging.Logger) -> None:
    """Answer ``conn``'s requests with ``env`` until the client closes or breaks the protocol.

    Raises ``ConnectionError`` when the client goes away and ``TimeoutError`` when it
    misses a deadline; the caller frees the env.
    """
    episode_running = False
    while True:
        try:
            msg = recv_msg(conn, limits.max_array_bytes, timeout=limits.idle_timeout,
                           frame_timeout=limits.frame_timeout)
        except RemoteProtocolError as e:
            log.warning("client %s sent a malformed frame (%s); dropping it", peer, e)
            send_msg(conn, error_reply("protocol", _short(str(e)), type(e).__name__), timeout=limits.frame_timeout)
            return
        if msg["op"] == "close":
            return
        try:
            reply, episode_running = _answer(env, msg, episode_running, limits.out_of_bounds)
        except _BadRequest as e:
            reply = error_reply(e.code, str(e))
        except RemoteActionError as e:
            log.info("client %s: refused an action: %s", peer, e)
            reply = error_reply("bad_action", _short(str(e)), type(e).__name__)
        except Exception as e:  # noqa: BLE001 - the env's error goes to the client, its traceback to the log
            log.exception("client %s: the env raised on %r", peer, msg["op"])
            reply, episode_running = error_reply("env_error", _short(str(e)), type(e).__name__), False
        send_msg(conn, reply, lossy=True, timeout=limits.frame_timeout)


def _answer(
    env: gym.Env, msg: dict[str, Any], episode_running: bool, out_of_bounds: str
) -> tuple[dict[str, Any], bool]:
    """The reply to one request, and whether an episode is running after it."""
    op = msg["op"]
    if op == "reset":
        seed, options = msg.get("seed"), msg.get("options")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise _BadRequest("bad_request", f"reset seed must be a non-negative integer or null, got {seed!r:.100}")
        if options is not None and not isinstance(options, dict):
            raise _BadRequest("bad_request", f"reset options must be a dict or null, got {type(options).__name__}")
        obs, info = env.reset(seed=seed, options=options)
        return {"op": "obs", "obs": _wire_obs(obs), "info": info}, True
    if op == "step":
        if not episode_running:
            raise _BadRequest("needs_reset", "step before reset: call reset() first (a new connection, or the "
                                             "last episode ended or failed, has no episode to step)")
        action = check_action(env.action_space, msg.get("action"), out_of_bounds)
        obs, rew, terminated, truncated, info = env.step(action)
        reply = {"op": "transition", "obs": _wire_obs(obs), "rew": float(rew), "terminated": bool(terminated),
                 "truncated": bool(truncated), "info": info}
        return reply, not (terminated or truncated)
    raise _BadRequest("bad_request", f"unknown op {op!r:.100}")


def _wire_obs(obs: Any) -> Any:
    return obs if isinstance(obs, dict | tuple) else np.asarray(obs)


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "..."
