"""Small envs and policies for the sampler tests.

They live in their own module (not a test module) so that sampler workers, which
import them by name, do not have to import pytest or hypothesis.
"""

from __future__ import annotations

import os
import time

import gymnasium as gym
import numpy as np
import torch

import trajkit as tk


class SleepyEnv(gym.Env):
    """Sleeps ``delay`` seconds per step; episodes last ``length`` steps (truncated). Obs: (step, noise)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, delay: float = 0.0, length: int = 10) -> None:
        self.delay, self.length, self.t = delay, length, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.array([self.t, self.np_random.normal()], np.float32)

    def step(self, action):
        if self.delay:
            time.sleep(self.delay)
        self.t += 1
        return self._obs(), float(action), False, self.t >= self.length, {}


class ExplodingEnv(SleepyEnv):
    """The first worker to step elects itself (an exclusive file) and raises at its third step.

    Every other copy sleeps ``delay`` per step, so a parent that waited for all workers
    would wait ``delay * length`` seconds for them.
    """

    def __init__(self, lock_path: str, delay: float, length: int) -> None:
        super().__init__(delay, length)
        self.lock_path = lock_path
        self.role: str | None = None

    def step(self, action):
        if self.role is None:
            try:
                os.close(os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                self.role = "raiser"
            except FileExistsError:
                self.role = "sleeper"
        if self.role == "raiser" and self.t == 2:
            raise RuntimeError("env exploded on purpose at step 3")
        return super().step(action)


class TwoActionsPol(tk.CategoricalPol):
    """A broken policy: returns two actions per observation for a Discrete env."""

    def act(self, obs, deterministic=False, generator=None):
        acs, params = super().act(obs, deterministic, generator)
        return torch.stack([acs, acs], -1), params
