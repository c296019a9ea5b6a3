"""(Double, dueling, prioritized) deep Q-learning (Mnih et al., 2015; van Hasselt et al., 2016).

For each of ``num_steps`` gradient steps: draw a batch (prioritized with importance
weights ``per_beta`` from a ``PrioritizedReplayBuffer``), minimize ``lf.dqn`` (double-DQN
target, Huber loss), clip the gradient norm, update the drawn steps' priorities, and
every ``target_update_interval`` steps move the target network by ``tau`` (``tau=1``: copy).
Dueling heads are a network choice: build the Q-function on ``nets.dueling_mlp``.
"""

from __future__ import annotations

import torch

from trajkit import lf
from trajkit.algos.common import (
    BatchSource,
    TrainResult,
    as_generator,
    check_off_policy_args,
    check_source,
    polyak_update,
    result_from_series,
    sample_batch,
)
from trajkit.checks import check_int, check_optional_float


def train(
    *,
    traj: BatchSource,
    qf: torch.nn.Module,
    target_qf: torch.nn.Module,
    optim_qf: torch.optim.Optimizer,
    num_steps: int,
    batch_size: int,
    gamma: float = 0.99,
    double: bool = True,
    huber: bool = True,
    tau: float = 1.0,
    target_update_interval: int = 1,
    max_grad_norm: float | None = 10.0,
    per_beta: float = 0.4,
    nstep: bool = False,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``qf`` (a ``DiscreteQfunc``: ``(B, *obs_shape) -> (B, n)``) in place with DQN.

    Args:
        traj: a Traj or (prioritized) replay buffer with ``obs``, ``acs`` (action
            indices), ``rews``, ``next_obs``, ``terminals``.
        double: double-DQN target (online argmax, target value); else ``max`` of the target.
        tau, target_update_interval: every ``target_update_interval`` steps of this call
            (counted from its first step) ``target_qf <- (1 - tau) target_qf + tau qf``.
            ``tau=1`` with ``target_update_interval=num_steps`` keeps the target fixed
            during the call and copies it at the end.
        max_grad_norm: gradient-norm clip (None: none).
        per_beta: importance-weight exponent for a ``PrioritizedReplayBuffer``.
        generator: batch sampling.

    Returns:
        ``losses`` per step: ``qf_loss``, ``q_mean``, ``td_abs``; ``diagnostics``: means.
    """
    check_off_policy_args(num_steps=num_steps, batch_size=batch_size, gamma=gamma, tau=tau, per_beta=per_beta)
    check_int("target_update_interval", target_update_interval, min_value=1)
    check_optional_float("max_grad_norm", max_grad_norm, min_value=0.0, min_open=True)
    check_source(traj, nstep)
    g = as_generator(generator)
    params = list(qf.parameters())
    series: dict[str, list[torch.Tensor]] = {k: [] for k in ("qf_loss", "q_mean", "td_abs")}
    for i in range(num_steps):
        batch, update_pris = sample_batch(traj, batch_size, per_beta, g)
        loss, info = lf.dqn(qf, target_qf, batch, gamma, double, huber, nstep)
        optim_qf.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optim_qf.step()
        update_pris(info["td_errors"])
        if (i + 1) % target_update_interval == 0:
            polyak_update(target_qf, qf, tau)
        series["qf_loss"].append(loss.detach())
        series["q_mean"].append(info["q_mean"])
        series["td_abs"].append(info["td_errors"].abs().mean())
    result = result_from_series(series)
    return result
