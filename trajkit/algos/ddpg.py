"""Deep deterministic policy gradient (Lillicrap et al., 2016), optionally with prioritized replay.

For each of ``num_steps`` gradient steps: draw a batch (from a
``PrioritizedReplayBuffer`` with importance weights ``per_beta``), minimize the critic's
``lf.bellman`` plus the actor's ``lf.ag`` (one backward pass; the actor's term sends no
gradient to the critic), update the drawn steps' priorities to ``|TD error|``, and move
both target networks towards their sources by ``tau``.
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
    from trajkit.pols import BasePol


def train(
    *,
    traj: BatchSource,
    pol: BasePol,
    qf: torch.nn.Module,
    target_pol: BasePol,
    target_qf: torch.nn.Module,
    optim_pol: torch.optim.Optimizer,
    optim_qf: torch.optim.Optimizer,
    num_steps: int,
    batch_size: int,
    gamma: float = 0.99,
    tau: float = 0.005,
    per_beta: float = 0.4,
    nstep: bool = False,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``pol`` (a ``DeterministicPol``) and ``qf`` in place with DDPG.

    Args:
        traj: a Traj, a ``ReplayBuffer`` or a ``PrioritizedReplayBuffer`` with ``obs``,
            ``acs``, ``rews``, ``next_obs``, ``terminals``.
        target_pol, target_qf: target copies, moved by ``tau`` after every step.
        per_beta: importance-weight exponent, used only with a ``PrioritizedReplayBuffer``
            (whose priorities are then updated with the new TD errors).
        generator: batch sampling.

    Returns:
        ``losses`` per step: ``pol_loss``, ``qf_loss``, ``q_mean``, ``td_abs``;
        ``diagnostics``: their means over the call.
    """
    check_off_policy_args(num_steps=num_steps, batch_size=batch_size, gamma=gamma, tau=tau, per_beta=per_beta)
    check_source(traj, nstep)
    g = as_generator(generator)
    series: dict[str, list[torch.Tensor]] = {k: [] for k in ("pol_loss", "qf_loss", "q_mean", "td_abs")}
    target, source = polyak_tensors(target_qf, target_pol), polyak_tensors(qf, pol)
    for _ in range(num_steps):
        batch, update_pris = sample_batch(traj, batch_size, per_beta, g)
        qf_loss, info = lf.bellman(qf, target_qf, target_pol, batch, gamma, nstep)
        pol_loss, _ = lf.ag(pol, qf, batch)
        optim_qf.zero_grad(set_to_none=True)
        optim_pol.zero_grad(set_to_none=True)
        (qf_loss + pol_loss).backward()
        optim_qf.step()
        optim_pol.step()
        update_pris(info["td_errors"])
        polyak_update(target, source, tau)
        td_abs = info["td_errors"].abs().mean()
        for k, v in (("pol_loss", pol_loss), ("qf_loss", qf_loss), ("q_mean", info["q_mean"]), ("td_abs", td_abs)):
            series[k].append(v.detach())
    result = result_from_series(series)
    return result
