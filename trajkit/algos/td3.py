"""Twin delayed DDPG (Fujimoto et al., 2018).

For each of ``num_steps`` gradient steps: draw a batch, compute the smoothed target
action ``lf.target_smoothing``, minimize the twin critics' ``lf.clipped_double_bellman``;
every ``policy_delay`` steps also minimize the actor's ``lf.ag`` on ``qf1`` and move all
target networks towards their sources by ``tau``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from trajkit import lf
from trajkit.algos.common import (
    BatchSource,
    TrainResult,
    as_generator,
    check_off_policy_args,
    check_source,
    polyak_tensors,
    polyak_update,
    result_from_series,
    sample_batch,
)
from trajkit.checks import check_float, check_int

if TYPE_CHECKING:
    from trajkit.pols import BasePol


def train(
    *,
    traj: BatchSource,
    pol: BasePol,
    qf1: torch.nn.Module,
    qf2: torch.nn.Module,
    target_pol: BasePol,
    target_qf1: torch.nn.Module,
    target_qf2: torch.nn.Module,
    optim_pol: torch.optim.Optimizer,
    optim_qf: torch.optim.Optimizer,
    num_steps: int,
    batch_size: int,
    gamma: float = 0.99,
    tau: float = 0.005,
    policy_delay: int = 2,
    target_noise: float = 0.2,
    target_noise_clip: float = 0.5,
    per_beta: float = 0.4,
    nstep: bool = False,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``pol`` (a ``DeterministicPol``), ``qf1`` and ``qf2`` in place with TD3.

    Args:
        traj: a Traj or (prioritized) replay buffer with ``obs``, ``acs``, ``rews``,
            ``next_obs``, ``terminals``.
        optim_qf: one optimizer over both critics' parameters.
        policy_delay: actor and target updates every this many critic steps (counted
            within this call, starting with the call's first step).
        target_noise, target_noise_clip: std and clip of the target-smoothing noise,
            in the policy's ``[-1, 1]`` action units.
        per_beta: importance-weight exponent for a ``PrioritizedReplayBuffer``.
        generator: batch sampling and target noise.

    Returns:
        ``losses`` per step: ``qf_loss``, ``q1_mean``, ``td_abs``, and ``pol_loss`` per
        actor step; ``diagnostics``: their means over the call.
    """
    check_off_policy_args(num_steps=num_steps, batch_size=batch_size, gamma=gamma, tau=tau, per_beta=per_beta)
    check_int("policy_delay", policy_delay, min_value=1)
    check_float("target_noise", target_noise, min_value=0.0)
    check_float("target_noise_clip", target_noise_clip, min_value=0.0)
    check_source(traj, nstep)
    g = as_generator(generator)
    series: dict[str, list[torch.Tensor]] = {k: [] for k in ("pol_loss", "qf_loss", "q1_mean", "td_abs")}
    target, source = polyak_tensors(target_qf1, target_qf2, target_pol), polyak_tensors(qf1, qf2, pol)
    for i in range(num_steps):
        batch, update_pris = sample_batch(traj, batch_size, per_beta, g)
        next_obs = batch["nstep_next_obs" if nstep else "next_obs"]
        next_acs = lf.target_smoothing(target_pol, next_obs, target_noise, target_noise_clip, g)
        loss, info = lf.clipped_double_bellman(qf1, qf2, target_qf1, target_qf2, next_acs, batch, gamma, nstep)
        series["qf_loss"].append(loss.detach())
        update_actor = i % policy_delay == 0
        if update_actor:
            pol_loss, _ = lf.ag(pol, qf1, batch)
            series["pol_loss"].append(pol_loss.detach())
            loss = loss + pol_loss
            optim_pol.zero_grad(set_to_none=True)
        optim_qf.zero_grad(set_to_none=True)
        loss.backward()
        optim_qf.step()
        update_pris(info["td_errors"])
        if update_actor:
            optim_pol.step()
            polyak_update(target, source, tau)
        series["q1_mean"].append(info["q1_mean"])
        series["td_abs"].append(info["td_errors"].abs().mean())
    result = result_from_series(series)
    return result
