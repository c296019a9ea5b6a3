"""Known reward functions, for planning with a model of the dynamics only.

A reward function takes ``(obs: (B, O), acs: (B, A), next_obs: (B, O))`` and returns
``rews: (B,)``, the reward the env would give for taking ``acs`` in ``obs``. Actions are
in the env's units (what ``pol.to_env_ac`` sends).
"""

from __future__ import annotations

import torch

__all__ = ["KNOWN_REWARDS", "pendulum_reward", "reacher_reward", "swingup_reward"]


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


def swingup_reward(obs: torch.Tensor, acs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """PyBullet's ``InvertedPendulumSwingupBulletEnv-v0`` reward: ``cos(theta)`` after the step, ``(B,)``.

    ``next_obs: (B, 5)`` is ``(x, vx, cos theta, sin theta, thdot)``; the env rewards the
    pole's height in the state it reaches (1 upright, -1 hanging), with no action cost.
    """
    if next_obs.ndim != 2 or next_obs.shape[-1] != 5:
        raise ValueError(f"swingup_reward needs (B, 5) observations (x, vx, cos, sin, thdot), got "
                         f"{tuple(next_obs.shape)}")
    return next_obs[:, 2]


def reacher_reward(obs: torch.Tensor, acs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """PyBullet's ``ReacherBulletEnv-v0`` reward, ``(B,)``: progress to the target less the energy and a stuck elbow.

    ``obs: (B, 9)`` is ``(target x, target y, to-target x, to-target y, cos theta, sin theta,
    thdot, gamma, gammadot)``; the reward is ``100 * (|d| - |d'|)`` (``d`` the fingertip's
    offset from the target before and after the step) ``- 0.1 * (|a0 thdot'| + |a1 gammadot'|)
    - 0.01 * (|a0| + |a1|)``, and ``-0.1`` more where the elbow sits within 0.01 of ``|gamma'| = 1``.
    """
    if obs.ndim != 2 or obs.shape[-1] != 9 or next_obs.shape != obs.shape:
        raise ValueError(f"reacher_reward needs (B, 9) observations, got {tuple(obs.shape)} and "
                         f"{tuple(next_obs.shape)}")
    acs = acs.reshape(len(acs), -1)
    progress = 100.0 * (obs[:, 2:4].norm(dim=1) - next_obs[:, 2:4].norm(dim=1))
    work = (acs[:, 0] * next_obs[:, 6]).abs() + (acs[:, 1] * next_obs[:, 8]).abs()
    stall = acs[:, 0].abs() + acs[:, 1].abs()
    stuck = ((next_obs[:, 7].abs() - 1.0).abs() < 0.01).to(obs.dtype)
    return progress - 0.1 * work - 0.01 * stall - 0.1 * stuck


#: env id -> its known reward function (what ``reward: known`` in the model-based presets uses)
KNOWN_REWARDS = {"Pendulum-v1": pendulum_reward, "InvertedPendulumSwingupBulletEnv-v0": swingup_reward,
                 "ReacherBulletEnv-v0": reacher_reward}
