"""Soft actor-critic with twin critics and automatic temperature (Haarnoja et al., 2018).

For each of ``num_steps`` gradient steps: draw a batch, minimize ``lf.sac`` (critics,
policy and temperature in one backward pass, each optimizer stepping its own part),
then move the target critics towards the critics by ``tau``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from trajkit import lf
from trajkit.algos.common import (
    BatchSource,
    TrainResult,
    as_generator,
    check_log_alpha,
    check_off_policy_args,
    check_source,
    polyak_tensors,
    polyak_update,
    result_from_series,
    sample_batch,
)
from trajkit.checks import check_optional_float
from trajkit.pols import flat_dim

if TYPE_CHECKING:
    from trajkit.pols import BasePol


def train(
    *,
    traj: BatchSource,
    pol: BasePol,
    qf1: torch.nn.Module,
    qf2: torch.nn.Module,
    target_qf1: torch.nn.Module,
    target_qf2: torch.nn.Module,
    log_alpha: torch.Tensor,
    optim_pol: torch.optim.Optimizer,
    optim_qf: torch.optim.Optimizer,
    optim_alpha: torch.optim.Optimizer | None,
    num_steps: int,
    batch_size: int,
    gamma: float = 0.99,
    tau: float = 0.005,
    target_ent: float | None = None,
    per_beta: float = 0.4,
    nstep: bool = False,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``pol``, ``qf1``, ``qf2`` (and ``log_alpha``) in place with SAC.

    Args:
        traj: a Traj or (prioritized) replay buffer with ``obs``, ``acs``, ``rews``, ``next_obs``,
            ``terminals`` (or the n-step columns with ``nstep``).
        pol: a policy whose ``pd`` has ``rsample_with_llh`` (``SquashedGaussianPol``).
        log_alpha: ``()`` tensor with ``requires_grad`` owned by the caller;
            ``optim_alpha`` steps it (None: fixed temperature).
        optim_qf: one optimizer over both critics' parameters.
        target_ent: the entropy target (default ``-A``, minus the action dimension).
        per_beta: importance-weight exponent with a ``PrioritizedReplayBuffer``; the drawn
            steps' priorities are then set to the new ``|TD error|`` of ``qf1``.
        generator: batch sampling and the policy's reparameterization noise.

    Returns:
        ``losses`` per gradient step: ``pol_loss``, ``qf_loss``, ``alpha_loss``,
        ``alpha``, ``q1_mean``, ``ent``; ``diagnostics``: their means over the call and
        ``td_abs`` (mean ``|TD error|``).
    """
    check_off_policy_args(num_steps=num_steps, batch_size=batch_size, gamma=gamma, tau=tau, per_beta=per_beta)
    target_ent = check_optional_float("target_ent", target_ent)
    check_log_alpha(log_alpha)
    check_source(traj, nstep)
    g = as_generator(generator)
    if target_ent is None:
        target_ent = -float(flat_dim(pol.ac_space))
    target, source = polyak_tensors(target_qf1, target_qf2), polyak_tensors(qf1, qf2)
    optims = [o for o in (optim_qf, optim_pol, optim_alpha) if o is not None]
    names = ("pol_loss", "qf_loss", "alpha_loss", "alpha", "q1_mean", "ent")
    series: dict[str, list[torch.Tensor]] = {k: [] for k in (*names, "td_abs")}
    for _ in range(num_steps):
        batch, update_pris = sample_batch(traj, batch_size, per_beta, g)
        loss, info = lf.sac(pol, qf1, qf2, target_qf1, target_qf2, log_alpha, batch, gamma, target_ent, g, nstep)
        for o in optims:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in optims:
            o.step()
        update_pris(info["td_errors"])
        polyak_update(target, source, tau)
        for k in names:
            series[k].append(info[k])
        series["td_abs"].append(info["td_errors"].abs().mean())
    td = series.pop("td_abs")
    result = result_from_series(series)
    if td:
        result.diagnostics["td_abs"] = float(torch.stack(td).mean())
    return result
