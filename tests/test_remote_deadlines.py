"""Slow-loris clients: the login and each request have deadlines for the whole, not per read."""

from __future__ import annotations

import json
import socket
import struct
import time

import gymnasium as gym
import numpy as np
from test_remote import RecordingEnv, closed_by_peer, raw_login, serving

from trajkit.envs import RemoteEnv
from trajkit.envs.remote import recv_msg, send_msg


def _frame(msg: dict) -> bytes:
    data = json.dumps({"msg": msg, "arrays": []}).encode()
    return struct.pack(">I", len(data)) + data


def _trickle_until_dropped(sock: socket.socket, data: bytes, every: float, within: float) -> float | None:
    """Send ``data`` one byte every ``every`` seconds; the seconds until the peer dropped us (None: it never did)."""
    start = time.monotonic()
    for i in range(len(data)):
        if closed_by_peer(sock, every):
            return time.monotonic() - start
        if time.monotonic() - start > within:
            return None
        try:
            sock.sendall(data[i:i + 1])
        except OSError:
            return time.monotonic() - start
    return None


def test_trickling_login_is_dropped_at_the_login_deadline() -> None:
    """One byte every 0.2 s used to reset a 0.6 s per-read timeout forever."""
    with serving(lambda: gym.make("CartPole-v1"), handshake_timeout=0.6) as srv:
        with socket.create_connection(srv.address, timeout=5) as sock:
            challenge = recv_msg(sock)
            hello = _frame({"op": "hello", "version": challenge["version"], "mac": None})
            dropped_after = _trickle_until_dropped(sock, hello[:-1], every=0.2, within=2.5)
        assert dropped_after is not None and dropped_after < 1.5
        with raw_login(srv.address):  # the server still logs clients in
            pass


def test_trickling_request_is_dropped_at_the_idle_deadline_and_frees_the_env() -> None:
    """A logged-in client trickling a request used to keep the only env busy forever."""
    with serving(RecordingEnv(), idle_timeout=0.8) as srv:
        with raw_login(srv.address) as sock:
            send_msg(sock, {"op": "reset", "seed": 0})
            assert recv_msg(sock)["op"] == "obs"
            dropped_after = _trickle_until_dropped(sock, _frame({"op": "reset", "seed": 1})[:-1], 0.2, within=3.0)
        assert dropped_after is not None and dropped_after < 1.6
        env = RemoteEnv(*srv.address, timeout=5, reconnect_attempts=3, reconnect_delay=0.1)
        assert env.reset(seed=0)[0].shape == (3,)  # the env is free again
        env.close()


def test_frame_timeout_drops_a_trickle_soon_after_its_first_byte() -> None:
    with serving(RecordingEnv(), idle_timeout=30.0, frame_timeout=0.5) as srv:
        with raw_login(srv.address) as sock:
            dropped_after = _trickle_until_dropped(sock, _frame({"op": "reset"})[:-1], 0.1, within=3.0)
        assert dropped_after is not None and dropped_after < 1.2


def test_a_prompt_client_is_not_hurt_by_the_deadlines() -> None:
    with serving(RecordingEnv(), idle_timeout=0.5, frame_timeout=0.5, handshake_timeout=0.5) as srv:
        env = RemoteEnv(*srv.address, timeout=5)
        env.reset(seed=0)
        for _ in range(5):
            time.sleep(0.2)  # pauses below the idle deadline
            env.step(np.array([0.5], np.float32))
        env.close()
