"""Actions from the network are checked against the action space before they reach the env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from test_remote import RecordingEnv, raw_login, serving

from trajkit.envs import RemoteEnv, RemoteEnvError
from trajkit.envs.remote import recv_msg, send_msg

BAD_BOX_ACTIONS = {
    "nan": (np.array([np.nan], np.float32), "not finite"),
    "+inf": (np.array([np.inf], np.float32), "not finite"),
    "-inf": (np.array([-np.inf], np.float32), "not finite"),
    "1e300": (np.array([1e300]), "out of bounds"),
    "2.5": (np.array([2.5], np.float32), "out of bounds"),
    "shape": (np.array([0.1, 0.2], np.float32), "shape"),
    "bool": (np.array([True]), "numbers"),
}


@pytest.mark.parametrize("name", list(BAD_BOX_ACTIONS))
def test_bad_box_actions_never_reach_the_env(name: str) -> None:
    action, problem = BAD_BOX_ACTIONS[name]
    robot = RecordingEnv()
    with serving(robot) as srv:
        env = RemoteEnv(*srv.address, timeout=5)
        env.reset(seed=0)
        with pytest.raises(ValueError, match=problem) as refused:  # a RemoteActionError
            env.step(action)
        assert isinstance(refused.value, RemoteEnvError) and "refused the action" in str(refused.value)
        assert robot.actions == []
        env.step(np.array([1.5], np.float32))  # the episode goes on with a valid action
        np.testing.assert_array_equal(robot.actions, [[1.5]])
        env.close()


def test_clip_mode_clips_out_of_bounds_but_still_refuses_non_finite() -> None:
    robot = RecordingEnv()
    with serving(robot, out_of_bounds="clip") as srv:
        env = RemoteEnv(*srv.address, timeout=5)
        env.reset(seed=0)
        env.step(np.array([1e300]))
        env.step(np.array([-3.0], np.float32))
        np.testing.assert_array_equal(robot.actions, [[2.0], [-2.0]])
        assert robot.actions[0].dtype == np.float32
        with pytest.raises(ValueError, match="not finite"):
            env.step(np.array([np.nan], np.float32))
        env.close()


def test_actions_are_checked_in_raw_protocol_too() -> None:
    """Strings, nested lists and missing actions get an error reply, not an exception in the env."""
    robot = RecordingEnv()
    with serving(robot) as srv, raw_login(srv.address) as sock:
        send_msg(sock, {"op": "reset"})
        assert recv_msg(sock)["op"] == "obs"
        for action in ("left", [[0.1]], None, {"a": 1}):
            send_msg(sock, {"op": "step", "action": action})
            reply = recv_msg(sock)
            assert reply["op"] == "error" and reply["code"] == "bad_action", (action, reply)
        assert robot.actions == []


def test_server_rejects_an_unknown_out_of_bounds_mode() -> None:
    from trajkit.envs import EnvServer

    with pytest.raises(ValueError, match="out_of_bounds must be one of"):
        EnvServer(RecordingEnv(), out_of_bounds="wrap")


@pytest.mark.parametrize(
    ("space", "action", "expected"),
    [
        (gym.spaces.Discrete(3, start=1), np.array(3), 3),
        (gym.spaces.MultiDiscrete([2, 3]), np.array([1, 2]), np.array([1, 2])),
        (gym.spaces.MultiBinary(2), np.array([1, 0]), np.array([1, 0])),
        (gym.spaces.Box(-1, 1, (2,), np.float64), [1.0, -1.0], np.array([1.0, -1.0])),
        (gym.spaces.Box(-np.inf, np.inf, (1,), np.float32), np.array([1e30]), np.array([1e30], np.float32)),
        (gym.spaces.Box(0.0, 1.0, (1,), np.float32), np.array([1.0 + 1e-9]), np.array([1.0], np.float32)),
    ],
    ids=["discrete", "multidiscrete", "multibinary", "box-list", "box-unbounded", "box-rounding"],
)
def test_valid_actions_pass(space: gym.Space, action: object, expected: object) -> None:
    from trajkit.envs.remote import check_action

    got = check_action(space, action)
    np.testing.assert_array_equal(got, expected)
    assert space.contains(got)


@pytest.mark.parametrize(
    ("space", "action", "problem"),
    [
        (gym.spaces.Discrete(3), np.array(3), "outside"),
        (gym.spaces.Discrete(3), np.array(1.0), "integer"),
        (gym.spaces.Discrete(3), np.array([0, 1]), "one integer"),
        (gym.spaces.MultiDiscrete([2, 3]), np.array([1, -1]), "out of range"),
        (gym.spaces.MultiBinary(2), np.array([1, 2]), "0 or 1"),
        (gym.spaces.Box(-np.inf, np.inf, (1,), np.float32), np.array([1e300]), "overflows"),
        (gym.spaces.Dict({"a": gym.spaces.Discrete(2)}), {"b": 0}, "keys"),
        (gym.spaces.Tuple([gym.spaces.Discrete(2)] * 2), [0], "sequence of 2"),
        (gym.spaces.Dict({"arm": gym.spaces.Box(-1, 1, (2,))}), {"arm": np.array([0.0, np.nan])}, r"\['arm'\]"),
    ],
    ids=["discrete-range", "discrete-float", "discrete-shape", "multidiscrete", "multibinary", "overflow",
         "dict-keys", "tuple-length", "nested-where"],
)
def test_invalid_actions_name_the_problem(space: gym.Space, action: object, problem: str) -> None:
    from trajkit.envs.remote import RemoteActionError, check_action

    with pytest.raises(RemoteActionError, match=problem):
        check_action(space, action)
