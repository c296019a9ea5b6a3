"""Serving without a token takes an explicit choice, and says so; tokens keep working as before."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import subprocess
import sys

import gymnasium as gym
import pytest
from test_remote import TOKEN, serving, start_server_process, stop

from trajkit.envs import RemoteEnv, RemoteEnvError, serve
from trajkit.envs.remote import recv_msg, send_msg


def test_command_without_a_token_refuses_to_start() -> None:
    """``python -m trajkit.envs ENV_ID`` used to serve unauthenticated, silently."""
    proc = subprocess.Popen([sys.executable, "-m", "trajkit.envs", "CartPole-v1", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if k != "TRAJKIT_ENV_TOKEN"})
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        pytest.fail("the env server started without a token")
    assert proc.returncode != 0 and "listening" not in out
    assert "--no-token" in err and "--token-env" in err


def test_command_with_no_token_serves_and_warns_loudly() -> None:
    proc, port = start_server_process("CartPole-v1", token=None, stderr=subprocess.PIPE)
    try:
        env = RemoteEnv("127.0.0.1", port, timeout=10)
        assert env.reset(seed=0)[0].shape == (4,)
        env.close()
    finally:
        stop(proc)
    assert proc.stderr is not None
    assert "WITHOUT authentication" in proc.stderr.read()


class _Listening(Exception):
    pass


def _stop_at_once(address: tuple[str, int]) -> None:
    raise _Listening(address)


def test_serve_without_a_token_warns_even_on_loopback() -> None:
    with pytest.warns(UserWarning, match="without a token"), pytest.raises(_Listening):
        serve(gym.make("CartPole-v1"), on_ready=_stop_at_once)


def test_serve_with_a_token_does_not_warn(recwarn: pytest.WarningsRecorder) -> None:
    with pytest.raises(_Listening):
        serve(gym.make("CartPole-v1"), token=TOKEN, on_ready=_stop_at_once)
    assert not [w for w in recwarn if "token" in str(w.message)]


def test_a_replayed_answer_is_refused() -> None:
    with serving(gym.make("CartPole-v1"), token=TOKEN) as srv:
        with socket.create_connection(srv.address, timeout=5) as first:
            challenge = recv_msg(first)
            mac = hmac.new(TOKEN.encode(), bytes.fromhex(challenge["nonce"]), hashlib.sha256).hexdigest()
        with socket.create_connection(srv.address, timeout=5) as second:
            challenge2 = recv_msg(second)
            assert challenge2["nonce"] != challenge["nonce"]
            send_msg(second, {"op": "hello", "version": challenge2["version"], "mac": mac})
            reply = recv_msg(second)
        assert reply["op"] == "error" and "authentication failed" in reply["message"]
        with pytest.raises(RemoteEnvError, match="authentication failed"):
            RemoteEnv(*srv.address, token="not the token", timeout=5)
        env = RemoteEnv(*srv.address, token=TOKEN, timeout=5)
        assert env.reset(seed=0)[0].shape == (4,)
        env.close()
