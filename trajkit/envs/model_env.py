"""A learned dynamics model as an environment: imagined rollouts as a Traj marked ``imagined``.

Two ways in, for two uses:

* :func:`imagine`: a batched rollout of a policy from ``B`` start states (taken from real
  data) for ``horizon`` steps in one go, one model forward per step for all rows
  (MBPO's short branched rollouts). Actions go to the model as the policy returns them
  (``traj["acs"]``'s units), so the model must be trained on a Traj or buffer whose
  ``acs`` the same policy family produced (e.g. SAC's ``[-1, 1]`` actions).
* :class:`ModelEnv`: a gymnasium env stepping one action at a time, usable with
  :class:`~trajkit.EpiSampler` like any env. It receives env actions (after
  ``pol.to_env_ac``), so its model must be trained on env-unit actions (as
  :class:`~trajkit.mpc.MPCPol` and ``RandomPol`` store them).

Either way every transition comes from one ensemble member drawn at random per step and
row (MBPO), sampled from its Gaussian if the model is one. The reward is a known
``reward_fn(obs, acs, next_obs)`` or the model's learned reward; ``terminal_fn(obs, acs,
next_obs) -> (B,) bool`` (None: never) ends rollouts as terminated. Imagined episodes
are cut at ``horizon`` (truncated, ``sampler_cut``, with their ``final_obs``), so
estimators bootstrap there, and carry the episode column ``imagined`` (all True).

Shapes: ``B`` start states (rows), ``O`` observation and ``A`` action features,
``E`` ensemble members, ``N`` steps of the returned Traj.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from trajkit.checks import check_int
from trajkit.models.dynamics import DynamicsModel
from trajkit.traj import Traj

#: ``(obs: (B, O), acs: (B, A), next_obs: (B, O)) -> (B,)``: rewards or (bool) terminations
StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["ModelEnv", "StepFn", "imagine", "model_step"]


@torch.no_grad()
def model_step(
    model: DynamicsModel,
    obs: torch.Tensor,
    acs: torch.Tensor,
    reward_fn: StepFn | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One imagined step of ``B`` rows, each through a member drawn at random: ``(next_obs: (B, O), rews: (B,))``."""
    if reward_fn is None and not model.learn_reward:
        raise ValueError("imagined rollouts need a reward_fn, or a model built with learn_reward=True")
    nxt, rews = model.predict(obs, acs, generator)  # (E, B, O), (E, B)
    member = torch.randint(model.num_members, (len(obs),), generator=generator, device=obs.device)
    rows = torch.arange(len(obs), device=obs.device)
    next_obs = nxt[member, rows]
    if reward_fn is not None:
        return next_obs, reward_fn(obs, acs, next_obs)
    assert rews is not None
    return next_obs, rews[member, rows]


@torch.no_grad()
def imagine(
    *,
    model: DynamicsModel,
    pol: Any,
    start_obs: torch.Tensor,
    horizon: int,
    reward_fn: StepFn | None = None,
    terminal_fn: StepFn | None = None,
    generator: torch.Generator | None = None,
) -> Traj:
    """Roll ``pol`` out inside ``model`` from ``start_obs: (B, O)`` for ``horizon`` steps: a Traj of ``B`` episodes.

    ``pol`` is any trajkit policy (``act(obs, deterministic, generator)``); its
    distribution parameters are stored per step as a sampler stores them. Step columns
    ``obs``, ``acs``, ``rews``, ``next_obs``, ``terminals`` and the parameters, in episode
    order; episode columns ``terminated``, ``truncated``, ``final_obs``, ``sampler_cut``,
    ``imagined``. A row that terminates stops there (its episode is shorter).
    """
    horizon = check_int("horizon", horizon, min_value=1)
    if start_obs.ndim < 2 or len(start_obs) == 0:
        raise ValueError(f"start_obs must be (B, *obs_shape) with B >= 1, got {tuple(start_obs.shape)}")
    b, dev = len(start_obs), start_obs.device
    obs, alive = start_obs.float(), torch.ones(b, dtype=torch.bool, device=dev)
    steps: list[dict[str, torch.Tensor]] = []
    ended = torch.full((b,), horizon, dtype=torch.int64, device=dev)  # each row's length
    terminated = torch.zeros(b, dtype=torch.bool, device=dev)
    final_obs = torch.empty_like(obs)
    for t in range(horizon):
        acs, params = pol.act(obs, False, generator)
        next_obs, rews = model_step(model, obs, acs, reward_fn, generator)
        term = terminal_fn(obs, acs, next_obs).bool() if terminal_fn is not None else torch.zeros_like(alive)
        term = term & alive
        steps.append({"obs": obs, "acs": acs, "rews": rews, "next_obs": next_obs,
                      "terminals": term.float(), **params})
        newly_done = term | (alive & (t == horizon - 1))
        final_obs[newly_done] = next_obs[newly_done]
        ended[term] = t + 1
        terminated |= term
        alive = alive & ~term
        obs = next_obs
    valid = torch.arange(horizon, device=dev)[None, :] < ended[:, None]  # (B, H), episode-major
    data = {k: torch.stack([s[k] for s in steps], 1)[valid] for k in steps[0]}
    bounds = torch.zeros(b + 1, dtype=torch.int64)
    bounds[1:] = ended.cpu().cumsum(0)
    epi = {"terminated": terminated, "truncated": ~terminated, "final_obs": final_obs,
           "sampler_cut": ~terminated, "imagined": torch.ones(b, dtype=torch.bool, device=dev)}
    return Traj(data, epi, bounds)


class ModelEnv(gym.Env):
    """A gymnasium env whose steps are a learned model's predictions, from start states of real data.

    Args:
        model: a trained dynamics model taking env-unit actions.
        start_obs: ``(N, O)`` observations to start episodes from (drawn uniformly at reset).
        ob_space, ac_space: the real env's spaces.
        reward_fn: the known reward, or None for the model's learned one.
        terminal_fn: ends an episode as terminated where it returns True (None: never).
        max_episode_steps: episodes are truncated after this many steps.

    ``reset(seed=...)`` seeds the start-state draws, the member draws and the model's
    sampling noise. ``info["imagined"]`` is True at every step.
    """

    def __init__(
        self,
        model: DynamicsModel,
        start_obs: torch.Tensor,
        ob_space: gym.Space,
        ac_space: gym.Space,
        *,
        reward_fn: StepFn | None = None,
        terminal_fn: StepFn | None = None,
        max_episode_steps: int = 200,
    ) -> None:
        if start_obs.ndim < 2 or len(start_obs) == 0:
            raise ValueError(f"start_obs must be (N, *obs_shape) with N >= 1, got {tuple(start_obs.shape)}")
        if reward_fn is None and not model.learn_reward:
            raise ValueError("ModelEnv needs a reward_fn, or a model built with learn_reward=True")
        self.model, self.start_obs = model, start_obs.detach().float().cpu()
        self.observation_space, self.action_space = ob_space, ac_space
        self.reward_fn, self.terminal_fn = reward_fn, terminal_fn
        self.max_episode_steps = check_int("max_episode_steps", max_episode_steps, min_value=1)
        self._gen = torch.Generator()
        self._obs = self.start_obs[0]
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._gen.manual_seed(int(self.np_random.integers(2**31)))
        self._obs = self.start_obs[int(self.np_random.integers(len(self.start_obs)))]
        self._t = 0
        return self._obs.numpy().astype(self.observation_space.dtype), {"imagined": True}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs = self._obs[None]
        acs = torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(1, -1)
        next_obs, rews = model_step(self.model, obs, acs, self.reward_fn, self._gen)
        term = bool(self.terminal_fn(obs, acs, next_obs)[0]) if self.terminal_fn is not None else False
        self._obs, self._t = next_obs[0], self._t + 1
        truncated = not term and self._t >= self.max_episode_steps
        out = self._obs.numpy().astype(self.observation_space.dtype)
        return out, float(rews[0]), term, truncated, {"imagined": True}
