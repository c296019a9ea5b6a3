"""The env server: a login stage (one thread) and one thread per logged-in client, both bounded."""

from __future__ import annotations

import logging
import socket
import threading
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from trajkit.checks import check_float, check_int
from trajkit.envs.remote.actions import check_out_of_bounds
from trajkit.envs.remote.login import LoginLoop, error_reply
from trajkit.envs.remote.session import SessionLimits, run_session
from trajkit.envs.remote.spaces import space_to_dict
from trajkit.envs.remote.wire import DEFAULT_MAX_ARRAY_BYTES, send_msg

_LOG = logging.getLogger("trajkit.envs.remote")
_BACKLOG = 1024


#: defaults of the server's limits, shared by :class:`EnvServer`, :func:`serve` and ``python -m trajkit.envs``
DEFAULT_IDLE_TIMEOUT = 600.0
DEFAULT_FRAME_TIMEOUT = 30.0
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
DEFAULT_MAX_CLIENTS = 64
DEFAULT_MAX_PENDING = 64
DEFAULT_OUT_OF_BOUNDS = "error"


class _EnvPool:
    """Envs for connections: one env object shared by at most one client, or a factory's envs."""

    def __init__(self, env_or_factory: gym.Env | Callable[[], gym.Env], max_envs: int | None) -> None:
        self._lock = threading.Lock()
        if isinstance(env_or_factory, gym.Env):
            self._factory: Callable[[], gym.Env] | None = None
            self._idle = [env_or_factory]
            self._max: int | None = 1
        elif callable(env_or_factory):
            self._factory = env_or_factory
            self._idle = [env_or_factory()]
            self._max = max_envs
        else:
            raise TypeError(f"serve() needs a gymnasium env or a zero-argument factory, got {env_or_factory!r}")
        self._made = 1
        self._closed = False
        self.spaces = {
            "observation_space": space_to_dict(self._idle[0].observation_space),
            "action_space": space_to_dict(self._idle[0].action_space),
        }

    def acquire(self) -> gym.Env | None:
        """An env for a new client, or None if all are in use."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._factory is None or (self._max is not None and self._made >= self._max):
                return None
            self._made += 1
        try:
            return self._factory()
        except BaseException:
            with self._lock:  # a failed make frees its slot, or max_envs failures would leave the server "busy"
                self._made -= 1
            raise

    def release(self, env: gym.Env) -> None:
        """Take an env back (closing it if the server has closed)."""
        with self._lock:
            if not self._closed:
                self._idle.append(env)
                return
        env.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for env in idle:
            env.close()


class EnvServer:
    """Serves an env (or one env per client, from a factory) over the remote env protocol.

    Args:
        env_or_factory: a gymnasium env (one client at a time; another is told the env is
            busy) or a zero-argument factory (each client gets its own env, up to ``max_envs``;
            envs are reused after a client leaves, and the next client must reset first).
        host, port: where to listen (``port=0``: a free port, see :attr:`address`). Loopback
            by default; another host without a token warns.
        token: if set, clients must prove they know it (HMAC challenge; constant-time compare).
        idle_timeout: seconds within which a logged-in client's next request must be
            complete; a client that misses it is dropped and its env freed.
        frame_timeout: seconds within which a request must be complete once its first
            byte arrived, and a reply must be sent (a trickling client is dropped at it).
        handshake_timeout: seconds from accept within which a new connection must have
            logged in (one deadline for the whole login, not per read).
        max_envs: with a factory, the most envs made (None: as many as clients).
        max_clients: the most logged-in clients at a time; one more is told the server is busy.
        max_pending: the most connections waiting to log in; a new one beyond it sheds the
            oldest waiting connection (closed at once). Threads: one for logins, plus at
            most ``max_clients``.
        max_array_bytes: the largest array payload accepted in one message.
        out_of_bounds: a Box action outside its bounds is refused (``"error"``: the client
            gets :class:`~trajkit.envs.remote.RemoteActionError`) or clipped into them
            (``"clip"``). Non-finite actions and actions of the wrong shape or dtype are
            refused in both modes.
        logger: where the server logs (connections, refusals, env tracebacks); default
            the ``trajkit.envs.remote`` logger.
    """

    def __init__(
        self,
        env_or_factory: gym.Env | Callable[[], gym.Env],
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        frame_timeout: float = DEFAULT_FRAME_TIMEOUT,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        max_envs: int | None = None,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES,
        out_of_bounds: str = DEFAULT_OUT_OF_BOUNDS,
        logger: logging.Logger | None = None,
    ) -> None:
        self._limits = SessionLimits(
            idle_timeout=check_float("idle_timeout", idle_timeout, min_value=0.0, min_open=True),
            frame_timeout=check_float("frame_timeout", frame_timeout, min_value=0.0, min_open=True),
            max_array_bytes=check_int("max_array_bytes", max_array_bytes, min_value=0),
            out_of_bounds=check_out_of_bounds(out_of_bounds),
        )
        self.handshake_timeout = check_float("handshake_timeout", handshake_timeout, min_value=0.0, min_open=True)
        self.max_clients = check_int("max_clients", max_clients, min_value=1)
        self.max_pending = check_int("max_pending", max_pending, min_value=1)
        if max_envs is not None:
            check_int("max_envs", max_envs, min_value=1)
        if token is not None and not token:
            raise ValueError("token must be a non-empty string or None")
        if not _is_loopback(host) and not token:
            warnings.warn(f"serving an env on {host} without a token: anyone who can reach it can drive it",
                          stacklevel=2)
        self._log = logger if logger is not None else _LOG
        self._pool = _EnvPool(env_or_factory, max_envs)
        self._token = token
        self._sock = socket.create_server((host, port), reuse_port=False, backlog=_BACKLOG)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sessions: set[socket.socket] = set()

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` the server listens on."""
        host, port = self._sock.getsockname()[:2]
        return host, port

    @property
    def num_clients(self) -> int:
        """Logged-in clients now."""
        with self._lock:
            return len(self._sessions)

    def serve_forever(self) -> None:
        """Accept and serve clients until :meth:`close` or KeyboardInterrupt; errors of ``accept()`` never end it."""
        loop = LoginLoop(self._sock, token=self._token, login_timeout=self.handshake_timeout,
                         max_pending=self.max_pending, on_login=self._start_session, stop=self._stop, logger=self._log)
        try:
            loop.run()
        finally:
            self.close()

    def close(self) -> None:
        """Stop accepting, disconnect logged-in clients, and close the envs (in use ones when their session ends)."""
        self._stop.set()
        self._sock.close()
        with self._lock:
            for conn in self._sessions:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._pool.close()

    # -- sessions
    def _start_session(self, conn: socket.socket, peer: Any, hello: dict[str, Any]) -> None:
        with self._lock:
            admitted = len(self._sessions) < self.max_clients and not self._stop.is_set()
            if admitted:
                self._sessions.add(conn)
        if not admitted:
            self._refuse(conn, error_reply("busy", f"busy: the server serves at most {self.max_clients} clients"))
            return
        try:
            threading.Thread(target=self._session, args=(conn, peer, hello.get("purpose")), daemon=True).start()
        except BaseException:
            self._end_session(conn)
            raise

    def _session(self, conn: socket.socket, peer: Any, purpose: Any) -> None:
        env = None
        try:
            env = self._ready(conn, peer, purpose)
            if env is not None:
                self._log.info("client %s logged in", peer)
                run_session(conn, peer, env, self._limits, self._log)
        except (ConnectionError, TimeoutError) as e:
            self._log.info("client %s left or missed a deadline (%s)", peer, e)
        except Exception:  # noqa: BLE001 - a bad client or env must not take the server down
            self._log.exception("client %s: dropping it", peer)
        finally:
            if env is not None:
                self._pool.release(env)
            self._end_session(conn)

    def _ready(self, conn: socket.socket, peer: Any, purpose: Any) -> gym.Env | None:
        """Answer a logged-in client's hello: the spaces and an env for it, or why not (then None)."""
        timeout = self._limits.frame_timeout
        if purpose == "spaces":  # a client learning the spaces needs no env
            send_msg(conn, {"op": "ready", **self._pool.spaces}, timeout=timeout)
            return None
        try:
            env = self._pool.acquire()
        except Exception as e:  # noqa: BLE001 - the factory failed: tell the client, log the traceback
            self._log.exception("client %s: the env factory raised", peer)
            send_msg(conn, error_reply("env_error", f"the env factory raised: {e}", type(e).__name__), timeout=timeout)
            return None
        if env is None:
            send_msg(conn, error_reply("busy", "busy: every env of this server is in use by another client"),
                     timeout=timeout)
            return None
        try:
            send_msg(conn, {"op": "ready", **self._pool.spaces}, timeout=timeout)
        except BaseException:
            self._pool.release(env)
            raise
        return env

    def _end_session(self, conn: socket.socket) -> None:
        with self._lock:
            self._sessions.discard(conn)
            conn.close()  # under the lock: close() never shuts down a reused descriptor

    def _refuse(self, conn: socket.socket, reply: dict[str, Any]) -> None:
        try:
            send_msg(conn, reply, timeout=1.0)
        except OSError:
            pass
        conn.close()


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def serve(
    env_or_factory: gym.Env | Callable[[], gym.Env],
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    *,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    frame_timeout: float = DEFAULT_FRAME_TIMEOUT,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    max_envs: int | None = None,
    max_clients: int = DEFAULT_MAX_CLIENTS,
    max_pending: int = DEFAULT_MAX_PENDING,
    max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES,
    out_of_bounds: str = DEFAULT_OUT_OF_BOUNDS,
    logger: logging.Logger | None = None,
    on_ready: Callable[[tuple[str, int]], None] | None = None,
) -> None:
    """Serve an env (or a factory's envs) until interrupted; the options are :class:`EnvServer`'s.

    Warns when ``token`` is None: anyone who can connect (on loopback: any local user
    or process) can then drive the env. ``on_ready(address)`` is called once the server
    listens (useful with ``port=0``).
    """
    if token is None:
        warnings.warn(f"serving an env on {host} without a token: anyone who can connect can drive it; "
                      "pass a token unless every local process is trusted", UserWarning, stacklevel=2)
    server = EnvServer(env_or_factory, host, port, token, idle_timeout=idle_timeout, frame_timeout=frame_timeout,
                       handshake_timeout=handshake_timeout, max_envs=max_envs, max_clients=max_clients,
                       max_pending=max_pending, max_array_bytes=max_array_bytes, out_of_bounds=out_of_bounds,
                       logger=logger)
    try:
        if on_ready is not None:
            on_ready(server.address)
        server.serve_forever()
    finally:
        server.close()
