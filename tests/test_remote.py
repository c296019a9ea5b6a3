"""Remote envs: server and client on loopback, in separate processes where it matters."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import trajkit as tk
from trajkit.envs import EnvServer, RemoteEnv, RemoteEnvError
from trajkit.envs.remote import recv_msg, send_msg

TOKEN = "correct horse battery staple"


def start_server_process(
    env_id: str = "Pendulum-v1", token: str | None = TOKEN, stderr: int | None = None
) -> tuple[subprocess.Popen, int]:
    """``python -m trajkit.envs ENV_ID`` in another process; returns it and its port."""
    cmd = [sys.executable, "-m", "trajkit.envs", env_id, "--port", "0"]
    env = dict(os.environ)
    if token is not None:
        cmd += ["--token-env", "TEST_ENV_TOKEN"]
        env["TEST_ENV_TOKEN"] = token
    else:
        cmd += ["--no-token"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    if not ready:
        proc.kill()
        raise RuntimeError("env server did not start")
    line = proc.stdout.readline()
    assert "listening on" in line, line
    return proc, int(line.rsplit(":", 1)[1])


class RecordingEnv(gym.Env):
    """A Box(-2, 2, (1,)) env that records the actions reaching it; ``step_delay`` seconds per step
    (only at step ``slow_step`` if given), and ``fail`` makes step raise."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)

    def __init__(self, step_delay: float = 0.0, slow_step: int | None = None, fail: bool = False) -> None:
        self.actions: list[np.ndarray] = []
        self.step_delay, self.slow_step, self.fail = step_delay, slow_step, fail
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        if self.fail:
            raise RuntimeError("boom at the motor driver")
        if self.step_delay and (self.slow_step is None or self.t == self.slow_step):
            time.sleep(self.step_delay)
        self.actions.append(np.array(action))
        return np.full(3, self.t, np.float32), 1.0, False, self.t >= 50, {}


@contextlib.contextmanager
def serving(env_or_factory: gym.Env | Callable[[], gym.Env], **options: Any) -> Iterator[EnvServer]:
    """An in-process :class:`EnvServer` on a thread, closed (and joined) at the end."""
    srv = EnvServer(env_or_factory, **options)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.close()
        t.join(5)


def raw_login(address: tuple[str, int], token: str | None = None, timeout: float = 5.0) -> socket.socket:
    """A connection logged in by hand (the hello of the protocol), for tests that speak the raw protocol.

    Retries for up to 2 s while the server says it is busy (a client that just left may
    not have been let go yet).
    """
    end = time.monotonic() + 2.0
    while True:
        sock = socket.create_connection(address, timeout=timeout)
        challenge = recv_msg(sock)
        mac = None if token is None else hmac.new(token.encode(), bytes.fromhex(challenge["nonce"]),
                                                  hashlib.sha256).hexdigest()
        send_msg(sock, {"op": "hello", "version": challenge["version"], "mac": mac})
        ready = recv_msg(sock)
        if ready["op"] == "ready":
            return sock
        sock.close()
        assert "busy" in str(ready.get("message")) and time.monotonic() < end, ready
        time.sleep(0.02)


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """Whether the peer closes ``sock`` within ``within`` seconds (bytes it sends meanwhile are read and dropped)."""
    end = time.monotonic() + within
    while (left := end - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            return False
        try:
            if not sock.recv(65536):
                return True
        except OSError:
            return True
    return False


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(10)


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    proc, port = start_server_process()
    yield port
    stop(proc)


@pytest.fixture()
def thread_server() -> Iterator[EnvServer]:
    """An in-process server on a thread (for timing-sensitive cases)."""
    srv = EnvServer(lambda: gym.make("CartPole-v1"), idle_timeout=0.5)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.close()
    t.join(5)


def test_remote_env_matches_the_local_env(server: int) -> None:
    remote = RemoteEnv("127.0.0.1", server, token=TOKEN, timeout=10)
    local = tk.GymEnv("Pendulum-v1")
    assert remote.observation_space == local.observation_space
    assert remote.action_space == local.action_space
    np.testing.assert_array_equal(remote.reset(seed=4)[0], local.reset(seed=4)[0])
    for a in (0.3, -1.0, 2.0):
        r, lo = remote.step(np.array([a], np.float32)), local.step(np.array([a], np.float32))
        np.testing.assert_array_equal(r[0], lo[0])
        assert r[1:4] == lo[1:4]
    remote.close()


def test_bad_or_missing_token_is_refused(server: int) -> None:
    with pytest.raises(RemoteEnvError, match="authentication failed"):
        RemoteEnv("127.0.0.1", server, token="wrong", timeout=10)
    with pytest.raises(RemoteEnvError, match="requires a token"):
        RemoteEnv("127.0.0.1", server, timeout=10)


@pytest.mark.slow  # worker processes or long training: seconds on a small machine (slow tier)
def test_sampler_with_remote_env_in_process_and_in_workers(server: int) -> None:
    env = tk.GymEnv(RemoteEnv("127.0.0.1", server, token=TOKEN, timeout=10))
    pol = tk.GaussianPol(env.observation_space, env.action_space, tk.nets.mlp(3, 1))
    with tk.EpiSampler(env, pol, seed=0) as sampler:
        local = sampler.sample(pol, max_steps=30)
    assert sum(len(e["rews"]) for e in local) == 30
    with tk.EpiSampler(env, pol, num_parallel=2, seed=0) as sampler:
        a = sampler.sample(pol, max_steps=30)
    assert sum(len(e["rews"]) for e in a) == 30
    np.testing.assert_array_equal(a[0]["obs"][0], tk.GymEnv("Pendulum-v1").reset(seed=int(a_seed()))[0])


def a_seed() -> int:
    """The env seed of worker 0 of a sampler with seed 0 and 2 workers."""
    from trajkit.samplers.epi_sampler import _seeds

    return _seeds(0, 2)[0][0][0]


def test_killed_server_truncates_the_episode_then_reset_fails_fast() -> None:
    proc, port = start_server_process()
    env = RemoteEnv("127.0.0.1", port, token=TOKEN, timeout=5, reconnect_attempts=2, reconnect_delay=0.1)
    env.reset(seed=0)
    env.step(np.array([0.0], np.float32))
    stop(proc)
    with pytest.warns(UserWarning, match="ending the episode as truncated"):
        obs, rew, terminated, truncated, info = env.step(np.array([0.0], np.float32))
    assert truncated and not terminated and rew == 0.0 and obs.shape == (3,)
    assert "lost the env server" in info["remote_error"]
    start = time.monotonic()
    with pytest.raises(RemoteEnvError, match="cannot reach"):
        env.reset()
    assert time.monotonic() - start < 5


def test_killed_server_with_on_disconnect_raise(thread_server: EnvServer) -> None:
    env = RemoteEnv(*thread_server.address, timeout=5, on_disconnect="raise")
    env.reset(seed=0)
    thread_server.close()
    time.sleep(0.8)  # the idle timeout drops the connection too
    with pytest.raises(RemoteEnvError, match="mid-episode"):
        env.step(1)


def wait_stopped(pid: int, limit: float = 10.0) -> None:
    """Block until every thread of ``pid`` is stopped: ``kill`` returns before a loaded
    machine has stopped them, and a thread still running could answer the next step."""
    if not os.path.isdir(f"/proc/{pid}/task"):  # no procfs: give the stop a moment instead
        time.sleep(0.5)
        return
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        states = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        if all(s in ("T", "t") for s in states):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop within {limit} s")


def test_silent_server_times_out() -> None:
    """A server that accepts and answers the handshake but then never replies."""
    proc, port = start_server_process(token=None)
    try:
        env = RemoteEnv("127.0.0.1", port, timeout=1.0)
        env.reset(seed=0)
        os.kill(proc.pid, signal.SIGSTOP)
        wait_stopped(proc.pid)
        start = time.monotonic()
        with pytest.warns(UserWarning):
            *_, truncated, info = env.step(np.array([0.0], np.float32))
        assert truncated and "timed out" in info["remote_error"]
        assert time.monotonic() - start < 4
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        stop(proc)


def test_silent_listener_fails_the_handshake_in_time() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        start = time.monotonic()
        with pytest.raises(RemoteEnvError, match="cannot reach"):
            RemoteEnv("127.0.0.1", listener.getsockname()[1], connect_timeout=0.5)
        assert time.monotonic() - start < 3
    finally:
        listener.close()


def test_idle_client_is_dropped_and_reconnects_at_reset(thread_server: EnvServer) -> None:
    env = RemoteEnv(*thread_server.address, timeout=5)
    env.reset(seed=0)
    time.sleep(1.0)  # longer than the server's idle_timeout
    with pytest.warns(UserWarning):
        *_, truncated, _ = env.step(0)
    assert truncated
    obs, _ = env.reset(seed=1)
    assert obs.shape == (4,)
    assert env.step(1)[0].shape == (4,)


def test_invalid_discrete_action_is_refused_before_the_env(thread_server: EnvServer) -> None:
    env = RemoteEnv(*thread_server.address, timeout=5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside Discrete") as refused:  # a RemoteActionError
        env.step(np.array([7]))
    assert isinstance(refused.value, RemoteEnvError)
    assert env.step(1)[0].shape == (4,)  # the episode goes on


def test_one_env_object_serves_one_client_at_a_time() -> None:
    srv = EnvServer(gym.make("CartPole-v1"))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        assert srv.address[0] == "127.0.0.1"
        a = RemoteEnv(*srv.address, timeout=5)
        b = RemoteEnv(*srv.address, timeout=5, reconnect_attempts=2, reconnect_delay=0.05)
        a.reset(seed=0)
        with pytest.raises(RemoteEnvError, match="busy"):
            b.reset(seed=0)
        a.close()
        time.sleep(0.1)
        assert b.reset(seed=0)[0].shape == (4,)
    finally:
        srv.close()


def test_frames_carry_arrays_and_json_only() -> None:
    x, y = socket.socketpair()
    with x, y:
        msg = {"op": "t", "a": np.arange(6, dtype=np.float32).reshape(2, 3), "n": [1, 2.5, None, "s"],
               "d": {"b": np.array([True, False])}, "s": np.int64(3)}
        send_msg(x, msg)
        got = recv_msg(y)
        np.testing.assert_array_equal(got["a"], msg["a"])
        assert got["a"].dtype == np.float32 and got["d"]["b"].dtype == np.bool_
        assert got["n"] == [1, 2.5, None, "s"] and got["s"] == 3
        with pytest.raises(TypeError):
            send_msg(x, {"op": "t", "a": np.array([object()], dtype=object)})
        with pytest.raises(TypeError):
            send_msg(x, {"op": "t", "f": lambda: 0})


def _raw_frame(header: dict, payload: bytes = b"") -> bytes:
    data = json.dumps(header).encode()
    return struct.pack(">I", len(data)) + data + payload


@pytest.mark.parametrize(
    "frame",
    [
        _raw_frame({"msg": {"op": "x", "a": {"__nd__": 0}}, "arrays": [{"dtype": "|O", "shape": [1]}]}, b"\0" * 8),
        _raw_frame({"msg": {"op": "x"}, "arrays": [{"dtype": "<f8", "shape": [1 << 30]}]}),
        struct.pack(">I", (1 << 20) + 1),
        _raw_frame({"msg": {"no_op": 1}, "arrays": []}),
    ],
    ids=["object-dtype", "huge-array", "huge-header", "no-op"],
)
def test_malformed_frames_are_rejected(frame: bytes) -> None:
    x, y = socket.socketpair()
    with x, y:
        x.sendall(frame)
        y.settimeout(2)
        with pytest.raises(ValueError):
            recv_msg(y)


def test_non_loopback_without_token_warns() -> None:
    with pytest.warns(UserWarning, match="without a token"):
        srv = EnvServer(gym.make("CartPole-v1"), host="0.0.0.0")
    srv.close()
