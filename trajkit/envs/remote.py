"""Remote (real) environments: any env behind a small TCP protocol.

On the machine with the env (a robot's controller, a simulator elsewhere)::

    tk.envs.serve(make_robot_env, host="127.0.0.1", port=7001, token=secret)

or from a shell (the token is read from an environment variable, not argv)::

    TRAJKIT_ENV_TOKEN=secret python -m trajkit.envs Pendulum-v1 --port 7001 --token-env TRAJKIT_ENV_TOKEN

In the training script, ``tk.envs.RemoteEnv("127.0.0.1", 7001, token=secret)`` is a
gymnasium env like any other, usable by :class:`trajkit.EpiSampler`.

The protocol
------------
Every message is one frame: a 4-byte big-endian header length, a UTF-8 JSON header,
then the raw bytes of the arrays the header lists (``"arrays": [{"dtype": "<f4",
"shape": [3]}, ...]``, in order; inside the JSON an array is ``{"__nd__": i}``). Only
JSON values and numeric/bool arrays cross the wire: nothing is unpickled or evaluated.
Header and array sizes are bounded. Messages are ``{"op": ...}`` dicts:

* server -> client on connect: ``challenge`` (``nonce``, whether a token is required);
* client: ``hello`` (``mac``: HMAC-SHA256 of the nonce keyed by the token, or null) ->
  ``ready`` (the spaces) or ``error``. The token itself never crosses the wire and the
  server compares MACs in constant time (``hmac.compare_digest``);
* ``reset`` (``seed``, ``options``) -> ``obs`` (``obs``, ``info``);
* ``step`` (``action``) -> ``transition`` (``obs``, ``rew``, ``terminated``, ``truncated``, ``info``);
* ``close``. Any failure on the server is an ``error`` reply with the server's traceback.

``info`` values that are not JSON data or numeric arrays are sent as their ``repr``.

Failure handling: every socket operation has a timeout. A server drops a client that
stays silent for ``idle_timeout`` seconds. A client whose server drops, dies or stays
silent for ``timeout`` seconds mid-episode ends the episode as truncated (with
``info["remote_error"]`` and a warning; ``on_disconnect="raise"`` raises instead) and
reconnects at the next ``reset``, raising :class:`RemoteEnvError` if the server stays
unreachable. Nothing waits forever.

Security: the server binds to loopback unless told otherwise. The token authenticates
the client but the traffic is not encrypted: across an untrusted network, tunnel it
(SSH, WireGuard).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import socket
import struct
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

PROTOCOL_VERSION = 1
MAX_HEADER_BYTES = 1 << 20
DEFAULT_MAX_ARRAY_BYTES = 64 << 20
#: array dtypes that may cross the wire (``numpy.dtype.str``)
ALLOWED_DTYPES = frozenset(
    d.str
    for t in ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
              "float16", "float32", "float64")
    for d in (np.dtype(t).newbyteorder("<"), np.dtype(t).newbyteorder(">"))
)
_LEN = struct.Struct(">I")


class RemoteEnvError(RuntimeError):
    """The remote env failed: unreachable server, bad token, protocol error, or an exception in the env."""


# ---------------------------------------------------------------------- framing
def _encode(obj: Any, arrays: list[np.ndarray], lossy: bool) -> Any:
    """JSON-able tree with arrays replaced by ``{"__nd__": i}``; ``lossy``: unknown objects become ``repr``."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.str not in ALLOWED_DTYPES:
            if lossy:
                return repr(obj)
            raise TypeError(f"arrays of dtype {obj.dtype} cannot be sent")
        arrays.append(np.ascontiguousarray(obj))
        return {"__nd__": len(arrays) - 1}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, dict):
        if "__nd__" in obj:
            raise TypeError("the key '__nd__' is reserved by the remote env protocol")
        return {str(k): _encode(v, arrays, lossy) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode(v, arrays, lossy) for v in obj]
    if lossy:
        return repr(obj)
    raise TypeError(f"cannot send a {type(obj).__name__} over the remote env protocol")


def _decode(obj: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__nd__"}:
            return arrays[int(obj["__nd__"])]
        return {k: _decode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    return obj


def send_msg(sock: socket.socket, msg: dict[str, Any], lossy: bool = False) -> None:
    """Send one frame (see the module docstring)."""
    arrays: list[np.ndarray] = []
    body = _encode(msg, arrays, lossy)
    header = {"msg": body, "arrays": [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]}
    data = json.dumps(header, separators=(",", ":")).encode()
    if len(data) > MAX_HEADER_BYTES:
        raise ValueError(f"message header of {len(data)} bytes exceeds {MAX_HEADER_BYTES}")
    sock.sendall(b"".join([_LEN.pack(len(data)), data, *(a.tobytes() for a in arrays)]))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError("connection closed by peer")
        got += k
    return bytes(buf)


def recv_msg(sock: socket.socket, max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES) -> dict[str, Any]:
    """Receive one frame.

    Raises ``ConnectionError`` on EOF, ``socket.timeout`` on silence, ``ValueError`` if malformed.
    """
    (n,) = _LEN.unpack(_recv_exact(sock, _LEN.size))
    if n > MAX_HEADER_BYTES:
        raise ValueError(f"peer announced a {n}-byte header (limit {MAX_HEADER_BYTES})")
    try:
        header = json.loads(_recv_exact(sock, n))
        specs = header["arrays"]
        shapes = [(np.dtype(_checked_dtype(s["dtype"])), [int(d) for d in s["shape"]]) for s in specs]
    except (KeyError, TypeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"malformed message header: {e}") from None
    total = 0
    for dtype, shape in shapes:
        if any(d < 0 for d in shape):
            raise ValueError(f"negative array dimension in {shape}")
        total += int(np.prod(shape, dtype=object)) * dtype.itemsize
    if total > max_array_bytes:
        raise ValueError(f"message carries {total} array bytes (limit {max_array_bytes})")
    arrays = [
        np.frombuffer(_recv_exact(sock, int(np.prod(shape, dtype=object)) * dtype.itemsize), dtype).reshape(shape)
        for dtype, shape in shapes
    ]
    msg = _decode(header.get("msg"), arrays)
    if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
        raise ValueError("message without an 'op'")
    return msg


def _checked_dtype(s: Any) -> str:
    if not isinstance(s, str) or s not in ALLOWED_DTYPES:
        raise TypeError(f"dtype {s!r} is not allowed")
    return s


# ---------------------------------------------------------------------- spaces
def space_to_dict(space: gym.Space) -> dict[str, Any]:
    """A plain-data description of a Box/Discrete/MultiDiscrete/MultiBinary/Dict/Tuple space."""
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "low": space.low, "high": space.high, "dtype": space.dtype.str}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec, "start": space.start}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_dict(s) for k, s in space.spaces.items()}}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_dict(s) for s in space.spaces]}
    raise TypeError(f"cannot describe space {space} for the remote env protocol")


def space_from_dict(d: dict[str, Any]) -> gym.Space:
    """The inverse of :func:`space_to_dict`."""
    kind = d.get("type")
    if kind == "Box":
        return gym.spaces.Box(np.asarray(d["low"]), np.asarray(d["high"]), dtype=np.dtype(_checked_dtype(d["dtype"])))
    if kind == "Discrete":
        return gym.spaces.Discrete(int(d["n"]), start=int(d["start"]))
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(np.asarray(d["nvec"]), start=np.asarray(d["start"]))
    if kind == "MultiBinary":
        return gym.spaces.MultiBinary(d["n"])
    if kind == "Dict":
        return gym.spaces.Dict({k: space_from_dict(v) for k, v in d["spaces"].items()})
    if kind == "Tuple":
        return gym.spaces.Tuple([space_from_dict(v) for v in d["spaces"]])
    raise ValueError(f"unknown space type {kind!r}")


def _mac(token: str, nonce: str) -> str:
    return hmac.new(token.encode(), bytes.fromhex(nonce), hashlib.sha256).hexdigest()


def _action_from_wire(space: gym.Space, action: Any) -> Any:
    if isinstance(space, gym.spaces.Discrete):
        return int(np.asarray(action).reshape(()))
    if isinstance(space, gym.spaces.Box | gym.spaces.MultiDiscrete | gym.spaces.MultiBinary):
        return np.asarray(action, dtype=space.dtype).reshape(space.shape)
    return action


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


# ---------------------------------------------------------------------- server
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
        return self._factory()

    def release(self, env: gym.Env) -> None:
        with self._lock:
            self._idle.append(env)

    def close(self) -> None:
        with self._lock:
            for env in self._idle:
                env.close()
            self._idle = []


class EnvServer:
    """Serves an env (or one env per client, from a factory) over the remote env protocol.

    Args:
        env_or_factory: a gymnasium env (one client at a time; another is told the env is
            busy) or a zero-argument factory (each client gets its own env, up to ``max_envs``;
            envs are reused after a client leaves).
        host, port: where to listen (``port=0``: a free port, see :attr:`address`).
        token: if set, clients must prove they know it (HMAC challenge; constant-time compare).
        idle_timeout: seconds of client silence after which the server drops it.
        handshake_timeout: seconds a new client has to authenticate.
        max_array_bytes: the largest array payload accepted in one message.
    """

    def __init__(
        self,
        env_or_factory: gym.Env | Callable[[], gym.Env],
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        *,
        idle_timeout: float = 600.0,
        handshake_timeout: float = 10.0,
        max_envs: int | None = None,
        max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES,
    ) -> None:
        if not _is_loopback(host) and not token:
            warnings.warn(f"serving an env on {host} without a token: anyone who can reach it can drive it",
                          stacklevel=2)
        self._pool = _EnvPool(env_or_factory, max_envs)
        self._token = token
        self.idle_timeout, self.handshake_timeout = idle_timeout, handshake_timeout
        self.max_array_bytes = max_array_bytes
        self._sock = socket.create_server((host, port), reuse_port=False)
        self._sock.settimeout(0.5)
        self._stop = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` the server listens on."""
        host, port = self._sock.getsockname()[:2]
        return host, port

    def serve_forever(self) -> None:
        """Accept clients (each in its own thread) until :meth:`close` or KeyboardInterrupt."""
        try:
            while not self._stop.is_set():
                try:
                    conn, peer = self._sock.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if self._stop.is_set():
                        return
                    raise
                threading.Thread(target=self._client, args=(conn, peer), daemon=True).start()
        finally:
            self.close()

    def close(self) -> None:
        """Stop accepting clients and close the idle envs."""
        self._stop.set()
        self._sock.close()
        self._pool.close()

    def _client(self, conn: socket.socket, peer: Any) -> None:
        env = None
        with conn:
            try:
                env = self._handshake(conn)
                if env is not None:
                    conn.settimeout(self.idle_timeout)
                    self._serve_client(conn, env)
            except ConnectionError:
                pass  # the client went away
            except Exception as e:  # noqa: BLE001 - a bad client must not take the server down
                _log(f"client {peer}: {type(e).__name__}: {e}; dropping it")
            finally:
                if env is not None:
                    self._pool.release(env)

    def _handshake(self, conn: socket.socket) -> gym.Env | None:
        conn.settimeout(self.handshake_timeout)
        nonce = secrets.token_hex(32)
        send_msg(conn, {"op": "challenge", "nonce": nonce, "version": PROTOCOL_VERSION,
                        "auth": self._token is not None})
        hello = recv_msg(conn, 1 << 10)
        if hello.get("op") != "hello" or hello.get("version") != PROTOCOL_VERSION:
            send_msg(conn, {"op": "error", "message": f"expected hello with protocol version {PROTOCOL_VERSION}"})
            return None
        if self._token is not None:
            mac = hello.get("mac")
            if not isinstance(mac, str) or not hmac.compare_digest(mac.encode(), _mac(self._token, nonce).encode()):
                send_msg(conn, {"op": "error", "message": "authentication failed: bad or missing token"})
                return None
        env = self._pool.acquire()
        if env is None:
            send_msg(conn, {"op": "error", "message": "busy: every env of this server is in use by another client"})
            return None
        send_msg(conn, {"op": "ready", **self._pool.spaces})
        return env

    def _serve_client(self, conn: socket.socket, env: gym.Env) -> None:
        while True:
            msg = recv_msg(conn, self.max_array_bytes)
            op = msg["op"]
            if op == "close":
                return
            try:
                reply = self._answer(env, op, msg)
            except Exception:  # noqa: BLE001 - the client gets the env's traceback
                reply = {"op": "error", "message": traceback.format_exc()}
            send_msg(conn, reply, lossy=True)

    @staticmethod
    def _answer(env: gym.Env, op: str, msg: dict[str, Any]) -> dict[str, Any]:
        if op == "reset":
            seed = msg.get("seed")
            obs, info = env.reset(seed=None if seed is None else int(seed), options=msg.get("options"))
            return {"op": "obs", "obs": np.asarray(obs) if not isinstance(obs, dict | tuple) else obs, "info": info}
        if op == "step":
            obs, rew, terminated, truncated, info = env.step(_action_from_wire(env.action_space, msg["action"]))
            return {"op": "transition", "obs": np.asarray(obs) if not isinstance(obs, dict | tuple) else obs,
                    "rew": float(rew), "terminated": bool(terminated), "truncated": bool(truncated), "info": info}
        raise ValueError(f"unknown op {op!r}")


def serve(
    env_or_factory: gym.Env | Callable[[], gym.Env],
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    *,
    idle_timeout: float = 600.0,
    max_envs: int | None = None,
    on_ready: Callable[[tuple[str, int]], None] | None = None,
) -> None:
    """Serve an env (or a factory's envs) until interrupted; see :class:`EnvServer`.

    ``on_ready(address)`` is called once the server listens (useful with ``port=0``).
    """
    server = EnvServer(env_or_factory, host, port, token, idle_timeout=idle_timeout, max_envs=max_envs)
    if on_ready is not None:
        on_ready(server.address)
    server.serve_forever()


def _log(text: str) -> None:
    print(f"[trajkit.envs.remote] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- client
class RemoteEnv(gym.Env):
    """A gymnasium env whose steps run on an :class:`EnvServer` across TCP.

    Args:
        host, port: the server.
        token: the shared token, if the server requires one.
        timeout: seconds to wait for any reply (a silent server is a dropped connection).
        connect_timeout: seconds to wait for a connection and handshake.
        on_disconnect: ``"truncate"`` (default): a connection lost mid-episode ends the
            episode as truncated (``info["remote_error"]`` says why, with a warning) and
            the next ``reset`` reconnects; ``"raise"``: raise :class:`RemoteEnvError`.
        reconnect_attempts, reconnect_delay: how often and how far apart ``reset`` tries
            to (re)connect before raising :class:`RemoteEnvError`.

    Construction connects once to learn the spaces (and fails fast on a bad token),
    then lets go: the connection used for episodes is opened by the first ``reset``.
    A pickled copy (e.g. in a sampler worker) opens its own connection.
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
    ) -> None:
        if on_disconnect not in ("truncate", "raise"):
            raise ValueError(f"on_disconnect must be 'truncate' or 'raise', got {on_disconnect!r}")
        self.host, self.port, self.token = host, int(port), token
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.on_disconnect = on_disconnect
        self.reconnect_attempts, self.reconnect_delay = reconnect_attempts, reconnect_delay
        self._sock: socket.socket | None = None
        self._last_obs: Any = None
        try:
            ready = self._connect()
        except (OSError, ValueError) as e:
            raise RemoteEnvError(f"cannot reach the env server at {self._where()}: {e}") from e
        self.observation_space = space_from_dict(ready["observation_space"])
        self.action_space = space_from_dict(ready["action_space"])
        self._disconnect()

    # -- connection
    def _connect(self) -> dict[str, Any]:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            challenge = recv_msg(sock, 1 << 10)
            if challenge.get("op") != "challenge" or challenge.get("version") != PROTOCOL_VERSION:
                raise RemoteEnvError(f"{self._where()} does not speak protocol version {PROTOCOL_VERSION}")
            if challenge.get("auth") and self.token is None:
                raise RemoteEnvError(f"{self._where()} requires a token")
            mac = None if self.token is None else _mac(self.token, str(challenge["nonce"]))
            send_msg(sock, {"op": "hello", "version": PROTOCOL_VERSION, "mac": mac})
            ready = recv_msg(sock)
            if ready["op"] == "error":
                raise RemoteEnvError(f"{self._where()} refused the connection: {ready.get('message')}")
            sock.settimeout(self.timeout)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        return ready

    def _disconnect(self) -> None:
        if self._sock is not None:
            try:
                send_msg(self._sock, {"op": "close"})
            except OSError:
                pass
            self._sock.close()
            self._sock = None

    def _reconnect(self) -> None:
        last: BaseException | None = None
        for attempt in range(max(1, self.reconnect_attempts)):
            if attempt:
                time.sleep(self.reconnect_delay)
            try:
                self._connect()
                return
            except RemoteEnvError:
                raise
            except (OSError, ValueError) as e:
                last = e
        raise RemoteEnvError(
            f"cannot reach the env server at {self._where()} after {self.reconnect_attempts} attempts: {last}"
        ) from last

    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _call(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self._sock is not None
        send_msg(self._sock, msg)
        reply = recv_msg(self._sock)
        if reply["op"] == "error":
            raise RemoteEnvError(f"the env at {self._where()} raised:\n{reply.get('message')}")
        return reply

    # -- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if self._sock is None:
            self._reconnect()
        try:
            reply = self._call({"op": "reset", "seed": seed, "options": options})
        except (OSError, ValueError) as e:
            self._drop()
            raise RemoteEnvError(f"lost the env server at {self._where()} during reset: {e}") from e
        self._last_obs = reply["obs"]
        return reply["obs"], reply["info"]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self._sock is None:
            raise RemoteEnvError(f"not connected to {self._where()}: call reset() first")
        wire = action if isinstance(action, dict | tuple | list) else np.asarray(action)
        try:
            reply = self._call({"op": "step", "action": wire})
        except (OSError, ValueError) as e:  # EOF, reset by peer, timeout, garbage
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


def main(argv: list[str] | None = None) -> None:
    """``python -m trajkit.envs ENV_ID``: serve a registered env (one per client) until interrupted."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("env_id", help="a gymnasium id (Bullet ids need the bullet extra)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    p.add_argument("--token-env", default=None, help="name of an environment variable holding the token")
    p.add_argument("--make-kwargs", default="{}", help="JSON dict of gymnasium.make keyword arguments")
    p.add_argument("--idle-timeout", type=float, default=600.0)
    p.add_argument("--max-envs", type=int, default=None)
    args = p.parse_args(argv)
    from trajkit.envs.gym_env import make_env

    token = None
    if args.token_env is not None:
        token = os.environ.get(args.token_env)
        if not token:
            p.error(f"environment variable {args.token_env} is empty or unset")
    kwargs = json.loads(args.make_kwargs)

    def announce(addr: tuple[str, int]) -> None:
        print(f"trajkit env server listening on {addr[0]}:{addr[1]}", flush=True)

    try:
        serve(lambda: make_env(args.env_id, **kwargs), args.host, args.port, token,
              idle_timeout=args.idle_timeout, max_envs=args.max_envs, on_ready=announce)
    except KeyboardInterrupt:
        pass
