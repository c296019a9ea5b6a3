"""QT-Opt (Kalashnikov et al., 2018): Q-learning for continuous actions with a CEM maximizer.

There is no actor: the policy is ``ArgmaxQfPol(qf1)``, acting with the action the cross-
entropy method finds for ``qf1``. For each of ``num_steps`` gradient steps: draw a
batch, find ``a' = CEM-argmax_a target_qf1(s', a)``, minimize the twin critics'
``lf.clipped_double_bellman`` towards ``r + gamma (1 - d) min_i target_qf_i(s', a')``
(QT-Opt's clipped double Q-learning), and move the target critics by ``tau``.
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

if TYPE_CHECKING:
    from trajkit.vfuncs import CEMDeterministicSAVfunc


def train(
    *,
    traj: BatchSource,
    qf1: torch.nn.Module,
    qf2: torch.nn.Module,
    target_qf1: CEMDeterministicSAVfunc,
    target_qf2: torch.nn.Module,
    optim_qf: torch.optim.Optimizer,
    num_steps: int,
    batch_size: int,
    gamma: float = 0.99,
    tau: float = 0.005,
    per_beta: float = 0.4,
    nstep: bool = False,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``qf1`` and ``qf2`` in place with QT-Opt.

    Args:
        traj: a Traj or (prioritized) replay buffer with ``obs``, ``acs`` (in ``[-1, 1]``),
            ``rews``, ``next_obs``, ``terminals``.
        target_qf1: a ``CEMDeterministicSAVfunc`` (its ``max`` picks the target action);
            ``qf1``, ``qf2``, ``target_qf2``: any action-value functions of that shape.
        optim_qf: one optimizer over both critics' parameters.
        per_beta: importance-weight exponent for a ``PrioritizedReplayBuffer``.
        generator: batch sampling and the CEM's draws.

    Returns:
        ``losses`` per step: ``qf_loss``, ``q1_mean``, ``td_abs``; ``diagnostics``: means.
    """
    check_off_policy_args(num_steps=num_steps, batch_size=batch_size, gamma=gamma, tau=tau, per_beta=per_beta)
    check_source(traj, nstep)
    g = as_generator(generator)
    series: dict[str, list[torch.Tensor]] = {k: [] for k in ("qf_loss", "q1_mean", "td_abs")}
    target, source = polyak_tensors(target_qf1, target_qf2), polyak_tensors(qf1, qf2)
    for _ in range(num_steps):
        batch, update_pris = sample_batch(traj, batch_size, per_beta, g)
        _, next_acs = target_qf1.max(batch["nstep_next_obs" if nstep else "next_obs"], g)
        loss, info = lf.clipped_double_bellman(qf1, qf2, target_qf1, target_qf2, next_acs, batch, gamma, nstep)
        optim_qf.zero_grad(set_to_none=True)
        loss.backward()
        optim_qf.step()
        update_pris(info["td_errors"])
        polyak_update(target, source, tau)
        series["qf_loss"].append(loss.detach())
        series["q1_mean"].append(info["q1_mean"])
        series["td_abs"].append(info["td_errors"].abs().mean())
    result = result_from_series(series)
    return result
