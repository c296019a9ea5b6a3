"""Known reward functions, for planning with a model of the dynamics only.

A reward function takes ``(obs: (B, O), acs: (B, A), next_obs: (B, O))`` and returns
``rews: (B,)``, the reward the env would give for taking ``acs`` in ``obs``. Actions are
in the env's units (what ``pol.to_env_ac`` sends).
"""

from __future__ import annotations

import torch

__all__ = ["KNOWN_REWARDS", "pendulum_reward"]


def pendulum_reward(
    obs: torch.Tensor, acs: torch.Tensor, next_obs: torch.Tensor, max_torque: float = 2.0
) -> torch.Tensor:
    """Gymnasium's ``Pendulum-v1`` reward: ``-(th^2 + 0.1 * thdot^2 + 0.001 * u^2)``, ``(B,)``.

    ``obs: (B, 3)`` is ``(cos th, sin th, thdot)`` before the step (the env rewards the
    state it acted in); ``th = atan2(sin th, cos th)`` is the angle from upright, in
    ``[-pi, pi]``; the torque ``u = acs[:, 0]`` is clipped to ``[-max_torque, max_torque]``
    as the env clips it. ``next_obs`` is not needed.
    """
    if obs.ndim != 2 or obs.shape[-1] != 3:
        raise ValueError(f"pendulum_reward needs (B, 3) observations (cos, sin, thdot), got {tuple(obs.shape)}")
    th = torch.atan2(obs[:, 1], obs[:, 0])
    u = acs.reshape(len(acs), -1)[:, 0].clamp(-max_torque, max_torque)
    return -(th.pow(2) + 0.1 * obs[:, 2].pow(2) + 0.001 * u.pow(2))


#: env id -> its known reward function (what ``reward: known`` in the model-based presets uses)
KNOWN_REWARDS = {"Pendulum-v1": pendulum_reward}
