"""Vanilla policy gradient (REINFORCE with a learned baseline, as in Spinning Up's VPG).

One policy step on the whole Traj with ``lf.pg``, then ``vf_epoch`` passes of value
regression with ``lf.monte_carlo`` in minibatches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from trajkit import ef, lf
from trajkit.algos.common import (
    TrainResult,
    as_generator,
    check_minibatch_args,
    explained_variance,
    fit_vf,
    full_batch,
    require_steps,
    step,
)
from trajkit.checks import check_float
from trajkit.traj import Traj

if TYPE_CHECKING:
    from trajkit.pols import BasePol


def train(
    *,
    traj: Traj,
    pol: BasePol,
    vf: torch.nn.Module,
    optim_pol: torch.optim.Optimizer,
    optim_vf: torch.optim.Optimizer,
    vf_epoch: int = 80,
    vf_batch_size: int = 256,
    ent_coef: float = 0.0,
    max_grad_norm: float | None = None,
    seq_len: int | None = None,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``pol`` (one gradient step on all of ``traj``) and ``vf`` in place.

    Args:
        seq_len: for a recurrent ``pol`` or ``vf`` (detected): the sequences are whole
            episodes (None) or chunks of ``seq_len`` steps; all of them form the full
            batch (chunks bound its padding). See ``docs/recurrent.md``.

    Returns:
        ``losses["pol_loss"]`` (one value), ``losses["vf_loss"]`` per value epoch;
        ``diagnostics`` ``kl`` (after the step), ``ent``, ``explained_var``.
    """
    check_minibatch_args(epoch=vf_epoch, batch_size=vf_batch_size, max_grad_norm=max_grad_norm, prefix="vf_")
    check_float("ent_coef", ent_coef, min_value=0.0)
    require_steps(traj)
    ef.require(traj, "obs", "acs", "advs", "rets", *pol.pd.param_names)
    result = TrainResult()
    full = full_batch(traj, [pol], seq_len)
    pol_loss, info = lf.pg(pol, full, ent_coef)
    step(optim_pol, pol_loss, pol.parameters(), max_grad_norm)
    result.append(pol_loss=pol_loss)
    vf_losses = fit_vf(traj=traj, vf=vf, optim_vf=optim_vf, epoch=vf_epoch, batch_size=vf_batch_size,
                       max_grad_norm=max_grad_norm, generator=as_generator(generator), seq_len=seq_len)
    result.losses["vf_loss"] = vf_losses
    with torch.no_grad():
        params, rows = lf.forward_rows(pol, full, pol.pd.param_names)
        kl = pol.pd.kl_pq(lf.old_params(pol, rows), params).mean()
    result.diagnostics.update(kl=float(kl), ent=float(info["ent"]))
    if "vs" in traj:
        result.diagnostics["explained_var"] = explained_variance(traj["vs"], traj["rets"])
    return result
