"""The client: :class:`RemoteEnv`, a gymnasium env whose steps run on an env server."""

from __future__ import annotations

import socket
import time
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from trajkit.checks import check_float, check_int
from trajkit.envs.remote.errors import RemoteActionError, RemoteEnvError, RemoteProtocolError
from trajkit.envs.remote.login import MAX_HELLO_BYTES, mac
from trajkit.envs.remote.spaces import space_from_dict
from trajkit.envs.remote.wire import PROTOCOL_VERSION, recv_msg, send_msg

#: what a lost connection looks like: EOF, reset, timeout (all OSError), or garbage
_TRANSPORT_ERRORS = (OSError, RemoteProtocolError)


class _BusyError(RemoteEnvError):
    """The server refused the connection because its envs or client slots are all in use (worth retrying)."""


class RemoteEnv(gym.Env):
    """A gymnasium env whose steps run on an :class:`~trajkit.envs.remote.EnvServer` across TCP.

    Args:
        host, port: the server.
        token: the shared token, if the server requires one.
        timeout: seconds within which each reply must be complete (a silent or trickling
            server is a dropped connection).
        connect_timeout: seconds for connecting and logging in, all together.
        on_disconnect: ``"truncate"`` (default): a connection lost mid-episode ends the
            episode as truncated (``info["remote_error"]`` says why, with a warning) and
            the next ``reset`` reconnects; ``"raise"``: raise :class:`RemoteEnvError`.
        reconnect_attempts, reconnect_delay, reconnect_timeout: ``reset`` tries up to
            ``reconnect_attempts`` times to (re)connect while the server is unreachable or
            busy (e.g. still inside the step that timed out), waiting ``reconnect_delay``
            seconds before the second try and twice as long before each next one, for at
            most ``reconnect_timeout`` seconds in all; then it raises :class:`RemoteEnvError`.
            A bad token or protocol version is not retried.

    Errors: a refused action raises :class:`~trajkit.envs.remote.RemoteActionError` (a
    ``ValueError``; the episode goes on), an exception in the env raises
    :class:`RemoteEnvError` with its type and message (the traceback stays in the
    server's log; the next call must be ``reset``).

    Construction connects once to learn the spaces (and fails fast on a bad token),
    without taking an env on the server, then lets go: the connection used for episodes
    is opened by the first ``reset``. A pickled copy (e.g. in a sampler worker) opens its
    own connection.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        host: str,
        port: int,
        token: str | None = None,
        timeout: float = 30.0,
        *,
        connect_timeout: float = 10.0,
        on_disconnect: str = "truncate",
        reconnect_attempts: int = 3,
        reconnect_delay: float = 1.0,
        reconnect_timeout: float = 60.0,
    ) -> None:
        if on_disconnect not in ("truncate", "raise"):
            raise ValueError(f"on_disconnect must be 'truncate' or 'raise', got {on_disconnect!r}")
        self.host, self.port, self.token = host, int(port), token
        self.timeout = check_float("timeout", timeout, min_value=0.0, min_open=True)
        self.connect_timeout = check_float("connect_timeout", connect_timeout, min_value=0.0, min_open=True)
        self.on_disconnect = on_disconnect
        self.reconnect_attempts = check_int("reconnect_attempts", reconnect_attempts, min_value=1)
        self.reconnect_delay = check_float("reconnect_delay", reconnect_delay, min_value=0.0)
        self.reconnect_timeout = check_float("reconnect_timeout", reconnect_timeout, min_value=0.0)
        self._sock: socket.socket | None = None
        self._last_obs: Any = None
        try:
            ready = self._login("spaces")
        except _TRANSPORT_ERRORS as e:
            raise RemoteEnvError(f"cannot reach the env server at {self._where()}: {e}") from e
        finally:
            self._disconnect()
        self.observation_space = space_from_dict(ready["observation_space"])
        self.action_space = space_from_dict(ready["action_space"])

    # -- connection
    def _login(self, purpose: str) -> dict[str, Any]:
        """Connect and log in (``purpose``: ``"episodes"`` takes an env, ``"spaces"`` only asks for the spaces)."""
        deadline = time.monotonic() + self.connect_timeout
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            challenge = recv_msg(sock, 0, timeout=_left(deadline), max_header_bytes=MAX_HELLO_BYTES)
            if challenge.get("op") != "challenge" or challenge.get("version") != PROTOCOL_VERSION:
                raise RemoteEnvError(f"{self._where()} does not speak protocol version {PROTOCOL_VERSION}")
            if challenge.get("auth") and self.token is None:
                raise RemoteEnvError(f"{self._where()} requires a token")
            answer = None if self.token is None else mac(self.token, str(challenge["nonce"]))
            send_msg(sock, {"op": "hello", "version": PROTOCOL_VERSION, "mac": answer, "purpose": purpose},
                     timeout=_left(deadline))
            ready = recv_msg(sock, timeout=_left(deadline))
            if ready["op"] == "error":
                cls = _BusyError if ready.get("code") == "busy" else RemoteEnvError
                raise cls(f"{self._where()} refused the connection: {ready.get('message')}")
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        return ready

    def _disconnect(self) -> None:
        if self._sock is not None:
            try:
                send_msg(self._sock, {"op": "close"}, timeout=1.0)
            except OSError:
                pass
            self._sock.close()
            self._sock = None

    def _reconnect(self) -> None:
        """Log in for episodes, retrying with growing delays while the server is unreachable or busy."""
        start = time.monotonic()
        delay, tries = self.reconnect_delay, 0
        last: Exception | None = None
        for attempt in range(self.reconnect_attempts):
            if attempt:
                left = self.reconnect_timeout - (time.monotonic() - start)
                if left <= 0:
                    break
                time.sleep(min(delay, left))
                delay *= 2
            tries += 1
            try:
                self._login("episodes")
                return
            except _BusyError as e:
                last = e
            except RemoteEnvError:
                raise  # bad token or protocol version: retrying cannot help
            except _TRANSPORT_ERRORS as e:
                last = e
        raise RemoteEnvError(
            f"cannot reach the env server at {self._where()} after {tries} attempts in "
            f"{time.monotonic() - start:.1f} s: {last}"
        ) from last

    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _call(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self._sock is not None
        send_msg(self._sock, msg, timeout=self.timeout)
        reply = recv_msg(self._sock, timeout=self.timeout)
        if reply["op"] == "error":
            raise self._refusal(msg["op"], reply)
        return reply

    def _refusal(self, op: str, reply: dict[str, Any]) -> RemoteEnvError:
        code, kind, text = reply.get("code"), reply.get("type"), reply.get("message")
        if code == "bad_action":
            return RemoteActionError(f"the env server at {self._where()} refused the action: {text}")
        if code == "env_error":
            return RemoteEnvError(f"the env at {self._where()} raised {kind}: {text}")
        return RemoteEnvError(f"the env server at {self._where()} refused {op} ({code}): {text}")

    # -- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        fresh = self._sock is None
        if fresh:
            self._reconnect()
        msg = {"op": "reset", "seed": seed, "options": options}
        try:
            reply = self._call(msg)
        except _TRANSPORT_ERRORS as e:
            self._drop()
            if fresh:
                raise RemoteEnvError(f"lost the env server at {self._where()} during reset: {e}") from e
            self._reconnect()  # the server dropped an idle connection: one fresh try
            try:
                reply = self._call(msg)
            except _TRANSPORT_ERRORS as e2:
                self._drop()
                raise RemoteEnvError(f"lost the env server at {self._where()} during reset: {e2}") from e2
        self._last_obs = reply["obs"]
        return reply["obs"], reply["info"]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self._sock is None:
            raise RemoteEnvError(f"not connected to {self._where()}: call reset() first")
        wire = action if isinstance(action, dict | tuple | list) else np.asarray(action)
        try:
            reply = self._call({"op": "step", "action": wire})
        except _TRANSPORT_ERRORS as e:  # EOF, reset by peer, timeout, garbage
            self._drop()
            text = f"lost the env server at {self._where()} mid-episode ({type(e).__name__}: {e})"
            if self.on_disconnect == "raise":
                raise RemoteEnvError(text) from e
            warnings.warn(f"{text}; ending the episode as truncated", stacklevel=2)
            return self._last_obs, 0.0, False, True, {"remote_error": text}
        self._last_obs = reply["obs"]
        return reply["obs"], float(reply["rew"]), bool(reply["terminated"]), bool(reply["truncated"]), reply["info"]

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        self._disconnect()

    # -- pickling: a copy opens its own connection
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_sock"] = None
        state["_np_random"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"RemoteEnv({self._where()})"


def _left(deadline: float) -> float:
    """Seconds until ``deadline`` (a tiny positive number once it has passed, so the next wait times out)."""
    return max(1e-3, deadline - time.monotonic())
