"""Bullet environments by id through ``tk.GymEnv`` (the ``bullet`` extra), and the missing-extra error."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import trajkit as tk
from trajkit.envs import gym_env

BULLET_IDS = [
    "HalfCheetahBulletEnv-v0",
    "HopperBulletEnv-v0",
    "Walker2DBulletEnv-v0",
    "AntBulletEnv-v0",
    "HumanoidBulletEnv-v0",
    "HumanoidFlagrunBulletEnv-v0",
    "HumanoidFlagrunHarderBulletEnv-v0",
    "InvertedPendulumBulletEnv-v0",
    "InvertedDoublePendulumBulletEnv-v0",
    "InvertedPendulumSwingupBulletEnv-v0",
    "ReacherBulletEnv-v0",
    "PusherBulletEnv-v0",
    "ThrowerBulletEnv-v0",
]


@pytest.mark.parametrize("env_id", BULLET_IDS)
def test_bullet_id_makes_resets_and_steps(env_id: str) -> None:
    pytest.importorskip("pybullet_envs_gymnasium")
    env = tk.GymEnv(env_id)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == env.observation_space.shape
        assert np.all(np.isfinite(obs))
        env.action_space.seed(0)
        for _ in range(5):
            obs, rew, terminated, truncated, _ = env.step(env.action_space.sample())
            assert obs.shape == env.observation_space.shape
            assert np.isfinite(rew) and isinstance(terminated, bool) and isinstance(truncated, bool)
            if terminated or truncated:
                obs, _ = env.reset()
    finally:
        env.close()


def test_bullet_reset_is_seeded() -> None:
    pytest.importorskip("pybullet_envs_gymnasium")
    a, b = tk.GymEnv("HopperBulletEnv-v0"), tk.GymEnv("HopperBulletEnv-v0")
    try:
        np.testing.assert_array_equal(a.reset(seed=3)[0], b.reset(seed=3)[0])
        assert not np.array_equal(a.reset(seed=3)[0], a.reset(seed=4)[0])
    finally:
        a.close()
        b.close()


def test_humanoid_and_flagrun_share_spaces() -> None:
    """The mixed-env example trains one policy on both."""
    pytest.importorskip("pybullet_envs_gymnasium")
    a, b = tk.GymEnv("HumanoidBulletEnv-v0"), tk.GymEnv("HumanoidFlagrunBulletEnv-v0")
    try:
        assert a.observation_space.shape == b.observation_space.shape
        assert a.action_space == b.action_space
    finally:
        a.close()
        b.close()


def test_missing_bullet_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def fake_import(name: str, *args: object) -> object:
        if name.startswith("pybullet_envs_gymnasium"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(gym_env.importlib, "import_module", fake_import)
    with pytest.raises(ImportError, match=r"pip install 'trajkit\[bullet\]'") as info:
        tk.GymEnv("HalfCheetahBulletEnv-v0")
    assert "HalfCheetahBulletEnv-v0" in str(info.value)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_non_bullet_ids_do_not_need_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def no_bullet(name: str, *args: object) -> object:
        if name.startswith("pybullet"):
            raise AssertionError(f"imported {name}")
        return real_import(name, *args)

    monkeypatch.setattr(gym_env.importlib, "import_module", no_bullet)
    tk.GymEnv("CartPole-v1").close()
