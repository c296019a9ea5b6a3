"""Sessions: reset first for every new client, no tracebacks to clients, reconnect after a slow step."""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np
import pytest
from test_remote import RecordingEnv, raw_login, serving

import trajkit as tk
from trajkit.envs import RemoteEnv, RemoteEnvError
from trajkit.envs.remote import recv_msg, send_msg


def test_a_new_client_cannot_step_the_previous_clients_episode() -> None:
    robot = RecordingEnv()
    with serving(robot) as srv:
        first = RemoteEnv(*srv.address, timeout=5)
        first.reset(seed=0)
        first.step(np.array([0.5], np.float32))
        first.close()
        with raw_login(srv.address) as sock:  # the same env object, handed to the next client
            send_msg(sock, {"op": "step", "action": np.array([1.0], np.float32)})
            reply = recv_msg(sock)
            assert reply["op"] == "error" and "reset" in reply["message"], reply
            assert len(robot.actions) == 1
            send_msg(sock, {"op": "reset", "seed": 1})
            assert recv_msg(sock)["op"] == "obs"
            send_msg(sock, {"op": "step", "action": np.array([1.0], np.float32)})
            assert recv_msg(sock)["op"] == "transition"


def test_step_after_the_episode_ended_needs_a_reset() -> None:
    with serving(RecordingEnv()) as srv, raw_login(srv.address) as sock:
        send_msg(sock, {"op": "reset"})
        recv_msg(sock)
        for _ in range(50):  # RecordingEnv truncates at step 50
            send_msg(sock, {"op": "step", "action": np.zeros(1, np.float32)})
            last = recv_msg(sock)
        assert last["truncated"]
        send_msg(sock, {"op": "step", "action": np.zeros(1, np.float32)})
        assert recv_msg(sock).get("code") == "needs_reset"


def test_env_errors_reach_the_client_without_the_server_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trajkit.envs.remote")
    with serving(RecordingEnv(fail=True)) as srv:
        env = RemoteEnv(*srv.address, timeout=5)
        env.reset(seed=0)
        with pytest.raises(RemoteEnvError) as raised:
            env.step(np.array([0.0], np.float32))
        text = str(raised.value)
        assert "RuntimeError" in text and "boom at the motor driver" in text
        assert "Traceback" not in text and 'File "' not in text and ".py" not in text
        env.close()
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "boom at the motor driver" in caplog.text and "Traceback" in caplog.text


def test_reset_after_a_step_slower_than_the_timeout_retries_until_the_env_is_free() -> None:
    """The server is still inside env.step when the client gives up; the reset used to be refused 'busy'."""
    with serving(RecordingEnv(step_delay=0.6)) as srv:
        env = RemoteEnv(*srv.address, timeout=0.2, reconnect_attempts=8, reconnect_delay=0.1)
        env.reset(seed=0)
        with pytest.warns(UserWarning, match="ending the episode as truncated"):
            *_, truncated, info = env.step(np.array([0.0], np.float32))
        assert truncated and "timed out" in info["remote_error"]
        start = time.monotonic()
        obs, _ = env.reset(seed=1)
        assert obs.shape == (3,) and time.monotonic() - start < 3
        env.close()


def test_reconnect_gives_up_within_its_bounds() -> None:
    with serving(RecordingEnv()) as srv:
        holder = RemoteEnv(*srv.address, timeout=5)
        holder.reset(seed=0)  # holds the only env
        other = RemoteEnv(*srv.address, timeout=5, reconnect_attempts=10, reconnect_delay=0.1, reconnect_timeout=0.5)
        start = time.monotonic()
        with pytest.raises(RemoteEnvError, match="busy"):
            other.reset(seed=0)
        assert time.monotonic() - start < 1.5
        holder.close()


def test_sampler_survives_a_step_slower_than_the_client_timeout() -> None:
    with serving(RecordingEnv(step_delay=0.5, slow_step=2)) as srv:
        remote = RemoteEnv(*srv.address, timeout=0.2, reconnect_attempts=8, reconnect_delay=0.1)
        env = tk.GymEnv(remote)
        pol = tk.GaussianPol(env.observation_space, env.action_space, tk.nets.mlp(3, 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with tk.EpiSampler(env, pol, seed=0) as sampler:
                epis = sampler.sample(pol, max_steps=6)
        assert sum(len(e["rews"]) for e in epis) == 6
        assert len(epis) >= 2  # the slow step cut the first episode
        remote.close()


def test_a_factory_that_fails_does_not_use_up_the_env_slots() -> None:
    import gymnasium as gym

    calls = {"n": 0}

    def flaky() -> gym.Env:
        calls["n"] += 1
        if 2 <= calls["n"] <= 4:  # the first env (made at start) works, the next three makes fail
            raise RuntimeError("the robot is not ready")
        return gym.make("CartPole-v1")

    with serving(flaky, max_envs=2) as srv:
        holder = RemoteEnv(*srv.address, timeout=5)
        holder.reset(seed=0)  # takes the one working env
        for _ in range(3):
            with pytest.raises(RemoteEnvError):
                RemoteEnv(*srv.address, timeout=5, reconnect_attempts=1).reset(seed=0)
        late = RemoteEnv(*srv.address, timeout=5)  # the failed makes freed their slot
        late.reset(seed=0)
        late.close()
        holder.close()
